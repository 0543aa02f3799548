"""The WebSocket connection under a seat (dialer/cti/wire.py): whatever way the server's bytes are
cut into reads, the messages come out whole, in order, and the same as websockets' own parser
makes of them — the direct path for plain frames included."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri
from websockets.utils import accept_key

from dialer.cti.wire import Wire, WireClosed


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def abort(self) -> None:
        self.closed = True

    def close(self) -> None:
        self.closed = True


def _response(protocol: ClientProtocol) -> bytes:
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(protocol.key).encode() + b"\r\n\r\n")


def _wire(got: list[str | bytes]) -> tuple[Wire, FakeTransport]:
    wire = Wire(ClientProtocol(parse_uri("ws://127.0.0.1:1/spcc/cti")), got.append, close_timeout=1.0)
    transport = FakeTransport()
    wire.connection_made(transport)
    return wire, transport


def _opened(got: list[str | bytes]) -> tuple[Wire, FakeTransport]:
    """A wire past its opening handshake."""
    wire, transport = _wire(got)
    wire.data_received(_response(wire.protocol))
    return wire, transport


def _server_frames(spec: list[tuple[str, str]]) -> tuple[bytes, list[str | bytes], int]:
    """Serialized server frames for `spec` and the messages a client must make of them (and
    how many pings it must answer)."""
    out, expected, pings = b"", [], 0
    for kind, text in spec:
        data = text.encode()
        if kind == "text":
            out += Frame(Opcode.TEXT, data).serialize(mask=False)
            expected.append(text)
        elif kind == "binary":  # with what looks like the start of a plain frame inside
            data = b"\x81\x05hello" + data + b"\x81\x02ok"
            out += Frame(Opcode.BINARY, data).serialize(mask=False)
            expected.append(data)
        elif kind == "ping":
            out += Frame(Opcode.PING, data[:100]).serialize(mask=False)
            pings += 1
        elif kind == "fragmented":
            half = len(data) // 2
            out += Frame(Opcode.TEXT, data[:half], fin=False).serialize(mask=False)
            out += Frame(Opcode.CONT, data[half:]).serialize(mask=False)
            expected.append(text)
    return out, expected, pings


FRAME_TEXT = st.text(alphabet=st.sampled_from("ab:\n空闲外呼通话"), max_size=300)
SPEC = st.lists(st.tuples(st.sampled_from(["text", "text", "text", "binary", "ping", "fragmented"]), FRAME_TEXT),
                max_size=12)


@settings(max_examples=300, deadline=None)
@given(spec=SPEC, cuts=st.lists(st.integers(min_value=1, max_value=64), max_size=40), extra=st.booleans())
def test_messages_survive_any_cut(spec: list[tuple[str, str]], cuts: list[int], extra: bool) -> None:
    async def run() -> None:
        got: list[str | bytes] = []
        wire, transport = _wire(got)
        frames, expected, pings = _server_frames(spec)
        # the first frames may come in the same read as the handshake's response (`extra`)
        stream = _response(wire.protocol) + frames
        pos, first = 0, len(_response(wire.protocol)) + (len(frames) // 2 if extra else 0)
        chunks = [stream[:first]]
        pos = first
        for cut in cuts:
            if pos >= len(stream):
                break
            chunks.append(stream[pos:pos + cut])
            pos += cut
        chunks.append(stream[pos:])
        for chunk in chunks:
            if chunk:
                wire.data_received(chunk)
        assert wire.handshake.done() and wire.handshake.exception() is None
        assert got == expected
        pongs = [w for w in transport.written[1:] if w[0] & 0x0F == Opcode.PONG.value]
        assert len(pongs) == pings
        wire.send("command:heartbeat\n\n")  # still open, still in step

    asyncio.run(run())


def test_plain_frames_take_the_direct_path_only_between_frames() -> None:
    async def run() -> None:
        got: list[str | bytes] = []
        wire, _ = _opened(got)
        plain = Frame(Opcode.TEXT, b"messageType:event\nname:hangup\n\n").serialize(mask=False)
        long = Frame(Opcode.TEXT, ("x" * 200).encode()).serialize(mask=False)  # a 16-bit length
        wire.data_received(plain + long)
        assert got == ["messageType:event\nname:hangup\n\n", "x" * 200]
        # a frame cut in its middle: the rest must not be read as the start of a frame
        wire.data_received(long[:50])
        wire.data_received(long[50:] + plain)
        assert got[2:] == ["x" * 200, "messageType:event\nname:hangup\n\n"]
        assert wire._need == 0 and wire._head == b""
        # ... even when it looks like one: a binary frame holding a plain frame, cut before it
        inner = Frame(Opcode.TEXT, b"hello").serialize(mask=False)
        binary = Frame(Opcode.BINARY, b"ab" + inner).serialize(mask=False)
        wire.data_received(binary[:4])
        wire.data_received(binary[4:])
        assert got[4:] == [b"ab" + inner]
        # ... or cut inside its header, where the rest begins like a plain frame (a length of
        # 0x8105 bytes: its header is 81 7e 81 05)
        big = Frame(Opcode.TEXT, b"y" * 0x8105).serialize(mask=False)
        assert big[2:4] == b"\x81\x05"
        wire.data_received(big[:2])
        wire.data_received(big[2:])
        wire.data_received(plain)
        assert got[5:] == ["y" * 0x8105, "messageType:event\nname:hangup\n\n"]

    asyncio.run(run())


def test_invalid_utf8_reaches_the_caller_as_bytes_and_the_connection_stays() -> None:
    async def run() -> None:
        got: list[str | bytes] = []
        wire, _ = _opened(got)
        wire.data_received(Frame(Opcode.TEXT, b"\xff\xfe").serialize(mask=False))
        assert got == [b"\xff\xfe"]
        wire.send("command:heartbeat\n\n")

    asyncio.run(run())


def test_a_close_frame_is_answered_and_sending_after_it_fails() -> None:
    async def run() -> None:
        got: list[str | bytes] = []
        wire, transport = _opened(got)
        wire.data_received(Frame(Opcode.CLOSE, b"\x03\xe8").serialize(mask=False)
                           + Frame(Opcode.TEXT, b"after").serialize(mask=False))
        wire.data_received(Frame(Opcode.TEXT, b"later").serialize(mask=False))
        assert got == []  # nothing after a close frame
        assert transport.written[-1][0] & 0x0F == Opcode.CLOSE.value
        with pytest.raises(WireClosed):
            wire.send("command:heartbeat\n\n")
        wire.connection_lost(None)
        assert wire.closed.result() == "connection closed (1000)"

    asyncio.run(run())


def test_a_refused_handshake_fails_open() -> None:
    async def run() -> None:
        wire, _ = _wire([])
        wire.data_received(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        with pytest.raises(Exception):
            await wire.handshake

    asyncio.run(run())
