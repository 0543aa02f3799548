"""The CTI softphone wire protocol, both directions, with no I/O.

Theory of operation
-------------------
A frame is one WebSocket text message: ``key:value`` lines, each ended by ``\\n``, closed by an
empty line. Client → server frames start with ``command:NAME``; server → client frames carry a
``messageType`` (``command response``, ``heartbeat response`` or ``event``; events name
themselves with ``name``). The facts come from ``shared/reference/cti-wire-protocol.md``.

This module turns text into typed, immutable messages and messages into text, and nothing
else: the client and the simulator own the sockets. Two exception types only:

* `RemoteProtocolError`: the peer sent a frame we cannot read (no ``key:value`` shape, too
  large, too many lines). Anything merely *unexpected* — an unknown ``messageType``, an unknown
  event name, an unknown key, a missing key — is not an error: unknown things become `Unknown`,
  unknown keys are ignored, missing keys read as ``""``.
* `LocalProtocolError`: our own code asked to send something the wire cannot carry — a ``\\n``
  or ``\\r`` in a value (it would inject keys), a dial string that is not digits, an unknown
  command.

Lines are split on their FIRST ``:`` (the vendor's JavaScript keeps only the first two pieces of
a split on every ``:``, which truncates values; we do not copy that). When a key repeats, the
last one wins, as it does when the vendor client assigns the keys to a JavaScript object.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Union

from dialer.errors import LocalProtocolError, RemoteProtocolError
from dialer.text import forbidden

#: Largest frame we read or write, in characters. A getExtensionList answer for a 5,000-seat
#: site is about 300 KB; nothing legitimate comes near this.
MAX_FRAME_CHARS = 1 << 20
#: Most lines a frame may hold (the longest legitimate frame has 12).
MAX_FRAME_LINES = 256

# Message types and event names exactly as they travel (the misspelling `incomming` is the
# vendor's and must be kept).
MT_RESPONSE = "command response"
MT_HEARTBEAT = "heartbeat response"
MT_EVENT = "event"

# --------------------------------------------------------------------------------------------
# Enumerations of the manual
# --------------------------------------------------------------------------------------------


class CallState(enum.Enum):
    """Call states of manual §6.3, as sent in the ``call`` key."""

    OUTBOUND_RINGING = "外呼振铃"
    INBOUND_RINGING = "呼入振铃"
    OUTBOUND_TALKING = "外呼通话"
    INBOUND_TALKING = "呼入通话"
    AUTODIAL_CONNECTED = "自动外呼接入"
    IDLE = "空闲"
    OUTBOUND_EARLY_MEDIA = "外呼彩铃"
    INBOUND_EARLY_MEDIA = "呼入彩铃"
    UNKNOWN = "未知"

    @classmethod
    def parse(cls, text: str) -> CallState:
        """The state named by `text`; anything unrecognised (including ``""``) is UNKNOWN."""
        return _CALL_STATES.get(text, cls.UNKNOWN)


_CALL_STATES = {s.value: s for s in CallState}


class ExtensionListType(enum.Enum):
    """The ``type`` of getExtensionList (manual §6.2)."""

    ALL = "all"
    IDLE = "idle"
    AGENT = "agent"
    AGENT_IDLE = "agentidle"


class AutoAcw(enum.IntEnum):
    """After-call work on hangup (manual §6.1)."""

    OFF = 0
    INBOUND = 1
    OUTBOUND = 2
    ALL = 3

    @classmethod
    def coerce(cls, value: object) -> AutoAcw:
        """The vendor client sends anything outside 0..3 as 0; so do we."""
        try:
            return cls(int(value))  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return cls.OFF


# --------------------------------------------------------------------------------------------
# Client → server commands
# --------------------------------------------------------------------------------------------

#: Every command of the protocol table with its keys, in wire order.
COMMANDS: dict[str, tuple[str, ...]] = {
    "login": (
        "agent", "extension", "queue", "staffid", "busyString", "skill", "secid", "secname",
        "autoacw",
    ),
    "logout": (),
    "busy": ("busyString",),
    "idle": (),
    "dial": ("dialString", "cusid", "cusname", "proid", "proname"),
    "hold": (),
    "unhold": (),
    "hangup": (),
    "threeWay": ("dialString",),
    "transfer": ("dialString",),
    "transferQueue": ("queue",),
    "transferIvr": ("ivr",),
    "pickup": (),
    "groupPickup": ("group",),
    "pickupExtension": ("extension",),
    "spy": ("extension",),
    "groupSpy": ("group",),
    "insert": ("extension",),
    "hangupExtension": ("extension",),
    "getExtensionList": ("type", "secid", "queue"),
    "heartbeat": (),
}

#: Commands documented to receive a ``command response``. Others may or may not get one.
ANSWERED_COMMANDS = frozenset({"login", "logout", "getExtensionList"})

#: Keys whose value must be a non-empty string of ASCII digits (a number or an extension).
_DIGIT_KEYS = {
    ("dial", "dialString"), ("threeWay", "dialString"), ("transfer", "dialString"),
    ("pickupExtension", "extension"), ("spy", "extension"), ("insert", "extension"),
    ("hangupExtension", "extension"), ("login", "extension"),
}
MAX_DIAL_DIGITS = 32


@dataclass(frozen=True, slots=True)
class ClientCommand:
    """A decoded client → server frame (what the simulator reads)."""

    name: str
    args: Mapping[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str:
        """The value of `key`, ``""`` when absent."""
        return self.args.get(key, "")


def check_value(key: str, value: str) -> str:
    """Return `value` if it can travel as the value of `key`; raise LocalProtocolError if not."""
    if not isinstance(value, str):
        raise LocalProtocolError(f"{key}: value must be text, got {type(value).__name__}")
    if not value.isprintable():  # the fast test (every forbidden character is unprintable, BOM included)
        bad = forbidden(value)
        if bad:
            raise LocalProtocolError(f"{key}: value contains a {bad} (frame injection refused)")
    return value


def is_dial_digits(text: str) -> bool:
    """True when `text` is 1..32 ASCII digits (``str.isdigit`` accepts ``²`` and ``٣``)."""
    return 0 < len(text) <= MAX_DIAL_DIGITS and text.isascii() and text.isdigit()


def encode_command(name: str, **args: object) -> str:
    """The frame for client command `name` with `args` (wire key names).

    Every key of the command is written, absent ones empty, in the table's order; the well-formed
    version of every command is sent (none of the vendor client's defects). Raises
    LocalProtocolError for an unknown command, an unknown key, a line break in a value, or a
    number/extension that is not digits.
    """
    keys = COMMANDS.get(name)
    if keys is None:
        raise LocalProtocolError(f"unknown command {name!r}")
    unknown = set(args) - set(keys)
    if unknown:
        raise LocalProtocolError(f"{name}: unknown key(s) {', '.join(sorted(unknown))}")
    parts = [f"command:{name}\n"]
    for key in keys:
        raw = args.get(key)
        if key == "autoacw":
            value = str(int(AutoAcw.coerce(raw if raw is not None else 0)))
        elif raw is None:
            value = ""
        elif isinstance(raw, ExtensionListType):
            value = raw.value
        elif isinstance(raw, int) and not isinstance(raw, bool):
            value = str(raw)
        else:
            value = check_value(key, raw)  # type: ignore[arg-type]
        if (name, key) in _DIGIT_KEYS and not is_dial_digits(value):
            raise LocalProtocolError(f"{name}: {key} must be 1..{MAX_DIAL_DIGITS} digits, got {value!r}")
        parts.append(f"{key}:{value}\n")
    parts.append("\n")
    return "".join(parts)


def decode_command(text: str) -> ClientCommand:
    """Read a client → server frame. Raises RemoteProtocolError when it is not one."""
    pairs = _parse_pairs(text)
    name = pairs.pop("command", None)
    if not name:
        raise RemoteProtocolError("frame has no command")
    return ClientCommand(name, pairs)


# --------------------------------------------------------------------------------------------
# Server → client messages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExtensionRecord:
    """One record of a getExtensionList answer: ``exten|name|loginId|sector|group|state|busy``."""

    exten: str
    name: str = ""
    login_id: str = ""
    sector: str = ""
    group: str = ""
    state: str = ""
    busy: str = ""

    @property
    def call_state(self) -> CallState:
        return CallState.parse(self.state)

    def encode(self) -> str:
        values = [self.exten, self.name, self.login_id, self.sector, self.group, self.state, self.busy]
        for v in values:
            check_value("resultText", v)
            if "|" in v or "," in v:
                raise LocalProtocolError(f"extension record field {v!r} contains '|' or ','")
        return "|".join(values)

    @classmethod
    def decode(cls, text: str) -> ExtensionRecord:
        """Tolerant: missing fields read as ``""``, extra fields are ignored."""
        parts = text.split("|")
        parts += [""] * (7 - len(parts))
        return cls(*parts[:7])


class Message:
    """Base of every decoded server → client message (and of the client's own seat events)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class CommandResponse(Message):
    """A ``command response`` to any command without a more specific type."""

    command: str
    success: bool
    result_text: str = ""


@dataclass(frozen=True, slots=True)
class LoginResponse(Message):
    """The answer to ``login``; `busy` is the reason the seat is busy in after login ("" = idle)."""

    success: bool
    result_text: str = ""
    busy: str = ""
    command: ClassVar[str] = "login"


@dataclass(frozen=True, slots=True)
class LogoutResponse(Message):
    success: bool
    result_text: str = ""
    command: ClassVar[str] = "logout"


@dataclass(frozen=True, slots=True)
class ExtensionListResponse(Message):
    success: bool
    records: tuple[ExtensionRecord, ...] = ()
    command: ClassVar[str] = "getExtensionList"

    @property
    def result_text(self) -> str:
        return ",".join(r.encode() for r in self.records)


@dataclass(frozen=True, slots=True)
class HeartbeatResponse(Message):
    pass


class Event(Message):
    """Base of the ten events; `NAME` is the wire ``name``, `KEYS` maps attributes to keys."""

    __slots__ = ()
    NAME: ClassVar[str]
    KEYS: ClassVar[tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class OutboundRinging(Event):
    """The called party's phone is ringing (OnOutboundRinging, manual §5.9)."""

    number: str = ""
    callid: str = ""
    NAME: ClassVar[str] = "outbound ringing"
    KEYS: ClassVar[tuple[tuple[str, str], ...]] = (("number", "number"), ("callid", "callid"))


@dataclass(frozen=True, slots=True)
class OutboundAnswered(Event):
    """The called party answered (OnOutbound, manual §5.10)."""

    number: str = ""
    callid: str = ""
    province: str = ""
    city: str = ""
    isp: str = ""
    NAME: ClassVar[str] = "outbound answered"
    KEYS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("number", "number"), ("callid", "callid"), ("province", "province"), ("city", "city"),
        ("isp", "isp"),
    )


@dataclass(frozen=True, slots=True)
class _Incoming(Event):
    """The keys shared by the two incoming-call events."""

    number: str = ""
    callid: str = ""
    autodial: bool = False
    province: str = ""
    city: str = ""
    isp: str = ""
    data: str = ""
    KEYS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("number", "number"), ("callid", "callid"), ("autodial", "autodial"),
        ("province", "province"), ("city", "city"), ("isp", "isp"), ("data", "data"),
    )


@dataclass(frozen=True, slots=True)
class IncomingRinging(_Incoming):
    """A call rings at the seat (OnIncommingRing, manual §5.7); `autodial` marks a dialer call."""

    NAME: ClassVar[str] = "incomming ringing"


@dataclass(frozen=True, slots=True)
class IncomingAnswered(_Incoming):
    """The seat answered a call offered to it (OnIncommingAnswer, manual §5.8)."""

    NAME: ClassVar[str] = "incomming answered"


@dataclass(frozen=True, slots=True)
class Hangup(Event):
    """The seat's call ended (OnHangup, manual §5.11). `callid` may be empty: undocumented."""

    callid: str = ""
    NAME: ClassVar[str] = "hangup"
    KEYS: ClassVar[tuple[tuple[str, str], ...]] = (("callid", "callid"),)


@dataclass(frozen=True, slots=True)
class StatusChanged(Event):
    """Registration, call, agent and busy state at once (OnStatusChanged, manual §5.14)."""

    reg: str = ""
    call: str = ""
    agent: str = ""
    busy: str = ""
    number: str = ""
    NAME: ClassVar[str] = "status changed"
    KEYS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("reg", "reg"), ("call", "call"), ("agent", "agent"), ("busy", "busy"), ("number", "number"),
    )

    @property
    def call_state(self) -> CallState:
        return CallState.parse(self.call)


@dataclass(frozen=True, slots=True)
class CallStatus(Event):
    """The seat's call state changed (OnCallStatus, manual §5.15)."""

    call: str = ""
    number: str = ""
    NAME: ClassVar[str] = "call status"
    KEYS: ClassVar[tuple[tuple[str, str], ...]] = (("call", "call"), ("number", "number"))

    @property
    def call_state(self) -> CallState:
        return CallState.parse(self.call)


@dataclass(frozen=True, slots=True)
class QueueStatus(Event):
    """A queue's counts changed (OnQueueStatusChanged, manual §5.16)."""

    idle: int = 0
    agent: int = 0
    guest: int = 0
    queue: str = ""
    NAME: ClassVar[str] = "queue status"
    KEYS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("idle", "idle"), ("agent", "agent"), ("guest", "guest"), ("queue", "queue"),
    )


@dataclass(frozen=True, slots=True)
class BusyStatus(Event):
    """The seat became busy with reason `busy`, or idle when it is ``""`` (OnBusy/OnFree)."""

    busy: str = ""
    NAME: ClassVar[str] = "busy status"
    KEYS: ClassVar[tuple[tuple[str, str], ...]] = (("busy", "busy"),)


@dataclass(frozen=True, slots=True)
class AgentStatus(Event):
    """``agent status``: its keys are not documented, so all of them are kept."""

    fields: tuple[tuple[str, str], ...] = ()
    NAME: ClassVar[str] = "agent status"
    KEYS: ClassVar[tuple[tuple[str, str], ...]] = ()


@dataclass(frozen=True, slots=True)
class Unknown(Message):
    """A well-formed frame whose ``messageType`` or event ``name`` we do not know."""

    message_type: str
    name: str = ""
    fields: tuple[tuple[str, str], ...] = ()


ServerMessage = Union[
    CommandResponse, LoginResponse, LogoutResponse, ExtensionListResponse, HeartbeatResponse,
    OutboundRinging, OutboundAnswered, IncomingRinging, IncomingAnswered, Hangup, StatusChanged,
    CallStatus, QueueStatus, BusyStatus, AgentStatus, Unknown,
]

EVENT_TYPES: dict[str, type[Event]] = {
    cls.NAME: cls
    for cls in (
        OutboundRinging, OutboundAnswered, IncomingRinging, IncomingAnswered, Hangup,
        StatusChanged, CallStatus, QueueStatus, BusyStatus, AgentStatus,
    )
}


def _parse_pairs(text: str) -> dict[str, str]:
    """Split a frame into its keys and values. Raises RemoteProtocolError on a malformed frame."""
    if not isinstance(text, str):
        raise RemoteProtocolError("binary frame: the protocol uses text frames only")
    if len(text) > MAX_FRAME_CHARS:
        raise RemoteProtocolError(f"frame of {len(text)} characters exceeds {MAX_FRAME_CHARS}")
    lines = text.split("\n")
    if len(lines) > MAX_FRAME_LINES + 2:
        raise RemoteProtocolError(f"frame of {len(lines)} lines exceeds {MAX_FRAME_LINES}")
    pairs: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not key:
            raise RemoteProtocolError(f"line {number} is not key:value: {line[:60]!r}")
        pairs[key] = value
    if not pairs:
        raise RemoteProtocolError("empty frame")
    return pairs


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _bool(text: str) -> bool:
    return text == "true"


def decode(text: str) -> ServerMessage:
    """Read one server → client frame into a typed message.

    Raises RemoteProtocolError when the frame is not ``key:value`` lines, is empty or too large,
    or has no ``messageType``. Unknown message types and event names give `Unknown`.
    """
    pairs = _parse_pairs(text)
    mtype = pairs.get("messageType")
    if mtype is None:
        raise RemoteProtocolError("frame has no messageType")
    if mtype == MT_EVENT:
        return _decode_event(pairs)
    if mtype == MT_RESPONSE:
        return _decode_response(pairs)
    if mtype == MT_HEARTBEAT:
        return HeartbeatResponse()
    return Unknown(mtype, pairs.get("name", ""), _rest(pairs, ("messageType", "name")))


_EVENT_HEAD = "messageType:event\nname:"


def event_name(text: str) -> str:
    """The ``name`` of an event frame, read without decoding the frame — for a reader that
    skips the events it does not want (a seat gets every queue's ``queue status``). ``""``
    unless the frame has exactly one ``messageType`` line, saying ``event``, and exactly one
    ``name`` line: anything less plain is left to `decode`, which stays the one reader of
    frames."""
    if not isinstance(text, str):
        return ""
    if text.startswith(_EVENT_HEAD):  # the usual layout: a few searches, no copies
        start = len(_EVENT_HEAD)
        end = text.find("\n", start)
        if end >= 0 and text.find("\nname:", end) < 0 and text.find("\nmessageType:", end) < 0:
            return text[start:end]
        return ""
    t = "\n" + text
    if t.count("\nmessageType:") != 1 or t.count("\nname:") != 1 or "\nmessageType:event\n" not in t:
        return ""
    start = t.index("\nname:") + 6
    end = t.find("\n", start)
    return t[start:] if end < 0 else t[start:end]


def _rest(pairs: dict[str, str], skip: Iterable[str]) -> tuple[tuple[str, str], ...]:
    skipped = set(skip)
    return tuple((k, v) for k, v in pairs.items() if k not in skipped)


def _decode_response(pairs: dict[str, str]) -> ServerMessage:
    command = pairs.get("command", "")
    success = _bool(pairs.get("success", ""))
    text = pairs.get("resultText", "")
    if command == "login":
        return LoginResponse(success, text, pairs.get("busy", ""))
    if command == "logout":
        return LogoutResponse(success, text)
    if command == "getExtensionList":
        records = tuple(ExtensionRecord.decode(r) for r in text.split(",") if r) if text else ()
        return ExtensionListResponse(success, records)
    return CommandResponse(command, success, text)


def _decode_event(pairs: dict[str, str]) -> ServerMessage:
    name = pairs.get("name", "")
    cls = EVENT_TYPES.get(name)
    if cls is None:
        return Unknown(MT_EVENT, name, _rest(pairs, ("messageType", "name")))
    if cls is AgentStatus:
        return AgentStatus(_rest(pairs, ("messageType", "name")))
    kwargs: dict[str, object] = {}
    for attr, key in cls.KEYS:
        raw = pairs.get(key, "")
        if attr == "autodial":
            kwargs[attr] = _bool(raw)
        elif cls is QueueStatus and attr != "queue":
            kwargs[attr] = _int(raw)
        else:
            kwargs[attr] = raw
    return cls(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Server side: writing messages (the simulator)
# --------------------------------------------------------------------------------------------


def _frame(pairs: Iterable[tuple[str, str]]) -> str:
    parts = []
    for key, value in pairs:
        if not key or ":" in key or "\n" in key or "\r" in key:
            raise LocalProtocolError(f"{key!r} cannot be a key")
        parts.append(f"{key}:{check_value(key, value)}\n")
    parts.append("\n")
    text = "".join(parts)
    if len(text) > MAX_FRAME_CHARS:
        raise LocalProtocolError(f"frame of {len(text)} characters exceeds {MAX_FRAME_CHARS}")
    return text


def _wire(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def encode(message: ServerMessage) -> str:
    """The frame for a server → client message (what the simulator sends).

    Raises LocalProtocolError for a line break in any value.
    """
    if isinstance(message, HeartbeatResponse):
        return _frame([("messageType", MT_HEARTBEAT)])
    if isinstance(message, LoginResponse):
        return _frame([
            ("messageType", MT_RESPONSE), ("command", "login"), ("success", _wire(message.success)),
            ("resultText", message.result_text), ("busy", message.busy),
        ])
    if isinstance(message, (CommandResponse, LogoutResponse, ExtensionListResponse)):
        return _frame([
            ("messageType", MT_RESPONSE), ("command", message.command),
            ("success", _wire(message.success)), ("resultText", message.result_text),
        ])
    if isinstance(message, AgentStatus):
        return _frame([("messageType", MT_EVENT), ("name", AgentStatus.NAME), *message.fields])
    if isinstance(message, Event):
        head = [("messageType", MT_EVENT), ("name", message.NAME)]
        body = [(key, _wire(getattr(message, attr))) for attr, key in message.KEYS]
        return _frame(head + body)
    if isinstance(message, Unknown):
        head = [("messageType", message.message_type)]
        if message.name:
            head.append(("name", message.name))
        return _frame(head + list(message.fields))
    raise LocalProtocolError(f"cannot encode {type(message).__name__}")

