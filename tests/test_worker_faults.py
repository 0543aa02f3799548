"""The worker through database faults: PostgreSQL behind a TCP proxy that stalls (no error, no
reset: the worst case for a client). Calls up when the database goes away are followed and their
outcomes written once it is back, no call is placed while it is away, and dialling resumes."""

from __future__ import annotations

import asyncio
import time

import pytest

from dialer.clock import Clock
from dialer.metrics import serve_metrics
from dialer.sim.stall import StallProxy
from dialer.store.engine import make_engine
from dialer.worker import Worker, WorkerOptions
from dialer.worker.options import MIN_LEASE_REAL
from tests.test_inbox_metrics import get
from tests.test_worker_e2e import (
    SCALE, WED_10, attempts_by_phone, contacts, fast_backoff, setup_db, start_sim,
)

NUMBERS = [f"1391234{i:04d}" for i in range(6)]


async def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_database_stall_loses_no_outcome_and_places_no_call(engine, db_url) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the stall goes through a TCP proxy in front of PostgreSQL")
    setup_db(engine, NUMBERS, ["601", "602"])
    talk = 2.0 / SCALE  # 2 real seconds: the calls end while the database is away
    sim = await start_sim({"customers": [{"number": n, "outcome": "answer", "ring": 2, "talk": talk} for n in NUMBERS],
                           "agents": [{"extension": e, "pickup": 0.5, "wrap_up": 2} for e in ("601", "602")]})
    host, port = engine.url.host, engine.url.port or 5432
    with StallProxy(host, port) as proxy:
        worker_engine = make_engine(proxy.url_for(db_url), statement_timeout_ms=15_000)
        worker = Worker(worker_engine, WorkerOptions(cti_url=sim.url, campaigns=("c",), worker_id="w1",
                                                     until_done=True, clock=Clock(scale=SCALE, origin=WED_10),
                                                     cti_heartbeat=0, backoff=fast_backoff, drain_timeout=2.0),
                        handle_signals=False)
        server = await serve_metrics(worker, 0)
        health = server.sockets[0].getsockname()[1]
        try:
            task = asyncio.create_task(worker.run())
            await wait_for(lambda: sum(1 for s in sim.by_ext.values() if s.call is not None
                                       and s.call.phase == "talking") == 2, 20, "two calls talking")
            assert (await get(health, "/healthz"))[::2] == (200, "ok\n")
            up = {c.callid for c in sim.calls.values()}
            proxy.stall()
            stalled_at = time.monotonic()
            outage = 2 * MIN_LEASE_REAL  # two whole leases
            await asyncio.sleep(outage)
            # the calls that were up ended during the outage; nothing new was dialled
            assert all(r.callid in up for r in sim.call_log) and {r.callid for r in sim.call_log} == up
            assert not sim.calls, "a call was placed while the database was away"
            status, _, body = await get(health, "/healthz")
            assert status == 503 and body.startswith("database unavailable for "), body
            proxy.resume()
            resumed_at = time.monotonic()
            await wait_for(lambda: len(sim.call_log) > 2 or bool(sim.calls), 10, "a dial after the outage")
            first_dial = time.monotonic() - resumed_at
            assert (await get(health, "/healthz"))[::2] == (200, "ok\n")
            await asyncio.wait_for(task, 60)
        finally:
            server.close()
            worker_engine.dispose()
            await sim.stop()
    assert first_dial < 5.0, first_dial
    assert stalled_at < resumed_at
    got = attempts_by_phone(engine)
    assert {p: [a.outcome for a in rows] for p, rows in got.items()} == {f"+86{n}": ["answered"] for n in NUMBERS}
    assert all(a.talk_seconds and a.talk_seconds > 300 for rows in got.values() for a in rows)
    assert {(c.status, c.attempts) for c in contacts(engine).values()} == {("done", 1)}
    assert len(sim.call_log) == len(NUMBERS)  # nobody was called twice
    assert worker.stats.not_written == 0 and worker.outbox.written == len(NUMBERS)


async def test_a_worker_that_cannot_renew_stops_dialling_by_itself(engine, db_url) -> None:
    """Its lease renewal blocked (the worker's row locked) while claims still go through: the
    worker stops placing calls half a lease after its last renewal — before the lease runs out
    and anyone may take its work — and dials again once it renews."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a row lock that blocks the renewal alone needs PostgreSQL's row locks")
    import threading

    from sqlalchemy import text

    numbers = [f"1391234{i:04d}" for i in range(200)]
    setup_db(engine, numbers, ["601", "602"])
    sim = await start_sim({"customers": [{"number": n, "outcome": "answer", "ring": 2, "talk": 20} for n in numbers],
                           "agents": [{"extension": e, "pickup": 0.5, "wrap_up": 0} for e in ("601", "602")]})
    lease_real = 10.0
    hold = threading.Event()
    locked = threading.Event()

    def lock_row() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT id FROM workers WHERE id = 'w1' FOR UPDATE"))
            locked.set()
            hold.wait(60)
            conn.rollback()

    locker = threading.Thread(target=lock_row)
    worker = Worker(engine, WorkerOptions(cti_url=sim.url, campaigns=("c",), worker_id="w1", lease=lease_real / SCALE,
                                          clock=Clock(scale=SCALE, origin=WED_10), cti_heartbeat=0,
                                          backoff=fast_backoff, drain_timeout=2.0), handle_signals=False)
    try:
        server = await serve_metrics(worker, 0)
        port = server.sockets[0].getsockname()[1]
        task = asyncio.create_task(worker.run())
        await wait_for(lambda: len(sim.call_log) >= 4, 20, "calls under way")
        assert (await get(port, "/healthz"))[::2] == (200, "ok\n")
        locker.start()
        await asyncio.to_thread(locked.wait, 10)
        t0 = sim.now()
        await asyncio.sleep(lease_real * 0.9)  # past half the lease, not yet the whole lease
        t_end = sim.now()
        status, _, body = await get(port, "/healthz")  # the renewal timed out: no lease, no database
        assert status == 503 and body.startswith(("lease not renewed", "database unavailable")), body
        hold.set()
        await asyncio.to_thread(locker.join, 10)
        released = sim.now()
        await wait_for(lambda: any(r.created > released for r in sim.call_log) or
                       any(c.created > released for c in sim.calls.values()), 15, "dialling after the renewal")
        assert (await get(port, "/healthz"))[::2] == (200, "ok\n")
        worker.request_stop()
        await asyncio.wait_for(task, 30)
        server.close()
    finally:
        hold.set()
        await sim.stop()
    created = sorted([r.created for r in sim.call_log])
    # half a lease after the last renewal (at most a quarter lease before the lock), plus a second
    quiet_from = t0 + lease_real / 2 + 1.0
    late = [t - t0 for t in created if quiet_from < t < t_end]
    assert late == [], f"dials at {late} s into a blocked renewal"
