"""Repository functions of the worker: workers, seat leases, attempts and their outcomes.

Each function opens its own short transaction on the engine it is given (the worker calls them
from one database thread, never from the event loop).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, and_, case, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from dialer.outcomes import Retry
from dialer.store.models import Agent, Attempt, Campaign, Contact, DoNotCall, Worker
from dialer.store.repo import AgentRow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    """Everything learnt about a call, to record with its outcome."""

    outcome: str
    callid: str = ""
    dialled_at: dt.datetime | None = None
    agent_up_at: dt.datetime | None = None
    ringing_at: dt.datetime | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    ring_seconds: float | None = None
    talk_seconds: float | None = None
    province: str = ""
    city: str = ""
    isp: str = ""
    detail: str = ""
    bridged_at: dt.datetime | None = None  # an agent joined the customer
    agent_extension: str | None = None  # who talked, when not the seat that dialled (predictive)


def register_worker(engine: Engine, worker_id: str, now: dt.datetime) -> None:
    with Session(engine) as s, s.begin():
        row = s.get(Worker, worker_id)
        if row is None:
            s.add(Worker(id=worker_id, host=socket.gethostname(), pid=os.getpid(), started_at=now, last_seen=now))
        else:
            row.host, row.pid, row.started_at, row.last_seen = socket.gethostname(), os.getpid(), now, now


def heartbeat(engine: Engine, worker_id: str, now: dt.datetime, lease: dt.timedelta) -> None:
    """Say the worker is alive and renew its leases: its seats, and the contacts it holds (those
    in its calls: a claimed contact is dialled at once and released when its outcome is written)."""
    with engine.begin() as s:  # by owner, through its index: a 500-seat worker renews in one go
        s.execute(update(Worker.__table__).where(Worker.__table__.c.id == worker_id).values(last_seen=now))
        agents, contacts = Agent.__table__.c, Contact.__table__.c
        s.execute(update(Agent.__table__).where(agents.claimed_by == worker_id).values(lease_until=now + lease))
        s.execute(update(Contact.__table__).where(contacts.claimed_by == worker_id).values(lease_until=now + lease))


def unregister_worker(engine: Engine, worker_id: str) -> None:
    """A clean stop: give back every seat and contact this worker holds."""
    with Session(engine) as s, s.begin():
        s.execute(update(Agent).where(Agent.claimed_by == worker_id).values(claimed_by=None, lease_until=None))
        s.execute(update(Contact).where(Contact.claimed_by == worker_id).values(claimed_by=None, lease_until=None))
        s.execute(delete(Worker).where(Worker.id == worker_id))


def reconcile_dead_workers(engine: Engine, me: str, now: dt.datetime, lease: dt.timedelta,
                           retry_delay: dt.timedelta, *, starting: bool = False) -> int:
    """Attempts left open by dead workers (heartbeat older than the lease — and, when
    `starting`, by an earlier life of this worker id) become `interrupted`; their contacts are
    due again after `retry_delay`, a free miss; their seats and contacts are released.
    Returns how many attempts were closed."""
    with Session(engine) as s, s.begin():
        dead = set(s.scalars(select(Worker.id).where(Worker.last_seen < now - lease, Worker.id != me)))
        if starting:
            dead.add(me)
        open_attempts = list(s.scalars(select(Attempt).where(Attempt.ended_at.is_(None), Attempt.worker_id.in_(dead))))
        for attempt in open_attempts:
            attempt.outcome, attempt.ended_at = "interrupted", now
            attempt.detail = (attempt.detail + " worker stopped mid-call").strip()
            contact = s.get(Contact, attempt.contact_id)
            if contact is not None and contact.status == "pending":
                contact.last_outcome = "interrupted"
                contact.next_attempt_at = now + retry_delay
                contact.free_misses += 1
                contact.claimed_by, contact.lease_until = None, None
        s.execute(update(Agent).where(Agent.claimed_by.in_(dead)).values(claimed_by=None, lease_until=None))
        s.execute(update(Contact).where(Contact.claimed_by.in_(dead)).values(claimed_by=None, lease_until=None))
        s.execute(delete(Worker).where(Worker.id.in_(dead - {me})))
        return len(open_attempts)


def lease_seats(engine: Engine, worker_id: str, queues: Iterable[str], now: dt.datetime,
                lease: dt.timedelta, roles: Sequence[str] = ("agent",), limit: int | None = None) -> list[AgentRow]:
    """Hold up to `limit` enabled seats of `queues`: this worker's own first, then seats no live
    worker holds. Returns every seat of `roles` this worker holds (of any queue)."""
    queues = list(queues)
    with Session(engine) as s, s.begin():
        free = or_(Agent.claimed_by.is_(None), Agent.lease_until < now, Agent.claimed_by == worker_id)
        cond = and_(Agent.queue.in_(queues), Agent.enabled.is_(True), Agent.role.in_(list(roles)), free)
        own_first = case((Agent.claimed_by == worker_id, 0), else_=1)
        pick = select(Agent.id).where(cond).order_by(own_first, Agent.extension)
        if limit is not None:
            pick = pick.limit(limit)
        if engine.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        ids = list(s.scalars(pick))
        s.execute(update(Agent).where(Agent.id.in_(ids), free).values(claimed_by=worker_id, lease_until=now + lease)
                  .execution_options(synchronize_session=False))
        rows = s.scalars(select(Agent).where(Agent.claimed_by == worker_id, Agent.role.in_(list(roles)))
                        .order_by(Agent.extension))
        return [AgentRow(a.staffid, a.name, a.extension, a.queue, a.skill, a.role, a.sector) for a in rows]


def load_campaigns(engine: Engine, names: Sequence[str]) -> list[Campaign]:
    """The campaigns to work: those named (any status), or every active one."""
    with Session(engine, expire_on_commit=False) as s:
        q = select(Campaign)
        q = q.where(Campaign.name.in_(list(names))) if names else q.where(Campaign.status == "active")
        return list(s.scalars(q.order_by(Campaign.priority.desc(), Campaign.id)))


@dataclass(frozen=True, slots=True)
class Started:
    """A contact claimed for a seat, with its attempt already written."""

    contact: Contact
    attempt_id: int
    seat: str
    dial_string: str


def claim_for_queues(engine: Engine, worker_id: str, queues: Sequence[tuple[Sequence[Campaign], list[str]]],
                     now: dt.datetime, lease: dt.timedelta) -> list[tuple[Campaign, Started]]:
    """Claim up to one due contact per free seat and write their attempts, for every queue with
    free seats at once, in one transaction — the attempt exists before its dial is sent. Each
    queue's campaigns, in the order given, share its free seats. The dial string is built here,
    at dial time; a number the campaign's dial plan refuses is marked `invalid` instead."""
    with Session(engine, expire_on_commit=False) as s, s.begin():
        out: list[tuple[Campaign, Started]] = []
        for campaigns, seats in queues:
            free = list(seats)
            for campaign in campaigns:
                if not free:
                    break
                started = _start_in(s, campaign, worker_id, free, now, lease)
                taken = {st.seat for st in started}
                free = [x for x in free if x not in taken]
                out += [(campaign, st) for st in started]
        return out


def _start_in(s: Session, campaign: Campaign, worker_id: str, seats: Sequence[str], now: dt.datetime,
              lease: dt.timedelta) -> list[Started]:
    from dialer.dialplan import NotDialable, parse_number
    from dialer.store.repo import claim_in, plan_of

    contacts = claim_in(s, campaign, worker_id, len(seats), now, lease)
    if not contacts:
        return []
    plan = plan_of(campaign)
    done = dict(s.execute(select(Attempt.contact_id, func.count()).where(
        Attempt.contact_id.in_([c.id for c in contacts])).group_by(Attempt.contact_id)).all())
    started: list[tuple[Contact, Attempt, str]] = []
    free_seats = iter(seats)
    for contact in contacts:
        try:
            dial_string = plan.decide(parse_number(contact.phone, plan.home_area_code)).dial_string
        except NotDialable as exc:
            contact.status, contact.last_outcome = "invalid", None
            contact.claimed_by = contact.lease_until = None
            log.warning("contact %s (%s) cannot be dialled: %s", contact.id, contact.phone, exc)
            continue
        seat = next(free_seats)
        attempt = Attempt(campaign_id=campaign.id, contact_id=contact.id, attempt_no=done.get(contact.id, 0) + 1,
                          worker_id=worker_id, seat=seat, agent_extension=seat, dial_string=dial_string,
                          created_at=now)
        s.add(attempt)
        started.append((contact, attempt, dial_string))
    s.flush()
    return [Started(c, a.id, a.seat, d) for c, a, d in started]


def finish_attempt(engine: Engine, attempt_id: int, contact_id: int, end: AttemptEnd, retry: Retry) -> None:
    """Record a call's outcome and what it means for its contact, in one transaction."""
    with engine.begin() as s:  # Core: this runs once a call, on the hot path
        s.execute(update(Attempt.__table__).where(Attempt.__table__.c.id == attempt_id).values(
            outcome=end.outcome, callid=end.callid, dialled_at=end.dialled_at, ringing_at=end.ringing_at, answered_at=end.answered_at,
            bridged_at=end.bridged_at, ended_at=end.ended_at, ring_seconds=end.ring_seconds,
            talk_seconds=end.talk_seconds, province=end.province, city=end.city, isp=end.isp,
            detail=end.detail[:1000],
            **({"agent_extension": end.agent_extension} if end.agent_extension is not None else {})))
        values: dict[str, object] = dict(
            status=retry.status, attempts=retry.attempts, free_misses=retry.free_misses,
            last_outcome=end.outcome, claimed_by=None, lease_until=None)
        if retry.next_attempt_at is not None:
            values["next_attempt_at"] = retry.next_attempt_at
        if end.province:
            values.update(province=end.province)
        if end.city:
            values.update(city=end.city)
        s.execute(update(Contact.__table__).where(Contact.__table__.c.id == contact_id).values(**values))


def dialable_left(engine: Engine, campaign_ids: Sequence[int], now: dt.datetime) -> int:
    """Contacts of these campaigns that may still be dialled, now or later."""
    if not campaign_ids:
        return 0
    with Session(engine) as s:
        return s.scalar(
            select(func.count()).select_from(Contact).join(Campaign, Campaign.id == Contact.campaign_id)
            .where(Contact.campaign_id.in_(list(campaign_ids)), Contact.status == "pending",
                   Contact.attempts < Campaign.max_attempts,
                   ~exists().where(DoNotCall.phone == Contact.phone,
                                   or_(DoNotCall.until.is_(None), DoNotCall.until > now)))) or 0


#: Outcomes that count as abandoned, and as live answers, for the FCC/Ofcom rate. The API cannot
#: tell a person from an answering machine, so every answer counts as live.
ABANDONED = ("abandoned", "answered_late")
LIVE = ("answered", "answered_late", "abandoned")


@dataclass(frozen=True, slots=True)
class AbandonCounts:
    """Abandoned calls and live answers of one campaign in the two measuring windows."""

    abandoned_day: int = 0
    live_day: int = 0
    abandoned_30d: int = 0
    live_30d: int = 0


def abandon_counts(engine: Engine, campaign_ids: Sequence[int], now: dt.datetime) -> dict[int, AbandonCounts]:
    """Per campaign: abandoned calls and live answers over the last 24 hours (Ofcom: a day) and
    the last 30 days (FCC), counted from the attempts started in those windows."""
    if not campaign_ids:
        return {}
    a = Attempt.__table__.c
    day = now - dt.timedelta(hours=24)
    is_ab = func.sum(case((a.outcome.in_(ABANDONED), 1), else_=0))
    is_live = func.sum(case((a.outcome.in_(LIVE), 1), else_=0))
    recent = a.created_at >= day
    q = (select(a.campaign_id, is_ab, is_live,
                func.sum(case((and_(recent, a.outcome.in_(ABANDONED)), 1), else_=0)),
                func.sum(case((and_(recent, a.outcome.in_(LIVE)), 1), else_=0)))
         .where(a.campaign_id.in_(list(campaign_ids)), a.created_at >= now - dt.timedelta(days=30),
                a.outcome.in_(LIVE))
         .group_by(a.campaign_id))
    with engine.connect() as c:
        rows = c.execute(q).all()
    out = {cid: AbandonCounts() for cid in campaign_ids}
    for cid, ab30, live30, ab1, live1 in rows:
        out[cid] = AbandonCounts(int(ab1 or 0), int(live1 or 0), int(ab30 or 0), int(live30 or 0))
    return out
