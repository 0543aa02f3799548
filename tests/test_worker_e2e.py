"""The worker against the simulator over real sockets, on SQLite and PostgreSQL, with scripted
customers whose every fate is known."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.clock import Clock
from dialer.cti import protocol as p
from dialer.sim import Simulator
from dialer.sim.scenario import parse_scenario
from dialer.store import repo
from dialer.store.models import Attempt, Contact
from dialer.worker import Worker, WorkerOptions

SCALE = 0.005
WED_10 = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.timezone.utc)  # Wednesday 10:00 in Beijing
WED_22 = dt.datetime(2026, 11, 25, 14, 0, tzinfo=dt.timezone.utc)
RETRY = ["no_answer=120", "busy=60", "failed=90"]


def fast_backoff():
    return itertools.repeat(0.02)


async def start_sim(scenario: dict, scale: float = SCALE) -> Simulator:
    sim = Simulator(parse_scenario({"time_scale": scale, **scenario}))
    await sim.start("127.0.0.1", 0)
    return sim


def setup_db(engine, contacts: list[str], agents: list[str], dnc: list[str] = (), **campaign) -> None:
    with Session(engine) as s, s.begin():
        c = repo.create_campaign(s, "c", queue="kefu", area_code="010", max_attempts=3, ring_timeout=20,
                                 wrap_up=5, retry=RETRY, **campaign)
        repo.set_campaign_status(s, "c", "resume")
        for i, phone in enumerate(contacts):
            from dialer.dialplan import parse_number

            info = parse_number(phone)
            s.add(Contact(campaign_id=c.id, phone=info.e164, kind=info.kind.value, name=f"客户{i}",
                          customer_id=f"K{i}", next_attempt_at=WED_10 - dt.timedelta(minutes=5)))
        repo.upsert_agents(s, [repo.AgentRow(f"1{ext}", f"坐席{ext}", ext, "kefu") for ext in agents])
        if dnc:
            repo.add_dnc(s, dnc, "投诉")


async def run_worker(engine, sim: Simulator, *, start=WED_10, until_done=True, seconds: float | None = None,
                     scale: float = SCALE, **opts) -> Worker:
    options = WorkerOptions(**{"cti_url": sim.url, "campaigns": ("c",), "worker_id": "w1", "until_done": until_done,
                               "clock": Clock(scale=scale, origin=start), "cti_heartbeat": 0, "backoff": fast_backoff,
                               "drain_timeout": 2.0, **opts})
    worker = Worker(engine, options, handle_signals=False)
    task = asyncio.create_task(worker.run())
    if seconds is not None:
        await asyncio.sleep(seconds)
        worker.request_stop()
    await asyncio.wait_for(task, 30)
    return worker


def attempts_by_phone(engine) -> dict[str, list[Attempt]]:
    with Session(engine) as s:
        rows = s.execute(select(Contact.phone, Attempt).join(Attempt, Attempt.contact_id == Contact.id)
                         .order_by(Attempt.id)).all()
    out: dict[str, list[Attempt]] = {}
    for phone, attempt in rows:
        out.setdefault(phone, []).append(attempt)
    return out


def contacts(engine) -> dict[str, Contact]:
    with Session(engine) as s:
        return {c.phone: c for c in s.scalars(select(Contact))}


SCRIPT = {
    "customers": [
        {"number": "13800138000", "outcome": "answer", "ring": 5, "talk": 30},  # Beijing mobile
        {"number": "13912345678", "outcome": ["no_answer", "busy", "answer"], "ring": 4, "talk": 20},  # Changzhou
        {"number": "075512345678", "outcome": "busy", "ring": 3},  # Shenzhen landline
        {"number": "17012345678", "outcome": "failed"},  # a mobile of unknown city
        {"number": "01062345678", "outcome": "answer", "ring": 2, "talk": 10},  # local landline
    ],
    "agents": [{"extension": "601", "pickup": 0.5, "wrap_up": 2}, {"extension": "602", "pickup": 0.5, "wrap_up": 2}],
}


@pytest.mark.parametrize("respond", ["all", "documented"])
async def test_scripted_list_every_fate_known(engine, respond) -> None:
    setup_db(engine, ["13800138000", "13912345678", "0755-12345678", "17012345678", "010-62345678", "13700000000"],
             ["601", "602"], dnc=["+8613700000000"])
    sim = await start_sim({**SCRIPT, "respond": respond, "hangup_callid": respond == "all"})
    try:
        await run_worker(engine, sim)
    finally:
        await sim.stop()
    got = attempts_by_phone(engine)
    outcomes = {phone: [a.outcome for a in rows] for phone, rows in got.items()}
    assert outcomes == {
        "+8613800138000": ["answered"],
        "+8613912345678": ["no_answer", "busy", "answered"],
        "+8675512345678": ["busy", "busy", "busy"],
        "+8617012345678": ["failed", "failed", "failed"],
        "+861062345678": ["answered"],
    }
    status = {phone: (c.status, c.attempts, c.last_outcome) for phone, c in contacts(engine).items()}
    assert status == {
        "+8613800138000": ("done", 1, "answered"),
        "+8613912345678": ("done", 3, "answered"),
        "+8675512345678": ("exhausted", 3, "busy"),
        "+8617012345678": ("exhausted", 3, "failed"),
        "+861062345678": ("done", 1, "answered"),
        "+8613700000000": ("pending", 0, None),  # on the do-not-call list: never dialled
    }
    # the dial strings, and what the strict trunk rang
    dial = {phone: {a.dial_string for a in rows} for phone, rows in got.items()}
    assert dial == {"+8613800138000": {"913800138000"}, "+8613912345678": {"9013912345678"},
                    "+8675512345678": {"9075512345678"}, "+8617012345678": {"9017012345678"},
                    "+861062345678": {"962345678"}}
    assert not [r for r in sim.call_log if r.end == "trunk_rejected"]
    assert sorted({r.e164 for r in sim.call_log}) == sorted(got)
    assert "+8613700000000" not in {r.e164 for r in sim.call_log}
    # retries wait their delay (simulated seconds) and stay inside the window
    b = got["+8613912345678"]
    gap1 = (b[1].created_at - b[0].ended_at).total_seconds()
    gap2 = (b[2].created_at - b[1].ended_at).total_seconds()
    assert 120 <= gap1 < 120 + 40 and 60 <= gap2 < 60 + 40, (gap1, gap2)
    # every timestamp of an answered call, the talk time and the attribution
    a = got["+8613800138000"][0]
    assert a.created_at <= a.dialled_at <= a.ringing_at <= a.answered_at <= a.ended_at
    assert a.talk_seconds == pytest.approx(30, abs=8) and (a.city, a.isp) == ("北京市", "中国移动")
    assert a.callid or respond == "documented"
    # a no_answer was hung up by us at the ring timeout (20 s, never below 15)
    assert b[0].ring_seconds == pytest.approx(20, abs=8)


async def test_closed_window_dials_nothing(engine) -> None:
    setup_db(engine, ["13800138000", "13912345678"], ["601"])
    sim = await start_sim(SCRIPT)
    try:
        worker = await run_worker(engine, sim, start=WED_22, until_done=False, seconds=0.6)
    finally:
        await sim.stop()
    assert sim.call_log == [] and worker.stats.dials == 0
    assert attempts_by_phone(engine) == {}


async def test_agent_who_never_answers_burns_no_contact(engine) -> None:
    setup_db(engine, ["13800138000", "13912345678", "075512345678", "01062345678"], ["601"])
    sim = await start_sim({**SCRIPT, "agents": [{"extension": "601", "answers": False}], "agent_ring_timeout": 60})
    try:
        worker = await run_worker(engine, sim, until_done=False, seconds=1.5, agent_leg_timeout=25)
    finally:
        await sim.stop()
    assert worker.stats.outcomes == {"agent_no_answer": 3}
    assert all(c.attempts == 0 and c.status == "pending" for c in contacts(engine).values())
    assert sim.call_log and all(r.end in ("agent_no_answer", "agent_hangup") for r in sim.call_log)
    assert sim.dial_counts == {}  # no customer was ever called


async def test_number_that_always_dies_before_ringing_reaches_a_final_status(engine) -> None:
    setup_db(engine, ["13800138000"], ["601", "602"])
    sim = await start_sim({**SCRIPT, "agents": [{"extension": "601", "answers": False},
                                                {"extension": "602", "answers": False}]})
    try:
        worker = await run_worker(engine, sim, agent_leg_timeout=10)
    finally:
        await sim.stop()
    c = contacts(engine)["+8613800138000"]
    assert (c.status, c.attempts) == ("exhausted", 3)
    assert worker.stats.outcomes == {"agent_no_answer": 6}  # 3 free misses, then 3 spent


async def test_unregistered_seat_dials_nothing(engine) -> None:
    setup_db(engine, ["13800138000"], ["601"])
    sim = await start_sim({**SCRIPT, "agents": [{"extension": "601", "registered": False}]})
    try:
        await run_worker(engine, sim, until_done=False, seconds=0.5)
    finally:
        await sim.stop()
    assert sim.call_log == [] and contacts(engine)["+8613800138000"].attempts == 0


@pytest.mark.parametrize("desk_phone", [True, False])
async def test_seat_lost_mid_call_is_followed_again_and_never_redialled(engine, desk_phone) -> None:
    """The agent's socket drops while the customer talks. On a desk phone the call goes on: the
    seat comes back, the new login shows the call, and the worker follows it to its end (talk
    time known). Where the call died with the socket, the worker sees an idle line on its
    return: the customer had talked, so the attempt is `answered` with the talk time unknown —
    never `interrupted` and dialled again."""
    setup_db(engine, ["13800138000"], ["601"])
    sim = await start_sim({**SCRIPT, "desk_phone": desk_phone,
                           "customers": [{"number": "13800138000", "outcome": "answer", "ring": 2, "talk": 60}]})

    def answer_recorded() -> bool:
        with Session(engine) as s:
            return s.scalar(select(Attempt.id).where(Attempt.answered_at.is_not(None))) is not None

    async def cut_when_talking() -> None:
        # talking at the server, and the worker has seen (and written) the answer: a drop before
        # that loses the answer event with the socket, and the worker rightly knows no answer
        while not (any(s.call is not None and s.call.phase == "talking" for s in sim.by_ext.values())
                   and await asyncio.to_thread(answer_recorded)):
            await asyncio.sleep(0.01)
        sim.drop("601")

    try:
        cutter = asyncio.create_task(cut_when_talking())
        worker = await run_worker(engine, sim)
        await cutter
    finally:
        await sim.stop()
    rows = attempts_by_phone(engine)["+8613800138000"]
    assert [a.outcome for a in rows] == ["answered"]
    assert len(sim.call_log) == 1 and sim.call_log[0].answered
    if desk_phone:
        assert rows[0].talk_seconds is not None and rows[0].talk_seconds > 30
        assert sim.call_log[0].end != "agent_logout"  # the call was not cut with the socket
    else:
        assert rows[0].talk_seconds is None and "talk time unknown" in rows[0].detail
    c = contacts(engine)["+8613800138000"]
    assert (c.status, c.attempts) == ("done", 1)
    assert worker.stats.outcomes == {"answered": 1}


async def test_scheduler_shutdown_before_a_job_starts_logs_no_error(caplog) -> None:
    """A periodic job the scheduler's shutdown cancels before it has started is a stop, not an
    "Error running job" with a CancelledError traceback (seen at every few worker stops)."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from dialer import worker

    ran = []

    async def job() -> None:
        ran.append(1)

    sched = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
    worker._quiet_scheduler_shutdown()  # what Worker.run does when it makes its scheduler
    sched.add_job(worker._quiet_on_shutdown(job), "interval", seconds=60,
                  next_run_time=dt.datetime.now(dt.timezone.utc))
    with caplog.at_level(logging.DEBUG, logger="apscheduler"):
        sched.start()  # submits the due job: a task not yet run
        sched.shutdown(wait=False)  # cancels it before its first step
        for _ in range(3):
            await asyncio.sleep(0)
    assert ran == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@contextlib.asynccontextmanager
async def worker_running(engine, scenario: dict, **opts):
    """A simulator and a worker running on it for the block (stopped after it)."""
    sim = await start_sim(scenario)
    options = WorkerOptions(**{"cti_url": sim.url, "campaigns": ("c",), "worker_id": "w1",
                               "clock": Clock(scale=SCALE, origin=WED_10), "cti_heartbeat": 0,
                               "backoff": fast_backoff, "drain_timeout": 2.0, **opts})
    worker = Worker(engine, options, handle_signals=False)
    task = asyncio.create_task(worker.run())
    try:
        yield sim, worker
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
        await sim.stop()


async def _until(check, what: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_the_state_refresh_asks_only_about_a_seat_in_limbo(engine) -> None:
    """The seats' own events keep their state: the worker asks the server which seats are idle
    only when one of them is in limbo (no call, no busy reason, not idle, not heard from for a
    refresh period), and a seat the answer shows idle is dialled."""
    setup_db(engine, ["13800138000"], ["601"])
    with Session(engine) as s, s.begin():  # due ten simulated minutes after the start
        s.query(Contact).update({Contact.next_attempt_at: WED_10 + dt.timedelta(minutes=10)})
    async with worker_running(engine, SCRIPT) as (sim, worker):
        await _until(lambda: "601" in worker.seats and worker.seats["601"].server_idle, "the seat to log in")
        # the seat's own status said idle: twenty refresh periods pass without a question
        await asyncio.sleep(SCALE * worker.opt.refresh_every * 20)
        assert sim.commands["getExtensionList"] == 0 and not sim.call_log
        # a status that says "in a call" with no call of ours: limbo, no dial when the contact is due
        sim.send_raw("601", p.encode(p.StatusChanged("已注册", "外呼通话", "已登录", "", "")))
        await _until(lambda: not worker.seats["601"].server_idle, "the seat to leave idle")
        await _until(lambda: sim.commands["getExtensionList"] >= 1, "the question about the seat")
        await _until(lambda: bool(sim.call_log), "the dial once the server said the seat is idle")
    assert worker.stats.dials == 1


async def test_a_campaign_paused_and_resumed_while_the_worker_runs(engine) -> None:
    """The worker looks at its campaigns every second and loads them again when a row changed."""
    setup_db(engine, ["13800138000", "13912345678", "075512345678", "01062345678"], ["601"])
    with Session(engine) as s, s.begin():
        repo.set_campaign_status(s, "c", "pause")
    async with worker_running(engine, SCRIPT) as (sim, worker):
        await _until(lambda: "601" in worker.seats and worker.seats["601"].server_idle, "the seat to log in")
        await asyncio.sleep(1.5)  # a reload or two: nothing to dial while paused
        assert worker.stats.dials == 0
        with Session(engine) as s, s.begin():
            repo.set_campaign_status(s, "c", "resume")
        await _until(lambda: worker.stats.dials >= 1, "a dial once resumed")
        with Session(engine) as s, s.begin():
            repo.set_campaign_status(s, "c", "pause")
        await _until(lambda: worker.campaigns[0].status == "paused", "the pause to be seen")
        dials = worker.stats.dials
        await asyncio.sleep(1.5)
        assert worker.stats.dials <= dials + 1  # (a claim already on its way may still dial)


async def test_claim_passes_in_flight_together_never_claim_one_seat_twice(engine) -> None:
    """Two claim passes may be in flight at once (a seat freed during a claim is claimed right
    behind it); a seat in the first is never in the second — the server's two idle events for one
    freeing (busy status, status changed) would otherwise claim it twice and waste a contact."""
    seats = [str(600 + i) for i in range(12)]
    setup_db(engine, [f"+86139{i:08d}" for i in range(400)], seats)
    sim = await start_sim({"agents": [{"extension": x, "pickup": 0.3, "wrap_up": 0} for x in seats]})
    try:
        worker = await run_worker(engine, sim, until_done=False, seconds=4.0)
    finally:
        await sim.stop()
    assert worker.stats.passes_overlapped > 0, "no two passes were in flight together: the test says nothing"
    with Session(engine) as s:
        wasted = s.scalars(select(Attempt.seat).where(Attempt.detail.like("%taken before the dial%"))).all()
    assert wasted == [] and worker.stats.dials > 20


async def test_a_claim_that_returns_after_the_stop_is_closed_undialled(engine, monkeypatch) -> None:
    """A claim still running when the worker is told to stop: its contacts are not dialled (the
    operator asked for no new calls) and their attempts are closed at once as a free miss that
    says so — never left open, never charged to the contact, never counted as a seat taken."""
    import threading

    from dialer.store import claim

    setup_db(engine, ["13800138000", "01062345678"], ["601", "602"])
    claimed, release = threading.Event(), threading.Event()
    real = claim.claim_for_queues

    def held(*args, **kwargs):
        started = real(*args, **kwargs)
        if started:
            claimed.set()
            release.wait(20)
        return started

    monkeypatch.setattr(claim, "claim_for_queues", held)
    async with worker_running(engine, SCRIPT) as (sim, worker):
        await _until(claimed.is_set, "a claim")
        worker.request_stop()
        await _until(lambda: worker.draining, "the worker to begin to stop")
        release.set()
    assert not sim.call_log
    with Session(engine) as s:
        rows = s.execute(select(Attempt.outcome, Attempt.detail, Attempt.ended_at.is_not(None))).all()
        contacts = s.scalars(select(Contact)).all()
    assert rows and set(rows) == {("interrupted", "the worker stopped before the dial", True)}
    assert [(c.status, c.attempts, c.claimed_by) for c in contacts] == [("pending", 0, None)] * 2


async def test_a_fault_in_one_dial_does_not_cost_the_others_of_its_claim(engine, monkeypatch, caplog) -> None:
    """One claim for two seats; something unforeseen fails while the first is dialled: the
    second is dialled all the same, the fault is logged with its seat, the attempt it cost is
    closed as a free miss, and the seat dials again."""
    from dialer.worker.calls import Calls

    setup_db(engine, ["13800138000", "01062345678"], ["601", "602"])
    real_arm, failed = Calls._arm, []

    def arm(self, run):
        if not failed:
            failed.append(run.info.extension)
            raise RuntimeError("a fault nobody foresaw")
        return real_arm(self, run)

    monkeypatch.setattr(Calls, "_arm", arm)
    with caplog.at_level(logging.ERROR, logger="dialer.worker.dispatch"):
        async with worker_running(engine, SCRIPT) as (sim, worker):
            await _until(lambda: bool(failed) and any(r.extension != failed[0] for r in sim.call_log),
                         "the other seat's call")
            await _until(lambda: any(r.extension == failed[0] for r in sim.call_log), "the faulty seat's next call")
    assert f"seat {failed[0]}: dialling attempt" in caplog.text
    with Session(engine) as s:
        lost = s.execute(select(Attempt.outcome, Attempt.detail).where(Attempt.callid == "")).all()
    assert lost == [("interrupted", "dial not sent: RuntimeError")]


async def test_the_worker_records_its_seats_states_and_status(engine) -> None:
    """Every seat's state changes are rows (a login session from +1 to -1, talking and wrap-up
    around each answered call), the status row says the worker stopped, and the agents report
    adds them up to what the attempts say."""
    from dialer.reports import report
    from dialer.store.models import SeatEvent, WorkerStatus

    setup_db(engine, ["13800138000", "13912345678", "0755-12345678", "17012345678", "010-62345678"], ["601", "602"])
    sim = await start_sim({**SCRIPT, "respond": "all", "hangup_callid": True})
    try:
        await run_worker(engine, sim)
    finally:
        await sim.stop()
    with Session(engine) as s:
        events = s.scalars(select(SeatEvent).order_by(SeatEvent.id)).all()
        answered = s.scalars(select(Attempt).where(Attempt.outcome == "answered")).all()
        row = s.get(WorkerStatus, "w1")
    by_seat: dict[str, list[SeatEvent]] = {}
    for e in events:
        by_seat.setdefault(e.extension, []).append(e)
    assert set(by_seat) == {"601", "602"}
    for ext, rows in by_seat.items():
        assert rows[0].session == 1 and rows[-1].session == -1 and rows[-1].state == "logged_out"
        assert sum(r.session for r in rows) == 0
        assert all(a.at <= b.at for a, b in zip(rows, rows[1:]))
        states = [r.state for r in rows]
        assert all(x != y for x, y in zip(states, states[1:])), states  # a row per change
        talked = [a for a in answered if a.seat == ext]
        assert states.count("talking") == len(talked)
    assert row is not None and row.stopped and {s["extension"] for s in row.body["seats"]} == {"601", "602"}
    rows = {r["agent"]: r for r in report(engine, "agents", campaign="c", now=WED_22)}
    for ext in ("601", "602"):
        talked = [a for a in answered if a.seat == ext]
        assert rows[ext]["calls"] == len(talked)
        assert rows[ext]["talk_seconds"] == pytest.approx(sum(a.talk_seconds for a in talked), abs=3 * len(talked) + 1)
        assert rows[ext]["logged_in_seconds"] >= rows[ext]["talk_seconds"] + rows[ext]["wrap_seconds"]
        assert rows[ext]["wrap_seconds"] > 0
