"""Repository functions of the worker's calls: the claim, milestones, outcomes, counts.

Each function opens its own short transaction on the engine it is given (the worker calls them
from its database threads, never from the event loop). Every write names the fencing token of
the worker's lease (dialer/store/leases.py) and changes nothing under a token that is gone; an
outcome is written at most once (`ended_at IS NULL`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, and_, case, exists, func, or_, select, update
from sqlalchemy.orm import Session

from dialer.outcomes import Retry
from dialer.store.leases import LeaseLapsed, LeaseLost
from dialer.store.models import Agent, Attempt, Campaign, Contact, DoNotCall, Worker

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


def claim_for_queues(engine: Engine, worker_id: str, token: int,
                     queues: Sequence[tuple[Sequence[Campaign], list[str]]],
                     now: dt.datetime, lease: dt.timedelta) -> list[tuple[Campaign, Started]]:
    """Claim up to one due contact per free seat and write their attempts, for every queue with
    free seats at once, in one transaction — the attempt exists before its dial is sent. Each
    queue's campaigns, in the order given, share its free seats. The dial string is built here,
    at dial time; a number the campaign's dial plan refuses is marked `invalid` instead.
    Only under a live lease (LeaseLost otherwise) and on seats still held under it."""
    with Session(engine, expire_on_commit=False) as s, s.begin():
        w = s.execute(select(Worker.token, Worker.lease_until).where(Worker.id == worker_id)).first()
        if w is None or w.token != token:
            raise LeaseLost(f"worker {worker_id}: lease taken over")
        if w.lease_until is None or w.lease_until < now:
            raise LeaseLapsed(f"worker {worker_id}: lease ran out at {w.lease_until}")
        wanted = [x for _, seats in queues for x in seats]
        held = set(s.scalars(select(Agent.extension).where(Agent.extension.in_(wanted), Agent.claimed_by == worker_id,
                                                           Agent.lease_token == token)))
        out: list[tuple[Campaign, Started]] = []
        for campaigns, seats in queues:
            free = [x for x in seats if x in held]
            for campaign in campaigns:
                if not free:
                    break
                started = _start_in(s, campaign, worker_id, token, free, now, lease)
                taken = {st.seat for st in started}
                free = [x for x in free if x not in taken]
                out += [(campaign, st) for st in started]
        return out


def _start_in(s: Session, campaign: Campaign, worker_id: str, token: int, seats: Sequence[str], now: dt.datetime,
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
                          created_at=now, lease_token=token)
        s.add(attempt)
        started.append((contact, attempt, dial_string))
    s.flush()
    return [Started(c, a.id, a.seat, d) for c, a, d in started]


#: milestone name → column: what a call has reached, written as it happens
MILESTONES = ("dialled_at", "ringing_at", "answered_at", "bridged_at")


def write_milestone(engine: Engine, token: int, attempt_id: int, values: dict[str, object]) -> bool:
    """Record what an open call has reached (`dialled_at`, `ringing_at`, `answered_at`,
    `bridged_at`, `callid`, `agent_extension`); False when the attempt is closed or not ours."""
    with engine.begin() as conn:
        return milestone_in(conn, token, attempt_id, values)


def milestone_in(conn: Connection, token: int, attempt_id: int, values: dict[str, object]) -> bool:
    """`write_milestone` inside the caller's transaction."""
    a = Attempt.__table__.c
    done = conn.execute(update(Attempt.__table__).where(a.id == attempt_id, a.ended_at.is_(None),
                                                         a.lease_token == token).values(**values))
    return done.rowcount == 1


def finish_attempt(engine: Engine, token: int, attempt_id: int, contact_id: int, end: AttemptEnd,
                   retry: Retry) -> bool:
    """Record a call's outcome and what it means for its contact, in one transaction, at most
    once: False (nothing written) when the attempt was closed already — by anyone else, or under
    another token. The same write sent twice is True both times (and written once)."""
    with engine.begin() as conn:  # Core: this runs once a call, on the hot path
        return finish_in(conn, token, attempt_id, contact_id, end, retry)


def finish_in(conn: Connection, token: int, attempt_id: int, contact_id: int, end: AttemptEnd, retry: Retry) -> bool:
    """`finish_attempt` inside the caller's transaction."""
    a = Attempt.__table__.c
    done = conn.execute(update(Attempt.__table__).where(a.id == attempt_id, a.ended_at.is_(None),
                                                      a.lease_token == token).values(
        outcome=end.outcome, dialled_at=end.dialled_at, ringing_at=end.ringing_at, answered_at=end.answered_at,
        bridged_at=end.bridged_at, ended_at=end.ended_at, ring_seconds=end.ring_seconds,
        talk_seconds=end.talk_seconds, province=end.province, city=end.city, isp=end.isp,
        detail=end.detail[:1000],
        **({"callid": end.callid} if end.callid else {}),
        **({"agent_extension": end.agent_extension} if end.agent_extension is not None else {})))
    if done.rowcount != 1:
        # the same write replayed (its first try landed after its reply was lost): written
        row = conn.execute(select(a.lease_token, a.outcome, a.ended_at).where(a.id == attempt_id)).first()
        return row is not None and (row.lease_token, row.outcome, row.ended_at) == (token, end.outcome, end.ended_at)
    values: dict[str, object] = dict(
        status=retry.status, attempts=retry.attempts, free_misses=retry.free_misses,
        last_outcome=end.outcome, claimed_by=None, lease_until=None)
    if retry.next_attempt_at is not None:
        values["next_attempt_at"] = retry.next_attempt_at
    if end.province:
        values.update(province=end.province)
    if end.city:
        values.update(city=end.city)
    conn.execute(update(Contact.__table__).where(Contact.__table__.c.id == contact_id).values(**values))
    return True


def open_attempts(engine: Engine, worker_id: str, token: int) -> list[int]:
    """This worker's open attempts (to find those no call of its follows)."""
    a = Attempt.__table__.c
    with engine.connect() as conn:
        return list(conn.execute(select(a.id).where(a.worker_id == worker_id, a.lease_token == token,
                                                    a.ended_at.is_(None))).scalars())


def load_contacts(engine: Engine, ids: Sequence[int]) -> dict[int, Contact]:
    with Session(engine, expire_on_commit=False) as s:
        return {c.id: c for c in s.scalars(select(Contact).where(Contact.id.in_(list(ids))))}


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
