"""The claim: due contacts leased to a worker and their attempts written, in one transaction.

Due means: the campaign is active, the contact is pending, its next attempt time has come, it
has attempts left, it is inside the calling window in its own timezone (or the campaign's), it
is not on the do-not-call list, no call of it is still open, and nobody holds an unexpired lease
on it. Highest priority first, then the longest due. On PostgreSQL concurrent claimers skip each
other's rows (``FOR UPDATE SKIP LOCKED``); on SQLite the single UPDATE holds the write lock. No
contact is ever leased to two workers at once.

The statements are the worker's hottest: they are compiled once and run through the driver
(dialer/store/prepared.py). The contacts come back as `Callee` records, not ORM objects.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Integer, and_, bindparam, exists, false, func, insert, or_, select, true, update
from sqlalchemy.sql import Executable

from dialer.store import prepared
from dialer.store.leases import LeaseLapsed, LeaseLost
from dialer.store.models import Agent, Attempt, Campaign, Contact, DoNotCall, Worker
from dialer.store.repo import open_timezones, plan_of

log = logging.getLogger(__name__)

_c, _a = Contact.__table__.c, Attempt.__table__.c


@dataclass(slots=True)
class Callee:
    """What the worker needs of a claimed contact."""

    id: int
    phone: str
    name: str = ""
    customer_id: str = ""
    attempts: int = 0
    free_misses: int = 0
    timezone: str | None = None
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Started:
    """A contact claimed for a seat, with its attempt already written."""

    contact: Callee
    attempt_id: int
    seat: str
    dial_string: str


_RETURNED = (_c.id, _c.phone, _c.name, _c.customer_id, _c.attempts, _c.free_misses, _c.timezone, _c.priority,
             _c.next_attempt_at)


def _claim_statement(postgresql: bool, own_open: bool, zones: int) -> Executable:
    in_window = or_(and_(_c.timezone.is_(None), true() if own_open else false()),
                    prepared.in_list(_c.timezone, "z", zones) if zones else false())
    now = bindparam("now")
    free = or_(_c.claimed_by.is_(None), _c.lease_until < now)
    blocked = exists().where(DoNotCall.phone == _c.phone, or_(DoNotCall.until.is_(None), DoNotCall.until > now))
    # a contact whose last call is still open (its worker may be dead, not yet reconciled) waits:
    # never two calls at once, whatever the leases say
    in_call = exists().where(_a.contact_id == _c.id, _a.ended_at.is_(None))
    # (the 72-hour rule for abandoned numbers lives in outcomes.decide_retry: their next attempt
    # is set no sooner)
    due = (select(_c.id)
           .where(_c.campaign_id == bindparam("campaign"), _c.status == "pending", _c.next_attempt_at <= now,
                  _c.attempts < bindparam("max_attempts"), free, in_window, ~blocked, ~in_call)
           .order_by(_c.priority.desc(), _c.next_attempt_at, _c.id)
           .limit(bindparam("limit", type_=Integer)))
    if postgresql:
        due = due.with_for_update(skip_locked=True)
    return (update(Contact.__table__).where(_c.id.in_(due.scalar_subquery()), free)
            .values(claimed_by=bindparam("worker"), lease_until=bindparam("until"))
            .returning(*_RETURNED))


def claim_in(conn: Connection, campaign: Campaign, worker_id: str, limit: int, now: dt.datetime,
             lease: dt.timedelta) -> list[Callee]:
    """Lease up to `limit` due contacts of `campaign` to `worker_id` inside the caller's
    transaction, in the order they are to be dialled."""
    if limit <= 0 or campaign.status != "active":
        return []
    own_open, zones = open_timezones(campaign, now)
    if not own_open and not zones:
        return []
    zones = prepared.padded(zones) if zones else []
    pg = conn.dialect.name == "postgresql"
    params: dict[str, object] = {"now": now, "campaign": campaign.id, "max_attempts": campaign.max_attempts,
                                 "limit": limit, "worker": worker_id, "until": now + lease}
    params.update({f"z{i}": z for i, z in enumerate(zones)})
    rows = prepared.run(conn, ("claim", own_open, len(zones)),
                        lambda: _claim_statement(pg, own_open, len(zones)), params).all()
    # RETURNING keeps no order: hand them out in the order they were chosen (a time column
    # sorts the same as the driver's value: ISO text on SQLite, a datetime on PostgreSQL)
    rows.sort(key=lambda r: (-r[7], r[8], r[0]))
    return [Callee(r[0], r[1], r[2] or "", r[3] or "", r[4], r[5] or 0, r[6], r[7]) for r in rows]


def claim_contacts(engine: Engine, campaign: Campaign, worker_id: str, limit: int, now: dt.datetime,
                   lease: dt.timedelta = dt.timedelta(minutes=5)) -> list[Callee]:
    """`claim_in` in a transaction of its own, so that the lease it takes is visible at once."""
    with engine.begin() as conn:
        return claim_in(conn, campaign, worker_id, limit, now, lease)


def _seats_statement(n: int) -> Executable:
    """The worker's lease and which of `n` seats it still holds under it, in one look: a row
    per seat held (a single row with no seat when it holds none of them; none without a lease)."""
    w, a = Worker.__table__.c, Agent.__table__.c
    held = and_(a.claimed_by == w.id, a.lease_token == w.token, prepared.in_list(a.extension, "e", n))
    return (select(w.token, w.lease_until, a.extension).select_from(Worker.__table__.outerjoin(Agent.__table__, held))
            .where(w.id == bindparam("worker")))


_ATTEMPT_COLUMNS = ("campaign_id", "contact_id", "worker_id", "seat", "agent_extension", "dial_string", "callid",
                    "created_at", "lease_token", "province", "city", "isp", "detail")


def _attempts_statement(n: int) -> Executable:
    """`n` attempts in one statement (each numbered after its contact's earlier ones)."""
    rows = []
    for i in range(n):
        number = select(func.count()).select_from(Attempt.__table__).where(
            _a.contact_id == bindparam(f"contact_id_{i}")).scalar_subquery() + 1
        rows.append({**{name: bindparam(f"{name}_{i}") for name in _ATTEMPT_COLUMNS}, "attempt_no": number})
    return insert(Attempt.__table__).values(rows).returning(_a.id, _a.contact_id)


def _invalid_statement() -> Executable:
    return (update(Contact.__table__).where(_c.id == bindparam("id"))
            .values(status="invalid", last_outcome=None, claimed_by=None, lease_until=None))


def claim_for_queues(engine: Engine, worker_id: str, token: int,
                     queues: Sequence[tuple[Sequence[Campaign], list[str]]],
                     now: dt.datetime, lease: dt.timedelta) -> list[tuple[Campaign, Started]]:
    """Claim up to one due contact per free seat and write their attempts, for every queue with
    free seats at once, in one transaction — the attempt exists before its dial is sent. Each
    queue's campaigns, in the order given, share its free seats. The dial string is built here,
    at dial time; a number the campaign's dial plan refuses is marked `invalid` instead.
    Only under a live lease (LeaseLost otherwise) and on seats still held under it."""
    wanted = [x for _, seats in queues for x in seats]
    if not wanted:
        return []
    wanted = prepared.padded(wanted)
    with engine.begin() as conn:
        params: dict[str, object] = {f"e{i}": x for i, x in enumerate(wanted)}
        params["worker"] = worker_id
        rows = prepared.run(conn, ("seats held", len(wanted)), lambda: _seats_statement(len(wanted)), params).all()
        if not rows or rows[0][0] != token:
            raise LeaseLost(f"worker {worker_id}: lease taken over")
        lease_until = prepared.from_db_time(rows[0][1])
        if lease_until is None or lease_until < now:
            raise LeaseLapsed(f"worker {worker_id}: lease ran out at {lease_until}")
        held = {r[2] for r in rows if r[2] is not None}
        out: list[tuple[Campaign, Started]] = []
        for campaigns, seats in queues:
            free = [x for x in seats if x in held]
            for campaign in campaigns:
                if not free:
                    break
                started = _start_in(conn, campaign, worker_id, token, free, now, lease)
                taken = {st.seat for st in started}
                free = [x for x in free if x not in taken]
                out += [(campaign, st) for st in started]
        return out


def _start_in(conn: Connection, campaign: Campaign, worker_id: str, token: int, seats: Sequence[str],
              now: dt.datetime, lease: dt.timedelta) -> list[Started]:
    from dialer.dialplan import NotDialable, parse_number

    contacts = claim_in(conn, campaign, worker_id, len(seats), now, lease)
    if not contacts:
        return []
    plan = plan_of(campaign)
    chosen: list[tuple[Callee, str, str]] = []  # contact, seat, dial string
    free_seats = iter(seats)
    for contact in contacts:
        try:
            dial_string = plan.decide(parse_number(contact.phone, plan.home_area_code)).dial_string
        except NotDialable as exc:
            prepared.run(conn, "invalid", _invalid_statement, {"id": contact.id})
            log.warning("contact %s (…%s) cannot be dialled: %s", contact.id, contact.phone[-4:], exc)
            continue
        chosen.append((contact, next(free_seats), dial_string))
    if not chosen:
        return []
    params: dict[str, object] = {}
    for i, (contact, seat, dial_string) in enumerate(chosen):
        params.update({
            f"campaign_id_{i}": campaign.id, f"contact_id_{i}": contact.id, f"worker_id_{i}": worker_id,
            f"seat_{i}": seat, f"agent_extension_{i}": seat, f"dial_string_{i}": dial_string, f"callid_{i}": "",
            f"created_at_{i}": now, f"lease_token_{i}": token, f"province_{i}": "", f"city_{i}": "", f"isp_{i}": "",
            f"detail_{i}": ""})
    n = len(chosen)
    ids = dict((contact_id, attempt_id) for attempt_id, contact_id in  # RETURNING keeps no order either
               prepared.run(conn, ("attempts", n), lambda: _attempts_statement(n), params))
    return [Started(contact, ids[contact.id], seat, dial_string) for contact, seat, dial_string in chosen]


__all__ = ["Callee", "Started", "claim_in", "claim_contacts", "claim_for_queues"]
