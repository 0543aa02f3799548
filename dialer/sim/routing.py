"""The simulator moving calls: transfers, three-way, queues and their distribution, the IVR,
pickups, spying and barging, hold (a mixin of `Simulator`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dialer.cti import protocol as p
from dialer.cti.protocol import CallState as CS
from dialer.sim.session import Call, IvrVisit, Session

if TYPE_CHECKING:
    from dialer.sim.server import Simulator as _Base
else:
    _Base = object


class Routing(_Base):
    """Calls moving between seats, queues and the IVR (a mixin of `Simulator`)."""

    # -- moving a call ------------------------------------------------------------------------
    def _talking_call(self, s: Session, command: str) -> Call | None:
        call = s.call
        if call is None or call.phase != "talking" or s not in call.agents:
            self._ok(s, command, False, "无通话")
            return None
        return call

    def _hand_off(self, s: Session, call: Call) -> None:
        """Seat `s` leaves a call it passes on (transfer, queue, IVR)."""
        call.agents.remove(s)
        self._detach(s, call, True)

    def _call_and_target(self, s: Session, cmd: p.ClientCommand, what: str) -> tuple[Call, Session] | None:
        """The call seat `s` is talking in and the available extension the command names
        (answered `what` succeeded), or None (answered failed)."""
        call = self._talking_call(s, what)
        if call is None:
            return None
        target = self.by_ext.get(cmd.get("dialString"))
        if target is None or not target.available:
            self._ok(s, what, False, f"分机{cmd.get('dialString')}不可用")
            return None
        self._ok(s, what)
        return call, target

    def _cmd_transfer(self, s: Session, cmd: p.ClientCommand) -> None:
        if (found := self._call_and_target(s, cmd, "transfer")) is not None:
            call, target = found
            self._hand_off(s, call)
            self._offer(call, target, autodial=False)

    def _cmd_threeWay(self, s: Session, cmd: p.ClientCommand) -> None:
        if (found := self._call_and_target(s, cmd, "threeWay")) is not None:
            call, target = found
            self._offer(call, target, autodial=False, joins=True)

    def _cmd_transferQueue(self, s: Session, cmd: p.ClientCommand) -> None:
        call = self._talking_call(s, "transferQueue")
        if call is None:
            return
        queue = cmd.get("queue")
        if not queue:
            self._ok(s, "transferQueue", False, "技能组为空")
            return
        self._ok(s, "transferQueue")
        self._hand_off(s, call)
        self._enqueue(call, queue)

    def _cmd_transferIvr(self, s: Session, cmd: p.ClientCommand) -> None:
        call = self._talking_call(s, "transferIvr")
        if call is None:
            return
        node = cmd.get("ivr")
        self._ok(s, "transferIvr")
        self._hand_off(s, call)
        for other in list(call.agents):
            self._hand_off(other, call)
        call.phase = "ivr"
        call.ivr = node
        if call.timer:
            call.timer.cancel()
        self.ivr_log.append(IvrVisit(call.callid, node, call.e164, self.now()))
        call.timer = self.later(self.config.ivr_seconds, self._end, call, "ivr")

    def _enqueue(self, call: Call, queue: str) -> None:
        call.phase = "queued"
        call.queue = queue
        self.waiting[queue].append(call)
        self._touch(queue)

    def _distribute(self, queue: str) -> None:
        """Offer waiting callers to the queue's available seats, longest idle first."""
        waiting = self.waiting.get(queue)
        while waiting:
            free = [s for s in self.members.get(queue, ()) if s.available]
            if not free:
                return
            seat = min(free, key=lambda s: s.idle_since)
            call = waiting.popleft()
            self._offer(call, seat, autodial=True)

    def _offer(self, call: Call, seat: Session, *, autodial: bool, joins: bool = False) -> None:
        call.phase = "offered" if not joins else call.phase
        call.offered_to, call.offer_autodial, call.offer_joins = seat, autodial, joins
        seat.call = call
        a = call.attr
        seat.send(p.IncomingRinging(call.number, call.callid, autodial, a.province, a.city, a.isp, ""))
        self._set_state(seat, CS.INBOUND_RINGING, call.number)
        self._touch(seat.queue)
        if seat.profile.answers:
            delay = seat.profile.pickup_delay(self.rng, self.config.workload)
            call.offer_timer = self.later(delay, self._accept, call, seat)
        else:
            call.offer_timer = self.later(self.config.agent_ring_timeout, self._offer_failed, call)

    def _accept(self, call: Call, seat: Session) -> None:
        """The offered seat picks up: it joins the conversation."""
        if call.offer_timer:
            call.offer_timer.cancel()
        call.offered_to, call.offer_timer = None, None
        joins = call.offer_joins
        call.offer_joins = False
        call.agents.append(seat)
        call.bridged.append(seat.extension)
        if call.bridged_at is None:
            call.bridged_at = self.now()
        call.phase = "talking"
        a = call.attr
        seat.send(p.IncomingAnswered(call.number, call.callid, call.offer_autodial, a.province, a.city, a.isp, ""))
        self._set_state(seat, CS.AUTODIAL_CONNECTED if call.offer_autodial else CS.INBOUND_TALKING, call.number)
        if not joins:  # the customer starts talking to the new agent now
            if call.timer:
                call.timer.cancel()
            call.timer = self.later(call.fate.talk, self._end, call, "customer_hangup")

    def _offer_failed(self, call: Call) -> None:
        """The offered seat did not pick up (or refused): back to the queue, or the call ends."""
        seat = call.offered_to
        if call.offer_timer:
            call.offer_timer.cancel()
        call.offered_to, call.offer_timer = None, None
        if seat is not None:
            self._detach(seat, call, False)
        if call.offer_joins:
            call.offer_joins = False
            return
        if call.queue:
            call.phase = "queued"
            self.waiting[call.queue].appendleft(call)
            self._touch(call.queue)
        elif not call.agents:
            self._end(call, "transfer_no_answer")
        else:
            call.phase = "talking"

    # -- pickups, spying, barging -------------------------------------------------------------
    def _pick_up(self, s: Session, command: str, match: Callable[[Call], bool]) -> None:
        if s.call is not None:
            self._ok(s, command, False, "通话中")
            return
        ringing = [c for c in self.calls.values() if c.offered_to is not None and match(c)]
        if not ringing:
            self._ok(s, command, False, "无振铃电话")
            return
        call = self.rng.choice(ringing)
        self._ok(s, command)
        old = call.offered_to
        assert old is not None
        if call.offer_timer:
            call.offer_timer.cancel()
        call.offered_to = None
        self._detach(old, call, False)
        call.offered_to = s
        s.call = call
        self._accept(call, s)

    def _cmd_pickup(self, s: Session, cmd: p.ClientCommand) -> None:
        self._pick_up(s, "pickup", lambda c: True)

    def _cmd_groupPickup(self, s: Session, cmd: p.ClientCommand) -> None:
        group = cmd.get("group")
        self._pick_up(s, "groupPickup", lambda c: c.offered_to is not None and c.offered_to.queue == group)

    def _cmd_pickupExtension(self, s: Session, cmd: p.ClientCommand) -> None:
        ext = cmd.get("extension")
        self._pick_up(s, "pickupExtension", lambda c: c.offered_to is not None and c.offered_to.extension == ext)

    def _join(self, s: Session, command: str, target: Session | None, *, listen: bool) -> None:
        call = target.call if target else None
        if s.call is not None or call is None or call.phase != "talking" or target is s:
            self._ok(s, command, False, "目标无通话")
            return
        self._ok(s, command)
        s.call = call
        (call.listeners if listen else call.agents).append(s)
        self._set_state(s, CS.INBOUND_TALKING, target.extension)  # type: ignore[union-attr]

    def _cmd_spy(self, s: Session, cmd: p.ClientCommand) -> None:
        self._join(s, "spy", self.by_ext.get(cmd.get("extension")), listen=True)

    def _cmd_groupSpy(self, s: Session, cmd: p.ClientCommand) -> None:
        group = cmd.get("group")
        talking = [t for t in self.members.get(group, ())
                   if t.call is not None and t.call.phase == "talking" and t is not s]
        self._join(s, "groupSpy", min(talking, key=lambda t: t.extension) if talking else None, listen=True)

    def _cmd_insert(self, s: Session, cmd: p.ClientCommand) -> None:
        self._join(s, "insert", self.by_ext.get(cmd.get("extension")), listen=False)

    def _cmd_hangupExtension(self, s: Session, cmd: p.ClientCommand) -> None:
        target = self.by_ext.get(cmd.get("extension"))
        if target is None or target.call is None:
            self._ok(s, "hangupExtension", False, "目标无通话")
            return
        self._ok(s, "hangupExtension")
        self._end(target.call, "cut")

    def _cmd_hold(self, s: Session, cmd: p.ClientCommand) -> None:
        call = self._talking_call(s, "hold")
        if call is not None:
            call.held = True
            self._ok(s, "hold")

    def _cmd_unhold(self, s: Session, cmd: p.ClientCommand) -> None:
        call = self._talking_call(s, "unhold")
        if call is not None:
            call.held = False
            self._ok(s, "unhold")
