"""The worker daemon: seats in, due numbers out, outcomes recorded. Progressive dialing.

Theory of operation
-------------------
One asyncio loop. Each agent seat of the selected campaigns' queues is one `Seat` (one CTI
socket), leased in the database so that several workers split the roster. A seat is dialable
when it is logged in, registered, not busy, not in after-call work or a call, past the
campaign's wrap-up, and reported idle by the server (`busy status` with no reason, or the
`agentidle` extension list that the refresh job asks for).

The dispatcher wakes when a seat frees up (and once a second in any case), claims as many due
contacts as there are dialable seats — campaigns of one queue by priority, then in turn — and for
each one writes the attempt, then sends `dial`. Every event of a seat's call goes to its
`CallTracker` (dialer/outcomes.py); per-call timers hang up what rings too long. When the call
ends the outcome and the contact's retry are written in one transaction.

Periodic work runs on an APScheduler `AsyncIOScheduler` (in memory): refresh of agent state,
campaign reload (pause, resume, window open/close), the worker's heartbeat (which renews its
leases), reconciling attempts of dead workers, and the inbox scan. Database calls run on one
thread beside the loop, never on it.

Stopping (SIGTERM/SIGINT or `request_stop`): no new dials; calls in flight may finish for
`drain_timeout` real seconds, then they are hung up; every outcome is written; seats log out;
leases are given back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import gc
import itertools
import math
import logging
import os
import queue
import signal
import threading
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from dialer import pacing
from dialer.clock import Clock
from dialer.cti import protocol as p
from dialer.cti.client import Seat, SeatLost, SeatRestored, exponential_backoff
from dialer.errors import CTIError, DialerError, LocalProtocolError
from dialer.outcomes import CallTracker, Event, State, decide_retry
from dialer.store import calls as db
from dialer.store.models import Campaign, Contact
from dialer.store.repo import AgentRow, window_of

log = logging.getLogger(__name__)
T = TypeVar("T")

ACW = "话后"
PARK_REASON = "连续未接听"  # busy reason given to a seat whose agent missed three calls in a row
MISSES_BEFORE_PARK = 3
PORT_BUSY = "外呼端口"  # a dialer port stays busy so that its queue never offers it a caller
ABANDON_AFTER = 2.0  # an answered predictive call must reach an agent within this, pickup included


def _quiet_on_shutdown(fn: Callable[[], Any]) -> Callable[[], Any]:
    """A periodic job that the scheduler's shutdown may cancel mid-way without an error log."""
    if not asyncio.iscoroutinefunction(fn):
        return fn

    @functools.wraps(fn)
    async def job() -> None:
        try:
            await fn()
        except asyncio.CancelledError:
            log.debug("job %s cancelled at shutdown", fn.__name__)

    return job


class _NoShutdownCancel(logging.Filter):
    """APScheduler logs "Error running job" with a CancelledError for a job its shutdown cancelled
    before the job had started (so `_quiet_on_shutdown` never ran): that is a stop, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


def _quiet_scheduler_shutdown() -> None:
    executors = logging.getLogger("apscheduler.executors.default")
    if not any(isinstance(f, _NoShutdownCancel) for f in executors.filters):
        executors.addFilter(_NoShutdownCancel())


def msg_busy(msg: p.Message) -> str:
    return getattr(msg, "busy", "")


class WorkerError(DialerError):
    """The worker cannot start (no campaign, no seat) or cannot go on."""


@dataclass
class WorkerOptions:
    cti_url: str = "ws://127.0.0.1:8081/spcc/cti"
    campaigns: tuple[str, ...] = ()
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    clock: Clock = field(default_factory=Clock)
    until_done: bool = False
    drain_timeout: float = 30.0  # real seconds
    lease: float = 60.0  # simulated seconds a seat or contact lease lasts without renewal
    refresh_every: float = 5.0
    dispatch_every: float = 1.0
    agent_leg_timeout: float = 30.0  # how long the agent's extension may ring
    setup_timeout: float = 20.0  # agent up → customer ringing
    hangup_timeout: float = 10.0  # our hangup → the server's hangup event
    cti_heartbeat: float = 10.0  # real seconds between CTI heartbeats (0: none)
    interrupted_retry: float = 300.0  # a crashed call's contact is due again after this
    inbox: Path | None = None
    max_seats: int | None = None  # take at most this many seats (to split a roster between workers)
    backoff: Callable[[], Iterator[float]] | None = None
    #: predictive: how many calls to place now (dialer/pacing.py; tests may script their own)
    pacer: Callable[[pacing.Snapshot, pacing.Estimates, pacing.PacerConfig], int] = pacing.decide
    on_progress: Callable[[Worker], None] | None = None


@dataclass
class ActiveCall:
    attempt_id: int
    contact: Contact
    campaign: Campaign
    tracker: CallTracker
    timer: asyncio.TimerHandle | None = None
    armed_for: tuple[Any, bool] | None = None
    dialled_at: dt.datetime | None = None
    # predictive: the call on a dialer port, after the customer answers
    phase: str = "dialling"  # dialling | waiting (for an agent) | transferring | handed | ivr
    queue: str = ""
    port: SeatRun | None = None
    agent: SeatRun | None = None  # the agent reserved for the call, then on it
    deadline: asyncio.TimerHandle | None = None
    transferred_at: dt.datetime | None = None
    bridged_at: dt.datetime | None = None


@dataclass
class SeatRun:
    info: AgentRow
    seat: Seat
    logged_in: bool = False
    registered: bool = True
    busy: str = ""
    server_idle: bool = False
    call: ActiveCall | None = None
    wrap_until: dt.datetime | None = None
    wrap_timer: asyncio.TimerHandle | None = None
    misses: int = 0
    parked: bool = False
    finishing: bool = False  # the last call's outcome is being written
    heard_at: float = 0.0  # loop time of the seat's last busy/status event
    # predictive agents: the answered call handed (or about to be handed) to this agent
    handling: ActiveCall | None = None
    after_call: bool = False  # the handed call ended; free when the server says idle
    wrap_started: dt.datetime | None = None
    acw_seen: bool = False
    bridged_at: dt.datetime | None = None  # the start of the agent's busy spell

    serves: str = ""  # the agents' queue: the seat's own, or the one a port dials for

    @property
    def is_port(self) -> bool:
        return self.info.role == "port"

    def dialable(self, now: dt.datetime) -> bool:
        if self.is_port:  # a port is busy on purpose; it is free when its line is
            return (self.logged_in and self.registered and self.call is None and not self.finishing
                    and self.server_idle)
        return (self.logged_in and self.registered and self.call is None and not self.parked
                and not self.finishing and self.handling is None and not self.after_call
                and not self.busy and self.server_idle
                and (self.wrap_until is None or now >= self.wrap_until))


@dataclass
class PredictiveQueue:
    """What the worker keeps per queue worked in predictive mode."""

    name: str
    est: pacing.Estimates = field(default_factory=pacing.Estimates)
    waiting: deque[ActiveCall] = field(default_factory=deque)  # answered, no agent yet, oldest first
    pickups: deque[float] = field(default_factory=lambda: deque(maxlen=200))  # transfer → agent answer (s)


@dataclass
class Stats:
    dials: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    free_to_dial: list[float] = field(default_factory=list)  # real seconds, for the benchmark


class Worker:
    def __init__(self, engine: Engine, options: WorkerOptions, *, handle_signals: bool = True) -> None:
        self.engine = engine
        self.opt = options
        self.clock = options.clock
        self.handle_signals = handle_signals
        self.seats: dict[str, SeatRun] = {}
        self.campaigns: list[Campaign] = []
        self.stats = Stats()
        self.draining = False
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        # One database thread, dispatch first: a claim never queues behind the outcomes waiting
        # to be written, and never waits for SQLite's write lock (no second writer to wait for).
        self._db = _PriorityExecutor("dialer-db")
        self._turn = itertools.count()
        self._finishing: set[asyncio.Task[None]] = set()
        self._window_open: dict[int, bool] = {}
        self._freed_at: dict[str, float] = {}
        self.scheduler: AsyncIOScheduler | None = None
        self.predictive: dict[str, PredictiveQueue] = {}
        self._counts: dict[int, db.AbandonCounts] = {}  # from the database, refreshed
        self._counted: dict[int, list[int]] = {}  # [abandoned, live] recorded since the refresh
        self._counts_at: dt.datetime | None = None

    # -- plumbing -------------------------------------------------------------------------------
    async def _call(self, fn: Callable[..., T], *args: Any, retries: int = 6, dispatch: bool = False,
                    **kwargs: Any) -> T:
        """Run a database function on a database thread; retry a locked or lost database."""
        delay = 0.1
        for attempt in range(retries):
            try:
                job = functools.partial(fn, self.engine, *args, **kwargs)
                return await asyncio.wrap_future(self._db.submit_first(job) if dispatch else self._db.submit(job))
            except DBAPIError as exc:
                if attempt == retries - 1:
                    raise
                log.warning("database busy or unreachable (%s); retrying in %.1fs",
                            str(exc.orig).splitlines()[0] if exc.orig else exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    def _real(self, seconds: float) -> float:
        return self.clock.real(seconds)

    def request_stop(self) -> None:
        """Begin a graceful stop (what SIGTERM and SIGINT do)."""
        if not self._stop.is_set():
            log.info("stopping: no new dials; calls in flight may finish")
        self._stop.set()
        self._wake.set()

    @property
    def calls_in_flight(self) -> int:
        return sum(1 for s in self.seats.values() if s.call is not None or s.handling is not None)

    # -- the run --------------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        if self.handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            await self._start()
            dispatcher = asyncio.create_task(self._dispatcher(), name="dispatcher")
            await self._stop.wait()
            self.draining = True
            self._wake.set()
            await dispatcher
            await self._drain()
        finally:
            await self._shutdown()
        return 0

    async def _start(self) -> None:
        now = self.clock.now()
        await self._call(db.register_worker, self.opt.worker_id, now)
        closed = await self._call(db.reconcile_dead_workers, self.opt.worker_id, now,
                                  dt.timedelta(seconds=self.opt.lease),
                                  dt.timedelta(seconds=self.opt.interrupted_retry), starting=True)
        if closed:
            log.warning("%d attempts left open by a stopped worker were marked interrupted", closed)
        self.campaigns = await self._call(db.load_campaigns, self.opt.campaigns)
        if not self.campaigns:
            what = ", ".join(self.opt.campaigns) if self.opt.campaigns else "no active campaign"
            raise WorkerError(f"nothing to work: {what} (dialer campaign list; dialer campaign resume NAME)")
        missing = set(self.opt.campaigns) - {c.name for c in self.campaigns}
        if missing:
            raise WorkerError(f"no campaign named {', '.join(sorted(missing))}")
        queues = sorted({c.queue for c in self.campaigns})
        infos = await self._call(db.lease_seats, self.opt.worker_id, queues, now, dt.timedelta(seconds=self.opt.lease),
                                 limit=self.opt.max_seats)
        if not infos:
            log.warning("no free agent seat in queue(s) %s (dialer agents list / dialer agents add)", ", ".join(queues))
        predictive = sorted({c.queue for c in self.campaigns if c.mode == "predictive"})
        serves: dict[str, str] = {}  # dialer port → the agents' queue it dials for
        if predictive:
            silent = [c.name for c in self.campaigns if c.mode == "predictive" and not c.abandon_ivr]
            if silent:
                raise WorkerError(f"predictive campaign(s) {', '.join(silent)} have no abandon message: an answered "
                                  "call no agent can take must hear one (dialer campaign update NAME --abandon-ivr NODE)")
            ports: dict[str, AgentRow] = {}
            pools: list[str] = []
            for qname in predictive:  # enough ports for the most calls the pacer may have up
                mine = [c for c in self.campaigns if c.queue == qname and c.mode == "predictive"]
                agents = sum(1 for i in infos if i.queue == qname)
                want = max(1, math.ceil(max(c.max_calls_per_agent for c in mine) * agents))
                pool = sorted({c.port_queue or qname for c in mine})  # the ports' own queue(s)
                pools += pool
                # a port queue may serve several agents' queues: the lease keeps this worker's
                # ports first, so asking for those already given out plus `want` takes `want` more
                given = sum(1 for row in ports.values() if row.queue in pool)
                held = await self._call(db.lease_seats, self.opt.worker_id, pool, now,
                                        dt.timedelta(seconds=self.opt.lease), roles=("port",),
                                        limit=given + want)
                # each lease returns every port this worker holds: this queue's are those of
                # its pool not given out yet
                for row in held:
                    if row.extension not in ports and row.queue in pool and want > 0:
                        ports[row.extension], serves[row.extension] = row, qname
                        want -= 1
            if not ports:
                raise WorkerError(f"predictive dialing needs dialer ports in queue(s) {', '.join(sorted(set(pools)))} "
                                  "(dialer agents add --role port)")
            infos = [*infos, *ports.values()]
            self.predictive = {q: PredictiveQueue(q) for q in predictive}
            await self._refresh_counts(now)
        for info in infos:
            seat = Seat(name=info.extension, heartbeat_interval=self.opt.cti_heartbeat,
                        backoff=self.opt.backoff or exponential_backoff(),
                        on_event=functools.partial(self._on_event, info.extension))
            self.seats[info.extension] = SeatRun(info, seat, serves=serves.get(info.extension, info.queue))
        await asyncio.gather(*(self._connect(run) for run in self.seats.values()))
        self.scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        _quiet_scheduler_shutdown()
        jobs: list[tuple[Callable[[], Any], float]] = [
            (self._refresh, self.opt.refresh_every), (self._reload, max(1.0, self.opt.dispatch_every)),
            (self._heartbeat, self.opt.lease / 4), (self._reconcile, self.opt.lease),
            (self._poke, self.opt.dispatch_every),
        ]
        if self.opt.inbox is not None:
            jobs.append((self._scan_inbox, 10.0))
        for fn, every in jobs:
            # the heartbeat must come several times per lease whatever the time scale
            floor = 0.02 if fn == self._heartbeat else 0.1
            self.scheduler.add_job(_quiet_on_shutdown(fn), "interval", seconds=max(floor, self._real(every)),
                                   max_instances=1, coalesce=True, misfire_grace_time=None, name=fn.__name__)
        self.scheduler.start()
        # Everything made so far lives as long as the worker: keep the cyclic collector from
        # walking it again and again (its full passes were tens of milliseconds with 500 seats).
        gc.freeze()
        log.info("worker %s: %d seats, campaigns %s", self.opt.worker_id, len(self.seats),
                 ", ".join(c.name for c in self.campaigns))

    async def _connect(self, run: SeatRun) -> None:
        info = run.info
        try:
            if not run.seat.connected:
                await run.seat.connect(self.opt.cti_url)
            if run.is_port:  # busy, so that the queue never offers it a caller; no after-call work
                acw, busy = p.AutoAcw.OFF, PORT_BUSY
            elif info.queue in self.predictive:  # agents take transferred (inbound) calls
                acw, busy = p.AutoAcw.ALL, ""
            else:
                acw, busy = p.AutoAcw.OUTBOUND, ""
            await run.seat.login(info.name or info.staffid, info.extension, info.queue, info.staffid,
                                 skill=info.skill, secname=info.sector, autoacw=int(acw), busy_string=busy)
            run.logged_in = True
            if run.is_port:
                run.server_idle = run.call is None
        except CTIError as exc:
            log.error("seat %s: %s; will retry", info.extension, exc)

    # -- events ---------------------------------------------------------------------------------
    def _on_event(self, extension: str, msg: p.Message) -> None:
        run = self.seats.get(extension)
        if run is None:
            return
        now = self.clock.now()
        if isinstance(msg, SeatLost):
            run.logged_in, run.server_idle = False, False
            log.warning("seat %s lost: %s", extension, msg.reason)
            if run.call is not None:
                self._lost(run, now, "the port's socket was lost")
            if run.handling is not None:
                self._agent_call_over(run, run.handling, now, "the agent's socket was lost")
            return
        if isinstance(msg, SeatRestored):
            run.logged_in = True
            if run.is_port:
                run.server_idle = run.call is None
            log.info("seat %s restored after %d attempt(s)", extension, msg.attempts)
            self._wake.set()
            return
        if run.is_port:
            self._on_port_event(run, msg, now)
            return
        if isinstance(msg, (p.BusyStatus, p.StatusChanged)):
            run.heard_at = asyncio.get_running_loop().time()
        if isinstance(msg, p.BusyStatus):
            run.busy = msg.busy
            run.server_idle = not msg.busy and run.call is None
            if not msg.busy and run.parked:
                run.parked, run.misses = False, 0
                log.info("seat %s is free again", extension)
            if not msg.busy:
                self._mark_free(run)
        elif isinstance(msg, p.StatusChanged):
            run.busy = msg.busy
            run.registered = msg.reg != "未注册"
            if not msg.busy and msg.call_state is p.CallState.IDLE and run.call is None:
                run.server_idle = True  # the server says: no call, no busy reason
                self._mark_free(run)
        if run.info.queue in self.predictive:
            self._on_agent_event(run, msg, now)
        if run.call is not None:
            self._ended(run, run.call.tracker.feed(msg, now))
            if run.call is not None:
                self._arm(run)

    def _ended(self, run: SeatRun, ended: bool) -> None:
        if not ended or run.call is None:
            return
        call, run.call = run.call, None
        run.finishing = True
        if call.timer:
            call.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._finish(run, call))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    def _arm(self, run: SeatRun) -> None:
        """(Re)arm the call's timer for the state it has reached."""
        call = run.call
        assert call is not None
        t = call.tracker
        key = (t.state, t.we_hung_up is not None)
        if call.armed_for == key:
            return
        call.armed_for = key
        if call.timer:
            call.timer.cancel()
            call.timer = None
        if t.we_hung_up is not None:
            seconds = self.opt.hangup_timeout
        else:
            seconds = {State.DIALLING: self.opt.agent_leg_timeout, State.AGENT_UP: self.opt.setup_timeout,
                       State.RINGING: float(max(call.campaign.ring_timeout, 15))}.get(t.state, 0.0)
        if seconds:
            call.timer = asyncio.get_running_loop().call_later(self._real(seconds), self._expire, run, call)

    def _expire(self, run: SeatRun, call: ActiveCall) -> None:
        """The call's timer ran out: hang up, or (already hung up) give up waiting for it."""
        if run.call is not call:
            return
        now = self.clock.now()
        t = call.tracker
        if t.we_hung_up is None:
            t.detail = t.detail or f"we hung up in state {t.state.value}"
            t.hang_up(Event.HANGUP, now)
            asyncio.get_running_loop().create_task(self._hangup(run))
            self._arm(run)
        else:
            self._ended(run, t.expire(Event.HANGUP_TIMEOUT, now))

    async def _hangup(self, run: SeatRun) -> None:
        try:
            await run.seat.hangup()
        except CTIError as exc:
            log.warning("seat %s: hangup not sent: %s", run.info.extension, exc)

    # -- predictive: ports, hand-over, abandonment ------------------------------------------------
    def _on_port_event(self, run: SeatRun, msg: p.Message, now: dt.datetime) -> None:
        """A dialer port's event: its line's state, and its call until the customer answers."""
        if isinstance(msg, p.StatusChanged):
            run.registered = msg.reg != "未注册"
            run.heard_at = asyncio.get_running_loop().time()
            if msg.call_state is p.CallState.IDLE and run.call is None:
                run.server_idle = True
                self._mark_free(run)
        call = run.call
        if call is None:
            return
        if call.phase == "dialling":
            ended = call.tracker.feed(msg, now)
            if ended:
                self._ended(run, True)
            elif call.tracker.state is State.TALKING:
                self._answered(run, call, now)
            else:
                self._arm(run)
            return
        if isinstance(msg, p.CommandResponse) and not msg.success:
            if msg.command in ("transfer", "transferQueue") and call.phase == "transferring":
                self._transfer_failed(call, msg.result_text or "refused", now)
            elif msg.command == "transferIvr" and call.phase == "ivr":
                log.warning("port %s: transferIvr refused (%s); hanging up", run.info.extension, msg.result_text)
                asyncio.get_running_loop().create_task(self._hangup(run))
        elif isinstance(msg, p.Hangup) and (not msg.callid or not call.tracker.callid or msg.callid == call.tracker.callid):
            self._port_line_gone(run, call, now, "the customer hung up while waiting for an agent")

    def _lost(self, run: SeatRun, now: dt.datetime, why: str) -> None:
        """The seat's call can no longer be followed (socket lost, worker stopping)."""
        assert run.call is not None
        if run.call.phase == "dialling":
            self._ended(run, run.call.tracker.expire(Event.LOST, now))
        else:  # a port's answered call
            self._port_line_gone(run, run.call, now, why)

    def _port_line_gone(self, run: SeatRun, call: ActiveCall, now: dt.datetime, why: str) -> None:
        """The port's leg of an answered call is over: handed on (transfer, IVR) or dropped."""
        run.call = None
        run.server_idle = False  # until the port's line reports idle
        if call.phase == "transferring":
            call.phase = "handed"  # the server moved the customer to the agent (or the queue)
        elif call.phase == "waiting":
            self._unwait(call)
            self._predictive_outcome(call, "abandoned", now, detail=why)
        if call.timer:
            call.timer.cancel()
        self._mark_free(run)

    def _answered(self, port: SeatRun, call: ActiveCall, now: dt.datetime) -> None:
        """The customer answered on a port: hand the call to a ready agent, or let it wait for one
        who frees up in time; past that it hears the abandon message."""
        if call.timer:  # the ring timeout is over with
            call.timer.cancel()
            call.timer = None
        q = self.predictive[call.queue]
        q.est.observe_dial_end(True, call.tracker.ring_seconds)
        self._count(call.campaign.id, live=1)
        agent = self._ready_agent(call.queue, now)
        if agent is not None:
            self._hand(call, agent)
        else:
            call.phase = "waiting"
            q.waiting.append(call)
            wait = max(0.0, ABANDON_AFTER - self._pickup_allowance(q))
            call.deadline = asyncio.get_running_loop().call_later(
                self._real(wait), self._abandon, call, f"no agent free within {ABANDON_AFTER:g} s")
        self._wake.set()

    @staticmethod
    def _pickup_allowance(q: PredictiveQueue) -> float:
        """How long before the 2 s limit the last transfer may start: the agents' quick (10th
        percentile) pickup, 0.3 s until 20 have been seen. A transfer whose pickup then runs past
        the 2 s still gives the customer an agent; it is recorded `answered_late` and counted as
        abandoned — exactly the calls the 2 s rule counts, no more."""
        if len(q.pickups) < 20:
            return 0.3
        ordered = sorted(q.pickups)
        return min(1.9, max(0.1, ordered[int(0.1 * (len(ordered) - 1))]))

    def _ready_agent(self, queue: str, now: dt.datetime) -> SeatRun | None:
        """The agent of `queue` free the longest, or None."""
        best, since = None, math.inf
        for run in self._agents_of(queue):
            if run.dialable(now):
                at = self._freed_at.get(run.info.extension, math.inf)
                if best is None or at < since:
                    best, since = run, at
        return best

    def _agents_of(self, queue: str) -> list[SeatRun]:
        return [r for r in self.seats.values() if not r.is_port and r.info.queue == queue]

    def _hand(self, call: ActiveCall, agent: SeatRun) -> None:
        """Reserve `agent` for `call` and transfer the customer to it."""
        if call.deadline:
            call.deadline.cancel()
        call.phase, call.agent = "transferring", agent
        agent.handling, agent.bridged_at = call, None
        self._freed_at.pop(agent.info.extension, None)
        loop = asyncio.get_running_loop()
        call.transferred_at = self.clock.now()
        # the agent must pick up: give up on the hand-over if nothing comes back
        call.deadline = loop.call_later(self._real(self.opt.agent_leg_timeout), self._handover_lost, call)
        loop.create_task(self._send_transfer(call))

    async def _send_transfer(self, call: ActiveCall) -> None:
        port, agent = call.port, call.agent
        assert port is not None and agent is not None
        try:
            if call.campaign.handover == "queue":
                await port.seat.transfer_queue(call.queue)
            else:
                await port.seat.transfer(agent.info.extension)
        except (CTIError, LocalProtocolError) as exc:
            if call.phase == "transferring":
                self._transfer_failed(call, str(exc), self.clock.now())

    def _transfer_failed(self, call: ActiveCall, why: str, now: dt.datetime) -> None:
        """The transfer was refused: the agent is not free after all. Try another while the
        2 s last, else the abandon message."""
        agent, call.agent = call.agent, None
        if call.deadline:
            call.deadline.cancel()
            call.deadline = None
        if agent is not None and agent.handling is call:
            agent.handling = None
            agent.server_idle = False  # the server says no; its next idle report says yes
            log.warning("seat %s: transfer refused (%s)", agent.info.extension, why)
        assert call.tracker.answered_at is not None
        q = self.predictive[call.queue]
        left = ABANDON_AFTER - self._pickup_allowance(q) - (now - call.tracker.answered_at).total_seconds()
        call.phase = "waiting"
        q.waiting.appendleft(call)
        if left <= 0:
            self._abandon(call, f"transfer refused ({why}), no other agent within {ABANDON_AFTER:g} s")
            return
        call.deadline = asyncio.get_running_loop().call_later(
            self._real(left), self._abandon, call, f"no agent free within {ABANDON_AFTER:g} s")
        self._serve(call.queue)

    def _handover_lost(self, call: ActiveCall) -> None:
        """No agent answered the transferred call in time and no hangup told us why."""
        agent = call.agent
        if call.phase not in ("transferring", "handed") or call.bridged_at is not None:
            return
        if agent is not None and agent.handling is call:
            self._agent_call_over(agent, call, self.clock.now(), "the transferred call never reached the agent")
        else:
            call.phase = "ended"
            self._predictive_outcome(call, "abandoned", self.clock.now(),
                                     detail="the transferred call never reached an agent")

    def _unwait(self, call: ActiveCall) -> None:
        if call.deadline:
            call.deadline.cancel()
            call.deadline = None
        waiting = self.predictive[call.queue].waiting
        if call in waiting:
            waiting.remove(call)

    def _abandon(self, call: ActiveCall, why: str) -> None:
        """No agent in time: the customer hears the campaign's message (transferIvr)."""
        if call.phase != "waiting":
            return
        self._unwait(call)
        call.phase = "ivr"
        node = call.campaign.abandon_ivr
        port = call.port
        assert port is not None
        asyncio.get_running_loop().create_task(self._send_ivr(port, node))
        self._predictive_outcome(call, "abandoned", self.clock.now(), detail=f"{why}: sent to IVR node {node}")

    async def _send_ivr(self, port: SeatRun, node: str) -> None:
        try:
            await port.seat.transfer_ivr(node)
        except (CTIError, LocalProtocolError) as exc:
            log.warning("port %s: transferIvr not sent (%s); hanging up", port.info.extension, exc)
            await self._hangup(port)

    def _serve(self, queue: str) -> None:
        """Hand waiting callers to agents who are free now, oldest caller first."""
        q = self.predictive.get(queue)
        if q is None:
            return
        now = self.clock.now()
        while q.waiting:
            agent = self._ready_agent(queue, now)
            if agent is None:
                return
            self._hand(q.waiting.popleft(), agent)

    def _on_agent_event(self, run: SeatRun, msg: p.Message, now: dt.datetime) -> None:
        """An agent of a predictive queue: the handed call's progress, and the end of its
        after-call work."""
        if isinstance(msg, (p.IncomingRinging, p.IncomingAnswered)):
            call = self._bind(run, msg.callid)
            if call is None:
                return
            if isinstance(msg, p.IncomingAnswered) and call.bridged_at is None:
                call.bridged_at = run.bridged_at = now
                call.phase = "handed"
                if call.deadline:
                    call.deadline.cancel()
                    call.deadline = None
                if call.transferred_at is not None:
                    self.predictive[call.queue].pickups.append((now - call.transferred_at).total_seconds())
            return
        if isinstance(msg, p.Hangup) and run.handling is not None:
            call = run.handling
            if msg.callid and call.tracker.callid and msg.callid != call.tracker.callid:
                return
            self._agent_call_over(run, call, now, "")
            return
        if run.after_call and isinstance(msg, p.BusyStatus) and msg.busy == ACW:
            run.acw_seen = True
        if run.after_call and not msg_busy(msg) and (
                isinstance(msg, p.BusyStatus) or (isinstance(msg, p.StatusChanged) and msg.call_state is p.CallState.IDLE)):
            self._after_call_over(run, now)

    def _bind(self, run: SeatRun, callid: str) -> ActiveCall | None:
        """The call ringing at `run`. With transferQueue the server picks the agent: the
        reservation moves to the one it picked."""
        mine = run.handling
        if mine is not None and (not callid or not mine.tracker.callid or mine.tracker.callid == callid):
            return mine
        call = next((c for r in self.seats.values() if (c := r.handling) is not None and c.tracker.callid == callid
                     and c.bridged_at is None), None) if callid else None
        if call is None:
            return mine
        other = call.agent
        run.handling, call.agent = call, run
        if other is not None and other is not run:
            other.handling = mine  # swap: the agent we had reserved takes this one's reservation
            if mine is not None:
                mine.agent = other
            else:
                self._mark_free(other)  # (after `run` is taken: it must not be handed another call)
        return call

    def _agent_call_over(self, run: SeatRun, call: ActiveCall, now: dt.datetime, why: str) -> None:
        """The agent's part of a handed call ended: record it; after-call work begins."""
        run.handling = None
        if call.deadline:
            call.deadline.cancel()
            call.deadline = None
        call.phase = "ended"
        campaign = call.campaign
        if call.bridged_at is not None:
            assert call.tracker.answered_at is not None
            wait = (call.bridged_at - call.tracker.answered_at).total_seconds()
            outcome = "answered_late" if wait > ABANDON_AFTER else "answered"
            detail = why or (f"bridged {wait:.1f} s after the answer" if outcome == "answered_late" else "")
            self._predictive_outcome(call, outcome, now, agent=run, detail=detail)
            run.misses = 0
            run.after_call, run.acw_seen, run.wrap_started = True, False, now
            run.wrap_until = now + dt.timedelta(seconds=campaign.wrap_up)  # the longest it may last
            if run.wrap_timer:
                run.wrap_timer.cancel()
            run.wrap_timer = asyncio.get_running_loop().call_later(
                self._real(campaign.wrap_up), lambda: asyncio.ensure_future(self._free(run)))
        else:
            self._predictive_outcome(call, "abandoned", now, agent=run,
                                     detail=why or "the agent did not pick up the transferred call")
            self._missed(run, "transferred calls")
            self._mark_free(run)

    async def _send_busy(self, run: SeatRun) -> None:
        try:
            await run.seat.busy(PARK_REASON)
        except CTIError as exc:
            log.warning("seat %s: busy not sent: %s", run.info.extension, exc)

    def _after_call_over(self, run: SeatRun, now: dt.datetime) -> None:
        """The server reports the agent idle again: its spell is over (the pacer learns how
        long it took)."""
        run.after_call = False
        if run.wrap_timer:
            run.wrap_timer.cancel()
            run.wrap_timer = None
        run.wrap_until = None
        q = self.predictive.get(run.info.queue)
        if q is not None:
            if run.acw_seen and run.wrap_started is not None:
                q.est.observe_wrap((now - run.wrap_started).total_seconds())
            if run.bridged_at is not None and run.wrap_started is not None:
                q.est.observe_talk((run.wrap_started - run.bridged_at).total_seconds(), run.acw_seen)
            if run.bridged_at is not None:
                q.est.observe_agent_busy((now - run.bridged_at).total_seconds())
        run.acw_seen, run.bridged_at, run.wrap_started = False, None, None
        self._mark_free(run)

    def _predictive_outcome(self, call: ActiveCall, outcome: str, now: dt.datetime, *, agent: SeatRun | None = None,
                            detail: str = "") -> None:
        """Record the outcome of an answered predictive call (in the background)."""
        if outcome in db.ABANDONED:
            self._count(call.campaign.id, abandoned=1)
        t = call.tracker
        talk = (now - call.bridged_at).total_seconds() if call.bridged_at is not None else None
        end = db.AttemptEnd(outcome, t.callid, call.dialled_at, t.agent_up_at, t.ringing_at, t.answered_at, now,
                            t.ring_seconds, talk, t.province, t.city, t.isp, detail, call.bridged_at,
                            agent.info.extension if agent is not None else "")
        task = asyncio.get_running_loop().create_task(self._write_outcome(call, end))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _write_outcome(self, call: ActiveCall, end: db.AttemptEnd) -> None:
        status = await self._store(call, end)
        log.info("%s %s → %s (%s) %s", call.campaign.name, call.contact.phone, end.outcome, status, end.detail)
        self._progress()

    def _count(self, campaign_id: int, *, abandoned: int = 0, live: int = 0) -> None:
        c = self._counted.setdefault(campaign_id, [0, 0])
        c[0] += abandoned
        c[1] += live

    async def _refresh_counts(self, now: dt.datetime) -> None:
        """Abandoned calls and live answers of the predictive campaigns, from the database (every
        worker's), over the last day and 30 days."""
        ids = [c.id for c in self.campaigns if c.mode == "predictive"]
        try:
            counts = await self._call(db.abandon_counts, ids, now)
        except DBAPIError as exc:
            log.error("abandonment counts not refreshed: %s", exc)
            return
        self._counts, self._counted, self._counts_at = counts, {}, now

    def abandonment(self) -> list[tuple[Campaign, db.AbandonCounts]]:
        """Each predictive campaign's abandoned calls and live answers over the last 24 hours
        and 30 days, as the pacer sees them (the database's, refreshed each minute, plus this
        worker's own since)."""
        out = []
        for c in self.campaigns:
            if c.mode != "predictive":
                continue
            base = self._counts.get(c.id, db.AbandonCounts())
            ab, live = self._counted.get(c.id, [0, 0])
            out.append((c, db.AbandonCounts(base.abandoned_day + ab, base.live_day + live,
                                            base.abandoned_30d + ab, base.live_30d + live)))
        return out

    def _pace(self, queue: str, now: dt.datetime) -> int:
        """How many calls the queue's pacer wants placed now."""
        q = self.predictive[queue]
        campaigns = [c for c in self.campaigns if c.queue == queue and c.mode == "predictive" and c.status == "active"]
        if not campaigns:
            return 0
        agents: list[pacing.AgentState] = []
        for run in self._agents_of(queue):
            if not run.logged_in:
                continue
            if run.handling is not None:
                since = run.bridged_at or now
                agents.append(pacing.AgentState("busy", (now - since).total_seconds()))
            elif run.after_call:
                agents.append(pacing.AgentState("wrap", (now - (run.wrap_started or now)).total_seconds()))
            elif run.dialable(now):
                agents.append(pacing.AgentState("ready"))
            else:
                agents.append(pacing.AgentState("other"))
        flight = [(now - (r.call.dialled_at or r.call.tracker.started)).total_seconds() for r in self.seats.values()
                  if r.is_port and r.serves == queue and r.call is not None and r.call.phase == "dialling"]
        ab1 = live1 = ab30 = live30 = 0
        for c, n in self.abandonment():
            if c in campaigns:
                ab1, live1 = ab1 + n.abandoned_day, live1 + n.live_day
                ab30, live30 = ab30 + n.abandoned_30d, live30 + n.live_30d
        closing = all(not self._open_at(c, now + dt.timedelta(seconds=max(c.ring_timeout, 15))) for c in campaigns)
        cfg = pacing.PacerConfig(target=min(c.abandon_target for c in campaigns),
                                 max_calls_per_agent=min(c.max_calls_per_agent for c in campaigns))
        snap = pacing.Snapshot(agents, flight, len(q.waiting), ab1, live1, ab30, live30, window_closing=closing)
        return self.opt.pacer(snap, q.est, cfg)

    @staticmethod
    def _open_at(c: Campaign, when: dt.datetime) -> bool:
        return window_of(c).is_open(when) or any(window_of(c, tz).is_open(when) for tz in c.contact_timezones)

    # -- dispatch -------------------------------------------------------------------------------
    async def _dispatcher(self) -> None:
        while not self.draining:
            try:
                await asyncio.wait_for(self._wake.wait(), self._real(self.opt.dispatch_every))
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if self.draining:
                return
            try:
                await self._dispatch_once()
            except DBAPIError as exc:
                log.error("dispatch skipped, database error: %s", str(exc.orig or exc).splitlines()[0])
            except Exception:
                log.exception("dispatch failed; going on")

    async def _dispatch_once(self) -> None:
        now = self.clock.now()
        free: dict[str, list[SeatRun]] = {}
        ports: dict[str, list[SeatRun]] = {}
        for run in self.seats.values():
            if run.dialable(now):
                if run.is_port:
                    ports.setdefault(run.serves, []).append(run)
                elif run.info.queue not in self.predictive:  # predictive agents take calls, not dial
                    free.setdefault(run.info.queue, []).append(run)
        turn = next(self._turn)

        def by_priority(active: list[Campaign]) -> list[Campaign]:
            # campaigns of equal priority take turns being first
            return sorted(active, key=lambda c: (-c.priority, (c.id + turn) % max(1, len(active))))

        work = []
        for qname, runs in free.items():
            active = by_priority([c for c in self.campaigns if c.queue == qname and c.status == "active"])
            if active:
                work.append((active, [r.info.extension for r in runs]))
        for qname in self.predictive:
            self._serve(qname)
            idle_ports = ports.get(qname, [])
            if not idle_ports:
                continue
            n = min(self._pace(qname, now), len(idle_ports))
            active = by_priority([c for c in self.campaigns if c.queue == qname and c.status == "active"
                                  and c.mode == "predictive"])
            if n > 0 and active:
                work.append((active, [r.info.extension for r in idle_ports[:n]]))
        if not work or self.draining:
            return
        started = await self._call(db.claim_for_queues, self.opt.worker_id, work, now,
                                   dt.timedelta(seconds=self.opt.lease), dispatch=True)
        await asyncio.gather(*(self._dial(self.seats[st.seat], campaign, st) for campaign, st in started))

    async def _dial(self, run: SeatRun, campaign: Campaign, started: db.Started) -> None:
        now = self.clock.now()
        contact = started.contact
        if not run.dialable(now) or self.draining:  # the seat changed while the claim ran
            run.call = ActiveCall(started.attempt_id, contact, campaign, CallTracker(started=now))
            self._ended(run, run.call.tracker.expire(Event.LOST, now))
            return
        run.call = ActiveCall(started.attempt_id, contact, campaign, CallTracker(started=now))
        if run.is_port:
            run.call.port, run.call.queue = run, run.serves
        run.server_idle = False
        freed = self._freed_at.pop(run.info.extension, None)
        if freed is not None:
            self.stats.free_to_dial.append(asyncio.get_running_loop().time() - freed)
        self._arm(run)
        try:
            await run.seat.dial(started.dial_string, cusid=contact.customer_id or str(contact.id),
                                cusname=contact.name, proid=str(campaign.id), proname=campaign.name)
        except (CTIError, LocalProtocolError) as exc:
            if run.call is not None and run.call.attempt_id == started.attempt_id:
                run.call.tracker.detail = f"dial not sent: {exc}"
                self._ended(run, run.call.tracker.expire(Event.LOST, self.clock.now()))
            return
        if run.call is not None and run.call.attempt_id == started.attempt_id:
            run.call.dialled_at = self.clock.now()
        self.stats.dials += 1

    async def _finish(self, run: SeatRun, call: ActiveCall) -> None:
        try:
            await self._record(run, call)
        finally:
            run.finishing = False
            self._mark_free(run)

    async def _record(self, run: SeatRun, call: ActiveCall) -> None:
        t = call.tracker
        outcome = t.outcome
        now = t.ended_at or self.clock.now()
        end = db.AttemptEnd(outcome, t.callid, call.dialled_at, t.agent_up_at, t.ringing_at, t.answered_at, now,
                            t.ring_seconds, t.talk_seconds, t.province, t.city, t.isp, t.detail,
                            bridged_at=t.answered_at)  # click-to-dial: the agent is on the line already
        status = await self._store(call, end)
        log.info("seat %s: %s %s → %s (%s)", run.info.extension, call.campaign.name, call.contact.phone, outcome,
                 status)
        if run.is_port:  # a predictive call that never reached a customer
            if call.queue in self.predictive and outcome not in ("agent_no_answer", "interrupted"):
                self.predictive[call.queue].est.observe_dial_end(False, None)
            self._progress()
            return
        if outcome == "agent_no_answer":
            self._missed(run, "dials")
        elif outcome != "interrupted":
            run.misses = 0
        wrap_up = call.campaign.wrap_up
        if outcome == "answered" and wrap_up > 0:
            run.wrap_until = now + dt.timedelta(seconds=wrap_up)
            run.wrap_timer = asyncio.get_running_loop().call_later(
                self._real(wrap_up), lambda: asyncio.ensure_future(self._free(run)))
        else:
            run.wrap_until = None
            await self._free(run)
        self._progress()

    async def _store(self, call: ActiveCall, end: db.AttemptEnd) -> str:
        """Write a call's outcome and what it means for its contact; the contact's new status."""
        contact, campaign = call.contact, call.campaign
        assert end.ended_at is not None
        retry = decide_retry(end.outcome, attempts=contact.attempts, free_misses=contact.free_misses,  # type: ignore[arg-type]
                             max_attempts=campaign.max_attempts, delays=campaign.retry_delays,
                             window=window_of(campaign, contact.timezone), now=end.ended_at)
        self.stats.outcomes[end.outcome] = self.stats.outcomes.get(end.outcome, 0) + 1
        try:
            await self._call(db.finish_attempt, call.attempt_id, contact.id, end, retry)
        except DBAPIError as exc:
            log.error("attempt %s (%s): outcome %s NOT recorded: %s; it will be marked interrupted at the "
                      "next start", call.attempt_id, contact.phone, end.outcome, exc)
        return retry.status

    def _progress(self) -> None:
        if self.opt.on_progress:
            self.opt.on_progress(self)
        self._wake.set()

    def _missed(self, run: SeatRun, what: str) -> None:
        """The agent did not pick up: after `MISSES_BEFORE_PARK` in a row the seat is set busy
        until the agent frees it."""
        run.misses += 1
        if run.misses >= MISSES_BEFORE_PARK and not run.parked:
            run.parked = True
            log.warning("seat %s (%s): %d %s in a row not picked up; set busy (%s) until the agent frees it",
                        run.info.extension, run.info.name, run.misses, what, PARK_REASON)
            asyncio.get_running_loop().create_task(self._send_busy(run))

    async def _free(self, run: SeatRun) -> None:
        """End the seat's after-call work (ours, and the server's 话后 if it set one)."""
        run.wrap_until = None
        if (run.busy == ACW or run.after_call) and not run.parked and run.logged_in:
            try:
                await run.seat.idle()
            except CTIError as exc:
                log.warning("seat %s: idle not sent: %s", run.info.extension, exc)
        self._mark_free(run)

    def _mark_free(self, run: SeatRun) -> None:
        """The seat may have become dialable: note when (for the free → dial delay) and wake
        the dispatcher."""
        if run.dialable(self.clock.now()):
            self._freed_at.setdefault(run.info.extension, asyncio.get_running_loop().time())
            if not run.is_port and run.info.queue in self.predictive:
                self._serve(run.info.queue)  # a caller may be waiting for just this agent
        else:
            self._freed_at.pop(run.info.extension, None)
        self._wake.set()

    # -- periodic jobs --------------------------------------------------------------------------
    def _poke(self) -> None:
        self._wake.set()

    async def _refresh(self) -> None:
        """Ask the server which seats of each queue are idle; log in seats that are out."""
        if self.draining:
            return
        for run in list(self.seats.values()):
            if not run.logged_in and not self.draining and run.seat.connected is False and run.seat._restorer is None:
                await self._connect(run)
        by_queue: dict[str, list[SeatRun]] = {}
        for run in self.seats.values():
            by_queue.setdefault(run.info.queue, []).append(run)
        for qname, runs in by_queue.items():
            asker = next((r for r in runs if r.logged_in and not r.is_port), None)
            if asker is None or self.draining:
                continue
            asked = asyncio.get_running_loop().time()
            try:
                records = await asker.seat.extension_list(p.ExtensionListType.AGENT_IDLE, queue=qname)
            except CTIError as exc:
                log.warning("agent state refresh for queue %s failed: %s", qname, exc)
                continue
            idle = {r.exten for r in records}
            for run in runs:
                if run.heard_at > asked or run.is_port:
                    continue  # the seat's own events since the question are fresher than the answer
                run.server_idle = run.info.extension in idle and run.call is None
                self._mark_free(run)
        self._wake.set()

    async def _reload(self) -> None:
        """Pick up campaign changes, note windows opening and closing, and stop when done."""
        try:
            fresh = await self._call(db.load_campaigns, self.opt.campaigns or tuple(c.name for c in self.campaigns))
        except DBAPIError as exc:
            log.error("campaign reload failed: %s", exc)
            return
        self.campaigns = fresh  # the same campaigns, by name, with their current settings and status
        now = self.clock.now()
        for c in self.campaigns:
            is_open = self._open_at(c, now)
            if self._window_open.get(c.id) != is_open:
                log.info("campaign %s: calling window %s", c.name, "open" if is_open else "closed")
                self._window_open[c.id] = is_open
                self._wake.set()
        if self.predictive and (self._counts_at is None or now - self._counts_at >= dt.timedelta(seconds=60)):
            await self._refresh_counts(now)
        if self.opt.until_done and not self.draining and self.calls_in_flight == 0 and not self._finishing:
            left = await self._call(db.dialable_left, [c.id for c in self.campaigns], now)
            if left == 0 and self.calls_in_flight == 0:
                log.info("every contact is worked out; stopping")
                self.request_stop()

    async def _heartbeat(self) -> None:
        try:
            await self._call(db.heartbeat, self.opt.worker_id, self.clock.now(), dt.timedelta(seconds=self.opt.lease))
        except DBAPIError as exc:
            log.error("heartbeat not written: %s", exc)

    async def _reconcile(self) -> None:
        try:
            closed = await self._call(db.reconcile_dead_workers, self.opt.worker_id, self.clock.now(),
                                      dt.timedelta(seconds=self.opt.lease),
                                      dt.timedelta(seconds=self.opt.interrupted_retry))
        except DBAPIError as exc:
            log.error("reconcile failed: %s", exc)
            return
        if closed:
            log.warning("%d attempts of a dead worker were marked interrupted", closed)

    async def _scan_inbox(self) -> None:
        from dialer.inbox import scan_inbox

        assert self.opt.inbox is not None
        for campaign in self.campaigns:
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, scan_inbox, self.engine, campaign.name, self.opt.inbox / campaign.name, self.opt.worker_id)
            except Exception:
                log.exception("inbox of campaign %s: scan failed; going on", campaign.name)

    # -- stopping -------------------------------------------------------------------------------
    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.opt.drain_timeout
        while self.calls_in_flight and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if self.calls_in_flight:
            log.warning("drain timeout: hanging up %d call(s)", self.calls_in_flight)
            now = self.clock.now()
            for run in self.seats.values():
                if run.call is not None:
                    run.call.tracker.detail = "hung up at shutdown"
                    run.call.tracker.hang_up(Event.LOST, now)
                if run.call is not None or run.handling is not None:
                    await self._hangup(run)
            grace = loop.time() + max(0.5, self._real(self.opt.hangup_timeout))
            while self.calls_in_flight and loop.time() < grace:
                await asyncio.sleep(0.02)
            now = self.clock.now()
            for run in self.seats.values():
                if run.call is not None:
                    self._lost(run, now, "hung up at shutdown")
                if run.handling is not None:
                    self._agent_call_over(run, run.handling, now, "hung up at shutdown")
        if self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)

    async def _shutdown(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for run in self.seats.values():
            if run.wrap_timer:
                run.wrap_timer.cancel()

        async def leave(run: SeatRun) -> None:
            try:
                if run.logged_in:
                    await asyncio.wait_for(run.seat.logout(), 2)
            except (CTIError, asyncio.TimeoutError):
                pass
            await run.seat.close()

        await asyncio.gather(*(leave(r) for r in self.seats.values()))
        try:
            await asyncio.shield(self._call(db.unregister_worker, self.opt.worker_id))
        except DBAPIError as exc:
            log.error("leases not given back (they expire by themselves): %s", exc)
        self._db.shutdown(wait=True)


class _PriorityExecutor(Executor):
    """One thread running submitted calls in order, except that `submit_first` calls jump the
    queue (they wait at most for the call in progress)."""

    def __init__(self, name: str) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
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

    def _put(self, priority: int, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((priority, next(self._seq), (future, fn)))
        return future

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return self._put(1, functools.partial(fn, *args, **kwargs))

    def submit_first(self, fn: Callable[[], T]) -> Future[T]:
        return self._put(0, fn)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._queue.put((2, next(self._seq), None))
        if wait:
            self._thread.join()

