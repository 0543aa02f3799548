"""The claim: due contacts leased to a worker and their attempts written, fenced by its lease.

Due means: the campaign is active, the contact is pending, its next attempt time has come, it
has attempts left, it is inside the calling window in its own timezone (or the campaign's), it
is not on the do-not-call list, no call of it is still open, and nobody holds an unexpired lease
on it. Highest priority first, then the longest due. On PostgreSQL concurrent claimers skip each
other's rows (``FOR UPDATE SKIP LOCKED``); on SQLite the single UPDATE holds the write lock. No
contact is ever leased to two workers at once.

The worker's claim (`claim_for_queues`) is two statements, each fenced by itself: the claim
leases contacts only while the worker's lease is live, and the attempts are written only on
seats still held under it. On PostgreSQL each commits on its own — no BEGIN or COMMIT round
trip (a claim was five round trips, now two); on SQLite both are one transaction.

The statements are the worker's hottest: they are compiled once and run through the driver
(dialer/store/prepared.py). The contacts come back as `Callee` records, not ORM objects.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (Connection, Engine, Integer, bindparam, exists, func, literal_column, or_, select,
                        true, union_all, update)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql import Executable

from dialer.store import prepared
from dialer.store.leases import LeaseLapsed, LeaseLost
from dialer.store.models import Agent, Attempt, Campaign, Contact, Worker
from dialer.store.dialable import dialable_where as _dialable
from dialer.store.dialable import open_timezones
from dialer.store.repo import plan_of

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


def _live_lease() -> Any:
    """The worker's lease is its own (the token) and has not run out."""
    w = Worker.__table__.c
    return exists().where(w.id == bindparam("worker"), w.token == bindparam("token"), w.lease_until >= bindparam("now"))


def _claim_statement(postgresql: bool, own_open: bool, zones: int, fenced: bool) -> Executable:
    free = or_(_c.claimed_by.is_(None), _c.lease_until < bindparam("now"))
    due = (select(_c.id)
           .where(*_dialable(own_open, zones), _live_lease() if fenced else true())
           .order_by(_c.priority.desc(), _c.next_attempt_at, _c.id)
           .limit(bindparam("limit", type_=Integer)))
    if postgresql:
        due = due.with_for_update(skip_locked=True)
    return (update(Contact.__table__).where(_c.id.in_(due.scalar_subquery()), free)
            .values(claimed_by=bindparam("worker"), lease_until=bindparam("until"))
            .returning(*_RETURNED))


def claim_in(conn: Connection, campaign: Campaign, worker_id: str, limit: int, now: dt.datetime,
             lease: dt.timedelta, token: int | None = None) -> list[Callee]:
    """Lease up to `limit` due contacts of `campaign` to `worker_id` on `conn`, in the order
    they are to be dialled; with a `token`, only while the worker's lease under that token is
    live (none otherwise)."""
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
    fenced = token is not None
    if fenced:
        params["token"] = token
    rows = prepared.run(conn, ("claim", own_open, len(zones), fenced),
                        lambda: _claim_statement(pg, own_open, len(zones), fenced), params).all()
    # RETURNING keeps no order: hand them out in the order they were chosen (a time column
    # sorts the same as the driver's value: ISO text on SQLite, a datetime on PostgreSQL)
    rows.sort(key=lambda r: (-r[7], r[8], r[0]))
    return [Callee(r[0], r[1], r[2] or "", r[3] or "", r[4], r[5] or 0, r[6], r[7]) for r in rows]


def claim_contacts(engine: Engine, campaign: Campaign, worker_id: str, limit: int, now: dt.datetime,
                   lease: dt.timedelta = dt.timedelta(minutes=5)) -> list[Callee]:
    """`claim_in` in a transaction of its own, so that the lease it takes is visible at once."""
    with engine.begin() as conn:
        return claim_in(conn, campaign, worker_id, limit, now, lease)


def _lease_statement() -> Executable:
    w = Worker.__table__.c
    return select(w.token, w.lease_until).where(w.id == bindparam("worker"))


def _check_lease(conn: Connection, worker_id: str, token: int, now: dt.datetime) -> None:
    """Raise LeaseLost or LeaseLapsed when the worker's lease is not live (why a fenced
    statement changed nothing)."""
    row = prepared.run(conn, "lease", _lease_statement, {"worker": worker_id}).first()
    if row is None or row[0] != token:
        raise LeaseLost(f"worker {worker_id}: lease taken over")
    lease_until = prepared.from_db_time(row[1])
    if lease_until is None or lease_until < now:
        raise LeaseLapsed(f"worker {worker_id}: lease ran out at {lease_until}")


#: the attempt's columns given per row; the worker, its token and the seat come from the fence
_ATTEMPT_COLUMNS = ("campaign_id", "contact_id", "dial_string", "created_at")
_BLANK = ("callid", "province", "city", "isp", "detail")  # filled in later


def _attempts_statement(n: int, postgresql: bool) -> Executable:
    """`n` attempts in one statement, each written only on a seat the worker holds under its
    live lease (each numbered after its contact's earlier ones)."""
    a = Agent.__table__.c
    rows = []
    for i in range(n):
        number = select(func.count()).select_from(Attempt.__table__).where(
            _a.contact_id == bindparam(f"contact_id_{i}", type_=Integer)).scalar_subquery() + 1
        rows.append(
            select(*[bindparam(f"{name}_{i}", type_=_a[name].type) for name in _ATTEMPT_COLUMNS],
                   bindparam("worker", type_=_a.worker_id.type), a.extension, a.extension,
                   bindparam("token", type_=_a.lease_token.type), number, *[literal_column("''")] * len(_BLANK))
            .select_from(Agent.__table__)
            .where(a.extension == bindparam(f"seat_{i}", type_=a.extension.type), a.claimed_by == bindparam("worker"),
                   a.lease_token == bindparam("token"), _live_lease(),
                   # the contact is still ours: another worker may have claimed it once our
                   # contact lease lapsed between the claim and this statement
                   exists().where(_c.id == bindparam(f"contact_id_{i}", type_=Integer),
                                  _c.claimed_by == bindparam("worker"))))
    dialect_insert = pg_insert if postgresql else sqlite_insert
    stmt = (dialect_insert(Attempt.__table__)
            .from_select([*_ATTEMPT_COLUMNS, "worker_id", "seat", "agent_extension", "lease_token", "attempt_no",
                          *_BLANK], rows[0] if n == 1 else union_all(*rows)))
    # a contact with an open attempt (uq_attempts_open_contact) gets none: let go, not dialled
    conflict = dict(index_elements=[_a.contact_id], index_where=_a.ended_at.is_(None))
    return stmt.on_conflict_do_nothing(**conflict).returning(_a.id, _a.contact_id)


def _invalid_statement() -> Executable:
    return (update(Contact.__table__).where(_c.id == bindparam("id"))
            .values(status="invalid", last_outcome=None, claimed_by=None, lease_until=None))


def _release_statement() -> Executable:
    return (update(Contact.__table__).where(_c.id == bindparam("id"), _c.claimed_by == bindparam("worker"))
            .values(claimed_by=None, lease_until=None))


@contextmanager
def _claiming(engine: Engine) -> Iterator[Connection]:
    """The claim's connection. On PostgreSQL each statement commits on its own (no BEGIN and
    COMMIT round trips: each statement is fenced by itself); on SQLite, one transaction."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn
    else:
        with engine.begin() as conn:
            yield conn


def claim_for_queues(engine: Engine, worker_id: str, token: int,
                     queues: Sequence[tuple[Sequence[Campaign], list[str]]],
                     now: dt.datetime, lease: dt.timedelta) -> list[tuple[Campaign, Started]]:
    """Claim up to one due contact per free seat and write their attempts, for every queue with
    free seats at once — the attempt exists before its dial is sent. Each queue's campaigns, in
    the order given, share its free seats. The dial string is built here, at dial time; a number
    the campaign's dial plan refuses is marked `invalid` instead.

    Fenced: contacts are claimed only under the worker's live lease, and an attempt is written
    only on a seat still held under it (LeaseLost or LeaseLapsed when the lease is not live).
    Two statements in the common case, the claim and the attempts: on PostgreSQL each commits on
    its own. A contact claimed whose attempt was refused (its seat was no longer held) is let go
    at once; one claimed by a worker that died before writing its attempt waits out its lease —
    no dial was sent for it."""
    if not any(seats for _, seats in queues):
        return []
    with _claiming(engine) as conn:
        chosen: list[tuple[Campaign, Callee, str, str]] = []  # campaign, contact, seat, dial string
        claimed = False
        for campaigns, seats in queues:
            free = list(seats)
            for campaign in campaigns:
                if not free:
                    break
                contacts = claim_in(conn, campaign, worker_id, len(free), now, lease, token=token)
                claimed = claimed or bool(contacts)
                for contact, dial_string in _dial_strings(conn, campaign, contacts):
                    chosen.append((campaign, contact, free.pop(0), dial_string))
        if not chosen:
            if not claimed:
                _check_lease(conn, worker_id, token, now)  # nothing due, or no lease?
            return []
        n = len(chosen)
        params: dict[str, object] = {"worker": worker_id, "token": token, "now": now}
        for i, (campaign, contact, seat, dial_string) in enumerate(chosen):
            params.update({f"campaign_id_{i}": campaign.id, f"contact_id_{i}": contact.id, f"seat_{i}": seat,
                           f"dial_string_{i}": dial_string, f"created_at_{i}": now})
        pg = conn.dialect.name == "postgresql"
        ids = dict((contact_id, attempt_id) for attempt_id, contact_id in  # RETURNING keeps no order
                   prepared.run(conn, ("attempts", n), lambda: _attempts_statement(n, pg), params))
        refused = [contact.id for _, contact, _, _ in chosen if contact.id not in ids]
        if refused:
            prepared.run_many(conn, "release", _release_statement, [{"id": x, "worker": worker_id} for x in refused])
            if not ids:
                _check_lease(conn, worker_id, token, now)
        return [(campaign, Started(contact, ids[contact.id], seat, dial_string))
                for campaign, contact, seat, dial_string in chosen if contact.id in ids]


def _dial_strings(conn: Connection, campaign: Campaign, contacts: list[Callee]) -> Iterator[tuple[Callee, str]]:
    """Each contact with its dial string by the campaign's dial plan; one the plan refuses is
    marked `invalid` (and let go)."""
    from dialer.dialplan import NotDialable, parse_number

    if not contacts:
        return
    plan = plan_of(campaign)
    for contact in contacts:
        try:
            yield contact, plan.decide(parse_number(contact.phone, plan.home_area_code)).dial_string
        except NotDialable as exc:
            prepared.run(conn, "invalid", _invalid_statement, {"id": contact.id})
            log.warning("contact %s (…%s) cannot be dialled: %s", contact.id, contact.phone[-4:], exc)


__all__ = ["Callee", "Started", "claim_in", "claim_contacts", "claim_for_queues"]
