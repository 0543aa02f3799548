"""What the reports share: the campaigns asked for, rates, and the outcome sets they count."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, case, func, or_, select

from dialer.errors import DialerError
from dialer.outcome_sets import ABANDONED, FINAL_OUTCOMES, LIVE
from dialer.store.models import Attempt, Campaign

#: outcomes where the customer talked to an agent: those after which the contact is done
TALKED = tuple(sorted(FINAL_OUTCOMES))

A = Attempt.__table__.c


class UnknownCampaign(DialerError):
    pass


def campaigns(conn: Connection, names: Sequence[str]) -> list[Campaign]:
    """The campaigns named (in that order), or every one by name; an unknown name is an error."""
    from sqlalchemy.orm import Session

    with Session(bind=conn) as s:
        if not names:
            rows = list(s.scalars(select(Campaign).order_by(Campaign.name)))
        else:
            found = {c.name: c for c in s.scalars(select(Campaign).where(Campaign.name.in_(list(names))))}
            missing = [n for n in names if n not in found]
            if missing:
                raise UnknownCampaign(f"no campaign named {', '.join(missing)} (dialer campaign list)")
            rows = [found[n] for n in dict.fromkeys(names)]
        s.expunge_all()
    return rows


#: a worker not heard from for this long is gone: the states of its seats end when it was last heard
STALE = dt.timedelta(minutes=2)


def gone_at(conn: Connection, now: dt.datetime) -> dict[str, dt.datetime]:
    """Workers that stopped or went silent, and when they were last heard of (their seats'
    last states and login sessions end there, not at `now`)."""
    from dialer.store.models import WorkerStatus

    ws = WorkerStatus.__table__.c
    return {w: at for w, at, stopped in conn.execute(select(ws.worker_id, ws.at, ws.stopped))
            if stopped or now - at > STALE}


def rate(part: float | None, whole: float | None, digits: int = 4) -> float | None:
    return round(part / whole, digits) if whole and part is not None else None


def is_in(outcomes: Sequence[str]) -> Any:
    """outcome IN (...) as a value, written as equalities: SQLite evaluates those two to three
    times faster per row (it matters over millions of rows). (In a WHERE clause IN is better: it
    is a range of an index.)"""
    return or_(*[A.outcome == o for o in outcomes])


def count_in(outcomes: Sequence[str]) -> Any:
    return func.coalesce(func.sum(case((is_in(outcomes), 1), else_=0)), 0)


def iso(value: dt.datetime | None, tz: Any = None) -> str | None:
    if value is None:
        return None
    return (value.astimezone(tz) if tz is not None else value).isoformat()


__all__ = ["ABANDONED", "LIVE", "TALKED", "A", "campaigns", "rate", "count_in", "is_in", "iso", "UnknownCampaign",
           "gone_at"]
