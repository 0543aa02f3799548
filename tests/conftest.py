from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest

from dialer.cti import protocol as p
from dialer.cti.client import Seat
from dialer.sim import Simulator
from dialer.sim.scenario import parse_scenario

M = TypeVar("M", bound=p.Message)


def fast_backoff() -> itertools.repeat[float]:
    return itertools.repeat(0.02)


@pytest.fixture
async def make_sim() -> AsyncIterator[Callable[..., Awaitable[Simulator]]]:
    """Start simulators on port 0 from scenario dicts; all are stopped afterwards."""
    sims: list[Simulator] = []

    async def make(scenario: dict[str, Any] | None = None, **top: Any) -> Simulator:
        data = {"time_scale": 0.01, **(scenario or {}), **top}
        sim = Simulator(parse_scenario(data))
        await sim.start("127.0.0.1", 0)
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        await sim.stop()


@pytest.fixture
async def make_seat() -> AsyncIterator[Callable[..., Awaitable[Seat]]]:
    """Connected seats (optionally logged in); all are closed afterwards."""
    seats: list[Seat] = []

    async def make(url: str, extension: str | None = None, *, queue: str = "kefu",
                   autoacw: int = 0, **kw: Any) -> Seat:
        kw.setdefault("heartbeat_interval", 0)
        kw.setdefault("backoff", fast_backoff)
        kw.setdefault("command_timeout", 2.0)
        seat = Seat(name=extension or "", **kw)
        seats.append(seat)
        await seat.connect(url)
        if extension:
            await seat.login(f"agent{extension}", extension, queue, f"1{extension}", autoacw=autoacw)
        return seat

    yield make
    for seat in seats:
        await seat.close()


async def expect(seat: Seat, kind: type[M], timeout: float = 3.0,
                 where: Callable[[M], bool] | None = None, seen: list[p.Message] | None = None) -> M:
    """Read the seat's messages until one of `kind` (matching `where`) arrives."""

    async def scan() -> M:
        async for msg in seat.events():
            if seen is not None:
                seen.append(msg)
            if isinstance(msg, kind) and (where is None or where(msg)):
                return msg
        raise AssertionError("event stream ended")

    try:
        return await asyncio.wait_for(scan(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {kind.__name__} within {timeout}s; saw {seen}") from None


async def drain(seat: Seat, quiet: float = 0.05) -> list[p.Message]:
    """Everything the seat receives until it has been quiet for `quiet` seconds."""
    out: list[p.Message] = []
    while True:
        try:
            out.append(await asyncio.wait_for(seat._queue.get(), quiet))
        except asyncio.TimeoutError:
            return out


# -- databases ----------------------------------------------------------------------------------

PG_ENV = "DIALER_TEST_PG_URL"
PG_SKIP = (f"PostgreSQL variant skipped: set {PG_ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/test "
           "(as .ci/run does) to run it")


def _pg_url() -> str | None:
    import os

    return os.environ.get(PG_ENV)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Any:
    """A migrated, empty database URL: a SQLite file, or a fresh PostgreSQL database per test
    (dropped afterwards)."""
    from dialer.store.engine import make_engine, scratch_database
    from dialer.store.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'dialer.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    base = _pg_url()
    if not base:
        pytest.skip(PG_SKIP)
    with scratch_database(base, "dialer_test") as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture
def engine(db_url) -> Any:
    from dialer.store.engine import make_engine

    engine = make_engine(db_url)
    yield engine
    engine.dispose()
