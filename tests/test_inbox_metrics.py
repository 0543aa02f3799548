"""Scheduled list loading (the inbox), and the metrics and health endpoint (dialer/metrics.py)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dialer.clock import Clock
from dialer.inbox import scan_inbox
from dialer.metrics import render, serve_metrics
from dialer.store import repo
from dialer.store.models import SEAT_STATES, Contact
from dialer.worker import Worker, WorkerOptions
from tests.test_worker_e2e import SCALE, WED_10, fast_backoff, setup_db, start_sim


def test_inbox_imports_each_file_once(engine, tmp_path) -> None:
    with Session(engine) as s, s.begin():
        repo.create_campaign(s, "c")
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "a.csv").write_text("phone,name\n13800138000,甲\nabc,乙\n", encoding="utf-8")
    (folder / "b.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    (folder / "c.csv.importing-other").write_text("phone\n13900000000\n", encoding="utf-8")  # another worker's
    done = scan_inbox(engine, "c", folder, "w1")
    assert [p.name for p in done] == ["a.csv"]
    assert scan_inbox(engine, "c", folder, "w2") == []  # nothing left to take
    processed = folder / "processed"
    assert json.loads((processed / "a.summary.json").read_text())["imported"] == 1
    assert "abc" in (processed / "a.rejects.csv").read_text(encoding="utf-8-sig")
    assert "no phone column" in (folder / "failed" / "b.csv.error.txt").read_text()
    assert (folder / "c.csv.importing-other").exists()
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 1



# -- the metrics and health endpoint -------------------------------------------------------------

def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) → value, as Prometheus' own parser reads the page."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


async def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    assert int(headers["content-length"]) == len(body) or method == "HEAD"
    return int(status_line.split()[1]), headers, body.decode()


@pytest.fixture
async def idle_worker():
    """A worker that is not run: its fields are set by hand."""
    worker = Worker(None, WorkerOptions(worker_id="w-idle"), handle_signals=False)
    yield worker
    worker.lanes.shutdown(1.0)


async def test_every_metric_has_help(idle_worker) -> None:
    idle_worker.stats.dialled("c")
    text = render(idle_worker)
    typed = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    helped = {line.split()[2]: line.split(" ", 3)[3] for line in text.splitlines() if line.startswith("# HELP ")}
    assert typed and typed == set(helped), typed ^ set(helped)
    assert all(len(doc) > 10 for doc in helped.values())
    families = list(text_string_to_metric_families(text))
    assert all(f.documentation for f in families)
    assert {"dialer_dials", "dialer_claim_seconds", "dialer_outbox_write_seconds",
            "process_cpu_seconds"} <= {f.name for f in families}


async def test_dials_and_outcomes_by_campaign(idle_worker) -> None:
    stats = idle_worker.stats
    for name, outcome in [("回访", "answered"), ("回访", "no_answer"), ("回访", "no_answer"), ('a"b\\c', "busy")]:
        stats.dialled(name)
        stats.recorded(name, outcome)
    stats.dialled("回访")
    text = render(idle_worker)
    assert value(text, "dialer_dials_total", campaign="回访") == 4
    assert value(text, "dialer_dials_total", campaign='a"b\\c') == 1  # escaped, and read back whole
    assert value(text, "dialer_outcomes_total", campaign="回访", outcome="no_answer") == 2
    assert value(text, "dialer_outcomes_total", campaign="回访", outcome="answered") == 1
    assert value(text, "dialer_outcomes_total", campaign='a"b\\c', outcome="busy") == 1
    assert ("dialer_outcomes_total", (("campaign", 'a"b\\c'), ("outcome", "answered"))) not in samples(text)
    assert stats.dials == 5 and stats.outcomes == {"answered": 1, "no_answer": 2, "busy": 1}


async def test_each_worker_has_its_own_registry(idle_worker) -> None:
    other = Worker(None, WorkerOptions(worker_id="w-other"), handle_signals=False)
    try:
        idle_worker.stats.dialled("c")
        for _ in range(3):
            other.stats.dialled("c")
        assert value(render(idle_worker), "dialer_dials_total", campaign="c") == 1
        assert value(render(other), "dialer_dials_total", campaign="c") == 3
        assert "process_cpu_seconds_total" in render(other)
    finally:
        other.lanes.shutdown(1.0)


async def test_seats_by_queue_role_and_state_and_the_pacing_level(idle_worker) -> None:
    from dialer.cti.client import Seat
    from dialer.outcomes import CallTracker
    from dialer.store.repo import AgentRow
    from dialer.worker.state import ActiveCall, PredictiveQueue, SeatRun

    w = idle_worker
    now = w.clock.now()

    def seat(ext: str, role: str = "agent", **fields) -> SeatRun:
        run = SeatRun(AgentRow(f"1{ext}", ext, ext, "waihu" if role == "port" else "kefu", role=role), Seat(),
                      serves="kefu", **fields)
        w.seats[ext] = run
        return run

    def call() -> ActiveCall:
        return ActiveCall(1, None, None, CallTracker(started=now))

    seat("601", logged_in=True)
    seat("602", logged_in=True, busy="午饭")
    seat("603", released=True)
    seat("604")  # its socket lost
    seat("801", "port", logged_in=True, call=call())
    seat("802", "port", logged_in=True)
    w.predictive["kefu"] = PredictiveQueue("kefu")
    w.predictive["kefu"].waiting.append(call())
    text = render(w)
    got = {(dict(k[1])["role"], dict(k[1])["state"]): v for k, v in samples(text).items()
           if k[0] == "dialer_seats" and dict(k[1])["queue"] == "kefu"}
    want = {**{("agent", s): 0 for s in SEAT_STATES}, **{("port", s): 0 for s in SEAT_STATES},
            ("agent", "ready"): 1, ("agent", "busy"): 1, ("agent", "logged_out"): 1, ("agent", "lost"): 1,
            ("port", "dialling"): 1, ("port", "ready"): 1}
    assert got == want
    assert value(text, "dialer_calls_in_flight") == 1
    assert value(text, "dialer_callers_waiting", queue="kefu") == 1
    assert value(text, "dialer_pacing_level", queue="kefu") == 1.0  # one call on a port per ready agent
    w.seats["601"].busy = "开会"
    assert ("dialer_pacing_level", (("queue", "kefu"),)) not in samples(render(w))  # no ready agent: none


async def test_latency_histograms_time_their_own_lanes(idle_worker) -> None:
    """The claim histogram times the dispatch lane's calls, the outbox one the outbox lane's
    (queueing included), and nothing else."""
    from dialer.metrics import metrics_of

    metrics_of(idle_worker)  # made before the calls, as `serve_metrics` is before the worker runs
    lanes = idle_worker.lanes
    await lanes.call("dispatch", lambda engine: time.sleep(0.03))
    await lanes.call("outbox", lambda engine: None)
    await lanes.call("outbox", lambda engine: None)
    for _ in range(3):
        await lanes.call("background", lambda engine: None)
    with pytest.raises(ZeroDivisionError):  # a failed call is timed too
        await lanes.call("dispatch", lambda engine: 1 / 0)
    text = render(idle_worker)
    assert value(text, "dialer_claim_seconds_count") == 2
    assert 0.03 <= value(text, "dialer_claim_seconds_sum") < 1
    assert value(text, "dialer_claim_seconds_bucket", le="0.025") <= 1  # the 30 ms one is above it
    assert value(text, "dialer_outbox_write_seconds_count") == 2


async def test_healthz_answers_200_only_with_the_lease_held_and_the_database_up(idle_worker) -> None:
    w = idle_worker
    loop = asyncio.get_running_loop()
    server = await serve_metrics(w, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await get(port, "/healthz") == (503, {"content-type": "text/plain; charset=utf-8",
                                                     "content-length": "13", "connection": "close"},
                                               "no lease yet\n")
        w._renewed_at = loop.time()  # just renewed
        status, _, body = await get(port, "/healthz")
        assert (status, body) == (200, "ok\n")
        w._db_down_since = loop.time() - 12
        status, _, body = await get(port, "/healthz")
        assert (status, body) == (503, "database unavailable for 12 s\n")
        w._db_down_since = None
        w._renewed_at = loop.time() - w.lease_real * 0.6  # past half a lease: it may not dial
        status, _, body = await get(port, "/healthz")
        assert status == 503 and body.startswith("lease not renewed for ")
        w._renewed_at = loop.time()
        w.lost_lease = True
        assert (await get(port, "/healthz"))[::2] == (503, "lease lost to another worker\n")
        text = render(w)
        assert value(text, "dialer_lease_held") == 1 and value(text, "dialer_database_up") == 1
    finally:
        server.close()


async def test_unknown_paths_and_methods(idle_worker) -> None:
    server = await serve_metrics(idle_worker, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await get(port, "/nope"))[0] == 404
        assert (await get(port, "/healthz/x"))[0] == 404
        assert (await get(port, "/metrics", "POST"))[0] == 405
        status, headers, body = await get(port, "/metrics", "HEAD")
        assert (status, body) == (200, "") and int(headers["content-length"]) > 0
        status, headers, body = await get(port, "/?x=1")
        assert status == 200 and headers["content-type"] == CONTENT_TYPE_LATEST and "dialer_dials_total" in body
    finally:
        server.close()


async def test_a_running_worker_scraped(engine) -> None:
    """A worker dialling the simulator, scraped over HTTP while it runs: dials and outcomes of its
    campaign, its seats by state, the claim and outbox histograms, a CTI socket lost and restored,
    its health; read on its event loop."""
    numbers = [f"1391234{i:04d}" for i in range(40)]
    setup_db(engine, numbers, ["601", "602"])
    sim = await start_sim({"customers": [{"number": n, "outcome": "answer", "ring": 2, "talk": 20} for n in numbers],
                           "agents": [{"extension": e, "pickup": 0.5, "wrap_up": 0} for e in ("601", "602")]})
    worker = Worker(engine, WorkerOptions(cti_url=sim.url, campaigns=("c",), worker_id="w1", cti_heartbeat=0,
                                          clock=Clock(scale=SCALE, origin=WED_10), backoff=fast_backoff,
                                          drain_timeout=2.0), handle_signals=False)
    server = await serve_metrics(worker, 0)
    port = server.sockets[0].getsockname()[1]
    task = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + 20
        while worker.stats.dials < 3 or not worker.stats.outcomes or worker.outbox.written < 1:
            assert time.monotonic() < deadline and not task.done(), "no calls"
            await asyncio.sleep(0.02)
        sim.drop("601")
        while worker.stats.cti_restored < 1:
            assert time.monotonic() < deadline and not task.done(), "the seat was not restored"
            await asyncio.sleep(0.02)
        status, headers, text = await get(port, "/metrics")
        health = await get(port, "/healthz")
        dials, outcomes = worker.stats.dials, dict(worker.stats.outcomes)
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
        server.close()
        await sim.stop()
    assert status == 200 and headers["content-type"] == CONTENT_TYPE_LATEST
    assert health[::2] == (200, "ok\n")
    assert value(text, "dialer_dials_total", campaign="c") == dials >= 3
    assert value(text, "dialer_outcomes_total", campaign="c", outcome="answered") == outcomes["answered"] >= 1
    seats = {state: value(text, "dialer_seats", queue="kefu", role="agent", state=state) for state in SEAT_STATES}
    assert sum(seats.values()) == 2, seats
    assert value(text, "dialer_claim_seconds_count") >= 1
    assert value(text, "dialer_outbox_write_seconds_count") >= 1
    assert 0 < value(text, "dialer_claim_seconds_sum") < 5 * value(text, "dialer_claim_seconds_count")
    assert value(text, "dialer_cti_connections_lost_total") >= 1
    assert value(text, "dialer_cti_reconnects_total") >= 1
    assert value(text, "dialer_lease_held") == 1 and value(text, "dialer_database_up") == 1
    assert value(text, "dialer_outbox_depth") >= 0 and value(text, "process_cpu_seconds_total") > 0
