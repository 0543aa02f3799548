"""One WebSocket client connection: websockets' Sans-I/O protocol driven by an asyncio transport.

Theory of operation
-------------------
websockets' asyncio client hands each message to a reader coroutine through a queue: a turn of
the event loop for every message, and an awaited lock for every send. A floor of 500 seats
receives thousands of frames a second — most of them queue counts nobody reads — so `Wire`
drives websockets' own Sans-I/O `ClientProtocol` (the handshake, the framing, limits, ping/pong
and the closing handshake all stay websockets') straight from the transport's callbacks:

* ``data_received`` feeds the protocol and hands each complete text message to `on_message`,
  in order, on the loop's thread, as soon as it is parsed; what the protocol answers by itself
  (a pong, the echo of a close frame) is written at once;
* the plain case — whole, unfragmented text frames of under 64 KiB, starting where the
  protocol's parser stands at a frame boundary — is read here directly (two length bytes and a
  slice instead of websockets' generator-based parser, a third of the cost of a frame on a
  busy floor). Everything else goes to the protocol, and `_walk` follows the frame boundaries
  of what it was given, so that the direct path is only ever taken between two of its frames;
* `send` is synchronous: the frame goes into the transport's buffer;
* `closed` is a future that resolves, with a one-line reason, when the TCP connection is gone.

A message that is not valid UTF-8 reaches `on_message` as bytes (the caller reports it and
goes on). Only `open` waits: for the TCP connection and the handshake, under one timeout.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

log = logging.getLogger(__name__)


class WireClosed(Exception):
    """Sending on a connection that is not open."""


class Wire(asyncio.Protocol):
    """A client WebSocket connection (see the module's docstring)."""

    def __init__(self, protocol: ClientProtocol, on_message: Callable[[str | bytes], Any],
                 close_timeout: float) -> None:
        self.protocol = protocol
        self.on_message = on_message
        self.close_timeout = close_timeout
        loop = asyncio.get_running_loop()
        self.handshake: asyncio.Future[None] = loop.create_future()
        self.handshake.add_done_callback(lambda f: f.cancelled() or f.exception())  # `open` reports it
        self.closed: asyncio.Future[str] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.dead = False  # set by a caller that gave up on the peer (heartbeats): says why it closed
        self._parts: list[bytes] | None = None  # a fragmented message being put together
        self._close_timer: asyncio.TimerHandle | None = None
        # the direct path (see the module's docstring): on once the handshake is parsed; the
        # bytes the protocol still needs to end the frame it is in, and a header begun
        self._direct = False
        self._handshake_bytes = bytearray()
        self._need = 0
        self._head = b""

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    async def open(cls, url: str, *, on_message: Callable[[str | bytes], Any], timeout: float,
                   max_size: int | None = 2**20, close_timeout: float = 1.0) -> Wire:
        """Connect and complete the handshake within `timeout` seconds. Raises InvalidURI,
        OSError, InvalidHandshake or asyncio.TimeoutError."""
        uri = parse_uri(url)
        wire = cls(ClientProtocol(uri, max_size=max_size), on_message, close_timeout)
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context() if uri.secure else None

        async def connect() -> None:
            await loop.create_connection(lambda: wire, uri.host, uri.port, ssl=context)
            await wire.handshake

        try:
            await asyncio.wait_for(connect(), timeout)
        except BaseException:
            wire.abort()
            raise
        return wire

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    # -- receiving ------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._direct and not self._need and not self._head and self._parts is None:
            data = self._take_plain(data)
            if not data:
                return
        if self._direct:
            self._walk(data)
        elif self.protocol.state is State.CONNECTING:
            self._handshake_bytes += data
        self.protocol.receive_data(data)
        events = self.protocol.events_received()
        self._flush()  # what the protocol answers by itself: a pong, a close frame's echo
        for event in events:
            if isinstance(event, Frame):
                self._frame(event)
            elif isinstance(event, Response):
                self._handshake_done()
        if self.protocol.close_expected() and self._close_timer is None:
            self._close_timer = asyncio.get_running_loop().call_later(self.close_timeout, self.abort)

    def _take_plain(self, data: bytes) -> bytes:
        """Deliver the whole plain text frames at the start of `data`; what is left."""
        if self.protocol.state is not State.OPEN:
            return data
        pos, n = 0, len(data)
        while pos + 2 <= n:
            first, length = data[pos], data[pos + 1]
            if first != 0x81:  # FIN and TEXT, no extension bits
                break
            start = pos + 2
            if length == 126:  # a 16-bit length (a server's frames are not masked: bit 0x80 clear)
                if start + 2 > n:
                    break
                length, start = (data[start] << 8) | data[start + 1], start + 2
            elif length > 126:
                break
            end = start + length
            if end > n:
                break
            self._deliver(data[start:end], False)
            pos = end
        return data[pos:] if pos else data

    def _walk(self, data: bytes) -> None:
        """Follow the frame boundaries in what the protocol is fed (`_need`, `_head`)."""
        i = 0
        if self._need:
            i = min(self._need, len(data))
            self._need -= i
            if self._need:
                return
        buf = self._head + data[i:] if self._head else data[i:]
        self._head = b""
        pos, n = 0, len(buf)
        while pos < n:
            end = _frame_end(buf, pos)
            if end is None:  # the header is not whole yet
                self._head = bytes(buf[pos:])
                return
            if end > n:
                self._need = end - n
                return
            pos = end

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if not frame.fin:
                self._parts = [bytes(frame.data)]
                self._binary = opcode is Opcode.BINARY
                return
            self._deliver(bytes(frame.data), opcode is Opcode.BINARY)
        elif opcode is Opcode.CONT and self._parts is not None:
            self._parts.append(bytes(frame.data))
            if frame.fin:
                data, self._parts = b"".join(self._parts), None
                self._deliver(data, self._binary)

    def _deliver(self, data: bytes, binary: bool) -> None:
        message: str | bytes = data
        if not binary:
            try:
                message = data.decode()
            except UnicodeDecodeError:
                pass
        try:
            self.on_message(message)
        except Exception:  # the caller's bug must not cut the connection
            log.exception("a WebSocket message handler failed")

    def _handshake_done(self) -> None:
        if self.handshake.done():
            return
        if self.protocol.state is State.OPEN:
            # frames start right after the response's blank line (a 101 has no body)
            end = self._handshake_bytes.find(b"\r\n\r\n")
            if end >= 0:
                self._direct = True
                self._walk(bytes(self._handshake_bytes[end + 4:]))
            self._handshake_bytes = bytearray()
            self.handshake.set_result(None)
        else:
            exc = self.protocol.handshake_exc or InvalidHandshake("the server refused the WebSocket handshake")
            self.handshake.set_exception(exc)

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._flush()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.receive_eof()  # idempotent: the protocol is CLOSED now
        if self._close_timer is not None:
            self._close_timer.cancel()
        if not self.handshake.done():
            self.handshake.set_exception(exc or ConnectionError("connection closed during the handshake"))
        if not self.closed.done():
            rcvd = self.protocol.close_rcvd
            self.closed.set_result(f"connection closed ({rcvd.code if rcvd is not None else 'no close frame'})")

    # -- sending --------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.protocol.state is State.OPEN and self.transport is not None and not self.transport.is_closing()

    def send(self, text: str) -> None:
        """Send one text message. Raises WireClosed when the connection is not open."""
        if not self.is_open:
            raise WireClosed("the connection is not open")
        self.protocol.send_text(text.encode())
        self._flush()

    def _flush(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in self.protocol.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():  # the protocol is done with the stream: half-close
                try:
                    transport.write_eof()
                except Exception:  # noqa: BLE001 - the transport is going away anyway
                    pass
            else:
                transport.close()

    # -- closing --------------------------------------------------------------------------------
    async def close(self) -> None:
        """The closing handshake (code 1000), then wait up to `close_timeout` for the server
        to close the TCP connection, then cut it."""
        if self.protocol.state is State.OPEN and self.transport is not None:
            self.protocol.send_close(1000)
            self._flush()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), self.close_timeout)
        except asyncio.TimeoutError:
            self.abort()
            await asyncio.shield(self.closed)

    def abort(self) -> None:
        """Cut the TCP connection now (no closing handshake)."""
        if self.transport is not None:
            self.transport.abort()
        elif not self.closed.done():
            self.closed.set_result("connection closed (never opened)")


def _frame_end(buf: bytes, pos: int) -> int | None:
    """Where the frame starting at `pos` ends, or None while its header is incomplete."""
    n = len(buf)
    if pos + 2 > n:
        return None
    second = buf[pos + 1]
    length, head = second & 0x7F, pos + 2
    if length == 126:
        if head + 2 > n:
            return None
        length, head = int.from_bytes(buf[head:head + 2], "big"), head + 2
    elif length == 127:
        if head + 8 > n:
            return None
        length, head = int.from_bytes(buf[head:head + 8], "big"), head + 8
    if second & 0x80:  # masked
        head += 4
    return head + length


__all__ = ["Wire", "WireClosed"]
