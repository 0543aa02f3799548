"""Workers as real processes: killed mid-call and restarted, and two at once on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.sim import Simulator
from dialer.sim.scenario import parse_scenario
from dialer.store.models import Attempt, Contact
from tests.test_worker_e2e import SCALE, WED_10, setup_db

NUMBERS = [f"1391234{i:04d}" for i in range(24)]


SPAWNED: list[asyncio.subprocess.Process] = []


@pytest.fixture(autouse=True)
async def _no_worker_left_behind():
    """A failed test leaves no worker process running (it would dial on into the next test)."""
    yield
    while SPAWNED:
        proc = SPAWNED.pop()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def spawn(db_url: str, sim: Simulator, worker_id: str, epoch: float, log: Path, *extra: str):
    proc = await _spawn(db_url, sim, worker_id, epoch, log, *extra)
    SPAWNED.append(proc)
    return proc


async def _spawn(db_url: str, sim: Simulator, worker_id: str, epoch: float, log: Path, *extra: str):
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialer", "-v", "--db", db_url, "worker", "--cti", sim.url, "--campaign", "c",
        "--worker-id", worker_id, "--time-scale", str(SCALE), "--clock-epoch", repr(epoch),
        "--clock-start", WED_10.isoformat(), "--lease", "20", "--drain-timeout", "2", *extra,
        stdout=asyncio.subprocess.DEVNULL, stderr=log.open("w"), env={**os.environ, "PYTHONUNBUFFERED": "1"})


def attempts(engine) -> list[tuple[str, Attempt]]:
    with Session(engine) as s:
        return list(s.execute(select(Contact.phone, Attempt).join(Attempt, Attempt.contact_id == Contact.id)
                              .order_by(Attempt.id)).all())


def assert_never_two_calls_at_once(rows: list[tuple[str, Attempt]], sim: Simulator) -> None:
    by_phone: dict[str, list[Attempt]] = {}
    for phone, a in rows:
        by_phone.setdefault(phone, []).append(a)
    for phone, items in by_phone.items():
        items.sort(key=lambda a: a.created_at)
        for a, b in zip(items, items[1:]):
            assert a.ended_at is not None and a.ended_at <= b.created_at, (phone, a.id, b.id)
    calls: dict[str, list[tuple[float, float]]] = {}
    for r in sim.call_log:
        calls.setdefault(r.e164, []).append((r.created, r.ended))
    for e164, spans in calls.items():
        spans.sort()
        for (s1, e1), (s2, _) in zip(spans, spans[1:]):
            assert e1 <= s2 + 1e-3, f"{e164} was in two calls at once"


def audit_run(engine, sim: Simulator) -> dict:
    """The chaos benchmark's audit (benchmarks/chaos_audit.py): the simulator's calls against the
    database."""
    import sys

    bench = str(Path(__file__).resolve().parent.parent / "benchmarks")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    from chaos_audit import DbAttempt, DbContact, SimCall, audit

    calls = [SimCall(r.callid, r.e164, r.created, r.ended, r.answered, r.end) for r in sim.call_log]
    rows = attempts(engine)
    with Session(engine) as s:
        people = [DbContact(c.phone, c.status, c.attempts) for c in s.scalars(select(Contact))]
    return audit(calls, [DbAttempt(a.id, phone, a.callid, a.outcome, a.ended_at is not None, a.worker_id)
                         for phone, a in rows], people, 3)


async def test_sigkill_and_restart_under_the_same_id_follows_its_calls(engine, db_url, tmp_path) -> None:
    """Killed mid-call and restarted at once under the same id (what systemd's Restart=always
    does): the new life takes its seats back at once — before the old lease could lapse — and
    follows the calls that are still up to their end; every answered call is recorded answered,
    with its talk time, and nobody who answered is called again."""
    setup_db(engine, NUMBERS, ["601", "602", "603", "604"])
    talk = 3.0 / SCALE  # 3 real seconds: the calls outlast the restart
    sim = Simulator(parse_scenario({"time_scale": SCALE, "workload": {
        "p_live": 1.0, "p_machine": 0, "p_busy": 0, "live_ring": [2, 4], "talk_mean": talk, "talk_sd": 10}}))
    await sim.start("127.0.0.1", 0)
    epoch = time.time()
    lease = "4000"  # 20 real seconds: a restart that had to wait for it would show
    try:
        first = await spawn(db_url, sim, "w1", epoch, tmp_path / "w1.log", "--lease", lease)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if sum(1 for s in sim.by_ext.values() if s.call is not None and s.call.phase == "talking") >= 2:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the first worker never got going: " + (tmp_path / "w1.log").read_text())
        first.send_signal(signal.SIGKILL)
        await first.wait()
        killed = sim.now()
        up_at_kill = {c.callid for c in sim.calls.values()}
        second = await spawn(db_url, sim, "w1", epoch, tmp_path / "w1b.log", "--lease", lease, "--until-done")
        deadline = time.monotonic() + 15
        while not any(r.created > killed for r in sim.call_log) and not any(
                c.created > killed for c in sim.calls.values()):
            assert time.monotonic() < deadline, "no dial within 15 s of the restart"
            await asyncio.sleep(0.02)
        restarted_after = sim.now() - killed
        assert await asyncio.wait_for(second.wait(), 90) == 0, (tmp_path / "w1b.log").read_text()
    finally:
        await sim.stop()
    assert restarted_after < 15.0  # well inside the 20 s lease: its own seats, at once
    result = audit_run(engine, sim)
    assert result["double_dials"] == 0 and result["open_attempts"] == 0, str(result)
    assert result["answered_unrecorded"] == 0 and result["answered_otherwise"] == 0, str(result)
    assert result["redialled_after_answer"] == 0 and result["inconsistent_contacts"] == 0, result
    followed = [a for _, a in attempts(engine) if a.callid in up_at_kill]
    assert followed and all(a.outcome == "answered" and a.talk_seconds for a in followed), followed
    with Session(engine) as s:
        assert {(c.status, c.attempts) for c in s.scalars(select(Contact))} == {("done", 1)}


async def test_sigkill_then_another_worker_id_loses_nothing_and_never_dials_twice_at_once(engine, db_url,
                                                                                           tmp_path) -> None:
    """Another worker id takes the dead worker's seats once their lease lapses, and closes what
    it finds on them by the campaign's rules."""
    setup_db(engine, NUMBERS, ["601", "602", "603", "604"])
    sim = Simulator(parse_scenario({"time_scale": SCALE, "workload": {
        "p_live": 1.0, "p_machine": 0, "p_busy": 0, "live_ring": [2, 4], "talk_mean": 60, "talk_sd": 10}}))
    await sim.start("127.0.0.1", 0)
    epoch = time.time()
    try:
        first = await spawn(db_url, sim, "w1", epoch, tmp_path / "w1.log")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait for calls in progress and some finished
            talking = sum(1 for s in sim.by_ext.values() if s.call is not None and s.call.phase == "talking")
            if talking >= 2 and len(sim.call_log) >= 3:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the first worker never got going: " + (tmp_path / "w1.log").read_text())
        first.send_signal(signal.SIGKILL)
        await first.wait()
        with Session(engine) as s:
            open_before = s.scalar(select(Attempt.id).where(Attempt.ended_at.is_(None)).limit(1))
        assert open_before is not None  # calls really were cut in the middle
        second = await spawn(db_url, sim, "w2", epoch, tmp_path / "w2.log", "--until-done")
        assert await asyncio.wait_for(second.wait(), 60) == 0, (tmp_path / "w2.log").read_text()
    finally:
        await sim.stop()
    rows = attempts(engine)
    assert_never_two_calls_at_once(rows, sim)
    outcomes: dict[str, list[str]] = {}
    for phone, a in rows:
        outcomes.setdefault(phone, []).append(a.outcome)
    assert all(a.ended_at is not None for _, a in rows)
    for phone, seq in outcomes.items():  # every number answered exactly once, after any interruptions
        assert seq[-1] == "answered" and seq.count("answered") == 1 and set(seq[:-1]) <= {"interrupted"}, (phone, seq)
    with Session(engine) as s:
        statuses = {c.phone: (c.status, c.attempts) for c in s.scalars(select(Contact))}
    assert len(statuses) == len(NUMBERS) and set(statuses.values()) == {("done", 1)}


async def test_two_workers_share_one_list_on_postgresql(engine, db_url, tmp_path) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("several workers share a list through PostgreSQL; SQLite is for one machine")
    setup_db(engine, NUMBERS, ["601", "602", "603", "604"])
    customers = [{"number": n, "outcome": ["no_answer", "answer"] if i % 2 else "answer", "ring": 2, "talk": 20}
                 for i, n in enumerate(NUMBERS)]
    sim = Simulator(parse_scenario({"time_scale": SCALE, "customers": customers}))
    await sim.start("127.0.0.1", 0)
    epoch = time.time()
    try:
        workers = [await spawn(db_url, sim, f"w{i}", epoch, tmp_path / f"w{i}.log", "--until-done",
                               "--max-seats", "2") for i in (1, 2)]
        codes = await asyncio.wait_for(asyncio.gather(*(w.wait() for w in workers)), 60)
    finally:
        await sim.stop()
    assert codes == [0, 0], [(tmp_path / f"w{i}.log").read_text()[-2000:] for i in (1, 2)]
    rows = attempts(engine)
    assert_never_two_calls_at_once(rows, sim)
    seen: dict[str, list[str]] = {}
    for phone, a in rows:
        seen.setdefault(phone, []).append(a.outcome)
    expected = {f"+86{n}": (["no_answer", "answered"] if i % 2 else ["answered"]) for i, n in enumerate(NUMBERS)}
    assert seen == expected
    assert {a.worker_id for _, a in rows} == {"w1", "w2"}  # both workers dialled
    assert {a.seat for _, a in rows if a.worker_id == "w1"}.isdisjoint({a.seat for _, a in rows if a.worker_id == "w2"})
