"""`interval` (and `hourly`): dials, live answers, abandoned calls and agents logged in by 15, 30
or 60 minutes of the campaign's own clock. The database counts by 15-minute UTC slot; the slots
are rolled up into the campaign's intervals (dialer/reports/period.py says why that is exact)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select

from dialer.reports.common import ABANDONED, LIVE, A, count_in, gone_at, rate
from dialer.reports.period import SLOT, Span, local_bucket, slot
from dialer.store.models import Campaign, SeatEvent

COLUMNS = ["campaign", "interval", "dials", "live_answers", "answer_rate", "abandoned", "agents_logged_in"]
MINUTES = (15, 30, 60)


def interval(conn: Connection, c: Campaign, span: Span, now: dt.datetime, minutes: int = 60) -> list[dict[str, Any]]:
    if minutes not in MINUTES:
        raise ValueError(f"minutes must be one of {MINUTES}")
    s = slot(A.created_at, conn.dialect.name)
    q = (select(s, func.count(), count_in(LIVE), count_in(ABANDONED))
         .where(A.campaign_id == c.id, *span.where(A.created_at)).group_by(s))
    buckets: dict[dt.datetime, list[int]] = {}
    for n, dials, live, ab in conn.execute(q):
        b = buckets.setdefault(local_bucket(n, span.tz, minutes), [0, 0, 0])
        b[0] += int(dials)
        b[1] += int(live)
        b[2] += int(ab)
    if not buckets:
        return []
    first, last = min(buckets), max(buckets)
    agents = logged_in_by_interval(conn, c.queue, first, last + dt.timedelta(minutes=minutes), span.tz, minutes, now)
    return [{"campaign": c.name, "interval": start.isoformat(), "dials": d, "live_answers": live,
             "answer_rate": rate(live, d), "abandoned": ab, "agents_logged_in": agents.get(start, 0)}
            for start, (d, live, ab) in sorted(buckets.items())]


def sessions(conn: Connection, queue: str, since: dt.datetime, until: dt.datetime,
             now: dt.datetime) -> dict[str, list[tuple[dt.datetime, dt.datetime]]]:
    """Each agent's login sessions on `queue` that overlap [since, until), from the seat events
    that start (+1) or end (-1) one; a session not ended yet runs to `now`."""
    e = SeatEvent.__table__.c
    edge = (e.queue == queue, e.session != 0, e.role == "agent")
    before = (select(e.extension, func.max(e.at).label("at")).where(*edge, e.at < since)
              .group_by(e.extension).subquery())
    opened = select(e.extension, e.at, e.session, e.worker_id).join(
        before, (before.c.extension == e.extension) & (before.c.at == e.at)).where(*edge)
    inside = select(e.extension, e.at, e.session, e.worker_id).where(*edge, e.at >= since, e.at < until)
    rows = sorted(conn.execute(opened.union_all(inside)).all(), key=lambda r: (r[0], r[1]))
    out: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    start: dict[str, tuple[dt.datetime, str]] = {}
    for ext, at, kind, worker in rows:
        if kind > 0:
            start.setdefault(ext, (at, worker))
        elif ext in start:
            out.setdefault(ext, []).append((start.pop(ext)[0], at))
    gone = gone_at(conn, now) if start else {}
    for ext, (at, worker) in start.items():  # not ended: logged in still, or until its worker went
        out.setdefault(ext, []).append((at, max(at, min(now, gone.get(worker, now)))))
    return out


def logged_in_by_interval(conn: Connection, queue: str, first: dt.datetime, end: dt.datetime, tz: Any, minutes: int,
                          now: dt.datetime) -> dict[dt.datetime, int]:
    """Agents logged in at some moment of each interval from `first` to `end` (local starts)."""
    step = dt.timedelta(minutes=minutes)
    utc = dt.timezone.utc
    first_u, end_u = first.astimezone(utc), end.astimezone(utc)
    n = int((end_u - first_u) / step) + 2
    diff = [0] * (n + 1)

    def index(t: dt.datetime) -> int:  # the interval holding instant t (intervals are whole slots apart)
        return min(n - 1, max(0, int((t - first_u).total_seconds() // (minutes * 60))))

    for spans in sessions(conn, queue, first_u, end_u, now).values():
        last = -1
        for a, b in _merged(spans):
            if b <= first_u or a >= end_u:
                continue
            i, j = max(index(a), last + 1), index(b - dt.timedelta(microseconds=1))
            if i <= j:
                diff[i] += 1
                diff[j + 1] -= 1
                last = j
    out: dict[dt.datetime, int] = {}
    level = 0
    for i in range(n):
        level += diff[i]
        if level:
            out[(first_u + i * step).astimezone(tz)] = level
    return out


def _merged(spans: Iterable[tuple[dt.datetime, dt.datetime]]) -> list[tuple[dt.datetime, dt.datetime]]:
    out: list[tuple[dt.datetime, dt.datetime]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


assert SLOT == 900
