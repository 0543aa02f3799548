"""Predictive hand-over: an answered call on a dialer port goes to a ready agent within the 2 s
rule, or hears the campaign's abandon message.

Theory of operation
-------------------
A port's call is followed by its `CallTracker` until the customer answers; then its phase moves
by the pure table of dialer/handover.py (`step`), which also says what each move records
(`outcome_of`). This module is the I/O around it: the agent reserved, the transfer and IVR
commands sent, the deadline timers, the wait queue (oldest caller first; a refused transfer goes
back to its head), and the agent bound to the call by its call id (with `transferQueue` the
server picks the agent, and the reservation moves to it). Every outcome goes to the recorder.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from typing import TYPE_CHECKING

from dialer.cti import protocol as p
from dialer.errors import CTIError, LocalProtocolError
from dialer.handover import ABANDON_AFTER, IVR_SENT, Move, Phase, outcome_of, pickup_allowance, step, wait_left
from dialer.outcomes import State
from dialer.worker.state import PARK_REASON, ActiveCall, SeatRun

if TYPE_CHECKING:
    from dialer.worker.daemon import Worker as _Base
else:
    _Base = object

log = logging.getLogger(__name__)

ACW = "话后"


def msg_busy(msg: p.Message) -> str:
    return getattr(msg, "busy", "")


class Handover(_Base):
    """The worker's predictive hand-over (a mixin of `Worker`)."""

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
                self._spawn(self._hangup(run), f"hangup of port {run.info.extension}")
        elif isinstance(msg, p.Hangup) and (not msg.callid or not call.tracker.callid or msg.callid == call.tracker.callid):
            self._port_line_gone(run, call, now, "the customer hung up while waiting for an agent")

    def _port_line_gone(self, run: SeatRun, call: ActiveCall, now: dt.datetime, why: str) -> None:
        """The port's leg of an answered call is over: handed on (transfer, IVR) or dropped."""
        run.call = None
        run.server_idle = False  # until the port's line reports idle
        if call.phase in (Phase.WAITING, Phase.TRANSFERRING, Phase.HANDED, Phase.IVR):
            if call.phase is Phase.WAITING:
                self._unwait(call)
            self._move(call, Move.PORT_LEG_GONE, now, why)
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
            self._move(call, Move.NO_AGENT, now)
            q.waiting.append(call)
            wait = max(0.0, wait_left(call.tracker.answered_at, now, pickup_allowance(q.pickups), self.lag))
            call.deadline = asyncio.get_running_loop().call_later(
                self._real(wait), self._abandon, call, f"no agent free within {ABANDON_AFTER:g} s")
        self._wake.set()

    def _move(self, call: ActiveCall, move: Move, now: dt.datetime, why: str = "", *,
              agent: SeatRun | None = None) -> None:
        """Apply a hand-over move by the table; record the outcome it decides."""
        decided = outcome_of(call.phase, move, answered_at=call.tracker.answered_at, bridged_at=call.bridged_at,
                             why=why)
        call.phase = step(call.phase, move)
        if decided is not None:
            outcome, detail = decided
            self._predictive_outcome(call, outcome, now, agent=agent, detail=detail)

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
        self._move(call, Move.AGENT_FREE, self.clock.now())
        call.agent = agent
        agent.handling, agent.bridged_at = call, None
        self._freed_at.pop(agent.info.extension, None)
        loop = asyncio.get_running_loop()
        call.transferred_at = self.clock.now()
        # the agent must pick up: give up on the hand-over if nothing comes back
        call.deadline = loop.call_later(self._real(self.opt.agent_leg_timeout), self._handover_lost, call)
        self._note_seat(agent)
        self._spawn(self._send_transfer(call), "transfer")

    async def _send_transfer(self, call: ActiveCall) -> None:
        port, agent = call.port, call.agent
        if port is None or agent is None:
            return
        try:
            if call.campaign.handover == "queue":
                await port.seat.transfer_queue(call.queue)
            else:
                await port.seat.transfer(agent.info.extension)
        except (CTIError, LocalProtocolError) as exc:
            if call.phase is Phase.TRANSFERRING:
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
        q = self.predictive[call.queue]
        left = wait_left(call.tracker.answered_at, now, pickup_allowance(q.pickups), self.lag)
        self._move(call, Move.TRANSFER_REFUSED, now)
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
        if call.phase not in (Phase.TRANSFERRING, Phase.HANDED) or call.bridged_at is not None:
            return
        if agent is not None and agent.handling is call:
            self._agent_call_over(agent, call, self.clock.now(), "the transferred call never reached the agent")
        else:
            self._move(call, Move.HANDOVER_TIMEOUT, self.clock.now())

    def _unwait(self, call: ActiveCall) -> None:
        if call.deadline:
            call.deadline.cancel()
            call.deadline = None
        waiting = self.predictive[call.queue].waiting
        if call in waiting:
            waiting.remove(call)

    def _abandon(self, call: ActiveCall, why: str) -> None:
        """No agent in time: the customer hears the campaign's message (transferIvr)."""
        if call.phase is not Phase.WAITING:
            return
        self._unwait(call)
        node = call.campaign.abandon_ivr
        port = call.port
        if port is not None:
            self._spawn(self._send_ivr(port, node), f"IVR for port {port.info.extension}")
        self._move(call, Move.DEADLINE, self.clock.now(), f"{why}: {IVR_SENT} {node}")

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
            if isinstance(msg, p.IncomingAnswered) and call.bridged_at is None and call.phase in (
                    Phase.TRANSFERRING, Phase.HANDED):
                call.bridged_at = run.bridged_at = now
                self._move(call, Move.AGENT_ANSWERED, now)
                self._milestones(call)
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
        campaign = call.campaign
        if call.phase not in (Phase.TRANSFERRING, Phase.HANDED):
            return  # recorded already (it cannot end twice)
        self._move(call, Move.AGENT_LEG_OVER, now, why, agent=run)
        if call.bridged_at is not None:
            run.misses = 0
            run.after_call, run.acw_seen, run.wrap_started = True, False, now
            run.wrap_until = now + dt.timedelta(seconds=campaign.wrap_up)  # the longest it may last
            if run.wrap_timer:
                run.wrap_timer.cancel()
            run.wrap_timer = asyncio.get_running_loop().call_later(
                self._real(campaign.wrap_up), lambda: self._spawn(self._free(run), f"end of wrap-up of seat {run.info.extension}"))
            self._note_seat(run)
        else:
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

