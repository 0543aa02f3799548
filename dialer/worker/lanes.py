"""The worker's database threads ("lanes"): one per kind of work, each call under a timeout.

Theory of operation
-------------------
The event loop never touches the database. Each kind of work has a lane of its own — one thread
running its calls in order — so that the lease renewal never queues behind a claim, a claim never
queues behind the outcomes being written, and an inbox import blocks nothing:

    heartbeat   the lease renewal (and nothing else)
    dispatch    claims (and nothing else: a claim is a seat waiting for its next dial)
    outbox      milestones and outcomes (dialer/worker/outbox.py)
    background  seat leases, campaign reloads, reconciliation, counts, the until-done check
    inbox       list imports from the inbox folder (one chunk a transaction)

On SQLite, where writers take turns at one file lock anyway (and a writer kept waiting sleeps in
SQLite's busy handler), the renewal, the claims and the outbox share one thread, in that order
of priority: a claim waits at most for the batch in progress, never behind the queue of writes.
On PostgreSQL each lane has a thread of its own: their calls mostly wait on the network (a claim
is two round trips, an outcome batch one or more), and claims queued behind outcome batches on
one thread kept seats idle.

Every call has a deadline (`DatabaseTimeout` past it). A thread cannot be interrupted, so a lane
whose call ran out of time is replaced by a fresh thread, and the stuck one finishes on its own
(a stalled TCP connection, say); whatever it then writes is fenced like any other late write.
The calls queued behind the stuck one fail at once (`DatabaseUnavailable`, retried by their
callers on the new thread): run late on the old thread, a claim would commit with nobody left
waiting to dial it.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from dialer.errors import DialerError

log = logging.getLogger(__name__)
T = TypeVar("T")

LANES = ("heartbeat", "dispatch", "outbox", "background", "inbox")


class DatabaseUnavailable(DialerError):
    """A database call failed for a reason that may pass (unreachable, locked, timed out)."""


class DatabaseTimeout(DatabaseUnavailable):
    """A database call ran past its deadline."""


#: errors of the request itself (a value too long, a constraint, SQL the server refuses): sending it
#: again cannot help
PERMANENT = (DataError, IntegrityError, ProgrammingError)
#: errors that mean "the database, not the request": retry later (PERMANENT are caught first)
TRANSIENT = (DBAPIError, PoolTimeout, DatabaseUnavailable, OSError)


def describe(exc: BaseException) -> str:
    """One line for a database error, without a URL or a password."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc) or type(exc).__name__
    return text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__


class _Lane:
    """One thread running calls by priority (lower first), in order within a priority."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._run, name=f"dialer-db-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            _, _, item = self._queue.get()
            if item is None:
                return
            future, fn = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:
                    future.set_exception(exc)

    def submit(self, fn: Callable[[], T], priority: int = 0) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((priority, next(self._seq), (future, fn)))
        return future

    def stop(self) -> None:
        self._queue.put((99, next(self._seq), None))

    def abandon(self) -> None:
        """The thread is stuck: fail the calls queued behind it now (DatabaseUnavailable; their
        callers retry on the lane's new thread) rather than run them whenever it comes back — a
        claim run then would commit with nobody left to dial it; then stop."""
        while True:
            try:
                _, _, item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None and item[0].set_running_or_notify_cancel():
                item[0].set_exception(DatabaseUnavailable(f"given up: the {self.name} lane's thread was stuck"))
        self.stop()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _settle(waiter: asyncio.Future[Any], cf: Future[Any]) -> None:
    """Hand a thread's result to the coroutine waiting for it (unless it gave up waiting)."""
    exc = cf.exception()
    if waiter.done():
        if exc is not None:
            log.debug("a database call given up on ended with: %s", describe(exc))
        return
    if exc is not None:
        waiter.set_exception(exc)
    else:
        waiter.set_result(cf.result())


class Lanes:
    """`await lanes.call("dispatch", fn, *args)` runs `fn(engine, *args)` on that lane's thread."""

    def __init__(self, engine: Engine, timeout: float = 15.0) -> None:
        self.engine = engine
        self.timeout = timeout
        self.shared = engine is not None and engine.dialect.name == "sqlite"
        self._lanes: dict[str, _Lane] = {}
        self._make()
        self.stuck = 0  # lanes replaced after a call ran out of time
        #: lane → told each call's real seconds, from its submission (time queued included) to
        #: its result, its error or its deadline (dialer/metrics.py: the claim and outbox histograms)
        self.observers: dict[str, Callable[[float], None]] = {}

    def _make(self, only: str | None = None) -> None:
        """(Re)create the threads: every lane's, or the one `only` runs on."""
        shared = LANES[:3] if self.shared else ()  # SQLite: one writer thread
        if shared and (only is None or only in shared):
            writer = _Lane("writer")
            for name in shared:
                self._lanes[name] = writer
        for name in LANES:
            if name not in shared and (only is None or only == name):
                self._lanes[name] = _Lane(name)

    async def call(self, lane: str, fn: Callable[..., T], *args: Any, timeout: float | None = None,
                   **kwargs: Any) -> T:
        """Raises DatabaseTimeout past the deadline (None: the lane's default; 0: no deadline)."""
        job = functools.partial(fn, self.engine, *args, **kwargs)
        worker = self._lanes[lane]
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        started = loop.time()
        # one hop from the thread to the waiting coroutine (wait_for and shield cost a task and
        # two more turns of a busy loop for every call)
        worker.submit(job, LANES.index(lane)).add_done_callback(
            lambda cf: loop.call_soon_threadsafe(_settle, waiter, cf))
        limit = self.timeout if timeout is None else timeout
        timer = loop.call_later(limit, self._expire, waiter, lane, worker, fn.__name__, limit) if limit else None
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()
            observe = self.observers.get(lane)
            if observe is not None and waiter.done() and not waiter.cancelled():
                observe(loop.time() - started)

    def _expire(self, waiter: asyncio.Future[Any], lane: str, worker: _Lane, name: str, limit: float) -> None:
        if waiter.done():
            return
        waiter.set_exception(DatabaseTimeout(f"{name} took over {limit:.0f} s"))
        # the thread is stuck in the call: give the lane a new one; the old one ends by itself
        if self._lanes.get(lane) is worker:
            self.stuck += 1
            worker.abandon()
            self._make(lane)
            log.warning("database: a %s call took over %.0f s; it goes on a fresh thread", lane, limit)

    def shutdown(self, wait: float = 5.0) -> None:
        """Stop every lane; wait up to `wait` seconds (in all) for their calls in progress."""
        lanes = list({id(lane): lane for lane in self._lanes.values()}.values())
        for lane in lanes:
            lane.stop()
        for lane in lanes:
            lane.join(wait / len(lanes))


__all__ = ["Lanes", "DatabaseUnavailable", "DatabaseTimeout", "TRANSIENT", "PERMANENT", "describe",
           "SQLAlchemyError"]
