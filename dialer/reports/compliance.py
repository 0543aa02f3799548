"""`compliance`: the abandonment record the FCC and Ofcom require a caller to keep — per campaign
and calendar day in the campaign's timezone: live answers, abandoned calls, the day's rate and
the FCC's 30-day rate ending that day, the abandon message, and numbers called again within
72 hours of an abandoned call (there must be none)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, and_, select
from sqlalchemy.orm import aliased

from dialer.handover import IVR_SENT
from dialer.outcomes import ABANDON_QUIET
from dialer.reports.common import ABANDONED, LIVE, A, rate
from dialer.reports.interval import slot_counts
from dialer.reports.period import Span, epoch, local_bucket
from dialer.store.models import Attempt, Campaign

WINDOW_DAYS = 30


def compliance(conn: Connection, c: Campaign, span: Span, now: dt.datetime) -> list[dict[str, Any]]:
    # 30 days before the first day, so that its rolling rate is whole
    since = span.since - dt.timedelta(days=WINDOW_DAYS + 1) if span.since is not None else None
    days: dict[dt.date, list[int]] = {}
    for n, outcome, k in slot_counts(conn, c, span, LIVE, since):
        row = days.setdefault(local_bucket(n, span.tz, 1440).date(), [0, 0, 0])
        row[0] += k
        row[1] += k if outcome in ABANDONED else 0
    for d, k in _played(conn, c, span, since).items():
        days.setdefault(d, [0, 0, 0])[2] += k
    redials = _redials(conn, c, span)
    first = span.since.astimezone(span.tz).date() if span.since is not None else None
    out = []
    for d in sorted(set(days) | set(redials)):
        if first is not None and d < first:
            continue
        live, ab, msg = days.get(d, [0, 0, 0])
        window = [days.get(d - dt.timedelta(days=k), [0, 0, 0]) for k in range(WINDOW_DAYS)]
        live30, ab30 = sum(w[0] for w in window), sum(w[1] for w in window)
        r, r30 = rate(ab, live), rate(ab30, live30)
        out.append({
            "campaign": c.name, "day": d.isoformat(), "live_answers": live, "abandoned": ab, "rate": r,
            "live_answers_30d": live30, "abandoned_30d": ab30, "rate_30d": r30, "target": c.abandon_target,
            "over_cap": bool((r is not None and r > c.abandon_target) or (r30 is not None and r30 > c.abandon_target)),
            "messages_played": msg, "redials_within_72h": redials.get(d, 0),
        })
    return out


def _played(conn: Connection, c: Campaign, span: Span, since: dt.datetime | None) -> dict[dt.date, int]:
    """Abandoned calls whose customer was sent to the abandon message, by local day (few rows:
    read through the campaign/time index)."""
    q = (select(A.created_at).where(A.campaign_id == c.id, A.outcome == "abandoned", A.detail.contains(IVR_SENT),
                                    *([A.created_at >= since] if since is not None else []),
                                    *([A.created_at < span.until] if span.until is not None else [])))
    out: dict[dt.date, int] = {}
    for (created,) in conn.execute(q):
        d = created.astimezone(span.tz).date()
        out[d] = out.get(d, 0) + 1
    return out


def _redials(conn: Connection, c: Campaign, span: Span) -> dict[dt.date, int]:
    """Calls to a number started within 72 hours after one of its calls was abandoned, by the
    local day of the abandoned call."""
    dialect = conn.dialect.name
    later = aliased(Attempt)
    quiet = ABANDON_QUIET.total_seconds()
    q = (select(A.created_at, later.id)  # (no GROUP BY, which would steer SQLite off the index)
         .select_from(Attempt.__table__.join(later, and_(later.contact_id == A.contact_id, later.id != A.id)))
         .where(A.campaign_id == c.id, A.outcome.in_(ABANDONED), *span.where(A.created_at),
                later.created_at > A.created_at,
                epoch(later.created_at, dialect) < epoch(A.created_at, dialect) + quiet))
    first: dict[int, dt.datetime] = {}  # each call again, counted once: on the day of the first abandoned call
    for created, call in conn.execute(q):
        if call not in first or created < first[call]:
            first[call] = created
    out: dict[dt.date, int] = {}
    for created in first.values():
        d = created.astimezone(span.tz).date()
        out[d] = out.get(d, 0) + 1
    return out
