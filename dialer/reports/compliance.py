"""`compliance`: the abandonment record the FCC and Ofcom require a caller to keep — per campaign
and calendar day in the campaign's timezone: live answers, abandoned calls, the day's rate and
the FCC's 30-day rate ending that day, the abandon message, and numbers called again within
72 hours of an abandoned call (there must be none)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, and_, case, func, select
from sqlalchemy.orm import aliased

from dialer.handover import IVR_SENT
from dialer.outcomes import ABANDON_QUIET
from dialer.reports.common import ABANDONED, LIVE, A, count_in, rate
from dialer.reports.period import Span, epoch, local_bucket, slot
from dialer.store.models import Attempt, Campaign

COLUMNS = ["campaign", "day", "live_answers", "abandoned", "rate", "live_answers_30d", "abandoned_30d", "rate_30d",
           "target", "over_cap", "messages_played", "redials_within_72h"]
WINDOW_DAYS = 30


def compliance(conn: Connection, c: Campaign, span: Span, now: dt.datetime) -> list[dict[str, Any]]:
    dialect = conn.dialect.name
    until = span.until
    # 30 days before the first day, so that its rolling rate is whole
    since = span.since - dt.timedelta(days=WINDOW_DAYS + 1) if span.since is not None else None
    s = slot(A.created_at, dialect)
    played = func.coalesce(func.sum(case((and_(A.outcome == "abandoned", A.detail.contains(IVR_SENT)), 1),
                                         else_=0)), 0)
    q = (select(s, count_in(LIVE), count_in(ABANDONED), played)
         .where(A.campaign_id == c.id, A.outcome.in_(list(LIVE)),
                *([A.created_at < until] if until is not None else []),
                *([A.created_at >= since] if since is not None else []))
         .group_by(s))
    days: dict[dt.date, list[int]] = {}
    for n, live, ab, msg in conn.execute(q):
        d = local_bucket(n, span.tz, 1440).date()
        row = days.setdefault(d, [0, 0, 0])
        row[0] += int(live)
        row[1] += int(ab)
        row[2] += int(msg)
    redials = _redials(conn, c, span, until)
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


def _redials(conn: Connection, c: Campaign, span: Span, until: dt.datetime | None) -> dict[dt.date, int]:
    """Calls to a number started within 72 hours after one of its calls was abandoned, by the
    local day of the abandoned call."""
    dialect = conn.dialect.name
    later = aliased(Attempt)
    quiet = ABANDON_QUIET.total_seconds()
    q = (select(A.created_at, func.count())
         .select_from(Attempt.__table__.join(later, and_(later.contact_id == A.contact_id, later.id != A.id)))
         .where(A.campaign_id == c.id, A.outcome.in_(list(ABANDONED)), *span.where(A.created_at),
                later.created_at > A.created_at,
                epoch(later.created_at, dialect) < epoch(A.created_at, dialect) + quiet)
         .group_by(A.id, A.created_at))
    out: dict[dt.date, int] = {}
    for created, k in conn.execute(q):
        created = created if isinstance(created, dt.datetime) else dt.datetime.fromisoformat(str(created))
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.timezone.utc)
        d = created.astimezone(span.tz).date()
        out[d] = out.get(d, 0) + int(k)
    return out
