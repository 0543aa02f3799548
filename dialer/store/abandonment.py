"""The abandonment rate's counts (FCC/Ofcom): abandoned calls over live answers, in the last 24
hours and the last 30 days — what the pacer holds under the cap and the reports show. Kept
apart from the worker's writes so that a report loads only this."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, and_, case, func, or_, select

from dialer.outcome_sets import ABANDONED, LIVE
from dialer.store.models import Attempt

__all__ = ["ABANDONED", "LIVE", "AbandonCounts", "abandon_counts"]


@dataclass(frozen=True, slots=True)
class AbandonCounts:
    """Abandoned calls and live answers of one campaign in the two measuring windows."""

    abandoned_day: int = 0
    live_day: int = 0
    abandoned_30d: int = 0
    live_30d: int = 0

    def __add__(self, other: AbandonCounts) -> AbandonCounts:
        """The counts of two disjoint ranges of attempts together."""
        return AbandonCounts(self.abandoned_day + other.abandoned_day, self.live_day + other.live_day,
                             self.abandoned_30d + other.abandoned_30d, self.live_30d + other.live_30d)


def abandon_counts(engine: Engine | Connection, campaign_ids: Sequence[int], now: dt.datetime, *,
                   start: dt.datetime | None = None, end: dt.datetime | None = None,
                   in_progress: bool = False) -> dict[int, AbandonCounts]:
    """Per campaign: abandoned calls and live answers over the 24 hours (Ofcom: a day) and the
    30 days (FCC) ending at `now` (`now` itself left out: a window ending at `--until` stops where
    the period does), counted from the attempts started in those windows — of them, only those
    started in [`start`, `end`) when given (the worker reads the last minutes apart). With
    `in_progress`, an answer still on the line counts as live (its outcome is written when it
    ends; the worker's pacer counts it from the answer) — for a short range: it reads the
    table, where the outcomes alone are read from the index."""
    if not campaign_ids:
        return {}
    a = Attempt.__table__.c
    day = now - dt.timedelta(hours=24)
    is_ab = func.sum(case((a.outcome.in_(ABANDONED), 1), else_=0))
    live = a.outcome.in_(LIVE)
    if in_progress:
        live = or_(live, and_(a.outcome.is_(None), a.answered_at.is_not(None)))
    is_live = func.sum(case((live, 1), else_=0))
    recent = a.created_at >= day
    lo = now - dt.timedelta(days=30) if start is None else max(start, now - dt.timedelta(days=30))
    hi = now if end is None else min(end, now)
    q = (select(a.campaign_id, is_ab, is_live,
                func.sum(case((and_(recent, a.outcome.in_(ABANDONED)), 1), else_=0)),
                func.sum(case((and_(recent, live), 1), else_=0)))
         .where(a.campaign_id.in_(list(campaign_ids)), a.created_at >= lo, a.created_at < hi, live)
         .group_by(a.campaign_id))
    if isinstance(engine, Connection):  # (a report's own connection)
        rows = engine.execute(q).all()
    else:
        with engine.connect() as c:
            rows = c.execute(q).all()
    out = {cid: AbandonCounts() for cid in campaign_ids}
    for cid, ab30, live30, ab1, live1 in rows:
        out[cid] = AbandonCounts(int(ab1 or 0), int(live1 or 0), int(ab30 or 0), int(live30 or 0))
    return out
