"""The CTI server simulator: the vendor's WebSocket softphone server, simulated.

Theory of operation
-------------------
One `Simulator` serves ``ws://HOST:PORT/spcc/cti`` to many sockets at once. Each socket is a
`Session` (one softphone, at most one logged-in extension); each call is a `Call` that links the
customer's leg to the seats taking part in it. Everything that happens later — an agent picking
up, a customer answering or hanging up, after-call work ending — is a timer on the event loop,
its duration drawn from the call model (`dialer.sim.model`) or a scenario rule and multiplied by
the time scale. Frames go out through one writer task per session, so a session's frames keep
their order.

The event sequences, and which of them are the manual's facts and which are our assumptions,
are written down in docs/simulator.md; keep the two in step.
"""

from __future__ import annotations

import asyncio
import http
import itertools
import logging
import random
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from dialer.cti import protocol as p
from dialer.cti.protocol import CallState as CS
from dialer.errors import RemoteProtocolError
from dialer.numbering import Attribution, attribute_e164
from dialer.sim.model import AgentProfile, CustomerFate, draw_fate
from dialer.sim.scenario import SimConfig

log = logging.getLogger(__name__)

PATH = "/spcc/cti"
BUSY_ACW = "话后"  # the busy reason shown during after-call work
REG_ON, REG_OFF = "已注册", "未注册"
AGENT_ON, AGENT_OFF = "已登录", "未登录"


@dataclass(slots=True)
class CallRecord:
    """What the simulator remembers of a finished call (for tests and benchmarks)."""

    callid: str
    extension: str
    dial_string: str
    e164: str
    end: str  # why it ended: see docs/simulator.md
    answered: bool
    created: float
    ended: float
    answered_at: float | None = None
    ivr: str = ""
    bridged_to: list[str] = field(default_factory=list)
    fate: str = ""  # what the customer was: answer (live), machine, busy, failed, no_answer
    bridged_at: float | None = None  # when the first agent joined a call handed over to it


@dataclass(slots=True)
class IvrVisit:
    callid: str
    node: str
    e164: str
    at: float


class Session:
    """One socket: a softphone, logged in as at most one extension."""

    def __init__(self, sim: Simulator, ws: ServerConnection) -> None:
        self.sim = sim
        self.ws = ws
        self.extension = ""
        self.agent = self.staffid = self.queue = self.secid = self.secname = ""
        self.autoacw = p.AutoAcw.OFF
        self.busy = ""
        self.acw = False
        self.acw_timer: asyncio.TimerHandle | None = None
        self.state = CS.IDLE
        self.number = ""
        self.call: Call | None = None
        self.idle_since = 0.0
        self.answer_heartbeats = True
        self.profile = AgentProfile("")
        self.detached = False  # its socket is gone; the extension's call goes on (desk phone)
        self.moved_to: Session | None = None  # a detached session this socket took over

    @property
    def logged_in(self) -> bool:
        return bool(self.extension)

    @property
    def busy_text(self) -> str:
        return BUSY_ACW if self.acw else self.busy

    @property
    def available(self) -> bool:
        """Logged in, registered, not busy, not in after-call work, not in a call."""
        return (self.logged_in and self.profile.registered and not self.busy and not self.acw
                and self.call is None)

    def send(self, msg: p.ServerMessage) -> None:
        self.send_raw(p.encode(msg))

    def send_raw(self, text: str) -> None:
        """Write a frame now, in order (nothing is sent while the phone has no socket). Straight
        through websockets' protocol: its awaited `send` costs a task switch and a lock for
        every frame, and a busy floor gets thousands a second."""
        ws = self.ws
        if self.detached or ws.protocol.state is not State.OPEN:
            return
        ws.protocol.send_text(text.encode())
        ws.send_data()
        self.sim.frames_out += 1

    def status(self) -> p.StatusChanged:
        return p.StatusChanged(
            REG_ON if self.profile.registered else REG_OFF, self.state.value,
            AGENT_ON if self.logged_in else AGENT_OFF, self.busy_text, self.number)


class Call:
    """A customer's leg and the seats attached to it."""

    def __init__(self, callid: str, origin: Session, dial_string: str, now: float) -> None:
        self.callid = callid
        self.origin = origin
        self.dial_string = dial_string
        self.e164 = ""
        self.number = dial_string  # what the seats are shown; the national number once routed
        self.attr = Attribution()
        self.fate = CustomerFate("no_answer")
        self.phase = "agent_ring"  # agent_ring, network, ringing, talking, offered, queued, ivr
        self.agents: list[Session] = []  # seats in the conversation
        self.listeners: list[Session] = []  # spies
        self.offered_to: Session | None = None
        self.offer_autodial = False
        self.offer_joins = False  # a three-way invitation keeps the inviter in the call
        self.queue = ""
        self.ivr = ""  # the IVR node the caller was sent to
        self.held = False
        self.created = now
        self.answered_at: float | None = None
        self.timer: asyncio.TimerHandle | None = None  # the customer's next move
        self.offer_timer: asyncio.TimerHandle | None = None
        self.record: CallRecord | None = None
        self.bridged: list[str] = []
        self.bridged_at: float | None = None

    @property
    def connected(self) -> bool:
        """The customer is on the line (answered and not yet gone)."""
        return self.answered_at is not None and self.phase in ("talking", "offered", "queued")

    def seats(self) -> list[Session]:
        seats = [*self.agents, *self.listeners]
        if self.phase == "agent_ring":
            seats.append(self.origin)
        if self.offered_to is not None:
            seats.append(self.offered_to)
        return list(dict.fromkeys(seats))


class Simulator:
    """The simulated CTI server. `start()` binds, `stop()` closes, faults are methods."""

    def __init__(self, config: SimConfig | None = None, *, clock: Callable[[], float] | None = None) -> None:
        self.config = config or SimConfig()
        self.rng = random.Random(self.config.seed)
        self._clock = clock
        self.sessions: set[Session] = set()
        self.by_ext: dict[str, Session] = {}
        self.members: dict[str, set[Session]] = defaultdict(set)  # logged-in seats by queue
        self.waiting: dict[str, deque[Call]] = defaultdict(deque)
        self.calls: dict[str, Call] = {}
        self.call_log: list[CallRecord] = []
        self.commands: Counter[str] = Counter()  # commands received, by name
        self.ivr_log: list[IvrVisit] = []
        self.dial_counts: dict[str, int] = defaultdict(int)
        self.frames_in = 0
        self.frames_out = 0
        self.response_delay = 0.0
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._dirty: set[str] = set()
        self._queue_seen: dict[str, tuple[int, int, int]] = {}
        self._flush_scheduled = False
        self.host = "127.0.0.1"
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{PATH}"

    def now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind and serve; returns the port (pass 0 for a free one)."""
        attribute_e164("+8613800138000")  # load phonenumbers' tables now, not on the first call
        self._server = await serve(
            self._handle, host, port, process_request=self._check_path, ping_interval=None,
            max_size=p.MAX_FRAME_CHARS * 4, close_timeout=1, compression=None,
        )
        self.host = host
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Close every socket and stop listening; every call in progress is dropped."""
        if self._server is None:
            return
        for call in list(self.calls.values()):
            self._end(call, "server_stopped", notify=False)
        for s in [x for x in self.by_ext.values() if x.detached]:  # phones left with no socket: gone too
            s.state, s.number = CS.IDLE, ""
            self._sign_out(s)
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    async def restart(self) -> None:
        """Fault: the server goes away and comes back on the same port with no sessions."""
        port = self.port
        await self.stop()
        await self.start(self.host, port)

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    # -- faults -------------------------------------------------------------------------------
    def _pick(self, extension: str | None) -> list[Session]:
        if extension is None:
            return list(self.sessions)
        s = self.by_ext.get(extension)
        return [s] if s else []

    def drop(self, extension: str | None = None) -> None:
        """Fault: cut the TCP connection of a seat (all seats when None) without a close frame."""
        for s in self._pick(extension):
            s.ws.transport.abort()

    def stop_heartbeats(self, extension: str | None = None, stop: bool = True) -> None:
        """Fault: stop (or resume) answering heartbeats."""
        for s in self._pick(extension):
            s.answer_heartbeats = not stop

    def delay_responses(self, seconds: float) -> None:
        """Fault: hold every command and heartbeat response back this many real seconds."""
        self.response_delay = seconds

    def send_raw(self, extension: str | None, text: str) -> None:
        """Send `text` as a frame, exactly as given (for events the simulator never makes)."""
        for s in self._pick(extension):
            s.send_raw(text)

    def send_garbage(self, extension: str | None = None, text: str = "this is not a frame") -> None:
        """Fault: send a frame the protocol cannot read."""
        self.send_raw(extension, text)

    # -- sockets ------------------------------------------------------------------------------
    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != PATH:
            return connection.respond(http.HTTPStatus.NOT_FOUND, f"no CTI service at {request.path}; use {PATH}\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        s = Session(self, ws)
        self.sessions.add(s)
        try:
            async for frame in ws:
                self.frames_in += 1
                try:
                    cmd = p.decode_command(frame)  # type: ignore[arg-type]
                except RemoteProtocolError as exc:
                    log.info("sim: dropped a frame from %s: %s", s.extension or "?", exc)
                    continue
                self._dispatch(s, cmd)
                if s.moved_to is not None:  # this socket took over a desk phone's session
                    s = s.moved_to
        except ConnectionClosed:
            pass
        finally:
            self.sessions.discard(s)
            if s.logged_in and s.ws is ws:
                if self.config.desk_phone and s.call is not None and self._server is not None:
                    self._detach_socket(s)
                else:
                    self._sign_out(s)

    def _detach_socket(self, s: Session) -> None:
        """The socket of a seat in a call is gone: the phone keeps its call (and its extension)
        until the call ends or another socket logs the extension in."""
        s.detached = True  # what is sent to it goes nowhere
        self.members[s.queue].discard(s)
        self._touch(s.queue)

    def _attach(self, s: Session, holder: Session) -> Session:
        """Socket `s` logs in the extension of detached `holder`: it takes the phone over."""
        holder.ws, holder.detached = s.ws, False
        holder.answer_heartbeats = True
        s.moved_to = holder
        self.sessions.discard(s)
        self.sessions.add(holder)
        return holder

    # -- timers and helpers -------------------------------------------------------------------
    def later(self, seconds: float, fn: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        """Run `fn` after `seconds` of simulated time."""
        return asyncio.get_running_loop().call_later(seconds * self.config.time_scale, fn, *args)

    def _respond(self, s: Session, msg: p.ServerMessage) -> None:
        command = getattr(msg, "command", "")
        if self.config.respond != "all" and command not in p.ANSWERED_COMMANDS and command:
            return
        if self.response_delay > 0:
            asyncio.get_running_loop().call_later(self.response_delay, s.send, msg)
        else:
            s.send(msg)

    def _ok(self, s: Session, command: str, ok: bool = True, text: str = "") -> bool:
        self._respond(s, p.CommandResponse(command, ok, text))
        return ok

    def _set_state(self, s: Session, state: CS, number: str) -> None:
        s.state, s.number = state, number
        s.send(p.CallStatus(state.value, number))
        s.send(s.status())

    def _busy_changed(self, s: Session) -> None:
        s.send(p.BusyStatus(s.busy_text))
        s.send(s.status())
        self._touch(s.queue)

    def _touch(self, queue: str) -> None:
        """Mark a queue's counts as possibly changed; they are sent once per loop turn."""
        if not queue:
            return
        self._dirty.add(queue)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_queues)

    def _flush_queues(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        for queue in dirty:
            self._distribute(queue)
            members = self.members.get(queue, ())
            counts = (sum(1 for s in members if s.available), len(members), len(self.waiting[queue]))
            if self._queue_seen.get(queue) == counts:
                continue
            self._queue_seen[queue] = counts
            frame = p.encode(p.QueueStatus(counts[0], counts[1], counts[2], queue))
            for s in members:
                s.send_raw(frame)

    def _new_callid(self) -> str:
        return f"{self.port}-{next(self._ids):08d}"

    def _fate(self, e164: str) -> CustomerFate:
        index = self.dial_counts[e164]
        self.dial_counts[e164] += 1
        rule = self.config.customers.get(e164)
        if rule:
            return rule.fate(index)
        # Seeded per number and dial: the n-th dial of a number has the same fate in every run,
        # whatever order the calls happen in.
        return draw_fate(random.Random(f"{self.config.seed}:{e164}:{index}"), self.config.workload)

    # -- commands -----------------------------------------------------------------------------
    def _dispatch(self, s: Session, cmd: p.ClientCommand) -> None:
        self.commands[cmd.name] += 1
        if cmd.name == "heartbeat":
            if s.answer_heartbeats:
                self._respond(s, p.HeartbeatResponse())
            return
        handler = getattr(self, f"_cmd_{cmd.name}", None)
        if handler is None:
            self._ok(s, cmd.name, False, f"unknown command {cmd.name}")
            return
        if cmd.name not in ("login", "getExtensionList") and not s.logged_in:
            self._ok(s, cmd.name, False, "未登录")
            return
        handler(s, cmd)

    def _cmd_login(self, s: Session, cmd: p.ClientCommand) -> None:
        ext = cmd.get("extension")
        holder = self.by_ext.get(ext)
        if holder is not None and holder.detached and not s.logged_in and p.is_dial_digits(ext):
            s = self._attach(s, holder)  # the new login sees the call (its status says so)
            holder = s
        if not p.is_dial_digits(ext):
            reason = f"分机号无效: {ext!r}"
        elif holder is not None and holder is not s:
            reason = f"分机{ext}已被登录"
        elif s.logged_in and s.extension != ext:
            reason = f"已登录分机{s.extension}"
        else:
            reason = ""
        if reason:
            self._respond(s, p.LoginResponse(False, reason))
            return
        if s.queue and s.queue != cmd.get("queue"):
            self.members[s.queue].discard(s)
            self._touch(s.queue)
        s.extension, s.agent, s.staffid = ext, cmd.get("agent"), cmd.get("staffid")
        s.queue, s.secid, s.secname = cmd.get("queue"), cmd.get("secid"), cmd.get("secname")
        s.autoacw = p.AutoAcw.coerce(cmd.get("autoacw"))
        s.busy = cmd.get("busyString")
        s.profile = self.config.agent(ext)
        s.idle_since = self.now()
        self.by_ext[ext] = s
        self.members[s.queue].add(s)
        self._respond(s, p.LoginResponse(True, "", s.busy))
        self._busy_changed(s)

    def _sign_out(self, s: Session) -> None:
        if s.call is not None:
            self._leave(s, "agent_logout")
        if s.acw_timer:
            s.acw_timer.cancel()
        self.by_ext.pop(s.extension, None)
        self.members[s.queue].discard(s)
        queue = s.queue
        s.extension = s.queue = ""
        s.acw = False
        self._touch(queue)

    def _cmd_logout(self, s: Session, cmd: p.ClientCommand) -> None:
        self._sign_out(s)
        self._respond(s, p.LogoutResponse(True))
        s.send(s.status())

    def _cmd_busy(self, s: Session, cmd: p.ClientCommand) -> None:
        reason = cmd.get("busyString") or "忙碌"
        self._ok(s, "busy")
        s.busy = reason
        self._busy_changed(s)

    def _cmd_idle(self, s: Session, cmd: p.ClientCommand) -> None:
        self._ok(s, "idle")
        self._end_acw(s, notify=False)
        s.busy = ""
        s.idle_since = self.now()
        self._busy_changed(s)

    def _cmd_getExtensionList(self, s: Session, cmd: p.ClientCommand) -> None:
        try:
            kind = p.ExtensionListType(cmd.get("type") or "all")
        except ValueError:
            self._respond(s, p.ExtensionListResponse(False, ()))
            return
        secid, queue = cmd.get("secid"), cmd.get("queue")
        records = []
        for ext in sorted(set(self.config.agents) | set(self.by_ext)):
            seat = self.by_ext.get(ext)
            if kind in (p.ExtensionListType.AGENT, p.ExtensionListType.AGENT_IDLE) and seat is None:
                continue
            if kind is p.ExtensionListType.IDLE and seat is not None and seat.call is not None:
                continue
            if kind is p.ExtensionListType.AGENT_IDLE and not seat.available:  # type: ignore[union-attr]
                continue
            if (secid or queue) and (seat is None or (secid and seat.secid != secid)
                                     or (queue and seat.queue != queue)):
                continue
            if seat is None:
                records.append(p.ExtensionRecord(ext, state=CS.IDLE.value))
            else:
                records.append(p.ExtensionRecord(
                    ext, _field(seat.agent), _field(seat.staffid), _field(seat.secname),
                    _field(seat.queue), seat.state.value, _field(seat.busy_text)))
        self._respond(s, p.ExtensionListResponse(True, tuple(records)))

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

    def _cmd_transfer(self, s: Session, cmd: p.ClientCommand) -> None:
        call = self._talking_call(s, "transfer")
        if call is None:
            return
        target = self.by_ext.get(cmd.get("dialString"))
        if target is None or not target.available:
            self._ok(s, "transfer", False, f"分机{cmd.get('dialString')}不可用")
            return
        self._ok(s, "transfer")
        self._hand_off(s, call)
        self._offer(call, target, autodial=False)

    def _cmd_threeWay(self, s: Session, cmd: p.ClientCommand) -> None:
        call = self._talking_call(s, "threeWay")
        if call is None:
            return
        target = self.by_ext.get(cmd.get("dialString"))
        if target is None or not target.available:
            self._ok(s, "threeWay", False, f"分机{cmd.get('dialString')}不可用")
            return
        self._ok(s, "threeWay")
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


def _field(text: str) -> str:
    """An extension-list field cannot hold the record separators; replace them."""
    return text.replace("|", "/").replace(",", "，")


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
