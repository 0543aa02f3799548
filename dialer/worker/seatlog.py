"""What each seat is doing, kept as rows: a `seat_events` row per change of state (the agents
report), and a `worker_status` row with the whole picture every few seconds (`dialer status`).

Theory of operation
-------------------
`seat_state` reads a seat's state off what the worker already keeps (`SeatRun`): logged in or
not, its call and the call's phase, after-call work, a busy reason. `_note_seat` is called
wherever that can change (an event from the server, a dial, a call's end, the end of wrap-up, a
seat let go) and, when the state differs from the last one noted, buffers a row stamped with the
worker's clock. The buffer is written in batches on the background lane; while the database is
away it keeps up to `MAX_BUFFERED` rows (the oldest are dropped past that, and counted).

The status row is written every `status_every` seconds, and soon after an agent's seat changes
state (at most one row every `STATUS_GAP` real seconds): the console's wallboard shows a change
within a couple of seconds (dialer/web/live.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from dialer.handover import Phase
from dialer.store import seatlog as store
from dialer.store.models import OUT_STATES
from dialer.worker.handover import ACW
from dialer.worker.lanes import TRANSIENT, describe
from dialer.worker.state import SeatRun

if TYPE_CHECKING:
    from dialer.worker.daemon import Worker as _Base
else:
    _Base = object

log = logging.getLogger(__name__)

MAX_BUFFERED = 100_000
#: real seconds between status rows, at least (an agent's change brings the next one forward)
STATUS_GAP = 1.0


def seat_state(run: SeatRun, now: dt.datetime) -> tuple[str, str]:
    """(state, busy reason) of a seat: one of models.SEAT_STATES."""
    if not run.logged_in:  # logged out on purpose (let go), or its socket lost (being restored)
        return ("logged_out", "") if run.released else ("lost", "")
    if not run.registered:
        return "lost", "softphone not registered"
    call = run.call if run.call is not None else run.handling
    if call is not None:
        if run.is_port or run.call is not None:
            talking = call.tracker.answered_at is not None
        else:  # an agent reserved for a caller: talking once the transfer reached it
            talking = call.bridged_at is not None or call.phase is Phase.HANDED
        return ("talking" if talking else "dialling"), ""
    if run.is_port:
        return "ready", ""
    if run.after_call or run.busy == ACW or (run.wrap_until is not None and now < run.wrap_until):
        return "wrap", ""
    if run.busy:
        return "busy", run.busy[:64]
    return "ready", ""


class SeatLog(_Base):
    """Seat events and the status row (a mixin of `Worker`)."""

    _status_soon: asyncio.TimerHandle | None = None  # an early status row (an agent changed)
    _status_written = 0.0  # loop time of the last status row begun
    _write_lock: asyncio.Lock | None = None  # one write of the seat log at a time (in order)
    _seat_log_closed = False  # the final write has begun: nothing is written after it

    def _note_seat(self, run: SeatRun, at: dt.datetime | None = None) -> None:
        now = at or self.clock.now()
        self._enter(run, *seat_state(run, now), now)

    def _seat_gone(self, run: SeatRun) -> None:
        """The seat is logged out and let go."""
        if run.info.extension in self._seat_state:
            self._enter(run, "logged_out", "", self.clock.now())

    def _enter(self, run: SeatRun, state: str, reason: str, now: dt.datetime) -> None:
        """The seat is in `state` from `now`: a row when that is a change (a login session starts
        where the seat leaves the out states, and ends where it enters them)."""
        ext = run.info.extension
        last = self._seat_state.get(ext)
        if last is not None and last[0] == state and last[1] == reason:
            return
        was_in = last is not None and last[0] not in OUT_STATES
        is_in = state not in OUT_STATES
        if last is None and not is_in:
            return  # never logged in: nothing to say
        self._seat_state[ext] = (state, reason, now)
        if run.info.role != "port":
            self._status_row_soon()
        self._seat_rows.append({"at": now, "worker_id": self.opt.worker_id, "extension": ext,
                                "queue": run.serves or run.info.queue, "role": run.info.role, "state": state,
                                "reason": reason, "session": is_in - was_in})
        if len(self._seat_rows) > MAX_BUFFERED:
            del self._seat_rows[: len(self._seat_rows) - MAX_BUFFERED]
            self._seat_rows_dropped += 1

    def _status_row_soon(self) -> None:
        """Write the status row soon: STATUS_GAP after the last one, or in 0.2 s."""
        if self._status_soon is not None or self._seat_log_closed or getattr(self, "lanes", None) is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        wait = max(0.2, STATUS_GAP - (loop.time() - self._status_written))
        self._status_soon = loop.call_later(wait, self._status_row_now)

    def _status_row_now(self) -> None:
        self._status_soon = None
        if not self._seat_log_closed:
            self._spawn(self._write_seat_log(), "status row")

    def _note_all_seats(self) -> None:
        """The periodic look: states that change by the clock alone (the end of wrap-up)."""
        now = self.clock.now()
        for run in list(self.seats.values()):
            at = None
            if run.wrap_until is not None and run.wrap_until <= now and not run.after_call:
                at = run.wrap_until
            self._note_seat(run, at)

    async def _write_seat_log(self) -> None:
        """The buffered seat events, then this worker's status row. One write at a time: the
        early write and the periodic one never overlap, so rows put back after a failure keep
        their order."""
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        async with self._write_lock:
            await self._write_seat_log_now()

    async def _write_seat_log_now(self) -> None:
        self._status_written = asyncio.get_running_loop().time()
        self._note_all_seats()
        rows, self._seat_rows = self._seat_rows, []
        status = self.status_body()
        try:
            await self.lanes.call("background", store.write, rows, self.opt.worker_id, _HOST, os.getpid(),
                                  self._started_at, _wall(), status, False)
        except TRANSIENT as exc:
            self._seat_rows[:0] = rows  # kept, in order, for the next try
            log.debug("seat events not written: %s", describe(exc))

    async def _final_seat_log(self) -> None:
        """At shutdown: the seats' last states and the status row marked stopped."""
        self._seat_log_closed = True
        if self._status_soon is not None:
            self._status_soon.cancel()
            self._status_soon = None
        for run in list(self.seats.values()):
            self._seat_gone(run)
        rows, self._seat_rows = self._seat_rows, []
        try:
            await self.lanes.call("background", store.write, rows, self.opt.worker_id, _HOST, os.getpid(),
                                  self._started_at, _wall(), self.status_body(), True, timeout=5)
        except TRANSIENT as exc:
            log.warning("%d seat event(s) not written at the stop: %s", len(rows), describe(exc))

    def status_body(self) -> dict[str, Any]:
        """What `dialer status` shows of this worker (JSON-able). Its times are wall-clock times
        (the row's own, and each seat's `since`), so that any machine reads them against its own
        clock, whatever time scale the worker runs at; the seat events keep the worker's clock."""
        now, wall = self.clock.now(), _wall()
        seats = []
        for ext, run in sorted(self.seats.items()):
            state, reason = seat_state(run, now)
            since = self._seat_state.get(ext, (state, reason, now))[2]
            since_wall = wall - dt.timedelta(seconds=self._real(max(0.0, (now - since).total_seconds())))
            seats.append({"extension": ext, "name": run.info.name, "queue": run.serves or run.info.queue,
                          "role": run.info.role, "state": state, "reason": reason, "since": since_wall.isoformat()})
        queues: dict[str, dict[str, Any]] = {}
        for run in self.seats.values():
            q = queues.setdefault(run.serves or run.info.queue, {"calls": 0, "waiting": 0, "level": None})
            q["calls"] += run.call is not None
        for name, pq in self.predictive.items():
            q = queues.setdefault(name, {"calls": 0, "waiting": 0, "level": None})
            q["waiting"] = len(pq.waiting)
            q["level"] = self.pacing_level(name)
        return {"seats": seats, "queues": queues, "campaigns": [c.name for c in self.campaigns],
                "calls": self.calls_in_flight, "may_dial": self.may_dial, "outbox": len(self.outbox),
                "dials": self.stats.dials, "lag": round(self.lag, 4), "draining": self.draining}

    def pacing_level(self, queue: str) -> float | None:
        """Calls in flight on the queue's ports per ready agent (None: no ready agent)."""
        calls = sum(1 for r in self.seats.values() if r.is_port and r.serves == queue and r.call is not None)
        now = self.clock.now()
        ready = sum(1 for r in self.seats.values() if not r.is_port and r.info.queue == queue
                    and seat_state(r, now)[0] == "ready")
        return round(calls / ready, 2) if ready else None


_HOST = socket.gethostname()[:128]


def _wall() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
