"""`agents`: each agent's calls and time — talking, wrap-up, waiting (ready, no call), paused
(busy with a reason), logged in — from the seat events the workers write (a state lasts until
the seat's next event) and the attempts the agent handled."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, or_, select

from dialer.reports.common import TALKED, A, count_in, gone_at, rate
from dialer.reports.period import Span, epoch
from dialer.store.models import OUT_STATES, Agent, Campaign, SeatEvent, UTCDateTime



def agents(conn: Connection, camps: list[Campaign], span: Span, now: dt.datetime) -> list[dict[str, Any]]:
    queues = sorted({c.queue for c in camps})
    times = _times(conn, queues, span.since, span.until, now)
    who = case((A.agent_extension != "", A.agent_extension), else_=A.seat)
    # missed: a progressive call the agent did not pick up, and a predictive caller transferred to
    # an agent who did not pick up (recorded abandoned, with the agent's extension, never bridged)
    missed = func.coalesce(func.sum(case((or_(A.outcome == "agent_no_answer",
                                               and_(A.outcome == "abandoned", A.agent_extension != "",
                                                    A.bridged_at.is_(None))), 1), else_=0)), 0)
    q = (select(who, count_in(TALKED), missed)
         .where(A.campaign_id.in_([c.id for c in camps]), *span.where(A.created_at)).group_by(who))
    calls = {ext: (int(n), int(missed)) for ext, n, missed in conn.execute(q)}
    ag = Agent.__table__.c
    roster = {ext: (name, queue, role) for ext, name, queue, role in
              conn.execute(select(ag.extension, ag.name, ag.queue, ag.role))}
    out = []
    for ext in sorted(set(times) | set(calls)):
        name, queue, role = roster.get(ext, ("", times.get(ext, {}).get("queue", ""), "agent"))
        if role == "port":
            continue
        t = times.get(ext, {})
        n, missed = calls.get(ext, (0, 0))
        talk, wrap = t.get("talking", 0.0), t.get("wrap", 0.0)
        logged = sum(v for k, v in t.items() if k not in OUT_STATES and k != "queue")
        out.append({"agent": ext, "name": name, "queue": queue, "calls": n, "talk_seconds": round(talk, 1),
                    "wrap_seconds": round(wrap, 1), "wait_seconds": round(t.get("ready", 0.0), 1),
                    "dial_seconds": round(t.get("dialling", 0.0), 1), "paused_seconds": round(t.get("busy", 0.0), 1),
                    "logged_in_seconds": round(logged, 1), "occupancy": rate(talk, logged),
                    "mean_handle_seconds": round((talk + wrap) / n, 1) if n else None, "agent_no_answer": missed})
    return out


def _times(conn: Connection, queues: list[str], since: dt.datetime | None, until: dt.datetime | None,
           now: dt.datetime) -> dict[str, dict[str, Any]]:
    """Seconds each agent seat of `queues` spent in each state within [since, until)."""
    dialect = conn.dialect.name
    e = SeatEvent.__table__.c
    mine = (e.queue.in_(queues), e.role == "agent")
    lower = None
    if since is not None:  # from each seat's last event before the period: its state at the start
        last = select(func.max(e.at).label("at")).where(*mine, e.at < since).group_by(e.extension).subquery()
        lower = conn.execute(select(func.min(last.c.at))).scalar()
    nxt = func.lead(e.at, type_=UTCDateTime).over(partition_by=e.extension, order_by=(e.at, e.id)).label("next_at")
    ev = (select(e.extension, e.queue, e.state, e.at, e.worker_id, nxt)
          .where(*mine, *([e.at < until] if until is not None else []),
                 *([e.at >= (lower or since)] if since is not None else [])).subquery())
    start = epoch(ev.c.at, dialect)
    if since is not None:
        start = case((ev.c.at < since, literal(since.timestamp())), else_=start)
    end = epoch(ev.c.next_at, dialect)
    if until is not None:
        end = case((ev.c.next_at > until, literal(until.timestamp())), else_=end)
    closed = (select(ev.c.extension, ev.c.state, func.sum(end - start))
              .where(ev.c.next_at.is_not(None), *([ev.c.next_at > since] if since is not None else []))
              .group_by(ev.c.extension, ev.c.state))
    out: dict[str, dict[str, Any]] = {}
    for ext, state, seconds in conn.execute(closed):
        out.setdefault(ext, {})[state] = float(seconds or 0)
    # each seat's last state runs on: to the period's end, or to when its worker was last heard of
    gone = gone_at(conn, now)
    last_at = (select(e.extension, func.max(e.at).label("at"))
               .where(*mine, *([e.at < until] if until is not None else [])).group_by(e.extension).subquery())
    rows = conn.execute(select(e.extension, e.queue, e.state, e.at, e.worker_id, e.id)
                        .join(last_at, (last_at.c.extension == e.extension) & (last_at.c.at == e.at)).where(*mine)
                        .order_by(e.extension, e.id)).all()
    lasts = {ext: (queue, state, at, worker) for ext, queue, state, at, worker, _ in rows}  # (the latest of a tie)
    for ext, (queue, state, at, worker) in lasts.items():
        stop = max(now, at) if until is None else min(until, max(now, at))  # (what has happened so far)
        if worker in gone:
            stop = min(stop, gone[worker])
        begin = max(at, since) if since is not None else at
        row = out.setdefault(ext, {})
        row["queue"] = queue
        if stop > begin:
            row[state] = row.get(state, 0.0) + (stop - begin).total_seconds()
    return out


__all__ = ["agents"]
