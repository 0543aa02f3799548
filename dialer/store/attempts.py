"""Repository functions of the worker's calls: milestones, outcomes, counts (the claim is in
dialer/store/claim.py).

Each function opens its own short transaction on the engine it is given (the worker calls them
from its database threads, never from the event loop). Every write names the fencing token of
the worker's lease (dialer/store/leases.py) and changes nothing under a token that is gone; an
outcome is written at most once (`ended_at IS NULL`). The writes of every call are compiled once
and run through the driver (dialer/store/prepared.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from dialer.outcomes import Retry
from dialer.store import prepared
from dialer.store.abandonment import ABANDONED  # noqa: F401  (the recorder reads it here)
from dialer.store.claim import Callee
from dialer.store.models import Attempt, Campaign, Contact, DoNotCall

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


def campaigns_version(engine: Engine, names: Sequence[str]) -> tuple[Any, ...]:
    """The campaigns `load_campaigns` would load, as the driver returns their rows: equal
    tuples mean nothing changed (a cheap look before loading them again)."""
    c = Campaign.__table__.c
    with engine.connect() as conn:
        if not names:
            rows = prepared.run(conn, "active campaigns",
                                lambda: select(Campaign.__table__).where(c.status == "active").order_by(c.id))
        else:
            wanted = prepared.padded(list(names))
            rows = prepared.run(conn, ("campaigns", len(wanted)), lambda: select(Campaign.__table__).where(
                prepared.in_list(c.name, "n", len(wanted))).order_by(c.id), {f"n{i}": n for i, n in enumerate(wanted)})
        return tuple(tuple(r) for r in rows)


#: milestone name → column: what a call has reached, written as it happens
MILESTONES = ("dialled_at", "ringing_at", "answered_at", "bridged_at")


def write_milestone(engine: Engine, token: int, attempt_id: int, values: dict[str, object]) -> bool:
    """Record what an open call has reached (`dialled_at`, `ringing_at`, `answered_at`,
    `bridged_at`, `callid`, `agent_extension`); False when the attempt is closed or not ours."""
    with engine.begin() as conn:
        return milestone_in(conn, token, attempt_id, values)


def milestone_in(conn: Connection, token: int, attempt_id: int, values: dict[str, object]) -> bool:
    """`write_milestone` inside the caller's transaction."""
    names = tuple(sorted(values))
    done = prepared.run(conn, ("milestone", names), lambda: _milestone_statement(names),
                        {**values, "attempt": attempt_id, "token": token})
    return done.rowcount == 1


def milestones_in(conn: Connection, writes: Sequence[tuple[int, int, dict[str, object]]]) -> None:
    """Many `milestone_in` (token, attempt, values) at once: those with the same columns in one
    driver call. Whether each landed is not told (a refused milestone changes nothing)."""
    shapes: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for token, attempt_id, values in writes:
        shapes.setdefault(tuple(sorted(values)), []).append({**values, "attempt": attempt_id, "token": token})
    for names, rows in shapes.items():
        prepared.run_many(conn, ("milestone", names), lambda: _milestone_statement(names), rows)


def _open_attempt(a: Any) -> Any:
    """The attempt named by the parameters, still open and under the writer's token."""
    return and_(a.id == bindparam("attempt"), a.ended_at.is_(None), a.lease_token == bindparam("token"))


def _milestone_statement(names: tuple[str, ...]) -> Executable:
    a = Attempt.__table__.c
    return update(Attempt.__table__).where(_open_attempt(a)).values({n: bindparam(n) for n in names})


def finish_attempt(engine: Engine, token: int, attempt_id: int, contact_id: int, end: AttemptEnd,
                   retry: Retry) -> bool:
    """Record a call's outcome and what it means for its contact, in one transaction, at most
    once: False (nothing written) when the attempt was closed already — by anyone else, or under
    another token. The same write sent twice is True both times (and written once)."""
    with engine.begin() as conn:  # Core: this runs once a call, on the hot path
        return finish_in(conn, token, attempt_id, contact_id, end, retry)


#: what an outcome writes on its attempt (besides `callid` and `agent_extension` when known)
_END_COLUMNS = ("outcome", "dialled_at", "ringing_at", "answered_at", "bridged_at", "ended_at", "ring_seconds",
                "talk_seconds", "province", "city", "isp", "detail")


def finish_in(conn: Connection, token: int, attempt_id: int, contact_id: int, end: AttemptEnd, retry: Retry) -> bool:
    """`finish_attempt` inside the caller's transaction."""
    values: dict[str, object] = {name: getattr(end, name) for name in _END_COLUMNS}
    values["detail"] = end.detail[:1000]
    if end.callid:
        values["callid"] = end.callid
    if end.agent_extension is not None:
        values["agent_extension"] = end.agent_extension
    names = tuple(values)
    done = prepared.run(conn, ("end", names), lambda: _end_statement(names),
                        {**values, "attempt": attempt_id, "token": token})
    if done.rowcount != 1:
        # the same write replayed (its first try landed after its reply was lost): written
        row = prepared.run(conn, "ended", _ended_statement, {"attempt": attempt_id}).first()
        return (row is not None and (row[0], row[1]) == (token, end.outcome)
                and prepared.from_db_time(row[2]) == end.ended_at)
    contact: dict[str, object] = dict(
        status=retry.status, attempts=retry.attempts, free_misses=retry.free_misses, last_outcome=end.outcome)
    if retry.next_attempt_at is not None:
        contact["next_attempt_at"] = retry.next_attempt_at
    if end.province:
        contact["province"] = end.province
    if end.city:
        contact["city"] = end.city
    names = tuple(contact)
    prepared.run(conn, ("contact after", names), lambda: _contact_statement(names), {**contact, "id": contact_id})
    return True


def _end_statement(names: tuple[str, ...]) -> Executable:
    a = Attempt.__table__.c
    return update(Attempt.__table__).where(_open_attempt(a)).values({n: bindparam(n) for n in names})


def _ended_statement() -> Executable:
    a = Attempt.__table__.c
    return select(a.lease_token, a.outcome, a.ended_at).where(a.id == bindparam("attempt"))


def _contact_statement(names: tuple[str, ...]) -> Executable:
    c = Contact.__table__.c
    return (update(Contact.__table__).where(c.id == bindparam("id"))
            .values({**{n: bindparam(n) for n in names}, "claimed_by": None, "lease_until": None}))


def open_attempts(engine: Engine, worker_id: str, token: int) -> list[int]:
    """This worker's open attempts (to find those no call of its follows)."""
    a = Attempt.__table__.c
    with engine.connect() as conn:
        return list(conn.execute(select(a.id).where(a.worker_id == worker_id, a.lease_token == token,
                                                    a.ended_at.is_(None))).scalars())


def load_contacts(engine: Engine, ids: Sequence[int]) -> dict[int, Callee]:
    """The contacts of calls to follow (adopted after a restart), as the claim gives them."""
    c = Contact.__table__.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.id, c.phone, c.name, c.customer_id, c.attempts, c.free_misses, c.timezone,
                                   c.priority).where(c.id.in_(list(ids)))).all()
    return {r[0]: Callee(r[0], r[1], r[2] or "", r[3] or "", r[4], r[5] or 0, r[6], r[7]) for r in rows}


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

