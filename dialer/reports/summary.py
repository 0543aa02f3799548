"""`summary` and `outcomes`: what became of each campaign's list, and of its calls."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, case, distinct, func, select

from dialer.reports.common import ABANDONED, LIVE, TALKED, A, count_in, rate
from dialer.reports.period import Span
from dialer.store.abandonment import abandon_counts
from dialer.store.dialable import count_dialable
from dialer.store.models import CONTACT_STATUSES, OUTCOMES, Campaign, Contact

SUMMARY = ["campaign", "status", "contacts", *CONTACT_STATUSES, "dialable", "dialled", "penetration", "attempts",
           "in_progress", "live_answers", "answer_rate", "contact_rate", "answered", "abandoned", "abandon_rate",
           "abandon_rate_24h", "abandon_rate_30d", "abandon_target", "mean_ring_seconds", "talk_seconds",
           "mean_talk_seconds", "attempts_per_done"]
OUTCOME_COLUMNS = ["campaign", "pass", "outcome", "attempts", "share"]


def _contact_of(outcomes: tuple[str, ...]) -> Any:
    return func.count(distinct(case((A.outcome.in_(list(outcomes)), A.contact_id), else_=None)))


def summary(conn: Connection, c: Campaign, span: Span, now: dt.datetime) -> dict[str, Any]:
    ct = Contact.__table__.c
    by_status = dict(conn.execute(select(ct.status, func.count()).where(ct.campaign_id == c.id)
                                  .group_by(ct.status)).all())
    talked = A.outcome.in_(list(TALKED))
    q = (select(func.count(), count_in(LIVE), count_in(ABANDONED), count_in(TALKED),
                func.coalesce(func.sum(case((A.outcome.is_(None), 1), else_=0)), 0),
                func.avg(A.ring_seconds),
                func.coalesce(func.sum(case((talked, A.talk_seconds), else_=None)), 0),
                func.count(case((talked, A.talk_seconds), else_=None)),
                func.count(distinct(A.contact_id)), _contact_of(LIVE), _contact_of(TALKED))
         .where(A.campaign_id == c.id, *span.where(A.created_at)))
    (attempts, live, abandoned, answered, open_, ring, talk, talks, dialled, reached, done) = conn.execute(q).one()
    contacts = sum(by_status.values())
    # the rolling windows end at --until (or now): the rate the regulator would see that day
    end = min(span.until, now) if span.until is not None else now
    counts = abandon_counts(conn, [c.id], end)[c.id]
    talk = float(talk or 0)
    return {
        "campaign": c.name, "status": c.status, "contacts": contacts,
        **{st: int(by_status.get(st, 0)) for st in CONTACT_STATUSES},
        "dialable": count_dialable(conn, c, now),
        "dialled": int(dialled), "penetration": rate(dialled, contacts), "attempts": int(attempts),
        "in_progress": int(open_), "live_answers": int(live), "answer_rate": rate(live, attempts),
        "contact_rate": rate(reached, dialled), "answered": int(answered), "abandoned": int(abandoned),
        "abandon_rate": rate(abandoned, live),
        "abandon_rate_24h": rate(counts.abandoned_day, counts.live_day),
        "abandon_rate_30d": rate(counts.abandoned_30d, counts.live_30d), "abandon_target": c.abandon_target,
        "mean_ring_seconds": round(float(ring), 1) if ring is not None else None,
        "talk_seconds": round(talk, 1), "mean_talk_seconds": round(talk / talks, 1) if talks else None,
        "attempts_per_done": rate(attempts, done, 2),
    }


def outcomes(conn: Connection, c: Campaign, span: Span) -> list[dict[str, Any]]:
    """Each outcome's count and share, over every pass ("all") and then by attempt number."""
    q = (select(A.attempt_no, A.outcome, func.count()).where(A.campaign_id == c.id, A.outcome.is_not(None),
                                                            *span.where(A.created_at))
         .group_by(A.attempt_no, A.outcome))
    by_pass: dict[int, dict[str, int]] = {}
    for n, outcome, k in conn.execute(q):
        by_pass.setdefault(int(n), {})[outcome] = int(k)
    order = {o: i for i, o in enumerate(OUTCOMES)}
    total: dict[str, int] = {}
    for counts in by_pass.values():
        for o, k in counts.items():
            total[o] = total.get(o, 0) + k
    out = []
    for label, counts in [("all", total), *sorted(by_pass.items())]:
        whole = sum(counts.values())
        for o in sorted(counts, key=lambda o: order.get(o, 99)):
            out.append({"campaign": c.name, "pass": label, "outcome": o, "attempts": counts[o],
                        "share": rate(counts[o], whole)})
    return out
