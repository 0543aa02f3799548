"""The outbox: every milestone and outcome of the worker's calls, written in order, retried
until written — through a database outage of minutes — and written at most once.

Theory of operation
-------------------
The worker puts a `Write` here the moment it learns something (the dial sent, ringing, the
answer, the bridge, the end) and never waits for it. One task takes the writes in order and
sends them to the database in batches on the outbox lane, one short transaction a batch. A
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
from dialer.store.attempts import AttemptEnd, finish_in, milestones_in
from dialer.worker.lanes import PERMANENT, TRANSIENT, Lanes, describe

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

    @property
    def urgent(self) -> bool:
        """An outcome, the call id, an answer or a bridge: what decides a call's fate after a
        crash (and ties it to the server's records) is written at once; the dial time may wait
        a moment to share a transaction."""
        return self.end is not None or bool({"answered_at", "bridged_at", "callid"} & self.values.keys())


def write_batch(engine: Engine, writes: Sequence[Write]) -> list[bool | None]:
    """Apply writes (as `merge` gives them) in one transaction; whether each outcome was written
    (None for a milestone: they go in one driver call per shape, and a refused one changes
    nothing). A refused write (fenced, closed already) is no error and undoes nothing; a
    database error undoes the batch, which is then sent again whole (every write in it is
    conditional, so that is safe). Milestones and outcomes of a merged batch concern different
    attempts, so their order does not matter."""
    out: list[bool | None] = []
    with engine.begin() as conn:
        for w in writes:
            if w.end is None:
                out.append(None)
                continue
            if w.retry is None:
                raise ValueError(f"outcome of attempt {w.attempt_id} without its retry")
            out.append(finish_in(conn, w.token, w.attempt_id, w.contact_id, w.end, w.retry))
        milestones_in(conn, [(w.token, w.attempt_id, w.values) for w in writes if w.end is None])
    return out


def merge(writes: Sequence[Write]) -> list[Write]:
    """The same writes in fewer statements: one attempt's milestones in one, none beside its
    outcome (which carries them all)."""
    ended = {(w.token, w.attempt_id) for w in writes if w.end is not None}
    out: list[Write] = []
    pending: dict[tuple[int, int], Write] = {}
    for w in writes:
        key = (w.token, w.attempt_id)
        if w.end is not None:
            out.append(w)
        elif key in ended:
            continue
        elif key in pending:
            pending[key].values.update(w.values)
        else:
            pending[key] = Write(w.token, w.attempt_id, dict(w.values))
            out.append(pending[key])
    return out


class Outbox:
    def __init__(self, lanes: Lanes, *, batch: int = 64, linger: float = 0.05) -> None:
        self.lanes = lanes
        self.batch = batch
        self.linger = linger  # real seconds the first write of a batch waits for others to join it
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

    def pending_outcomes(self) -> set[int]:
        """Attempts whose outcome waits here (open in the database, but not for long)."""
        return {w.attempt_id for w in self._items if w.end is not None}

    def put(self, write: Write) -> None:
        self._items.append(write)
        self._idle.clear()
        self._wake.set()

    def milestone(self, token: int, attempt_id: int, **values: Any) -> None:
        self.put(Write(token, attempt_id, dict(values)))

    async def run(self) -> None:
        """Write what comes, until cancelled (the worker runs this supervised)."""
        self._task = asyncio.current_task()
        await self._run()

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
        single = False  # a batch failed for a reason of its own: find the write, one at a time
        loop = asyncio.get_running_loop()
        while True:
            if not self._items:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.linger and len(self._items) < self.batch and not any(w.urgent for w in self._items):
                await asyncio.sleep(self.linger)  # a call's milestones come close together: one write
            taken = [self._items[i] for i in range(1 if single else min(self.batch, len(self._items)))]
            writes = merge(taken)
            try:
                done = await self.lanes.call("outbox", write_batch, writes)
            except PERMANENT as exc:  # the write itself is wrong (too long a value, a bug): not the database
                if len(taken) > 1:
                    single = True
                    continue
                log.error("outbox: attempt %s: %s not written: %s", taken[0].attempt_id,
                          "outcome" if taken[0].end is not None else "milestone", describe(exc))
                done = [False] * len(writes)
            except TRANSIENT as exc:
                if self.failing_since is None:
                    self.failing_since = loop.time()
                    log.error("database: %s; %d write(s) wait in the outbox and are retried", describe(exc),
                              len(self._items))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            except Exception:  # a bug of ours: report it; find the write, drop only that one
                if len(taken) > 1:
                    single = True
                    continue
                log.exception("outbox: attempt %s: a write failed; dropped", taken[0].attempt_id)
                done = [False] * len(writes)
            else:
                single = False
            if self.failing_since is not None:
                log.warning("database: back after %.1f s; the outbox is writing again",
                            loop.time() - self.failing_since)
                self.failing_since = None
            delay = 0.1
            for _ in taken:
                self._items.popleft()
            results = {id(w): ok for w, ok in zip(writes, done)}
            for w in taken:  # every write taken is told, the merged-away milestones too
                ok = results.get(id(w)) is not False
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
