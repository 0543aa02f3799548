"""The outbox: every milestone and outcome of the worker's calls, written in order, retried
until written — through a database outage of minutes — and written at most once.

Theory of operation
-------------------
The worker puts a `Write` here the moment it learns something (the dial sent, ringing, the
answer, the bridge, the end) and never waits for it. One task takes the writes in order and
sends them to the database in batches on the outbox lane (a short transaction each). A
batch that fails on a database error stays at the head and is tried again after a backoff (0.1 s
doubling to 5 s), so nothing queued is ever dropped. Each write is conditional (the attempt still
open and under the token it was made under), so a batch that did land before its reply was lost
changes nothing when it is sent again, and an outcome refused that way is counted, not retried.

A crash loses what is still queued: at most the tail of the calls in progress. What was written
decides what the reconciler does with the rest (dialer.outcomes.reconciled_outcome): an answered
call is closed `answered`, never redialled.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from dialer.outcomes import Retry
from dialer.store.attempts import AttemptEnd, finish_attempt, write_milestone
from dialer.worker.lanes import TRANSIENT, Lanes, describe

log = logging.getLogger(__name__)


@dataclass
class Write:
    """A milestone (`end` is None) or an outcome of one attempt."""

    token: int
    attempt_id: int
    values: dict[str, Any] = field(default_factory=dict)  # milestone columns
    contact_id: int = 0
    end: AttemptEnd | None = None
    retry: Retry | None = None
    on_done: Callable[[bool], None] | None = None  # told whether it was written (False: fenced)


def write_batch(engine: Engine, writes: Sequence[Write]) -> list[bool]:
    """Apply writes in order (each its own short transaction: one refused write does not undo
    the others); whether each changed the database."""
    out = []
    for w in writes:
        if w.end is None:
            out.append(write_milestone(engine, w.token, w.attempt_id, w.values))
        else:
            assert w.retry is not None
            out.append(finish_attempt(engine, w.token, w.attempt_id, w.contact_id, w.end, w.retry))
    return out


class Outbox:
    def __init__(self, lanes: Lanes, *, batch: int = 64) -> None:
        self.lanes = lanes
        self.batch = batch
        self._items: deque[Write] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.written = 0
        self.refused = 0
        self.failing_since: float | None = None  # loop time the current outage began
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def healthy(self) -> bool:
        return self.failing_since is None

    def put(self, write: Write) -> None:
        self._items.append(write)
        self._idle.clear()
        self._wake.set()

    def milestone(self, token: int, attempt_id: int, **values: Any) -> None:
        self.put(Write(token, attempt_id, dict(values)))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox")

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued is written; False if `timeout` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        delay = 0.1
        loop = asyncio.get_running_loop()
        while True:
            if not self._items:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            writes = [self._items[i] for i in range(min(self.batch, len(self._items)))]
            try:
                done = await self.lanes.call("outbox", write_batch, writes)
            except TRANSIENT as exc:
                if self.failing_since is None:
                    self.failing_since = loop.time()
                    log.error("database: %s; %d write(s) wait in the outbox and are retried", describe(exc),
                              len(self._items))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            except Exception:  # a bug, not the database: report it, keep the rest going
                log.exception("outbox: a batch of %d write(s) failed; dropping the first", len(writes))
                writes = writes[:1]
                done = [False]
            if self.failing_since is not None:
                log.warning("database: back after %.1f s; the outbox is writing again",
                            loop.time() - self.failing_since)
                self.failing_since = None
            delay = 0.1
            for w, ok in zip(writes, done):
                self._items.popleft()
                if w.end is not None:
                    if ok:
                        self.written += 1
                    else:
                        self.refused += 1
                if w.on_done is not None:
                    try:
                        w.on_done(ok)
                    except Exception:
                        log.exception("outbox: completion of attempt %s failed", w.attempt_id)
