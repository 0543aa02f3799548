"""`dialer status`: what the workers are doing now, read from the database (each worker writes
its status row every few seconds, dialer/worker/seatlog.py), so it works from any machine and
with any number of workers."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, case, func, select

from dialer.reports.common import ABANDONED, LIVE, A, is_in, iso, rate
from dialer.store.abandonment import abandon_counts
from dialer.store.dialable import count_dialable
from dialer.store.models import Campaign, Worker, WorkerStatus

#: a worker whose status row is older than this is not alive (it writes one every 2 s)
STALE = dt.timedelta(seconds=15)
STATES = ("ready", "dialling", "talking", "wrap", "busy", "lost")


def status(conn: Connection, now: dt.datetime, *, counts: Any = None, dialable: Any = None) -> dict[str, Any]:
    """`counts(conn, ids, now)` and `dialable(conn, campaign, now)` stand in for abandon_counts
    and count_dialable when given (the console's wallboard reads them from its caches)."""
    ws, wk = WorkerStatus.__table__.c, Worker.__table__.c
    leases = {w: (tok, until) for w, tok, until in conn.execute(select(wk.id, wk.token, wk.lease_until))}
    workers, queues = [], {}
    for wid, host, pid, started, at, stopped, body in conn.execute(
            select(ws.worker_id, ws.host, ws.pid, ws.started_at, ws.at, ws.stopped, ws.body).order_by(ws.worker_id)):
        body = body or {}
        lease = leases.get(wid)
        lease_state = ("released" if lease is None else "held" if lease[1] is not None and lease[1] >= now
                       else "lapsed")
        alive = not stopped and now - at <= STALE and lease_state == "held"
        seats = body.get("seats", [])
        workers.append({"worker": wid, "host": host, "pid": pid, "alive": alive, "started_at": iso(started),
                        "last_seen": iso(at), "seconds_since_seen": round((now - at).total_seconds(), 1),
                        "lease": lease_state, "may_dial": bool(body.get("may_dial")) and alive,
                        "seats": sum(1 for s in seats if s.get("role") != "port"),
                        "ports": sum(1 for s in seats if s.get("role") == "port"),
                        "calls": body.get("calls", 0), "outbox": body.get("outbox", 0),
                        "campaigns": body.get("campaigns", [])})
        if not alive:
            continue
        for name, q in body.get("queues", {}).items():
            row = queues.setdefault(name, _queue(name))
            row["calls"] += q.get("calls", 0)
            row["waiting"] += q.get("waiting", 0)
            if q.get("level") is not None:
                row["level"] = q["level"]
        for s in seats:
            row = queues.setdefault(s.get("queue", ""), _queue(s.get("queue", "")))
            if s.get("role") == "port":
                row["ports"] += 1
                continue
            state = s.get("state", "lost")
            row["agents"][state] = row["agents"].get(state, 0) + 1
            since = dt.datetime.fromisoformat(s["since"]) if s.get("since") else now
            row["seats"].append({"extension": s.get("extension"), "name": s.get("name", ""), "state": state,
                                 "reason": s.get("reason", ""), "worker": wid,
                                 "seconds_in_state": max(0, round((now - since).total_seconds()))})
    for q in queues.values():
        q["seats"].sort(key=lambda s: s["extension"] or "")
    return {"at": iso(now), "workers": workers, "queues": [queues[k] for k in sorted(queues)],
            "campaigns": campaigns(conn, now, queues, counts=counts, dialable=dialable),
            "alive": sum(1 for w in workers if w["alive"])}


def _queue(name: str) -> dict[str, Any]:
    return {"queue": name, "agents": {}, "ports": 0, "calls": 0, "waiting": 0, "level": None, "seats": []}


def _count(when: Any, outcomes: tuple[str, ...] | None = None) -> Any:
    cond = when if outcomes is None else and_(when, is_in(outcomes))
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def campaigns(conn: Connection, now: dt.datetime, queues: dict[str, dict[str, Any]], *, counts: Any = None,
              dialable: Any = None) -> list[dict[str, Any]]:
    from sqlalchemy.orm import Session

    with Session(bind=conn) as s:
        camps = list(s.scalars(select(Campaign).where(Campaign.status.in_(["active", "paused"]))
                               .order_by(Campaign.name)))
        s.expunge_all()
    counts = (counts or abandon_counts)(conn, [c.id for c in camps], now)
    dialable = dialable or count_dialable
    out = []
    for c in camps:
        local = now.astimezone(ZoneInfo(c.timezone))
        midnight = dt.datetime.combine(local.date(), dt.time(0), local.tzinfo).astimezone(dt.timezone.utc)
        hour_ago = now - dt.timedelta(hours=1)
        today, recent = A.created_at >= midnight, A.created_at >= hour_ago
        q = (select(_count(today), _count(today, LIVE), _count(today, ABANDONED), _count(recent),
                    _count(recent, LIVE), _count(recent, ABANDONED))
             .where(A.campaign_id == c.id, A.created_at >= min(midnight, hour_ago), A.created_at <= now))
        day, day_live, day_ab, hour, hour_live, hour_ab = conn.execute(q).one()
        n = counts[c.id]
        r24, r30 = rate(n.abandoned_day, n.live_day), rate(n.abandoned_30d, n.live_30d)
        out.append({"campaign": c.name, "status": c.status, "mode": c.mode, "queue": c.queue,
                    "dialable": dialable(conn, c, now),
                    "dials_hour": int(hour or 0), "live_answers_hour": int(hour_live or 0),
                    "abandoned_hour": int(hour_ab or 0), "dials_today": int(day or 0),
                    "live_answers_today": int(day_live or 0), "abandoned_today": int(day_ab or 0),
                    "abandon_rate_24h": r24, "abandon_rate_30d": r30, "abandon_target": c.abandon_target,
                    "over_cap": bool((r24 or 0) > c.abandon_target or (r30 or 0) > c.abandon_target),
                    "level": queues.get(c.queue, {}).get("level")})
    return out
