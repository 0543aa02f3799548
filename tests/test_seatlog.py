"""The worker's seat log (dialer/worker/seatlog.py) row by row, without a server or a database:
a seat's state read off its `SeatRun`, a `seat_events` row per change and only per change, the
login session's +1/-1, the wrap-up's end stamped when it ended, the buffer, and the status body.

Times are whole seconds after T; each expected row is written out by hand."""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace

import pytest

from dialer.handover import Phase
from dialer.store.repo import AgentRow
from dialer.worker import seatlog
from dialer.worker.handover import ACW
from dialer.worker.seatlog import SeatLog, seat_state
from dialer.worker.state import SeatRun

T = dt.datetime(2026, 3, 7, 1, 0, tzinfo=dt.timezone.utc)


def at(s: float) -> dt.datetime:
    return T + dt.timedelta(seconds=s)


class Clock:
    def __init__(self) -> None:
        self.t = T

    def now(self) -> dt.datetime:
        return self.t


class Lanes:
    """The background lane: records what it was given, or fails as the database would."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.fail = False

    async def call(self, lane, fn, *args, **kw):
        if self.fail:
            raise OSError("database away")
        self.calls.append(args)


class FakeWorker(SeatLog):
    def __init__(self) -> None:
        self.clock = Clock()
        self.opt = SimpleNamespace(worker_id="w1")
        self.seats: dict[str, SeatRun] = {}
        self.predictive: dict = {}
        self.campaigns: list = []
        self.calls_in_flight = 0
        self.may_dial = True
        self.outbox: list = []
        self.stats = SimpleNamespace(dials=0)
        self.lag = 0.0
        self.draining = False
        self.lanes = Lanes()
        self._seat_state: dict = {}
        self._seat_rows: list = []
        self._seat_rows_dropped = 0
        self._started_at = T

    def _real(self, seconds: float) -> float:  # (time scale 1)
        return seconds

    def seat(self, ext: str, role: str = "agent", queue: str = "q") -> SeatRun:
        run = SeatRun(info=AgentRow(staffid=ext, name=f"n{ext}", extension=ext, queue=queue, role=role), seat=None)
        run.serves = queue
        self.seats[ext] = run
        return run

    def note(self, run: SeatRun, s: float, **change) -> None:
        self.clock.t = at(s)
        for k, v in change.items():
            setattr(run, k, v)
        self._note_seat(run)

    def rows(self) -> list[tuple]:
        return [(int((r["at"] - T).total_seconds()), r["extension"], r["state"], r["reason"], r["session"])
                for r in self._seat_rows]


def call(answered: bool = False, *, bridged: bool = False, phase: Phase = Phase.DIALLING) -> SimpleNamespace:
    return SimpleNamespace(tracker=SimpleNamespace(answered_at=T if answered else None),
                           bridged_at=T if bridged else None, phase=phase)


def test_one_row_per_change_and_the_login_session() -> None:
    w = FakeWorker()
    run = w.seat("6001")
    w.note(run, 0)                                        # not logged in yet: nothing to say
    w.note(run, 1, logged_in=True)                        # ready: the session starts
    w.note(run, 2)                                        # no change: no row
    w.note(run, 3, call=call())                           # dialling
    w.note(run, 4, call=call(answered=True))              # talking
    w.note(run, 5, call=None, wrap_until=at(35))          # wrap-up
    w.note(run, 40, wrap_until=None, busy="午餐")          # busy with a reason
    w.note(run, 41, busy="培训")                            # another reason: a row of its own
    w.note(run, 42, busy="培训")                            # the same: none
    w.note(run, 50, busy="")                              # ready
    w.note(run, 60, logged_in=False, released=True)       # logged out on purpose: the session ends
    w.clock.t = at(61)
    w._seat_gone(run)                                     # let go: logged out already, no second row
    assert w.rows() == [
        (1, "6001", "ready", "", 1), (3, "6001", "dialling", "", 0), (4, "6001", "talking", "", 0),
        (5, "6001", "wrap", "", 0), (40, "6001", "busy", "午餐", 0), (41, "6001", "busy", "培训", 0),
        (50, "6001", "ready", "", 0), (60, "6001", "logged_out", "", -1)]
    assert sum(r[4] for r in w.rows()) == 0


def test_a_lost_seat_ends_its_session_once() -> None:
    """Lost (socket gone) ends the session (-1); being let go afterwards is a row with 0; an
    unregistered softphone is lost too, with its reason."""
    w = FakeWorker()
    run = w.seat("6002")
    w.note(run, 0, logged_in=True)
    w.note(run, 10, logged_in=False)                      # the socket lost: not released
    w.note(run, 20, logged_in=True)                       # back: a new session
    w.note(run, 30, registered=False)                     # softphone unregistered
    w.clock.t = at(40)
    w._seat_gone(run)
    assert w.rows() == [(0, "6002", "ready", "", 1), (10, "6002", "lost", "", -1), (20, "6002", "ready", "", 1),
                        (30, "6002", "lost", "softphone not registered", -1), (40, "6002", "logged_out", "", 0)]
    assert sum(r[4] for r in w.rows()) == 0


def test_let_go_while_logged_in_ends_the_session() -> None:
    w = FakeWorker()
    run = w.seat("6003")
    w.note(run, 0, logged_in=True)
    w.clock.t = at(5)
    w._seat_gone(run)
    w._seat_gone(run)  # twice: one row
    assert w.rows() == [(0, "6003", "ready", "", 1), (5, "6003", "logged_out", "", -1)]


def test_wrap_up_ends_at_its_time_and_is_stamped_then() -> None:
    run = SeatRun(info=AgentRow(staffid="a", name="a", extension="6001"), seat=None, logged_in=True,
                  wrap_until=at(30))
    assert seat_state(run, at(29.999)) == ("wrap", "")
    assert seat_state(run, at(30)) == ("ready", "")  # the wrap-up ends at wrap_until, not a tick later
    run.wrap_until, run.busy = None, ACW
    assert seat_state(run, at(100)) == ("wrap", "")  # the server's after-call work
    run.busy, run.after_call = "", True
    assert seat_state(run, at(100)) == ("wrap", "")
    # the periodic look sees the end of a wrap-up 15 s late: its row says when it ended
    w = FakeWorker()
    run = w.seat("6001")
    w.note(run, 0, logged_in=True, wrap_until=at(30))
    w.clock.t = at(45)
    w._note_all_seats()
    assert w.rows() == [(0, "6001", "wrap", "", 1), (30, "6001", "ready", "", 0)]


def test_states_of_ports_and_predictive_agents() -> None:
    port = SeatRun(info=AgentRow(staffid="p", name="p", extension="7001", role="port"), seat=None, logged_in=True,
                   busy="示忙")
    assert seat_state(port, T) == ("ready", "")  # a port is busy on purpose: idle is ready
    port.call = call()
    assert seat_state(port, T) == ("dialling", "")
    port.call = call(answered=True)
    assert seat_state(port, T) == ("talking", "")
    agent = SeatRun(info=AgentRow(staffid="a", name="a", extension="6001"), seat=None, logged_in=True)
    agent.handling = call(answered=True, phase=Phase.TRANSFERRING)  # the customer answered; the transfer rings
    assert seat_state(agent, T) == ("dialling", "")
    agent.handling = call(answered=True, phase=Phase.HANDED)
    assert seat_state(agent, T) == ("talking", "")
    agent.handling = call(answered=True, bridged=True, phase=Phase.TRANSFERRING)
    assert seat_state(agent, T) == ("talking", "")


def test_the_buffer_keeps_the_newest_rows(monkeypatch) -> None:
    monkeypatch.setattr(seatlog, "MAX_BUFFERED", 3)
    w = FakeWorker()
    run = w.seat("6001")
    w.note(run, 0, logged_in=True)
    for i, reason in enumerate(["a", "b", "c", "d"], 1):
        w.note(run, i, busy=reason)
    assert [r[0] for r in w.rows()] == [2, 3, 4] and w._seat_rows_dropped == 2


def test_rows_not_written_are_kept_in_order() -> None:
    w = FakeWorker()
    run = w.seat("6001")
    w.note(run, 0, logged_in=True)
    w.note(run, 1, busy="午餐")
    w.lanes.fail = True
    asyncio.run(w._write_seat_log())
    w.note(run, 2, busy="")
    assert [r[0] for r in w.rows()] == [0, 1, 2]
    w.lanes.fail = False
    asyncio.run(w._write_seat_log())
    assert w._seat_rows == [] and [(r["at"], r["state"]) for r in w.lanes.calls[0][0]] == [
        (at(0), "ready"), (at(1), "busy"), (at(2), "ready")]


def test_status_body_and_pacing_level(monkeypatch) -> None:
    w = FakeWorker()
    monkeypatch.setattr(seatlog, "_wall", w.clock.now, raising=False)  # (the wall clock: the worker's here)
    a1, a2, a3 = w.seat("6001"), w.seat("6002"), w.seat("6003")
    p1, p2 = w.seat("7001", role="port"), w.seat("7002", role="port")
    w.note(a1, 0, logged_in=True)
    w.note(a2, 10, logged_in=True)
    w.note(a3, 20, logged_in=True, busy="午餐")
    w.note(p1, 0, logged_in=True, call=call())
    w.note(p2, 0, logged_in=True, call=call())
    w.clock.t = at(100)
    # two calls on the queue's ports, two ready agents (the busy one is not)
    assert w.pacing_level("q") == 1.0
    body = w.status_body()
    seats = {s["extension"]: s for s in body["seats"]}
    assert seats["6002"]["since"] == at(10).isoformat() and seats["6003"]["reason"] == "午餐"
    assert seats["6003"]["state"] == "busy" and seats["7001"]["role"] == "port"
    assert body["queues"]["q"]["calls"] == 2
    a1.busy = a2.busy = "培训"
    assert w.pacing_level("q") is None  # no ready agent


@pytest.mark.parametrize("reason", ["x" * 80])
def test_a_long_busy_reason_fits_its_column(reason) -> None:
    run = SeatRun(info=AgentRow(staffid="a", name="a", extension="6001"), seat=None, logged_in=True, busy=reason)
    assert seat_state(run, T) == ("busy", "x" * 64)
