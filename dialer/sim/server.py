"""The CTI server simulator: the vendor's WebSocket softphone server, simulated.

Theory of operation
-------------------
One `Simulator` serves ``ws://HOST:PORT/spcc/cti`` to many sockets at once. Each socket is a
`Session` (one softphone, at most one logged-in extension); each call is a `Call` that links the
customer's leg to the seats taking part in it. Everything that happens later — an agent picking
up, a customer answering or hanging up, after-call work ending — is a timer on the event loop,
its duration drawn from the call model (`dialer.sim.model`) or a scenario rule and multiplied by
the time scale. Frames are written as they are made, so a session's frames keep their order.

The parts: `session.py` (sessions, calls, the records), this module (sockets, faults, the
seat's own commands: login, busy, idle, the extension list), `calls.py` (click-to-dial and how
a call ends), `routing.py` (transfers, queues, the IVR, pickups, spying).

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
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from dialer.cti import protocol as p
from dialer.cti.protocol import CallState as CS
from dialer.errors import RemoteProtocolError
from dialer.numbering import attribute_e164
from dialer.sim.calls import Calls
from dialer.sim.model import CustomerFate, draw_fate
from dialer.sim.routing import Routing
from dialer.sim.scenario import SimConfig
from dialer.sim.session import Call, CallRecord, IvrVisit, Session, record_field

log = logging.getLogger(__name__)

PATH = "/spcc/cti"


class Simulator(Calls, Routing):
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

    def set_busy(self, extension: str, reason: str = "小休") -> None:
        """The agent at `extension` sets itself busy with `reason` (or idle: "") on its own
        softphone, as the vendor's web page does."""
        for s in self._pick(extension):
            s.busy = reason
            if not reason:
                s.idle_since = self.now()
            self._busy_changed(s)

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
                    ext, record_field(seat.agent), record_field(seat.staffid), record_field(seat.secname),
                    record_field(seat.queue), seat.state.value, record_field(seat.busy_text)))
        self._respond(s, p.ExtensionListResponse(True, tuple(records)))
