"""`interval` (and `hourly`): dials, live answers, abandoned calls and agents logged in by 15, 30
or 60 minutes of the campaign's own clock; `daily`: each outcome by day. The database counts by
15-minute UTC slot; the slots are rolled up into the campaign's intervals and days
(dialer/reports/period.py says why that is exact)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select

from dialer.reports.common import ABANDONED, LIVE, A, gone_at, rate
from dialer.reports.period import SLOT, Span, epoch, local_bucket, slot, slot_start
from dialer.store.models import OUTCOMES, Campaign, SeatEvent

MINUTES = (15, 30, 60)


def interval(conn: Connection, c: Campaign, span: Span, now: dt.datetime, minutes: int = 60) -> list[dict[str, Any]]:
    if minutes not in MINUTES:
        raise ValueError(f"minutes must be one of {MINUTES}")
    # keyed by the instant, not the local time: the hour repeated when the clocks go back is two
    # rows (two aware times of one zone with the same wall time compare equal in Python)
    buckets: dict[float, list[int]] = {}
    for n, outcome, k in slot_counts(conn, c, span):
        b = buckets.setdefault(local_bucket(n, span.tz, minutes).timestamp(), [0, 0, 0])
        b[0] += k
        b[1] += k if outcome in LIVE else 0
        b[2] += k if outcome in ABANDONED else 0
    if not buckets:
        return []
    utc = dt.timezone.utc
    first, end = (dt.datetime.fromtimestamp(min(buckets), utc),
                  dt.datetime.fromtimestamp(max(buckets) + minutes * 60, utc))
    agents = logged_in_by_interval(conn, c.queue, first, end, minutes, now)
    return [{"campaign": c.name, "interval": dt.datetime.fromtimestamp(start, span.tz).isoformat(), "dials": d,
             "live_answers": live, "answer_rate": rate(live, d), "abandoned": ab,
             "agents_logged_in": agents.get(start, 0)}
            for start, (d, live, ab) in sorted(buckets.items())]


def daily(conn: Connection, c: Campaign, span: Span) -> list[dict[str, Any]]:
    """Each outcome's attempts by day of the campaign's timezone (attempts still open: "open")."""
    days: dict[tuple[str, str], int] = {}
    for n, outcome, k in slot_counts(conn, c, span):
        key = (slot_start(n).astimezone(span.tz).date().isoformat(), outcome or "open")
        days[key] = days.get(key, 0) + k
    order = {o: i for i, o in enumerate(OUTCOMES)}
    return [{"campaign": c.name, "day": day, "outcome": o, "attempts": k}
            for (day, o), k in sorted(days.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 99)))]


def slot_counts(conn: Connection, c: Campaign, span: Span, outcomes: tuple[str, ...] | None = None,
                since: dt.datetime | None = None) -> list[tuple[int, str | None, int]]:
    """(slot, outcome, attempts) of the campaign's attempts in the span (from `since` instead of
    its start when given; only `outcomes` when given): read in the order of the slot index on
    SQLite, no expression per row but the slot's."""
    sqlite = conn.dialect.name == "sqlite"
    s = slot(A.created_at, conn.dialect.name)
    where = [A.campaign_id == c.id]
    for bound, lower in ((since or span.since, True), (span.until, False)):
        if bound is None:
            continue
        whole, part = divmod(bound.timestamp(), SLOT)
        if sqlite:  # the range of the slot index; a bound inside a slot is checked on the time too
            # (an upper bound on a slot's start leaves that slot out; one inside it keeps it)
            where.append(s >= int(whole) if lower else (s <= int(whole) if part else s < int(whole)))
        if part or not sqlite:
            where.append(A.created_at >= bound if lower else A.created_at < bound)
    if outcomes is not None:
        where.append(A.outcome.in_(outcomes))
    q = select(s, A.outcome, func.count()).where(*where).group_by(s, A.outcome)
    return [(int(n), outcome, int(k)) for n, outcome, k in conn.execute(q)]


def sessions(conn: Connection, queue: str, since: dt.datetime, until: dt.datetime,
             now: dt.datetime) -> dict[str, list[tuple[float, float]]]:
    """Each agent's login sessions on `queue` that overlap [since, until), as Unix times, from
    the seat events that start (+1) or end (-1) one; a session not ended yet runs to `now`, or
    to when its worker was last heard of if it stopped or went silent."""
    e = SeatEvent.__table__.c
    at = epoch(e.at, conn.dialect.name)
    edge = (e.queue == queue, e.session != 0, e.role == "agent")
    before = (select(e.extension, func.max(e.at).label("at")).where(*edge, e.at < since)
              .group_by(e.extension).subquery())
    opened = select(e.extension, at, e.session, e.worker_id).join(
        before, (before.c.extension == e.extension) & (before.c.at == e.at)).where(*edge)
    inside = select(e.extension, at, e.session, e.worker_id).where(*edge, e.at >= since, e.at < until)
    rows = sorted(conn.execute(opened.union_all(inside)).all(), key=lambda r: (r[0], r[1]))
    out: dict[str, list[tuple[float, float]]] = {}
    start: dict[str, tuple[float, str]] = {}
    for ext, t, kind, worker in rows:
        t = round(float(t), 3)  # (SQLite's julianday is exact to about a tenth of a millisecond)
        if kind > 0:
            start.setdefault(ext, (t, worker))
        elif ext in start:
            out.setdefault(ext, []).append((start.pop(ext)[0], t))
    gone = {w: at.timestamp() for w, at in gone_at(conn, now).items()} if start else {}
    for ext, (t, worker) in start.items():  # not ended: logged in still, or until its worker went
        out.setdefault(ext, []).append((t, max(t, min(now.timestamp(), gone.get(worker, now.timestamp())))))
    return out


def logged_in_by_interval(conn: Connection, queue: str, first: dt.datetime, end: dt.datetime, minutes: int,
                          now: dt.datetime) -> dict[float, int]:
    """Agents logged in at some moment of each interval from `first` to `end`, by the interval's
    start (a Unix time; the intervals are whole slots apart, a fixed number of seconds long)."""
    step = minutes * 60
    t0, t1 = first.timestamp(), end.timestamp()
    n = int((t1 - t0) // step) + 2
    diff = [0] * (n + 1)
    for spans in sessions(conn, queue, first, end, now).values():
        last = -1
        for a, b in _merged(spans):
            if b <= t0 or a >= t1:
                continue
            i = max(min(n - 1, max(0, int((a - t0) // step))), last + 1)
            j = min(n - 1, max(0, math.ceil((b - t0) / step) - 1))  # the interval holding b's last instant
            if i <= j:
                diff[i] += 1
                diff[j + 1] -= 1
                last = j
    out: dict[float, int] = {}
    level = 0
    for i in range(n):
        level += diff[i]
        if level:
            out[t0 + i * step] = level
    return out


def _merged(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
