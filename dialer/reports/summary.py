"""`summary` and `outcomes`: what became of each campaign's list, and of its calls."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, func, select

from dialer.reports.common import ABANDONED, LIVE, TALKED, A, is_in, rate
from dialer.reports.period import Span
from dialer.store.abandonment import abandon_counts
from dialer.store.dialable import count_dialable
from dialer.store.models import CONTACT_STATUSES, OUTCOMES, Campaign, Contact



@dataclass
class Group:
    """Attempts of one pass and outcome: how many, and their ring and talk times."""

    n: int = 0
    ring: float = 0.0
    rings: int = 0
    talk: float = 0.0
    talks: int = 0


def groups(conn: Connection, c: Campaign, span: Span) -> dict[tuple[int, str | None], Group]:
    """(pass, outcome) → Group: one pass over the index by pass (no sort, no table read when the
    period is all time); the reports add the groups up by the outcome sets."""
    q = (select(span.key(A.outcome), span.key(A.attempt_no), func.count(), func.sum(A.ring_seconds), func.count(A.ring_seconds),
                func.sum(A.talk_seconds), func.count(A.talk_seconds))
         .where(A.campaign_id == c.id, *span.where(A.created_at)).group_by(span.key(A.outcome), span.key(A.attempt_no)))
    return {(int(no), outcome): Group(int(n), float(ring or 0), int(rings), float(talk or 0), int(talks))
            for outcome, no, n, ring, rings, talk, talks in conn.execute(q)}


def summary(conn: Connection, c: Campaign, span: Span, now: dt.datetime) -> dict[str, Any]:
    ct = Contact.__table__.c
    by_status = dict(conn.execute(select(ct.status, func.count()).where(ct.campaign_id == c.id)
                                  .group_by(ct.status)).all())
    g = groups(conn, c, span)

    def total(outcomes: tuple[str | None, ...] | None = None) -> Group:
        out = Group()
        for (_, o), x in g.items():
            if outcomes is None or o in outcomes:
                out = Group(out.n + x.n, out.ring + x.ring, out.rings + x.rings, out.talk + x.talk, out.talks + x.talks)
        return out

    every, talked = total(), total(TALKED)
    attempts, live, abandoned, answered = every.n, total(LIVE).n, total(ABANDONED).n, talked.n
    # contacts dialled, reached, done: one pass grouped by contact (the index in contact order)
    where = (A.campaign_id == c.id, *span.where(A.created_at))
    per = (select(span.key(A.contact_id).label("contact"), func.max(case((is_in(LIVE), 1), else_=0)).label("live"),
                  func.max(case((is_in(TALKED), 1), else_=0)).label("talked"))
           .where(*where).group_by(span.key(A.contact_id)).subquery())
    dialled, reached, done = conn.execute(select(func.count(), func.sum(per.c.live), func.sum(per.c.talked))).one()
    reached, done = int(reached or 0), int(done or 0)
    contacts = sum(by_status.values())
    # the rolling windows end at --until (or now): the rate the regulator would see that day
    end = min(span.until, now) if span.until is not None else now
    counts = abandon_counts(conn, [c.id], end)[c.id]
    return {
        "campaign": c.name, "status": c.status, "contacts": contacts,
        **{st: int(by_status.get(st, 0)) for st in CONTACT_STATUSES},
        "dialable": count_dialable(conn, c, now),
        "dialled": int(dialled), "penetration": rate(dialled, contacts), "attempts": attempts,
        "in_progress": total((None,)).n, "live_answers": live, "answer_rate": rate(live, attempts),
        "contact_rate": rate(reached, dialled), "answered": answered, "abandoned": abandoned,
        "abandon_rate": rate(abandoned, live),
        "abandon_rate_24h": rate(counts.abandoned_day, counts.live_day),
        "abandon_rate_30d": rate(counts.abandoned_30d, counts.live_30d), "abandon_target": c.abandon_target,
        "mean_ring_seconds": round(every.ring / every.rings, 1) if every.rings else None,
        "talk_seconds": round(talked.talk, 1), "mean_talk_seconds": round(talked.talk / talked.talks, 1)
        if talked.talks else None,
        "attempts_per_done": rate(attempts, done, 2),
    }


def outcomes(conn: Connection, c: Campaign, span: Span) -> list[dict[str, Any]]:
    """Each outcome's count and share, over every pass ("all") and then by attempt number."""
    by_pass: dict[int, dict[str, int]] = {}
    for (n, outcome), x in groups(conn, c, span).items():
        if outcome is not None:  # (an attempt still open has no outcome yet)
            by_pass.setdefault(n, {})[outcome] = x.n
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
