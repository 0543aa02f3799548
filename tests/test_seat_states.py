"""What the worker writes of its seats: each seat's state as read off the worker's own record
(`seat_state`), a row per change with the login sessions marked, rows kept through a database
outage, and the status row in wall-clock time."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from dialer.clock import Clock
from dialer.handover import Phase
from dialer.outcomes import CallTracker
from dialer.store.repo import AgentRow
from dialer.worker.handover import ACW
from dialer.worker.seatlog import SeatLog, seat_state
from dialer.worker.state import ActiveCall, SeatRun

T0 = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.timezone.utc)


def run(role: str = "agent", **state) -> SeatRun:
    r = SeatRun(AgentRow("1001", "王芳", "6001", "kefu", role=role), seat=SimpleNamespace(connected=True))
    r.logged_in = True
    for k, v in state.items():
        setattr(r, k, v)
    return r


def call(answered: bool = False, phase: Phase = Phase.DIALLING, bridged: bool = False) -> ActiveCall:
    tracker = CallTracker(started=T0)
    if answered:
        tracker.answered_at = T0
    c = ActiveCall(1, None, None, tracker)  # type: ignore[arg-type]
    c.phase = phase
    c.bridged_at = T0 if bridged else None
    return c


@pytest.mark.parametrize("seat, expected", [
    (run(logged_in=False), ("lost", "")),  # its socket is down, the worker restores it
    (run(logged_in=False, released=True), ("logged_out", "")),
    (run(registered=False), ("lost", "softphone not registered")),
    (run(), ("ready", "")),
    (run(call=call()), ("dialling", "")),
    (run(call=call(answered=True)), ("talking", "")),
    (run(handling=call(phase=Phase.TRANSFERRING)), ("dialling", "")),  # a caller on the way to it
    (run(handling=call(phase=Phase.HANDED, bridged=True)), ("talking", "")),
    (run(after_call=True), ("wrap", "")),
    (run(busy=ACW), ("wrap", "")),
    (run(wrap_until=T0 + dt.timedelta(seconds=5)), ("wrap", "")),
    (run(wrap_until=T0), ("ready", "")),  # wrap-up over at T0
    (run(busy="午餐"), ("busy", "午餐")),
    (run("port", busy="外呼端口"), ("ready", "")),  # a port is busy on purpose
    (run("port", call=call(answered=True)), ("talking", "")),
])
def test_seat_state(seat, expected) -> None:
    assert seat_state(seat, T0) == expected


class Log(SeatLog):
    """SeatLog on a stand-in worker: a clock, seats, and a database call that may fail."""

    def __init__(self, fail: bool = False) -> None:
        self.clock = Clock(scale=0.01, origin=T0)
        self.opt = SimpleNamespace(worker_id="w1")
        self.seats: dict[str, SeatRun] = {}
        self.campaigns, self.predictive, self.draining, self.lag = [], {}, False, 0.0
        self.stats = SimpleNamespace(dials=0)
        self.outbox, self.calls_in_flight, self.may_dial = [], 0, True
        self._seat_state, self._seat_rows, self._seat_rows_dropped = {}, [], 0
        self._started_at = dt.datetime.now(dt.timezone.utc)
        self.written: list[tuple] = []
        self.fail = fail

        async def call(lane, fn, *args, **kw):
            if self.fail:
                raise OperationalError("x", {}, Exception("database is locked"))
            self.written.append(args)

        self.lanes = SimpleNamespace(call=call)

    def _real(self, seconds: float) -> float:
        return self.clock.real(seconds)


async def test_a_row_per_change_and_sessions_marked() -> None:
    log = Log()
    seat = run(logged_in=False)
    log.seats["6001"] = seat
    log._note_seat(seat)
    assert log._seat_rows == []  # never logged in: nothing to say
    seat.logged_in = True
    log._note_seat(seat)
    log._note_seat(seat)  # no change: no row
    seat.busy = "午餐"
    log._note_seat(seat)
    seat.logged_in = False  # the socket dropped
    log._note_seat(seat)
    seat.logged_in, seat.busy = True, ""
    log._note_seat(seat)
    log._seat_gone(seat)
    assert [(r["state"], r["reason"], r["session"]) for r in log._seat_rows] == [
        ("ready", "", 1), ("busy", "午餐", 0), ("lost", "", -1), ("ready", "", 1), ("logged_out", "", -1)]


async def test_rows_are_kept_while_the_database_is_away() -> None:
    log = Log(fail=True)
    seat = run()
    log.seats["6001"] = seat
    log._note_seat(seat)
    seat.busy = "午餐"
    log._note_seat(seat)
    await log._write_seat_log()
    assert [r["state"] for r in log._seat_rows] == ["ready", "busy"]  # kept, in order
    log.fail = False
    seat.busy = ""
    log._note_seat(seat)
    await log._write_seat_log()
    rows, worker, *_ = log.written[0]
    assert [r["state"] for r in rows] == ["ready", "busy", "ready"] and worker == "w1"
    assert log._seat_rows == []


async def test_the_status_row_is_in_wall_clock_time() -> None:
    """The worker runs 100 times faster than the clock: a seat ready for 100 simulated seconds
    has been so for one real second, and the status row says so in wall-clock time."""
    log = Log()
    seat = run()
    log.seats["6001"] = seat
    log._note_seat(seat, at=log.clock.now() - dt.timedelta(seconds=100))
    body = log.status_body()
    since = dt.datetime.fromisoformat(body["seats"][0]["since"])
    ago = (dt.datetime.now(dt.timezone.utc) - since).total_seconds()
    assert 0.9 < ago < 30, ago
    await log._write_seat_log()
    *_, at, status, stopped = log.written[0]
    assert abs((dt.datetime.now(dt.timezone.utc) - at).total_seconds()) < 30 and not stopped
    assert status["seats"][0]["state"] == "ready"
