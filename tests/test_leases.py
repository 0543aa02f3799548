"""Fencing on real SQLite and real PostgreSQL: the worker id's lease and token, seats, claims,
milestones and outcomes — every write under a token that is gone changes nothing, an outcome
lands at most once, and what no worker follows is closed by the campaign's own rules."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.outcomes import decide_retry
from dialer.store import attempts as db
from dialer.store import claim as claim_mod
from dialer.store import dialable, leases, repo
from dialer.store.leases import LeaseLost, WorkerIdInUse
from dialer.store.models import Attempt, Contact

UTC = dt.timezone.utc
WED_10 = dt.datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Beijing
LEASE = dt.timedelta(seconds=60)


def dead(pid: int) -> bool:
    return False


def alive(pid: int) -> bool:
    return True


def setup(engine, phones=("+8613800138000",), mode="progressive", **campaign):
    with Session(engine) as s, s.begin():
        c = repo.create_campaign(s, "c", queue="kefu", area_code="010", max_attempts=3, mode=mode,
                                 abandon_ivr="9001" if mode == "predictive" else "", **campaign)
        repo.set_campaign_status(s, "c", "resume")
        for phone in phones:
            s.add(Contact(campaign_id=c.id, phone=phone, kind="mobile", next_attempt_at=WED_10 - dt.timedelta(minutes=1)))
        repo.upsert_agents(s, [repo.AgentRow("1601", "a", "601", "kefu"), repo.AgentRow("1602", "b", "602", "kefu")])


def campaign(engine):
    return db.load_campaigns(engine, ("c",))[0]


def start(engine, worker="w1", now=WED_10, seats=("601",), pid=100):
    token, orphans = leases.register_worker(engine, worker, now, LEASE, pid=pid, pid_alive=dead, host="h")
    held = leases.lease_seats(engine, worker, token, ["kefu"], now, LEASE, limit=len(seats))
    return token, [r.extension for r in held]


def claim(engine, worker, token, seats, now=WED_10):
    return claim_mod.claim_for_queues(engine, worker, token, [([campaign(engine)], list(seats))], now, LEASE)


def end(outcome="answered", now=WED_10):
    return db.AttemptEnd(outcome, "c1", now, now, now, now, now + dt.timedelta(seconds=30), 2.0, 30.0)


def retry_for(engine, outcome, now=WED_10):
    c = campaign(engine)
    return decide_retry(outcome, attempts=0, free_misses=0, max_attempts=c.max_attempts, delays=c.retry_delays,
                        window=dialable.window_of(c), now=now)


def test_an_outcome_lands_at_most_once_and_only_under_its_token(engine) -> None:
    setup(engine)
    token, seats = start(engine)
    [(_, st)] = claim(engine, "w1", token, seats)
    assert db.finish_attempt(engine, token + 1, st.attempt_id, st.contact.id, end(), retry_for(engine, "answered")) is False
    assert db.finish_attempt(engine, token, st.attempt_id, st.contact.id, end(), retry_for(engine, "answered")) is True
    # the same write again (a batch resent after its reply was lost) is written, once
    assert db.finish_attempt(engine, token, st.attempt_id, st.contact.id, end(), retry_for(engine, "answered")) is True
    late = end("no_answer")
    assert db.finish_attempt(engine, token, st.attempt_id, st.contact.id, late, retry_for(engine, "no_answer")) is False
    assert db.write_milestone(engine, token, st.attempt_id, {"ringing_at": WED_10}) is False
    with Session(engine) as s:
        a = s.get(Attempt, st.attempt_id)
        c = s.get(Contact, st.contact.id)
        assert (a.outcome, a.talk_seconds) == ("answered", 30.0)
        assert (c.status, c.attempts, c.last_outcome) == ("done", 1, "answered")


def test_a_new_life_of_the_id_fences_the_old_one_out(engine) -> None:
    setup(engine)
    old, seats = start(engine)
    [(_, st)] = claim(engine, "w1", old, seats)
    new, orphans = leases.register_worker(engine, "w1", WED_10 + dt.timedelta(seconds=5), LEASE, pid=101,
                                          pid_alive=dead, host="h")
    assert new != old
    assert [o.attempt_id for o in orphans] == [st.attempt_id]  # the new life follows the old one's call
    with pytest.raises(LeaseLost):
        leases.renew(engine, "w1", old, WED_10, LEASE)
    with pytest.raises(LeaseLost):
        claim(engine, "w1", old, seats)
    with pytest.raises(LeaseLost):
        leases.lease_seats(engine, "w1", old, ["kefu"], WED_10, LEASE)
    # the old life's late writes are refused; the new life's land
    assert db.write_milestone(engine, old, st.attempt_id, {"answered_at": WED_10}) is False
    assert db.finish_attempt(engine, old, st.attempt_id, st.contact.id, end(), retry_for(engine, "answered")) is False
    assert db.finish_attempt(engine, new, st.attempt_id, st.contact.id, end(), retry_for(engine, "answered")) is True
    # and its seats came along at once, under the new token
    assert leases.renew(engine, "w1", new, WED_10 + dt.timedelta(seconds=6), LEASE) == {"601"}


def test_a_late_renewal_never_moves_the_lease_back(engine) -> None:
    setup(engine, phones=("+8613800138000",))
    token, seats = start(engine)
    leases.renew(engine, "w1", token, WED_10 + dt.timedelta(seconds=50), LEASE)
    leases.renew(engine, "w1", token, WED_10 + dt.timedelta(seconds=10), LEASE)  # stuck in an outage, landing late
    # still leased at 50 + 60 - 1 s: a claim goes through
    assert claim(engine, "w1", token, seats, now=WED_10 + dt.timedelta(seconds=109))


def test_a_live_holder_keeps_its_id(engine) -> None:
    setup(engine)
    leases.register_worker(engine, "w1", WED_10, LEASE, pid=100, pid_alive=dead, host="a")
    with pytest.raises(WorkerIdInUse, match="on a"):
        leases.register_worker(engine, "w1", WED_10, LEASE, pid=100, pid_alive=dead, host="b")
    with pytest.raises(WorkerIdInUse, match="process 100"):
        leases.register_worker(engine, "w1", WED_10, LEASE, pid=200, pid_alive=alive, host="a")
    # a dead pid on this host (a SIGKILLed worker restarted at once): taken over now
    leases.register_worker(engine, "w1", WED_10, LEASE, pid=200, pid_alive=dead, host="a")
    # another host may take it once the lease lapsed
    leases.register_worker(engine, "w1", WED_10 + LEASE + dt.timedelta(seconds=1), LEASE, pid=1, pid_alive=alive,
                           host="b")


def test_no_claim_on_a_lapsed_lease_or_a_seat_not_held(engine) -> None:
    setup(engine, phones=("+8613800138000", "+8613800138001"))
    token, seats = start(engine)
    with pytest.raises(leases.LeaseLapsed):
        claim(engine, "w1", token, seats, now=WED_10 + LEASE + dt.timedelta(seconds=1))
    assert claim(engine, "w1", token, ["602"]) == []  # a seat this worker does not hold
    assert [st.seat for _, st in claim(engine, "w1", token, seats)] == ["601"]


def test_the_claim_takes_no_contact_under_a_dead_lease(engine) -> None:
    # the claim statement is fenced by itself (on PostgreSQL it commits on its own), not only
    # the attempts written after it
    setup(engine)
    token, _ = start(engine)
    c = campaign(engine)
    with engine.begin() as conn:
        assert claim_mod.claim_in(conn, c, "w1", 5, WED_10, LEASE, token=token + 1) == []
        assert claim_mod.claim_in(conn, c, "w1", 5, WED_10 + LEASE + dt.timedelta(seconds=1), LEASE, token=token) == []
        assert len(claim_mod.claim_in(conn, c, "w1", 5, WED_10, LEASE, token=token)) == 1


def test_a_contact_claimed_for_a_seat_not_held_is_let_go_at_once(engine) -> None:
    setup(engine)
    token, seats = start(engine)
    assert claim(engine, "w1", token, ["602"]) == []
    with Session(engine) as s:
        [contact] = s.scalars(select(Contact)).all()
        assert (contact.claimed_by, contact.lease_until) == (None, None)


def _new_life(engine) -> None:
    leases.register_worker(engine, "w1", WED_10, LEASE, pid=101, pid_alive=dead, host="h")


def _lapse(engine) -> None:  # as if the renewals had stopped long ago
    from dialer.store.models import Worker

    with Session(engine) as s, s.begin():
        s.get(Worker, "w1").lease_until = WED_10 - dt.timedelta(seconds=1)


@pytest.mark.parametrize(("meanwhile", "error"), [(_new_life, LeaseLost), (_lapse, leases.LeaseLapsed)])
def test_a_lease_lost_between_the_claim_and_its_attempts_writes_no_attempt(engine, monkeypatch, meanwhile,
                                                                          error) -> None:
    # on PostgreSQL the claim and the attempts commit apart: each is fenced by itself
    if engine.dialect.name != "postgresql":
        pytest.skip("on SQLite the claim and its attempts are one transaction")
    setup(engine)
    token, seats = start(engine)
    real = claim_mod.claim_in

    def then_lost(*args, **kw):
        got = real(*args, **kw)
        meanwhile(engine)
        return got

    monkeypatch.setattr(claim_mod, "claim_in", then_lost)
    with pytest.raises(error):
        claim(engine, "w1", token, seats)
    with Session(engine) as s:
        assert s.scalars(select(Attempt)).all() == []
        assert s.scalars(select(Contact.claimed_by)).all() == [None]  # let go at once


def test_a_contact_taken_by_another_worker_between_the_claim_and_its_attempts_is_not_dialled(engine,
                                                                                           monkeypatch) -> None:
    # w1's claim commits; w1 stalls past its contact lease before writing the attempt; w2 claims
    # the contact and writes its own. w1's attempt must not be written: two calls at once
    if engine.dialect.name != "postgresql":
        pytest.skip("on SQLite the claim and its attempts are one transaction")
    setup(engine)
    token, seats = start(engine)
    later = WED_10 + LEASE + dt.timedelta(seconds=1)
    real = claim_mod.claim_in
    taken = []

    def then_taken(*args, **kw):
        got = real(*args, **kw)
        monkeypatch.setattr(claim_mod, "claim_in", real)
        leases.renew(engine, "w1", token, later - dt.timedelta(seconds=1), LEASE)  # w1 keeps its seat
        t2, _ = leases.register_worker(engine, "w2", later, LEASE, pid=200, pid_alive=dead, host="h")
        held = [r.extension for r in leases.lease_seats(engine, "w2", t2, ["kefu"], later, LEASE)]
        taken.extend(claim_mod.claim_for_queues(engine, "w2", t2, [([campaign(engine)], held)], later, LEASE))
        return got

    monkeypatch.setattr(claim_mod, "claim_in", then_taken)
    assert claim(engine, "w1", token, seats) == []
    assert [st.seat for _, st in taken] == ["602"]
    with Session(engine) as s:
        assert [(a.worker_id, a.seat) for a in s.scalars(select(Attempt))] == [("w2", "602")]


def test_the_database_refuses_a_second_open_attempt_of_a_contact(engine) -> None:
    from sqlalchemy.exc import IntegrityError

    setup(engine)
    token, seats = start(engine)
    [(_, st)] = claim(engine, "w1", token, seats)
    with pytest.raises(IntegrityError), Session(engine) as s, s.begin():
        s.add(Attempt(campaign_id=1, contact_id=st.contact.id, attempt_no=2, seat="602"))


def test_a_lapsed_seat_passes_on_with_its_call(engine) -> None:
    setup(engine)
    t1, seats = start(engine)
    [(_, st)] = claim(engine, "w1", t1, seats)
    later = WED_10 + LEASE + dt.timedelta(seconds=1)
    t2, _ = leases.register_worker(engine, "w2", later, LEASE, pid=200, pid_alive=dead, host="h")
    assert leases.adopt_seat_attempts(engine, "w2", t2, "601", later) == []  # not its seat yet
    held = leases.lease_seats(engine, "w2", t2, ["kefu"], later, LEASE)
    assert "601" in [r.extension for r in held]
    [orphan] = leases.adopt_seat_attempts(engine, "w2", t2, "601", later)
    assert orphan.attempt_id == st.attempt_id
    assert db.finish_attempt(engine, t1, st.attempt_id, st.contact.id, end(), retry_for(engine, "answered")) is False
    assert leases.renew(engine, "w1", t1, later, LEASE) == set()  # w1 holds no seat now


def test_a_live_holders_calls_are_not_adopted(engine) -> None:
    setup(engine)
    t1, seats = start(engine)
    [(_, st)] = claim(engine, "w1", t1, seats)
    t2, _ = leases.register_worker(engine, "w2", WED_10, LEASE, pid=200, pid_alive=dead, host="h")
    with Session(engine) as s, s.begin():  # the seat alone lapsed (w1 renews its own lease)
        from dialer.store.models import Agent

        s.scalar(select(Agent).where(Agent.extension == "601")).lease_until = WED_10 - dt.timedelta(seconds=1)
    assert "601" in [r.extension for r in leases.lease_seats(engine, "w2", t2, ["kefu"], WED_10, LEASE)]
    assert leases.adopt_seat_attempts(engine, "w2", t2, "601", WED_10) == []


@pytest.mark.parametrize(("mode", "milestones", "outcome", "status", "attempts"), [
    ("progressive", {"dialled_at": 1, "ringing_at": 2, "answered_at": 3}, "answered", "done", 1),
    ("progressive", {"dialled_at": 1, "ringing_at": 2}, "interrupted", "pending", 0),
    ("progressive", {}, "interrupted", "pending", 0),
    ("predictive", {"dialled_at": 1, "ringing_at": 2, "answered_at": 3}, "abandoned", "pending", 1),
    ("predictive", {"dialled_at": 1, "answered_at": 3, "bridged_at": 4}, "answered", "done", 1),
])
def test_what_no_worker_follows_is_closed_by_the_campaigns_rules(engine, mode, milestones, outcome, status,
                                                                attempts) -> None:
    setup(engine, mode=mode)
    token, seats = start(engine)
    [(_, st)] = claim(engine, "w1", token, seats)
    values = {k: WED_10 + dt.timedelta(seconds=v) for k, v in milestones.items()}
    if values:
        assert db.write_milestone(engine, token, st.attempt_id, values)
    orphan_after = dt.timedelta(minutes=10)
    assert leases.reconcile_dead(engine, "w2", WED_10 + LEASE, orphan_after) == {}  # not yet gone
    later = WED_10 + LEASE + orphan_after + dt.timedelta(seconds=1)
    assert leases.reconcile_dead(engine, "w2", later, orphan_after) == {outcome: 1}
    with Session(engine) as s:
        a = s.get(Attempt, st.attempt_id)
        c = s.get(Contact, st.contact.id)
    assert a.outcome == outcome and a.ended_at == later
    assert (c.status, c.attempts, c.last_outcome) == (status, attempts, outcome)
    if outcome == "answered":
        assert a.talk_seconds is None and "talk time unknown" in a.detail
    if outcome == "interrupted":
        assert c.free_misses == 1 and c.next_attempt_at == later + dt.timedelta(seconds=300)
    if outcome == "abandoned":  # the 72-hour rule, from the same policy the recorder uses
        assert c.next_attempt_at >= later + dt.timedelta(hours=72)
    assert leases.reconcile_dead(engine, "w2", later, orphan_after) == {}  # once


def test_reconciliation_respects_max_attempts_and_the_window(engine) -> None:
    setup(engine, window="09:00-20:00")
    token, seats = start(engine)
    [(_, st)] = claim(engine, "w1", token, seats)
    with Session(engine) as s, s.begin():  # three free misses already: this one spends an attempt
        c = s.get(Contact, st.contact.id)
        c.free_misses, c.attempts = 3, 2
    late = dt.datetime(2026, 11, 25, 13, 30, tzinfo=UTC)  # 21:30 in Beijing: the window is shut
    assert leases.reconcile_dead(engine, "w2", late, dt.timedelta(minutes=10)) == {"interrupted": 1}
    with Session(engine) as s:
        c = s.get(Contact, st.contact.id)
    assert (c.status, c.attempts) == ("exhausted", 3)


def test_a_closed_call_is_due_again_when_the_window_opens(engine) -> None:
    setup(engine, window="09:00-20:00")
    token, seats = start(engine)
    [(_, st)] = claim(engine, "w1", token, seats)
    late = dt.datetime(2026, 11, 25, 13, 30, tzinfo=UTC)  # 21:30 in Beijing: the window is shut
    assert leases.reconcile_dead(engine, "w2", late, dt.timedelta(minutes=10)) == {"interrupted": 1}
    with Session(engine) as s:
        c = s.get(Contact, st.contact.id)
    assert c.status == "pending" and c.next_attempt_at == dt.datetime(2026, 11, 26, 1, 0, tzinfo=UTC)  # 09:00


def test_attempts_of_a_worker_with_no_row_are_closed(engine) -> None:
    """A worker that stopped with a call it could not close (its row gone) leaves nothing open
    for ever: after `orphan_after` the reconciler closes it by the campaign's rules."""
    setup(engine)
    token, seats = start(engine)
    [(_, st)] = claim(engine, "w1", token, seats)
    with Session(engine) as s, s.begin():
        from dialer.store.models import Worker

        s.delete(s.get(Worker, "w1"))
    orphan_after = dt.timedelta(minutes=10)
    assert leases.reconcile_dead(engine, "w2", WED_10 + dt.timedelta(minutes=5), orphan_after) == {}
    assert leases.reconcile_dead(engine, "w2", WED_10 + dt.timedelta(minutes=11), orphan_after) == {"interrupted": 1}
