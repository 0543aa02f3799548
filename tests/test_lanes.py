"""The worker's database lanes (dialer/worker/lanes.py): deadlines, a stuck thread replaced,
and the calls queued behind a stuck thread. The stuck call blocks on an event the test
releases, so nothing here races a clock; the deadline is 1 s of real time."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import create_engine

from dialer.worker.lanes import DatabaseTimeout, DatabaseUnavailable, Lanes


@pytest.fixture(params=["sqlite", "postgresql"])
def lanes(request, tmp_path):
    # only the dialect matters here: SQLite shares one thread among three lanes, PostgreSQL not
    url = f"sqlite:///{tmp_path / 'x.db'}" if request.param == "sqlite" else "postgresql+psycopg://u@127.0.0.1:9/x"
    engine = create_engine(url)
    lanes = Lanes(engine, timeout=1.0)
    yield lanes
    lanes.shutdown(wait=1.0)
    engine.dispose()


async def test_a_stuck_call_times_out_and_the_lane_gets_a_fresh_thread(lanes) -> None:
    started, release, ran = threading.Event(), threading.Event(), []

    def stuck(_engine):
        started.set()
        release.wait(30)
        ran.append("stuck")

    def queued(_engine):
        ran.append("queued")
        return "queued"

    old = lanes._lanes["dispatch"]
    first = asyncio.ensure_future(lanes.call("dispatch", stuck))
    assert await asyncio.to_thread(started.wait, 10)
    behind = asyncio.ensure_future(lanes.call("dispatch", queued, timeout=0))  # no deadline of its own
    with pytest.raises(DatabaseTimeout):
        await first
    assert lanes.stuck == 1
    # the call queued behind the stuck one fails at once, and never runs on the old thread
    with pytest.raises(DatabaseUnavailable, match="stuck"):
        await asyncio.wait_for(behind, 10)
    # the lane works again on its new thread while the old one is still stuck
    assert await lanes.call("dispatch", lambda _e: "fresh") == "fresh"
    release.set()
    await asyncio.to_thread(old._thread.join, 10)  # the old thread ends once its call returns
    assert ran == ["stuck"]


async def test_calls_run_by_priority_on_a_shared_thread(lanes) -> None:
    """On SQLite the renewal, the claims and the outbox share one thread: the renewal first."""
    if not lanes.shared:
        pytest.skip("PostgreSQL: each lane has a thread of its own")
    started, gate, order = threading.Event(), threading.Event(), []

    def blocking(_engine):
        started.set()
        gate.wait(30)

    blocker = asyncio.ensure_future(lanes.call("outbox", blocking))
    assert await asyncio.to_thread(started.wait, 10)
    later = [asyncio.ensure_future(lanes.call(lane, lambda _e, lane=lane: order.append(lane)))
             for lane in ("outbox", "dispatch", "heartbeat")]
    await asyncio.sleep(0)  # each submits its call on its first step
    gate.set()
    await asyncio.gather(blocker, *later)
    assert order == ["heartbeat", "dispatch", "outbox"]
