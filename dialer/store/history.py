"""A predictive queue's recent record, for the pacer's warm start (dialer/estimates.py): the
dials of its campaigns from the attempts, and its agents' talks, after-call work and spells from
the seat events — so that a worker started mid-day, or a second one, paces from what the
campaign has shown instead of starting progressive.

What is read: the last `WARM_SECONDS` (an hour) before now. When that holds fewer than
`MIN_SAMPLES` answered dials (a worker starting the day), the same hours of the previous
`EARLIER_DAYS` days come first, oldest first; what the day shows then decides, through the
estimates' own change test, how much of them is kept."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Engine, and_, or_, select

from dialer.estimates import MIN_SAMPLES, WARM_SECONDS, History
from dialer.outcomes import FREE_OUTCOMES
from dialer.store.models import Attempt, SeatEvent

EARLIER_DAYS = 7
#: spells begun this close to now are left out: only the short ones among them have ended
SETTLE = dt.timedelta(minutes=10)
#: a spell is read to its end no further than this past its start (the query's reach)
LONGEST = dt.timedelta(hours=1)


def recent_history(engine: Engine, campaign_ids: Sequence[int], queue: str, now: dt.datetime) -> History:
    """The record of the `WARM_SECONDS` before `now` (see the module's docstring)."""
    span = dt.timedelta(seconds=WARM_SECONDS)
    with engine.connect() as conn:
        today = _dials(conn, campaign_ids, [(now - span, now)])
        spans = [(now - span, now)]
        if sum(1 for answered, _ in today if answered) < MIN_SAMPLES:
            earlier = [(now - dt.timedelta(days=d) - span, now - dt.timedelta(days=d) + span)
                       for d in range(EARLIER_DAYS, 0, -1)]
            today = _dials(conn, campaign_ids, earlier) + today
            spans = earlier + spans
        history = History(dials=today)
        _spells(conn, queue, spans, now, history)
    return history


def _dials(conn, campaign_ids: Sequence[int], spans: list[tuple[dt.datetime, dt.datetime]]) -> list[tuple[bool, float | None]]:
    """Finished dials placed in the spans, in the order they were placed: (answered, ring time)."""
    if not campaign_ids:
        return []
    a = Attempt.__table__.c
    rows = conn.execute(
        select(a.answered_at.is_not(None), a.ring_seconds)
        .where(a.campaign_id.in_(list(campaign_ids)), a.ended_at.is_not(None),
               # as the worker learns: nothing from a call that reached no one through no fault of
               # the number (its port's own leg failed, the stop interrupted it), unless answered
               or_(a.answered_at.is_not(None), a.outcome.not_in(sorted(FREE_OUTCOMES))),
               or_(*(and_(a.created_at >= lo, a.created_at < hi) for lo, hi in spans)))
        .order_by(a.created_at, a.id)).all()
    return [(bool(answered), float(ring) if answered and ring is not None else None) for answered, ring in rows]


def _spells(conn, queue: str, spans: list[tuple[dt.datetime, dt.datetime]], now: dt.datetime, out: History) -> None:
    """The queue's agents' spells begun in the spans (and not in the last `SETTLE`): a talk from
    `talking` to the next event, after-call work from `wrap` to `ready`, a spell from `talking`
    to `ready`. A spell broken by anything else (the seat lost, logged out, busy) is left out,
    and so is one whose next event is another worker's or a new login's (the worker that wrote
    `talking` died before the spell ended), or lies beyond `LONGEST`."""
    e = SeatEvent.__table__.c
    rows = conn.execute(
        select(e.extension, e.at, e.state, e.worker_id, e.session)
        .where(e.queue == queue, e.role == "agent",
               or_(*(and_(e.at >= lo, e.at < hi + dt.timedelta(hours=1)) for lo, hi in spans)))
        .order_by(e.extension, e.at, e.id)).all()
    begun = [(lo, min(hi, now - SETTLE)) for lo, hi in spans]
    found: list[tuple[dt.datetime, float, bool, float | None, float]] = []  # (start, talk, wrapped, wrap, spell)
    def follows(k: int, ext: str, worker: str, start: dt.datetime):
        """Row k when it is the same seat's next event in the same session of the same worker."""
        if k < len(rows):
            row = rows[k]
            if row[0] == ext and row[3] == worker and row[4] == 0 and row[1] - start <= LONGEST:
                return row
        return None

    for i, (ext, at, state, worker, _) in enumerate(rows):
        if state != "talking" or not any(lo <= at < hi for lo, hi in begun):
            continue
        nxt = follows(i + 1, ext, worker, at)
        if nxt is None:
            continue
        talk = (nxt[1] - at).total_seconds()
        if nxt[2] == "ready":
            found.append((at, talk, False, None, talk))
        elif nxt[2] == "wrap":
            end = follows(i + 2, ext, worker, at)
            if end is not None and end[2] == "ready":
                wrap = (end[1] - nxt[1]).total_seconds()
                found.append((at, talk, True, wrap, talk + wrap))
    found.sort(key=lambda f: f[0])
    for _, talk, wrapped, wrap, spell in found:
        out.talks.append((talk, wrapped))
        if wrap is not None:
            out.wraps.append(wrap)
        out.spells.append(spell)
