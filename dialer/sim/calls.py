"""The simulator's calls: click-to-dial (the agent's leg, then the customer's), how a call ends,
after-call work (a mixin of `Simulator`; docs/simulator.md has the event sequences)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import phonenumbers

from dialer.cti import protocol as p
from dialer.cti.protocol import CallState as CS
from dialer.numbering import attribute_e164
from dialer.sim.session import Call, CallRecord, Session

if TYPE_CHECKING:
    from dialer.sim.server import Simulator as _Base
else:
    _Base = object

log = logging.getLogger("dialer.sim.server")


class Calls(_Base):
    """Placing and ending calls (a mixin of `Simulator`)."""

    # -- click-to-dial ------------------------------------------------------------------------
    def _cmd_dial(self, s: Session, cmd: p.ClientCommand) -> None:
        ds = cmd.get("dialString")
        if s.call is not None:
            self._ok(s, "dial", False, "通话中")
            return
        if not p.is_dial_digits(ds):
            self._ok(s, "dial", False, f"号码无效: {ds!r}")
            return
        call = Call(self._new_callid(), s, ds, self.now())
        if not s.profile.registered:
            self._ok(s, "dial", False, "分机未注册")
            s.send(p.Hangup(call.callid if self.config.hangup_callid else ""))
            self._log(call, "unregistered")
            return
        self._ok(s, "dial")
        self.calls[call.callid] = call
        s.call = call
        self._set_state(s, CS.INBOUND_RINGING, ds)
        self._touch(s.queue)
        if s.profile.answers:
            delay = s.profile.pickup_delay(self.rng, self.config.workload)
            call.timer = self.later(delay, self._agent_leg_up, call)
        else:
            call.timer = self.later(self.config.agent_ring_timeout, self._end, call, "agent_no_answer")

    def _agent_leg_up(self, call: Call) -> None:
        s = call.origin
        call.agents.append(s)
        call.phase = "network"
        self._set_state(s, CS.OUTBOUND_RINGING, call.dial_string)
        route = self.config.trunk.route(call.dial_string)
        call.e164 = route.e164
        if not route.ok:
            log.info("sim: trunk refused %s: %s", call.dial_string, route.reason)
            call.timer = self.later(self.config.post_dial_delay, self._end, call, "trunk_rejected")
            return
        call.number = _national(route.e164)
        call.fate = self._fate(route.e164)
        call.timer = self.later(self.config.post_dial_delay, self._customer_rings, call)

    def _customer_rings(self, call: Call) -> None:
        fate = call.fate
        if fate.outcome == "failed":
            self._end(call, "failed")
            return
        call.phase = "ringing"
        for s in call.agents:
            s.send(p.OutboundRinging(call.number, call.callid))
            self._set_state(s, CS.OUTBOUND_EARLY_MEDIA, call.number)
        if fate.answers:
            call.timer = self.later(fate.ring, self._customer_answers, call)
        elif fate.outcome == "busy":
            call.timer = self.later(fate.ring, self._end, call, "busy")
        else:
            call.timer = self.later(self.config.ring_timeout, self._end, call, "no_answer")

    def _customer_answers(self, call: Call) -> None:
        call.phase = "talking"
        call.answered_at = self.now()
        call.attr = attribute_e164(call.e164)
        a = call.attr
        for s in call.agents:
            s.send(p.OutboundAnswered(call.number, call.callid, a.province, a.city, a.isp))
            self._set_state(s, CS.OUTBOUND_TALKING, call.number)
        call.timer = self.later(call.fate.talk, self._end, call, "customer_hangup")

    # -- ending -------------------------------------------------------------------------------
    def _end(self, call: Call, why: str, notify: bool = True) -> None:
        """The customer's leg is gone: every seat attached to the call hangs up."""
        if call.phase == "ended":
            return
        for timer in (call.timer, call.offer_timer):
            if timer:
                timer.cancel()
        talked = call.answered_at is not None
        seats = call.seats()
        call.phase = "ended"
        if call.queue and call in self.waiting[call.queue]:
            self.waiting[call.queue].remove(call)
            self._touch(call.queue)
        for s in seats:
            self._detach(s, call, talked and s in call.agents, notify)
        self.calls.pop(call.callid, None)
        self._log(call, why)

    def _detach(self, s: Session, call: Call, talked: bool, notify: bool = True) -> None:
        """Seat `s` leaves `call`: it sees the hangup, then maybe after-call work."""
        if s.call is call:
            s.call = None
        if not notify:
            return
        s.send(p.Hangup(call.callid if self.config.hangup_callid else ""))
        # after-call work starts with the hangup, before the seat reports its idle line, so that
        # no client sees a moment of "idle, no busy reason" between the two; an agent who talked
        # to an answering machine has nothing to write up (OB-20: no wrap-up after machines)
        if talked and s.logged_in and call.fate.outcome != "machine":
            outbound = s is call.origin
            acw = s.autoacw
            if acw is p.AutoAcw.ALL or (acw is p.AutoAcw.OUTBOUND and outbound) or (
                    acw is p.AutoAcw.INBOUND and not outbound):
                self._start_acw(s)
        self._set_state(s, CS.IDLE, "")
        s.idle_since = self.now()
        self._touch(s.queue)
        if s.detached:  # the phone's call is over and no socket took it: the seat signs out
            self._sign_out(s)

    def _leave(self, s: Session, why: str) -> None:
        """Seat `s` hangs up its own part; the customer's leg ends when no agent is left."""
        call = s.call
        if call is None:
            return
        if s in call.listeners:
            call.listeners.remove(s)
            self._detach(s, call, False)
            return
        if call.offered_to is s:
            self._offer_failed(call)
            return
        if s in call.agents and len(call.agents) > 1 and call.phase == "talking":
            call.agents.remove(s)
            self._detach(s, call, True)
            return
        self._end(call, why)

    def _log(self, call: Call, why: str) -> None:
        self.call_log.append(CallRecord(
            call.callid, call.origin.extension, call.dial_string, call.e164, why,
            call.answered_at is not None, call.created, self.now(), call.answered_at,
            call.ivr,
            list(call.bridged), call.fate.outcome, call.bridged_at))

    def _start_acw(self, s: Session) -> None:
        s.acw = True
        self._busy_changed(s)
        wrap = s.profile.wrap_up_time(self.rng, self.config.workload)
        if wrap is not None:
            s.acw_timer = self.later(wrap, self._acw_over, s)

    def _acw_over(self, s: Session) -> None:
        s.acw_timer = None
        if s.acw:
            s.acw = False
            s.idle_since = self.now()
            self._busy_changed(s)

    def _end_acw(self, s: Session, notify: bool = True) -> None:
        if s.acw_timer:
            s.acw_timer.cancel()
            s.acw_timer = None
        if s.acw:
            s.acw = False
            if notify:
                self._busy_changed(s)

    def _cmd_hangup(self, s: Session, cmd: p.ClientCommand) -> None:
        if s.call is None:
            self._ok(s, "hangup", False, "无通话")
            return
        self._ok(s, "hangup")
        self._leave(s, "agent_hangup")


def _national(e164: str) -> str:
    """The number as a Chinese agent reads it: ``13800138000``, ``075512345678``."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return e164.lstrip("+")
    if number.country_code != 86:
        return "00" + e164.lstrip("+")
    nsn = phonenumbers.national_significant_number(number)
    return nsn if nsn.startswith(("1", "4", "8", "9")) else "0" + nsn
