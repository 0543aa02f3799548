"""Following calls: every seat event routed to its call's `CallTracker` (dialer/outcomes.py),
the per-call timers that hang up what rings too long, a seat's socket lost and restored (the
call goes on, as on a desk phone, and is picked up again), and calls adopted from an earlier
life of the worker or from a worker whose lease lapsed."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING

from dialer.cti import protocol as p
from dialer.cti.client import SeatLost, SeatRestored
from dialer.errors import CTIError
from dialer.outcomes import CallTracker, Event, State
from dialer.store.leases import Orphan
from dialer.store.claim import Callee
from dialer.worker.state import ActiveCall, SeatRun

if TYPE_CHECKING:
    from dialer.worker.daemon import Worker as _Base
else:
    _Base = object

log = logging.getLogger(__name__)

#: real seconds a lost seat, or an adopted call, is given at the least to show its state, whatever
#: the time scale: giving up too soon closes a call that is still up (and frees its number)
MIN_WAIT_REAL = 5.0


class Calls(_Base):
    """Event routing and call tracking (a mixin of `Worker`)."""

    def _on_event(self, extension: str, msg: p.Message) -> None:
        run = self.seats.get(extension)
        if run is None:
            return
        try:
            self._route(run, msg)
        except Exception:  # our bug: say so with context, and put the seat right
            log.exception("seat %s: handling %s failed; the seat is checked again", extension, type(msg).__name__)
            self._reconcile_seat(run)
        self._note_seat(run)

    def _reconcile_seat(self, run: SeatRun) -> None:
        """After a failure in our own handling: the seat takes no dial until the server says it
        is idle again; a call it had goes on being followed (its timers end it at worst)."""
        run.server_idle = False
        if run.call is not None:
            try:
                self._arm(run)
            except Exception:
                log.exception("seat %s: could not re-arm its call's timer; ending the call", run.info.extension)
                call, run.call = run.call, None
                call.tracker.detail = "lost by an internal error"
                call.tracker.expire(Event.LOST, self.clock.now())
                self._spawn(self._finish(run, call), f"outcome of seat {run.info.extension}")

    def _route(self, run: SeatRun, msg: p.Message) -> None:
        extension = run.info.extension
        now = self.clock.now()
        if isinstance(msg, SeatLost):
            run.logged_in, run.server_idle = False, False
            self.stats.cti_lost += 1
            log.warning("seat %s lost: %s", extension, msg.reason)
            if run.call is not None:
                self._lost(run, now, "the port's socket was lost")
            if run.handling is not None:
                self._agent_call_over(run, run.handling, now, "the agent's socket was lost")
            return
        if isinstance(msg, SeatRestored):
            run.logged_in = True
            self.stats.cti_restored += 1
            if run.is_port:
                run.server_idle = run.call is None
            log.info("seat %s restored after %d attempt(s)", extension, msg.attempts)
            self._wake_all()
            return
        call = run.call
        if call is not None and not call.confirmed and isinstance(msg, (p.StatusChanged, p.CallStatus)):
            self._confirm(run, call, msg, now)
            if run.call is not call:
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
            elif msg.call_state is not p.CallState.IDLE:
                run.server_idle = False  # the line is in a call (maybe one we do not know of)
        if run.info.queue in self.predictive:
            self._on_agent_event(run, msg, now)
        if run.call is not None:
            call = run.call
            ended = call.tracker.feed(msg, now)
            self._milestones(call)
            self._ended(run, ended)
            if run.call is not None:
                self._arm(run)

    def _ended(self, run: SeatRun, ended: bool) -> None:
        if not ended or run.call is None:
            return
        call, run.call = run.call, None
        run.finishing = True
        if call.timer:
            call.timer.cancel()
        if call.lost_timer:
            call.lost_timer.cancel()
        if call.tracker.answered_at is None or not call.campaign.wrap_up:
            self._line_idle[run.info.extension] = self.loop.time()
        self._spawn(self._finish(run, call), f"outcome of seat {run.info.extension}")

    def _arm(self, run: SeatRun) -> None:
        """(Re)arm the call's timer for the state it has reached."""
        call = run.call
        if call is None:
            return
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
            self._spawn(self._hangup(run), f"hangup of seat {run.info.extension}")
            self._arm(run)
        else:
            self._ended(run, t.expire(Event.HANGUP_TIMEOUT, now))

    async def _hangup(self, run: SeatRun) -> None:
        try:
            await run.seat.hangup()
        except CTIError as exc:
            log.warning("seat %s: hangup not sent: %s", run.info.extension, exc)

    # -- a seat's socket lost, a call adopted --------------------------------------------------
    def _lost(self, run: SeatRun, now: dt.datetime, why: str) -> None:
        """The seat's socket is gone. A click-to-dial call goes on at the phone: wait for the
        seat to come back (`lost_timeout`) and see; a port's answered call is handed on or
        dropped (dialer/worker/handover.py)."""
        call = run.call
        if call is None:
            return
        if call.phase != "dialling":
            self._port_line_gone(run, call, now, why)
            return
        if self.draining or run.released:
            self._ended(run, call.tracker.expire(Event.LOST, now))
            return
        call.confirmed = False
        if call.timer:
            call.timer.cancel()
            call.timer, call.armed_for = None, None
        if call.lost_timer is None:
            call.lost_timer = self.loop.call_later(max(MIN_WAIT_REAL, self._real(self.opt.lost_timeout)),
                                                   self._give_up, run, call)

    def _give_up(self, run: SeatRun, call: ActiveCall) -> None:
        """A call whose seat did not come back (or whose state the server never showed)."""
        if run.call is not call:
            return
        call.tracker.detail = call.tracker.detail or "the seat's call could not be followed any more"
        self._ended(run, call.tracker.expire(Event.LOST, self.clock.now()))

    def _confirm(self, run: SeatRun, call: ActiveCall, msg: p.StatusChanged | p.CallStatus, now: dt.datetime) -> None:
        """The first status after a seat came back (or was taken over): is its call still up?"""
        if msg.call_state is p.CallState.IDLE:
            call.tracker.detail = call.tracker.detail or "the call ended while no socket followed it"
            self._ended(run, call.tracker.expire(Event.LOST, now))
            return
        call.confirmed = True
        if call.lost_timer:
            call.lost_timer.cancel()
            call.lost_timer = None
        # what happened while nobody followed the call: the state it is in now says
        t = call.tracker
        seen = {p.CallState.OUTBOUND_TALKING: Event.ANSWERED, p.CallState.INBOUND_TALKING: Event.ANSWERED,
                p.CallState.AUTODIAL_CONNECTED: Event.ANSWERED, p.CallState.OUTBOUND_RINGING: Event.RINGING}
        event = seen.get(msg.call_state)
        if event is Event.ANSWERED and t.state is not State.TALKING:
            t.detail = t.detail or "answered while no worker followed it (answer time: when it was seen)"
            t.expire(Event.ANSWERED, now)
        elif event is Event.RINGING and t.state in (State.DIALLING, State.AGENT_UP):
            t.expire(Event.RINGING, now)
        elif t.state is State.DIALLING and msg.call_state is not p.CallState.INBOUND_RINGING:
            t.expire(Event.AGENT_UP, now)
        self._milestones(call)
        log.info("seat %s: its call is still up (%s); following it again", run.info.extension, t.state.value)
        self._arm(run)

    def _adopt(self, run: SeatRun, orphan: Orphan, contact: Callee | None) -> bool:
        """Follow a call left by an earlier life (or a lapsed worker) on this seat."""
        campaign = next((c for c in self.campaigns if c.id == orphan.campaign_id), None)
        if campaign is None or contact is None or campaign.mode == "predictive" or run.is_port:
            return False
        # the dial sent is not the agent up: from DIALLING, the server's status moves it on
        t = CallTracker(started=orphan.created_at, callid=orphan.callid,
                        agent_up_at=orphan.ringing_at or orphan.answered_at, ringing_at=orphan.ringing_at,
                        answered_at=orphan.answered_at)
        t.state = State.TALKING if orphan.answered_at else State.RINGING if orphan.ringing_at else State.DIALLING
        call = ActiveCall(orphan.attempt_id, contact, campaign, t, token=self.token, adopted=True, confirmed=False,
                          dialled_at=orphan.dialled_at)
        call.__dict__["_sent"] = {"dialled_at": orphan.dialled_at, "ringing_at": orphan.ringing_at,
                                  "answered_at": orphan.answered_at, "callid": orphan.callid or None}
        run.call, run.server_idle = call, False
        self.stats.adopted += 1
        # the status that follows the login says whether the call is still up; none within
        # the set-up timeout: it is not
        call.lost_timer = self.loop.call_later(max(MIN_WAIT_REAL, self._real(self.opt.setup_timeout)),
                                               self._give_up, run, call)
        log.info("seat %s: following attempt %s of an earlier worker (state %s)", run.info.extension,
                 orphan.attempt_id, t.state.value)
        return True
