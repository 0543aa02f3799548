"""The worker's database threads ("lanes"): one per kind of work, each call under a timeout.

Theory of operation
-------------------
The event loop never touches the database. Each kind of work has a lane of its own — one thread
running its calls in order — so that the lease renewal never queues behind a claim, a claim never
queues behind the outcomes being written, and an inbox import blocks nothing:

    heartbeat   the lease renewal (and nothing else)
    dispatch    claims, seat leases, campaign reloads
    outbox      milestones and outcomes (dialer/worker/outbox.py)
    background  reconciliation, counts, the until-done check, inbox imports

Every call has a deadline (`DatabaseTimeout` past it). A thread cannot be interrupted, so a lane
whose call ran out of time is replaced by a fresh thread, and the stuck one finishes on its own
(a stalled TCP connection, say); whatever it then writes is fenced like any other late write.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from dialer.errors import DialerError

log = logging.getLogger(__name__)
T = TypeVar("T")

LANES = ("heartbeat", "dispatch", "outbox", "background")


class DatabaseUnavailable(DialerError):
    """A database call failed for a reason that may pass (unreachable, locked, timed out)."""


class DatabaseTimeout(DatabaseUnavailable):
    """A database call ran past its deadline."""


#: errors that mean "the database, not the request": retry later
TRANSIENT = (DBAPIError, PoolTimeout, DatabaseUnavailable, OSError)


def describe(exc: BaseException) -> str:
    """One line for a database error, without a URL or a password."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc) or type(exc).__name__
    return text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__


class _Lane:
    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"dialer-db-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:
                    future.set_exception(exc)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((future, fn))
        return future

    def stop(self) -> None:
        self._queue.put(None)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _forget(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.debug("a database call given up on ended with: %s", describe(future.exception()))  # type: ignore[arg-type]


class Lanes:
    """`await lanes.call("dispatch", fn, *args)` runs `fn(engine, *args)` on that lane's thread."""

    def __init__(self, engine: Engine, timeout: float = 15.0) -> None:
        self.engine = engine
        self.timeout = timeout
        self._lanes = {name: _Lane(name) for name in LANES}
        self.stuck = 0  # lanes replaced after a call ran out of time

    async def call(self, lane: str, fn: Callable[..., T], *args: Any, timeout: float | None = None,
                   **kwargs: Any) -> T:
        """Raises DatabaseTimeout past the deadline (None: the lane's default; 0: no deadline)."""
        job = functools.partial(fn, self.engine, *args, **kwargs)
        worker = self._lanes[lane]
        future = asyncio.wrap_future(worker.submit(job))
        limit = self.timeout if timeout is None else timeout
        if not limit:
            return await future
        try:
            return await asyncio.wait_for(asyncio.shield(future), limit)
        except asyncio.TimeoutError:
            # the thread is stuck in the call: give the lane a new one; the old one ends by itself
            future.add_done_callback(_forget)  # what it ends with, nobody waits for any more
            if self._lanes.get(lane) is worker:
                self.stuck += 1
                worker.stop()
                self._lanes[lane] = _Lane(lane)
                log.warning("database: a %s call took over %.0f s; it goes on a fresh thread", lane, limit)
            raise DatabaseTimeout(f"{fn.__name__} took over {limit:.0f} s") from None

    def shutdown(self, wait: float = 5.0) -> None:
        """Stop every lane; wait up to `wait` seconds (in all) for their calls in progress."""
        for lane in self._lanes.values():
            lane.stop()
        for lane in self._lanes.values():
            lane.join(wait / len(self._lanes))


__all__ = ["Lanes", "DatabaseUnavailable", "DatabaseTimeout", "TRANSIENT", "describe", "SQLAlchemyError"]
