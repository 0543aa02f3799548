"""The worker daemon: seats in, due numbers out, outcomes recorded — its run, drain and shutdown.

Theory of operation
-------------------
One asyncio loop; the database only on the lanes' threads (dialer/worker/lanes.py). `Worker` is
put together from one mixin per responsibility, each in its own module:

    seats.py      the worker id's lease (fencing token, renewal, may_dial) and its seats
    dispatch.py   claim → dial, and a seat's return to service
    calls.py      events → each call's CallTracker, call timers, lost sockets, adopted calls
    handover.py   predictive: answered calls on ports handed to agents, the 2 s rule, the IVR
    pace.py       predictive: abandonment counts and the pacer's snapshot
    recorder.py   milestones and outcomes → the outbox (outbox.py), retries by the pure policy
    seatlog.py    each seat's state changes and the worker's status row (reports, dialer status)
    jobs.py       periodic jobs (APScheduler, in memory) and the event loop's lag

Every background task goes through `_spawn`: its exception is logged with what it was doing,
never lost. Stopping (SIGTERM/SIGINT or `request_stop`): no new dials; calls in flight may
finish for `drain_timeout` real seconds, then they are hung up; the outbox is flushed (for as
long as the database needs to come back, within the drain timeout); seats log out; the lease is
given back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import itertools
import logging
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine

from dialer.errors import CTIError
from dialer.outcomes import Event
from dialer.store import abandonment
from dialer.store import attempts as db
from dialer.store import leases
from dialer.store.leases import Orphan, WorkerIdInUse
from dialer.store.models import Campaign
from dialer.worker.calls import Calls
from dialer.worker.dispatch import Dispatch
from dialer.worker.handover import Handover
from dialer.worker.jobs import Jobs, _quiet_on_shutdown, _quiet_scheduler_shutdown
from dialer.worker.lanes import TRANSIENT, Lanes, describe
from dialer.worker.options import Stats, WorkerError, WorkerOptions
from dialer.worker.outbox import Outbox
from dialer.worker.pace import Pacing
from dialer.worker.recorder import Recorder
from dialer.worker.seatlog import SeatLog
from dialer.worker.seats import Seats
from dialer.worker.state import ActiveCall, PredictiveQueue, SeatRun

log = logging.getLogger(__name__)


class Worker(Seats, Dispatch, Calls, Handover, Pacing, Recorder, SeatLog, Jobs):
    def __init__(self, engine: Engine, options: WorkerOptions, *, handle_signals: bool = True) -> None:
        self.engine = engine
        self.opt = options
        self.clock = options.clock
        self.handle_signals = handle_signals
        self.seats: dict[str, SeatRun] = {}
        self.campaigns: list[Campaign] = []
        self._campaigns_version: tuple[object, ...] = ()  # their rows as last loaded (jobs._reload)
        self.stats = Stats()
        self.draining = False
        self.exit_code = 0
        self.lost_lease = False
        self.token = 0
        self.lag = 0.0
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self.lanes = Lanes(engine, timeout=options.db_timeout)
        self.outbox = Outbox(self.lanes)
        self._turn = itertools.count()
        self._finishing: set[asyncio.Task[Any]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._window_open: dict[int, bool] = {}
        self._freed_at: dict[str, float] = {}
        self._freed_since: set[str] = set()  # seats marked free since the dispatcher's last pass
        self._rescan = True  # the next pass looks at every seat
        self._claiming: set[str] = set()  # seats in a claim pass that has not returned yet
        self._line_idle: dict[str, float] = {}  # seat → loop time its last call ended (no wrap-up)
        self._serves: dict[str, str] = {}  # dialer port → the agents' queue it dials for
        self._orphans: dict[str, list[Orphan]] = {}  # seat → calls of an earlier life to follow
        self._stray_before: set[int] = set()
        self._left_open: set[str] = set()  # seats with a call left open on them, to look at
        self._let_go: set[str] = set()  # seats logged out when the lease ran out, to give back
        self._orphans_at = 0.0  # loop time the earlier life's calls were handed over
        self._renewed_at: float | None = None
        self._db_down_since: float | None = None
        self._open_writes = 0
        self.scheduler: AsyncIOScheduler | None = None
        self.predictive: dict[str, PredictiveQueue] = {}
        self._counts: dict[int, abandonment.AbandonCounts] = {}  # from the database, refreshed
        self._counted: dict[int, list[int]] = {}  # [abandoned, live] recorded since the refresh
        self._counts_at: dt.datetime | None = None  # the last full read
        self._counts_edge: dt.datetime | None = None  # it counted the attempts started before this
        self._recent: dict[int, abandonment.AbandonCounts] = {}  # those since, read every counts_every
        self._recent_at: dt.datetime | None = None
        self._seat_state: dict[str, tuple[str, str, Any]] = {}  # seat → (state, reason, since)
        self._seat_rows: list[dict[str, Any]] = []  # seat events not yet written
        self._seat_rows_dropped = 0
        self._started_at = dt.datetime.now(dt.timezone.utc)  # (wall clock: the status row's)

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def _real(self, seconds: float) -> float:
        return self.clock.real(seconds)

    def _spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        """Run `coro` in the background, supervised: its failure is logged with `what`."""
        task = self.loop.create_task(coro)
        self._finishing.add(task) if what.startswith("outcome") else self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._finishing.discard(t)
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                log.error("%s failed: %s", what, describe(exc) if isinstance(exc, TRANSIENT) else repr(exc),
                          exc_info=None if isinstance(exc, (*TRANSIENT, CTIError)) else exc)

        task.add_done_callback(done)
        return task

    def _keep(self, factory: Callable[[], Coroutine[Any, Any, Any]], what: str) -> asyncio.Task[Any]:
        """Run a loop that must not die: if it fails, say so and start it again (after a second)."""

        async def supervised() -> None:
            while True:
                try:
                    await factory()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s failed; starting it again", what)
                    await asyncio.sleep(1.0)

        return self._spawn(supervised(), what)

    def request_stop(self) -> None:
        """Begin a graceful stop (what SIGTERM and SIGINT do)."""
        if not self._stop.is_set():
            log.info("stopping: no new dials; calls in flight may finish")
        self._stop.set()
        self._wake.set()

    def _calls(self) -> Iterator[ActiveCall]:
        for run in self.seats.values():
            if run.call is not None:
                yield run.call
            if run.handling is not None and run.handling is not run.call:
                yield run.handling
        for q in self.predictive.values():
            yield from q.waiting

    @property
    def calls_in_flight(self) -> int:
        return sum(1 for s in self.seats.values() if s.call is not None or s.handling is not None)

    # -- the run --------------------------------------------------------------------------------
    async def run(self) -> int:
        """Work until stopped; the exit code (1: the lease was lost to another worker)."""
        if self.handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.loop.add_signal_handler(sig, self.request_stop)
        try:
            await self._start()
            dispatcher = self._keep(self._dispatcher, "the dispatcher")
            await self._stop.wait()
            self.draining = True
            self._wake.set()
            await asyncio.gather(dispatcher, return_exceptions=True)
            await self._drain()
        finally:
            await self._shutdown()
        return self.exit_code

    async def _start(self) -> None:
        self._keep(self.outbox.run, "the outbox")
        self._keep(self._watch_lag, "the lag monitor")
        self.campaigns = await self._load_campaigns()
        try:
            await self._register()
        except WorkerIdInUse as exc:
            raise WorkerError(str(exc)) from None
        self._keep(self._keep_lease, "the lease renewal")
        predictive = sorted({c.queue for c in self.campaigns if c.mode == "predictive"})
        if predictive:
            silent = [c.name for c in self.campaigns if c.mode == "predictive" and not c.abandon_ivr]
            if silent:
                raise WorkerError(f"predictive campaign(s) {', '.join(silent)} have no abandon message: an answered "
                                  "call no agent can take must hear one (dialer campaign update NAME --abandon-ivr NODE)")
            self.predictive = {q: PredictiveQueue(q) for q in predictive}
        infos = await self._lease_seats()
        if not any(i.role != "port" for i in infos):
            log.warning("no free agent seat in queue(s) %s (dialer agents list / dialer agents add); looking again "
                        "every %.0f s", ", ".join(sorted({c.queue for c in self.campaigns})), self.opt.seats_every)
        if predictive:
            await self._refresh_counts(self.clock.now())
            await self._warm_start(self.clock.now())
        runs = [self._add_seat(info) for info in infos]
        await self._connect_all(runs)
        self.scheduler = AsyncIOScheduler(event_loop=self.loop)
        _quiet_scheduler_shutdown()
        jobs: list[tuple[Callable[[], Any], float]] = [
            (self._refresh, self.opt.refresh_every), (self._reload, max(1.0, self.opt.dispatch_every)),
            (self._reconcile, self.opt.lease_sim / 2), (self._poke, self.opt.dispatch_every),
            (self._more_seats, self.opt.seats_every), (self._write_seat_log, self.opt.status_every),
        ]
        if self.opt.inbox is not None:
            jobs.append((self._scan_inbox, 10.0))
        if self.engine is not None and self.engine.dialect.name == "sqlite":
            jobs.append((self._checkpoint, 0.0))
        # real seconds, at any time scale
        floors = {self._more_seats: 1.0, self._reconcile: 1.0, self._reload: 0.5, self._checkpoint: 1.0,
                  self._write_seat_log: 1.0}
        for fn, every in jobs:
            floor = next((f for job, f in floors.items() if job == fn), 0.1)
            self.scheduler.add_job(_quiet_on_shutdown(fn), "interval", seconds=max(floor, self._real(every)),
                                   max_instances=1, coalesce=True, misfire_grace_time=None, name=fn.__name__)
        self.scheduler.start()
        # Everything made so far lives as long as the worker: keep the cyclic collector from
        # walking it again and again (its full passes were tens of milliseconds with 500 seats).
        gc.freeze()
        log.info("worker %s: %d seats, campaigns %s", self.opt.worker_id, len(self.seats),
                 ", ".join(c.name for c in self.campaigns))

    async def _load_campaigns(self) -> list[Campaign]:
        delay = 0.2
        while True:  # a database that is down at start-up: wait for it (a stop request ends the wait)
            try:
                campaigns = await self.lanes.call("background", db.load_campaigns, self.opt.campaigns)
                break
            except TRANSIENT as exc:
                self._db_trouble("start-up", exc)
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                    raise WorkerError("stopped before the database could be reached")
                except asyncio.TimeoutError:
                    delay = min(delay * 2, 5.0)
        self._db_ok()
        if not campaigns:
            what = ", ".join(self.opt.campaigns) if self.opt.campaigns else "no active campaign"
            raise WorkerError(f"nothing to work: {what} (dialer campaign list; dialer campaign resume NAME)")
        missing = set(self.opt.campaigns) - {c.name for c in campaigns}
        if missing:
            raise WorkerError(f"no campaign named {', '.join(sorted(missing))}")
        return campaigns

    # -- stopping -------------------------------------------------------------------------------
    async def _drain(self) -> None:
        loop = self.loop
        deadline = loop.time() + self.opt.drain_timeout
        while self.calls_in_flight and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if self.calls_in_flight:
            log.warning("drain timeout: hanging up %d call(s)", self.calls_in_flight)
            now = self.clock.now()
            for run in list(self.seats.values()):
                if run.call is not None:
                    run.call.tracker.detail = "hung up at shutdown"
                    run.call.tracker.hang_up(Event.LOST, now)
                if run.call is not None or run.handling is not None:
                    await self._hangup(run)
            grace = loop.time() + max(0.5, self._real(self.opt.hangup_timeout))
            while self.calls_in_flight and loop.time() < grace:
                await asyncio.sleep(0.02)
            now = self.clock.now()
            for run in list(self.seats.values()):
                if run.call is not None:
                    if run.call.phase == "dialling":
                        self._ended(run, run.call.tracker.expire(Event.LOST, now))
                    else:
                        self._port_line_gone(run, run.call, now, "hung up at shutdown")
                if run.handling is not None:
                    self._agent_call_over(run, run.handling, now, "hung up at shutdown")
        if self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)
        left = max(1.0, deadline - loop.time())
        if not await self.outbox.flush(left):
            log.error("%d write(s) could not reach the database before the stop; their calls are closed by "
                      "the next worker by their milestones", len(self.outbox))

    async def _shutdown(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for run in list(self.seats.values()):
            if run.wrap_timer:
                run.wrap_timer.cancel()

        await asyncio.gather(*(self._drop_seat(r, forget=False) for r in list(self.seats.values())))
        if self.token and not self.lost_lease:
            await self._final_seat_log()
        await self.outbox.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.token and not self.lost_lease and not len(self.outbox):
            try:
                await asyncio.shield(self.lanes.call("heartbeat", leases.unregister_worker, self.opt.worker_id,
                                                     self.token, timeout=5))
            except TRANSIENT as exc:
                log.error("leases not given back (they expire by themselves): %s", describe(exc))
        await self.loop.run_in_executor(None, self.lanes.shutdown, 5.0)


__all__ = ["Worker", "WorkerOptions", "WorkerError"]
