"""Repository functions of the worker's leases: the worker id, its seats, and fencing.

Theory of operation
-------------------
A worker id holds a lease in `workers` under a fencing *token*, a random 63-bit number drawn
whenever the id changes hands: at each start of a worker (a new life of the same id gets a new
one) and never otherwise. Seats (`agents.lease_token`) and attempts (`attempts.lease_token`) carry
the token they were taken under, and every write of the worker names it: a renewal, a seat lease,
a claim, a milestone, an outcome. A write under a token that is no longer the id's changes
nothing, so a worker paused past its lease cannot overwrite what its successor did.

* `register_worker` takes the id (refusing one a live process on another host, or a live pid on
  this host, still holds), draws a token, keeps the id's seats under it (a restarted worker takes
  its own seats back at once) and hands back the id's open attempts to adopt.
* `renew` extends the lease and the seats still held; `LeaseLost` when the token is gone.
* `lease_seats` takes free or lapsed seats; `adopt_seat_attempts` moves the open attempts of a
  seat's lapsed holder under the new holder's token (the new holder follows their calls or
  closes them by the campaign's rules).
* `reconcile_dead` closes, by the same rules, what no-one will adopt: attempts of workers whose
  lease lapsed more than `orphan_after` ago.
"""

from __future__ import annotations

import datetime as dt
import secrets
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, case, delete, func, or_, select, update
from sqlalchemy.orm import Session

from dialer.errors import DialerError
from dialer.outcomes import Milestones, decide_retry, reconciled_outcome
from dialer.store.models import Agent, Attempt, Campaign, Contact, Worker
from dialer.store.dialable import window_of
from dialer.store.repo import AgentRow


class LeaseLost(DialerError):
    """The worker id's lease is no longer this worker's (another life or worker took it)."""


class LeaseLapsed(DialerError):
    """The worker's lease ran out (it could not renew in time). The next renewal brings it
    back — unless meanwhile another life of the id took it, or it stayed lapsed past
    `orphan_after` and another worker reconciled it (then the renewal says LeaseLost)."""


class WorkerIdInUse(DialerError):
    """A live worker holds this worker id."""


def new_token() -> int:
    return secrets.randbits(62) + 1


@dataclass(frozen=True, slots=True)
class Orphan:
    """An open attempt handed to a worker to follow or to close."""

    attempt_id: int
    contact_id: int
    campaign_id: int
    seat: str
    dialled_at: dt.datetime | None
    ringing_at: dt.datetime | None
    answered_at: dt.datetime | None
    bridged_at: dt.datetime | None
    created_at: dt.datetime
    callid: str


def _orphans(s: Session, where: object) -> list[Orphan]:
    rows = s.scalars(select(Attempt).where(where, Attempt.ended_at.is_(None)).order_by(Attempt.id))
    return [Orphan(a.id, a.contact_id, a.campaign_id, a.seat, a.dialled_at, a.ringing_at, a.answered_at,
                   a.bridged_at, a.created_at, a.callid) for a in rows]


def register_worker(engine: Engine, worker_id: str, now: dt.datetime, lease: dt.timedelta, *,
                    pid: int, pid_alive: Callable[[int], bool], host: str | None = None) -> tuple[int, list[Orphan]]:
    """Take `worker_id`'s lease under a new token; returns it and the id's open attempts (now
    under the new token). Raises WorkerIdInUse while a live worker holds the id: one on another
    host whose lease runs, or a running pid on this host."""
    host = host or socket.gethostname()
    with Session(engine) as s, s.begin():
        q = select(Worker).where(Worker.id == worker_id)
        if engine.dialect.name == "postgresql":
            q = q.with_for_update()
        row = s.scalars(q).first()
        if row is not None and row.token is not None and row.lease_until is not None and row.lease_until >= now:
            if row.host != host:
                raise WorkerIdInUse(f"worker id {worker_id} is held by a worker on {row.host} until "
                                    f"{row.lease_until:%H:%M:%S}; give another --worker-id")
            if row.pid != pid and pid_alive(row.pid):
                raise WorkerIdInUse(f"worker id {worker_id} is held by process {row.pid} on this host; "
                                    "give another --worker-id")
        token = new_token()
        if row is None:
            s.add(Worker(id=worker_id, host=host, pid=pid, started_at=now, last_seen=now, token=token,
                         lease_until=now + lease))
        else:
            row.host, row.pid, row.started_at, row.last_seen = host, pid, now, now
            row.token, row.lease_until = token, now + lease
        s.execute(update(Agent).where(Agent.claimed_by == worker_id)
                  .values(lease_token=token, lease_until=now + lease).execution_options(synchronize_session=False))
        s.execute(update(Attempt).where(Attempt.worker_id == worker_id, Attempt.ended_at.is_(None))
                  .values(lease_token=token).execution_options(synchronize_session=False))
        s.execute(update(Contact).where(Contact.claimed_by == worker_id)
                  .values(lease_until=now + lease).execution_options(synchronize_session=False))
        return token, _orphans(s, Attempt.worker_id == worker_id)


def renew(engine: Engine, worker_id: str, token: int, now: dt.datetime, lease: dt.timedelta) -> set[str]:
    """Renew the lease and the seats held under it; the extensions still held. Raises LeaseLost
    when the token is no longer the id's. (A contact in a call needs no renewal: its open attempt
    keeps every claim off it until the attempt is closed; renewing the rows of every contact in a
    call each time also made the renewal deadlock with the outcomes being written.)"""
    w, a = Worker.__table__.c, Agent.__table__.c
    with engine.begin() as conn:
        # a renewal never moves a lease back: one that waited out an outage on a stuck
        # connection may land after a later one
        done = conn.execute(update(Worker.__table__).where(w.id == worker_id, w.token == token).values(
            last_seen=_latest(w.last_seen, now), lease_until=_latest(w.lease_until, now + lease)))
        if done.rowcount != 1:
            raise LeaseLost(f"worker {worker_id}: lease taken over")
        conn.execute(update(Agent.__table__).where(a.claimed_by == worker_id, a.lease_token == token)
                     .values(lease_until=_latest(a.lease_until, now + lease)))
        return set(conn.execute(select(a.extension).where(a.claimed_by == worker_id, a.lease_token == token)).scalars())


def _latest(column: Any, value: dt.datetime) -> Any:
    return case((and_(column.is_not(None), column > value), column), else_=value)


def _holds(s: Session, worker_id: str, token: int) -> None:
    if s.scalar(select(Worker.id).where(Worker.id == worker_id, Worker.token == token)) is None:
        raise LeaseLost(f"worker {worker_id}: lease taken over")


def unregister_worker(engine: Engine, worker_id: str, token: int) -> None:
    """A clean stop: give back every seat and contact held under the token."""
    with Session(engine) as s, s.begin():
        q = select(Worker.id).where(Worker.id == worker_id, Worker.token == token)
        if s.scalar(q.with_for_update() if engine.dialect.name == "postgresql" else q) is None:
            return  # someone else holds the id now: what it holds is theirs
        s.execute(update(Agent).where(Agent.claimed_by == worker_id, Agent.lease_token == token)
                  .values(claimed_by=None, lease_until=None, lease_token=None))
        s.execute(update(Contact).where(Contact.claimed_by == worker_id).values(claimed_by=None, lease_until=None))
        s.execute(delete(Worker).where(Worker.id == worker_id, Worker.token == token))


def lease_seats(engine: Engine, worker_id: str, token: int, queues: Iterable[str], now: dt.datetime,
                lease: dt.timedelta, roles: Sequence[str] = ("agent",), limit: int | None = None) -> list[AgentRow]:
    """Hold up to `limit` enabled seats of `queues`: this worker's own first, then seats whose
    lease is free or lapsed. Returns every seat of `roles` held under the token (of any queue).
    Raises LeaseLost when the token is no longer the id's."""
    queues = list(queues)
    with Session(engine) as s, s.begin():
        _holds(s, worker_id, token)
        mine = and_(Agent.claimed_by == worker_id, Agent.lease_token == token)
        free = or_(Agent.claimed_by.is_(None), Agent.lease_until < now, mine)
        cond = and_(Agent.queue.in_(queues), Agent.enabled.is_(True), Agent.role.in_(list(roles)), free)
        own_first = case((mine, 0), else_=1)
        pick = select(Agent.id).where(cond).order_by(own_first, Agent.extension)
        if limit is not None:
            pick = pick.limit(limit)
        if engine.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        ids = list(s.scalars(pick))
        s.execute(update(Agent).where(Agent.id.in_(ids), free)
                  .values(claimed_by=worker_id, lease_token=token, lease_until=now + lease)
                  .execution_options(synchronize_session=False))
        rows = s.scalars(select(Agent).where(mine, Agent.role.in_(list(roles))).order_by(Agent.extension))
        return [AgentRow(a.staffid, a.name, a.extension, a.queue, a.skill, a.role, a.sector) for a in rows]


def seats_to_take(engine: Engine, worker_id: str, token: int, queues: Iterable[str], now: dt.datetime,
                  roles: Sequence[str] = ("agent", "port")) -> int:
    """How many enabled seats of `queues` no live lease holds (a cheap look before a lease)."""
    a = Agent.__table__.c
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Agent.__table__).where(
            a.queue.in_(list(queues)), a.enabled.is_(True), a.role.in_(list(roles)),
            or_(a.claimed_by.is_(None), a.lease_until < now),
            or_(a.claimed_by.is_(None), a.claimed_by != worker_id, a.lease_token != token))).scalar() or 0


def release_seats(engine: Engine, worker_id: str, token: int, extensions: Iterable[str]) -> None:
    """Give seats back (ones this worker could not log in, or no longer works)."""
    with engine.begin() as conn:
        a = Agent.__table__.c
        conn.execute(update(Agent.__table__).where(a.extension.in_(list(extensions)), a.claimed_by == worker_id,
                                                   a.lease_token == token)
                     .values(claimed_by=None, lease_until=None, lease_token=None))


def adopt_seat_attempts(engine: Engine, worker_id: str, token: int, extension: str,
                        now: dt.datetime) -> list[Orphan]:
    """Move the open attempts on `extension` left by a worker whose lease lapsed (or by an
    earlier life of this id) under this worker's token; they are this worker's to follow."""
    with Session(engine) as s, s.begin():
        _holds(s, worker_id, token)
        held = s.scalar(select(Agent.id).where(Agent.extension == extension, Agent.claimed_by == worker_id,
                                               Agent.lease_token == token))
        if held is None:
            return []
        live = select(Worker.id).where(Worker.lease_until >= now, Worker.id != worker_id)
        where = and_(Attempt.seat == extension, Attempt.ended_at.is_(None),
                     or_(Attempt.worker_id == worker_id, Attempt.worker_id.not_in(live)),
                     or_(Attempt.lease_token.is_(None), Attempt.lease_token != token))
        found = _orphans(s, where)
        if found:
            s.execute(update(Attempt).where(Attempt.id.in_([o.attempt_id for o in found]))
                      .values(worker_id=worker_id, lease_token=token).execution_options(synchronize_session=False))
        return found


def close_orphan(s: Session, attempt: Attempt, now: dt.datetime, why: str = "") -> str | None:
    """Close an open attempt that nobody follows, by the campaign's rules (the pure policy);
    returns its outcome, or None when it was closed already."""
    if attempt.ended_at is not None:
        return None
    campaign = s.get(Campaign, attempt.campaign_id)
    contact = s.get(Contact, attempt.contact_id)
    predictive = campaign is not None and campaign.mode == "predictive"
    outcome, detail = reconciled_outcome(Milestones(attempt.dialled_at, attempt.ringing_at, attempt.answered_at,
                                                    attempt.bridged_at, predictive))
    attempt.outcome, attempt.ended_at = outcome, now
    attempt.detail = " ".join(x for x in (attempt.detail, why or detail) if x)[:1000]
    if attempt.answered_at is not None and attempt.ringing_at is not None:
        attempt.ring_seconds = (attempt.answered_at - attempt.ringing_at).total_seconds()
    if contact is not None and campaign is not None and contact.status == "pending":
        retry = decide_retry(outcome, attempts=contact.attempts, free_misses=contact.free_misses,
                             max_attempts=campaign.max_attempts, delays=campaign.retry_delays,
                             window=window_of(campaign, contact.timezone), now=now, predictive=predictive)
        contact.status, contact.attempts, contact.free_misses = retry.status, retry.attempts, retry.free_misses
        contact.last_outcome = outcome
        if retry.next_attempt_at is not None:
            contact.next_attempt_at = retry.next_attempt_at
        contact.claimed_by = contact.lease_until = None
    return outcome


def close_attempts(engine: Engine, worker_id: str, token: int, attempt_ids: Sequence[int], now: dt.datetime,
                   why: str = "") -> dict[str, int]:
    """Close this worker's open attempts that no call follows (a dial never sent, an adopted
    call gone) by the campaign's rules; counts by outcome."""
    out: dict[str, int] = {}
    if not attempt_ids:
        return out
    with Session(engine) as s, s.begin():
        for attempt in s.scalars(select(Attempt).where(Attempt.id.in_(list(attempt_ids)),
                                                       Attempt.lease_token == token, Attempt.ended_at.is_(None))):
            outcome = close_orphan(s, attempt, now, why)
            if outcome:
                out[outcome] = out.get(outcome, 0) + 1
    return out


def reconcile_dead(engine: Engine, me: str, now: dt.datetime, orphan_after: dt.timedelta) -> dict[str, int]:
    """Workers whose lease lapsed more than `orphan_after` ago are gone: their open attempts are
    closed by the campaign's rules, their seats and contacts released, their rows removed; so
    are open attempts whose worker has no row at all (it stopped with a call it could not close).
    Counts the closed attempts by outcome."""
    out: dict[str, int] = {}
    cutoff = now - orphan_after
    pg = engine.dialect.name == "postgresql"
    with Session(engine) as s, s.begin():
        q = select(Worker.id).where(Worker.id != me, or_(
            Worker.lease_until < cutoff, and_(Worker.lease_until.is_(None), Worker.last_seen < cutoff)))
        gone = set(s.scalars(q.with_for_update() if pg else q))  # a take-over of the id waits for this
        known = select(Worker.id)
        stale = or_(Attempt.worker_id.in_(gone), Attempt.worker_id.not_in(known))
        aq = select(Attempt).where(Attempt.ended_at.is_(None), stale, Attempt.created_at < cutoff)
        for attempt in s.scalars(aq.with_for_update() if pg else aq):  # an outcome landing now waits, then is refused
            outcome = close_orphan(s, attempt, now, "")
            if outcome:
                out[outcome] = out.get(outcome, 0) + 1
        if gone:
            s.execute(update(Agent).where(Agent.claimed_by.in_(gone))
                      .values(claimed_by=None, lease_until=None, lease_token=None))
            s.execute(update(Contact).where(Contact.claimed_by.in_(gone)).values(claimed_by=None, lease_until=None))
            s.execute(delete(Worker).where(Worker.id.in_(gone), Worker.lease_until < cutoff))
    return out


def seats_with_open_calls(engine: Engine, extensions: Sequence[str]) -> set[str]:
    """Which of these seats have an attempt still open (a call that may still be up)."""
    if not extensions:
        return set()
    with engine.connect() as conn:
        a = Attempt.__table__.c
        return set(conn.execute(select(a.seat).where(a.seat.in_(list(extensions)), a.ended_at.is_(None))).scalars())


__all__ = ["LeaseLost", "LeaseLapsed", "WorkerIdInUse", "Orphan", "register_worker", "renew",
           "unregister_worker", "lease_seats", "release_seats", "adopt_seat_attempts", "close_attempts",
           "reconcile_dead", "close_orphan"]
