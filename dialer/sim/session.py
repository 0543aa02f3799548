"""What the simulator keeps per socket and per call: a `Session` (one softphone, at most one
logged-in extension), a `Call` (a customer's leg and the seats in it), and the records of finished
calls and IVR visits that tests and benchmarks read."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

from dialer.cti import protocol as p
from dialer.cti.protocol import CallState as CS
from dialer.numbering import Attribution
from dialer.sim.model import AgentProfile, CustomerFate

if TYPE_CHECKING:
    from dialer.sim.server import Simulator

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


def record_field(text: str) -> str:
    """An extension-list field cannot hold the record separators; replace them."""
    return text.replace("|", "/").replace(",", "，")


__all__ = ["Session", "Call", "CallRecord", "IvrVisit", "BUSY_ACW", "REG_ON", "REG_OFF", "AGENT_ON", "AGENT_OFF", "record_field"]
