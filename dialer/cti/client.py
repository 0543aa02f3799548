"""One agent seat's WebSocket session with the CTI server.

Theory of operation
-------------------
A `Seat` owns one socket (dialer/cti/wire.py), which hands it every frame as it arrives, in
order; each goes to `protocol.decode` (events named in `ignore` are dropped before that). A
command response resolves the oldest waiting future of the same command (the protocol has no
request ids: responses are matched by command name and order); everything else — events, and
responses nobody waits for — goes to the caller in order, through `events()` or the `on_event`
callback.

Only ``login``, ``logout`` and ``getExtensionList`` are documented to be answered, so only those
wait for a response by default. Other commands are sent and return at once; if the server does
answer them, the `CommandResponse` reaches the caller as a message like any event.

A heartbeat task sends ``command:heartbeat`` every `heartbeat_interval` seconds; when three in a
row are unanswered the socket is declared dead and closed, like the vendor's client does.

When the socket is lost every waiting command fails at once with `ConnectionLost`, the caller
gets `SeatLost`, and (unless `reconnect=False`) a loop reconnects with delays from a backoff
generator passed in, logs the seat in again with the same parameters and tells the caller with
`SeatRestored`. `logout()` forgets the parameters; `close()` ends everything.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import InvalidHandshake, InvalidURI

from dialer.cti import protocol as p
from dialer.cti.wire import Wire, WireClosed
from dialer.errors import (
    CommandTimeout, ConnectionLost, CTIError, LocalProtocolError, LoginFailed, NotConnected,
    RemoteProtocolError,
)

log = logging.getLogger(__name__)

#: Missed heartbeats in a row after which the socket is declared dead (the vendor's rule).
HEARTBEATS_MISSED_LIMIT = 3


# Messages the client itself produces (they never travel on the wire).
@dataclass(frozen=True, slots=True)
class SeatLost(p.Message):
    """The socket closed or was declared dead; commands fail until `SeatRestored`."""

    reason: str


@dataclass(frozen=True, slots=True)
class SeatRestored(p.Message):
    """A new socket is open and the seat is logged in again with its old parameters."""

    attempts: int


@dataclass(frozen=True, slots=True)
class FrameRejected(p.Message):
    """The server sent a frame we could not read; it was dropped and the session goes on."""

    reason: str


@dataclass(frozen=True, slots=True)
class LoginParams:
    agent: str
    extension: str
    queue: str
    staffid: str
    skill: int = 1
    busy_string: str = ""
    secid: str = ""
    secname: str = ""
    autoacw: int = 0

    def wire(self) -> dict[str, object]:
        return {
            "agent": self.agent, "extension": self.extension, "queue": self.queue,
            "staffid": self.staffid, "busyString": self.busy_string, "skill": self.skill,
            "secid": self.secid, "secname": self.secname, "autoacw": self.autoacw,
        }


_STATE_AFTER: dict[type, p.CallState] = {
    p.OutboundRinging: p.CallState.OUTBOUND_RINGING,
    p.OutboundAnswered: p.CallState.OUTBOUND_TALKING,
    p.IncomingRinging: p.CallState.INBOUND_RINGING,
    p.IncomingAnswered: p.CallState.INBOUND_TALKING,
}


def exponential_backoff(
    initial: float = 0.5, factor: float = 2.0, maximum: float = 30.0,
    jitter: Callable[[], float] = random.random,
) -> Callable[[], Iterator[float]]:
    """A factory of delay sequences: initial·factorⁿ capped at `maximum`, each scaled by a
    random 50–100 % (“equal jitter”) so that a whole floor of seats does not reconnect at once."""

    def delays() -> Iterator[float]:
        delay = initial
        while True:
            yield delay * (0.5 + 0.5 * jitter())
            delay = min(delay * factor, maximum)

    return delays


class Seat:
    """One softphone socket, at most one logged-in agent."""

    def __init__(
        self,
        *,
        heartbeat_interval: float = 10.0,
        command_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        reconnect: bool = True,
        backoff: Callable[[], Iterator[float]] | None = None,
        on_event: Callable[[p.Message], Any] | None = None,
        name: str = "",
        ignore: frozenset[str] = frozenset(),
    ) -> None:
        self.heartbeat_interval = heartbeat_interval
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self.reconnect = reconnect
        self._backoff = backoff or exponential_backoff()
        self._on_event = on_event
        self.name = name
        #: names of events the caller does not want: dropped before they are decoded (every seat
        #: of a queue gets each ``queue status``: most of what a busy floor's seats receive)
        self._ignore = ignore
        self._url = ""
        self._ws: Wire | None = None
        self._pending: dict[str, deque[asyncio.Future[p.Message]]] = {}
        self._queue: asyncio.Queue[p.Message] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._restorer: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._closing = False
        self._missed = 0
        self._params: LoginParams | None = None
        # Getter state (manual §4.24–4.33).
        self.logged_in = False
        self.busy_state = ""
        self.agent_state = ""
        self.reg_state = ""
        self.call_state = p.CallState.IDLE
        self.number = ""
        self.callid = ""
        # Counters for benchmarks and metrics.
        self.frames_in = 0
        self.frames_out = 0
        self.frames_ignored = 0

    # -- getters ------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def extension(self) -> str:
        return self._params.extension if self._params else ""

    @property
    def staffid(self) -> str:
        return self._params.staffid if self._params else ""

    @property
    def agent_name(self) -> str:
        return self._params.agent if self._params else ""

    @property
    def skill(self) -> int:
        return self._params.skill if self._params else 0

    @property
    def queue(self) -> str:
        return self._params.queue if self._params else ""

    # -- connection ---------------------------------------------------------------------------
    async def connect(self, url: str) -> None:
        """Open the socket. Raises CTIError when the server cannot be reached."""
        self._url = url
        self._closing = False
        await self._open()

    async def _open(self) -> None:
        try:
            ws = await Wire.open(self._url, on_message=self._receive, timeout=self.connect_timeout,
                                 max_size=p.MAX_FRAME_CHARS * 4, close_timeout=1.0)
        except (OSError, InvalidHandshake, InvalidURI, asyncio.TimeoutError) as exc:
            raise CTIError(f"cannot connect to {self._url}: {exc or type(exc).__name__}") from exc
        self._ws = ws
        self._missed = 0
        self._reader = asyncio.create_task(self._read(ws), name=f"seat-{self.name}-reader")
        if self.heartbeat_interval > 0:
            self._heartbeat = asyncio.create_task(self._beat(ws), name=f"seat-{self.name}-hb")

    async def close(self) -> None:
        """Close the socket for good (no reconnect); waiting commands fail with ConnectionLost."""
        self._closing = True
        if self._restorer is not None:
            self._restorer.cancel()
            await asyncio.gather(self._restorer, return_exceptions=True)
            self._restorer = None
        ws = self._ws
        if ws is not None:
            await ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None

    async def _read(self, ws: Wire) -> None:
        """Waits for socket `ws` to close (its frames reach `_receive` as they arrive); then the
        seat is lost (and maybe restored)."""
        try:
            reason = await asyncio.shield(ws.closed)
        finally:
            self._lose(ws)
        if ws.dead:
            reason = f"{HEARTBEATS_MISSED_LIMIT} heartbeats unanswered"
        if self._closing or self._restorer is not None:
            return  # closing for good, or a failed re-login that the restorer already handles
        self._deliver(SeatLost(reason))
        if self.reconnect:
            self._restorer = asyncio.create_task(self._restore(), name=f"seat-{self.name}-restore")

    def _lose(self, ws: Wire) -> None:
        """Forget socket `ws`; every waiting command fails now."""
        if self._ws is not ws:
            return
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        self._ws = None
        self.logged_in = False
        self.call_state, self.number, self.callid = p.CallState.IDLE, "", ""
        pending, self._pending = self._pending, {}
        for futures in pending.values():
            for fut in futures:
                if not fut.done():
                    fut.set_exception(ConnectionLost("connection lost while waiting for a response"))

    async def _restore(self) -> None:
        """Reconnect and log in again until it works or the seat is closed."""
        attempts = 0
        try:
            for delay in self._backoff():
                await asyncio.sleep(delay)
                if self._closing:
                    return
                attempts += 1
                try:
                    await self._open()
                    if self._params is not None:
                        await self._login(self._params)
                except LoginFailed as exc:
                    log.warning("seat %s: re-login refused: %s", self.name, exc.reason)
                    await self._abort()
                    continue
                except (CTIError, RemoteProtocolError) as exc:
                    log.info("seat %s: reconnect attempt %d failed: %s", self.name, attempts, exc)
                    await self._abort()
                    continue
                except Exception:  # anything else must not end the reconnect loop for good
                    log.exception("seat %s: reconnect attempt %d failed", self.name, attempts)
                    await self._abort()
                    continue
                self._restorer = None
                self._deliver(SeatRestored(attempts))
                return
        finally:
            if self._restorer is asyncio.current_task():
                self._restorer = None

    async def _abort(self) -> None:
        ws = self._ws
        if ws is not None:
            self._lose(ws)
            await ws.close()

    async def _beat(self, ws: Wire) -> None:
        try:
            while True:
                await asyncio.sleep(self.heartbeat_interval)
                if self._missed >= HEARTBEATS_MISSED_LIMIT:
                    log.warning("seat %s: %d heartbeats unanswered, closing", self.name, self._missed)
                    ws.dead = True
                    ws.abort()
                    return
                self._missed += 1
                await self._send(p.encode_command("heartbeat"))
        except (ConnectionLost, NotConnected):
            return

    # -- frames -------------------------------------------------------------------------------
    def _receive(self, frame: str | bytes) -> None:
        self.frames_in += 1
        if self._ignore and p.event_name(frame) in self._ignore:  # type: ignore[arg-type]
            self.frames_ignored += 1
            return
        try:
            msg = p.decode(frame)  # type: ignore[arg-type]
        except RemoteProtocolError as exc:
            log.warning("seat %s: dropped a frame: %s", self.name, exc)
            self._deliver(FrameRejected(str(exc)))
            return
        if isinstance(msg, p.HeartbeatResponse):
            self._missed = 0
            return
        command = getattr(msg, "command", None)
        if command is not None:
            waiters = self._pending.get(command)
            while waiters:
                fut = waiters.popleft()
                if not fut.done():
                    fut.set_result(msg)
                    return
        self._track(msg)
        self._deliver(msg)

    def _track(self, msg: p.Message) -> None:
        """Keep the getters current from what the server says."""
        if isinstance(msg, (p.OutboundRinging, p.OutboundAnswered, p.IncomingRinging, p.IncomingAnswered)):
            self.number, self.callid = msg.number, msg.callid or self.callid
            self.call_state = _STATE_AFTER[type(msg)]
        elif isinstance(msg, p.Hangup):
            self.call_state, self.number, self.callid = p.CallState.IDLE, "", ""
        elif isinstance(msg, p.CallStatus):
            self.call_state, self.number = msg.call_state, msg.number
        elif isinstance(msg, p.StatusChanged):
            self.reg_state, self.agent_state, self.busy_state = msg.reg, msg.agent, msg.busy
            self.call_state, self.number = msg.call_state, msg.number
        elif isinstance(msg, p.BusyStatus):
            self.busy_state = msg.busy

    def _deliver(self, msg: p.Message) -> None:
        if self._on_event is not None:
            try:
                self._on_event(msg)
            except Exception:  # a caller's bug must not kill the reader
                log.exception("seat %s: event callback failed on %r", self.name, msg)
        else:
            self._queue.put_nowait(msg)

    async def events(self) -> AsyncIterator[p.Message]:
        """Every message for the caller, in arrival order (when no `on_event` was given)."""
        while True:
            yield await self._queue.get()

    async def _send(self, frame: str) -> None:
        ws = self._ws
        if ws is None:
            raise NotConnected(f"seat {self.name or self.extension}: not connected")
        try:
            ws.send(frame)  # into the transport's buffer: nothing to wait for
        except WireClosed as exc:
            raise ConnectionLost(f"seat {self.name}: connection lost while sending") from exc
        self.frames_out += 1

    async def command(
        self, name: str, *, expect_response: bool | None = None, timeout: float | None = None,
        **args: object,
    ) -> p.Message | None:
        """Send command `name`; wait for its response when `expect_response` (default: only the
        documented ones). Raises LocalProtocolError before sending anything that cannot travel,
        CommandTimeout, ConnectionLost or NotConnected."""
        frame = p.encode_command(name, **args)
        wait = name in p.ANSWERED_COMMANDS if expect_response is None else expect_response
        if not wait:
            await self._send(frame)
            return None
        fut: asyncio.Future[p.Message] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(name, deque()).append(fut)
        try:
            await self._send(frame)
            return await asyncio.wait_for(asyncio.shield(fut), timeout or self.command_timeout)
        except asyncio.TimeoutError:
            raise CommandTimeout(f"seat {self.name}: no response to {name}") from None
        finally:
            waiters = self._pending.get(name)
            if waiters and fut in waiters:
                waiters.remove(fut)
            if not fut.done():
                fut.cancel()
            elif not fut.cancelled():
                fut.exception()  # retrieved: a loss after a failed send is already reported

    # -- the manual's functions -----------------------------------------------------------------
    async def login(
        self, agent: str, extension: str, queue: str, staffid: str, *, skill: int = 1,
        busy_string: str = "", secid: str = "", secname: str = "", autoacw: int = 0,
    ) -> p.LoginResponse:
        """Log the agent in and wait for the answer. Raises LoginFailed with the server's reason."""
        params = LoginParams(agent, extension, queue, staffid, skill, busy_string, secid, secname,
                             int(p.AutoAcw.coerce(autoacw)))
        response = await self._login(params)
        return response

    async def _login(self, params: LoginParams) -> p.LoginResponse:
        response = await self.command("login", **params.wire())
        if not isinstance(response, p.LoginResponse):
            raise RemoteProtocolError(f"login answered with {type(response).__name__}")
        if not response.success:
            raise LoginFailed(response.result_text)
        self._params = params
        self.logged_in = True
        self.busy_state = response.busy
        return response

    async def logout(self) -> p.LogoutResponse:
        response = await self.command("logout")
        if not isinstance(response, p.LogoutResponse):
            raise RemoteProtocolError(f"logout answered with {type(response).__name__}")
        if response.success:
            self._params = None
            self.logged_in = False
        return response

    async def extension_list(
        self, type: p.ExtensionListType | str = p.ExtensionListType.ALL, secid: str = "",
        queue: str = "", *, timeout: float | None = None,
    ) -> tuple[p.ExtensionRecord, ...]:
        """The server's extension list; raises CTIError when it answers `success:false`."""
        kind = p.ExtensionListType(type) if isinstance(type, str) else type
        response = await self.command(
            "getExtensionList", type=kind.value, secid=secid, queue=queue, timeout=timeout)
        if not isinstance(response, p.ExtensionListResponse):
            raise RemoteProtocolError(f"getExtensionList answered with {type(response).__name__}")
        if not response.success:
            raise CTIError(f"getExtensionList refused: {response.result_text}")
        return response.records

    async def busy(self, reason: str, **kw: Any) -> p.Message | None:
        return await self.command("busy", busyString=reason, **kw)

    async def idle(self, **kw: Any) -> p.Message | None:
        return await self.command("idle", **kw)

    async def dial(
        self, dial_string: str, cusid: str = "", cusname: str = "", proid: str = "",
        proname: str = "", **kw: Any,
    ) -> p.Message | None:
        """Click-to-dial: the seat's extension rings first, then the number (manual §6.4).
        `dial_string` must be digits only, prefixes included."""
        return await self.command(
            "dial", dialString=dial_string, cusid=cusid, cusname=cusname, proid=proid,
            proname=proname, **kw)

    async def hangup(self, **kw: Any) -> p.Message | None:
        return await self.command("hangup", **kw)

    async def hold(self, **kw: Any) -> p.Message | None:
        return await self.command("hold", **kw)

    async def unhold(self, **kw: Any) -> p.Message | None:
        return await self.command("unhold", **kw)

    async def three_way(self, extension: str, **kw: Any) -> p.Message | None:
        return await self.command("threeWay", dialString=extension, **kw)

    async def transfer(self, extension: str, **kw: Any) -> p.Message | None:
        return await self.command("transfer", dialString=extension, **kw)

    async def transfer_queue(self, queue: str, **kw: Any) -> p.Message | None:
        return await self.command("transferQueue", queue=queue, **kw)

    async def transfer_ivr(self, node: str, **kw: Any) -> p.Message | None:
        return await self.command("transferIvr", ivr=node, **kw)

    async def pickup(self, **kw: Any) -> p.Message | None:
        return await self.command("pickup", **kw)

    async def group_pickup(self, group: str, **kw: Any) -> p.Message | None:
        return await self.command("groupPickup", group=group, **kw)

    async def pickup_extension(self, extension: str, **kw: Any) -> p.Message | None:
        return await self.command("pickupExtension", extension=extension, **kw)

    async def spy(self, extension: str, **kw: Any) -> p.Message | None:
        return await self.command("spy", extension=extension, **kw)

    async def group_spy(self, group: str, **kw: Any) -> p.Message | None:
        return await self.command("groupSpy", group=group, **kw)

    async def insert(self, extension: str, **kw: Any) -> p.Message | None:
        return await self.command("insert", extension=extension, **kw)

    async def cut(self, extension: str, **kw: Any) -> p.Message | None:
        return await self.command("hangupExtension", extension=extension, **kw)


__all__ = [
    "Seat", "SeatLost", "SeatRestored", "FrameRejected", "LoginParams", "exponential_backoff",
    "LocalProtocolError",
]
