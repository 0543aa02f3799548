"""A predictive call's hand-over from the dialer port to an agent, as a table. Pure: phases,
moves and times in, the next phase and the call's outcome out.

Theory of operation
-------------------
A call placed on a dialer port is followed by its `CallTracker` (dialer/outcomes.py) until the
customer answers. From then on it moves through `TRANSITIONS`:

    DIALLING ──answered, an agent free──▶ TRANSFERRING ──agent answers / port leg gone──▶ HANDED
        │                                   ▲     │                                        │
        └──answered, no agent──▶ WAITING ───┘     └──refused──▶ WAITING      agent leg over ─┴─▶ ENDED
                                   │  └──deadline (the 2 s rule)──▶ IVR
                                   └──the customer hangs up──▶ ENDED

* WAITING: no agent was free; the worker waits for one until the 2 s rule, less the agents'
  quick pickup (`wait_left`), then sends the caller to the campaign's abandon message (IVR).
* TRANSFERRING: an agent is reserved and the transfer sent. A refusal puts the call back in the
  wait (the time already spent counts); the port's leg ending means the server moved the
  customer on (HANDED).
* The agent answering is the bridge: its time against the answer decides `answered` (within
  2 s) or `answered_late` (counted as abandoned: exactly the calls the 2 s rule counts).

`outcome_of` gives the outcome a move records (None: the move records nothing). An illegal move
raises `IllegalHandover` naming the phase and the move; the worker's events that do not fit a
phase (a stale hangup, a second answer) are filtered before they get here.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence

from dialer.errors import DialerError

#: an answered predictive call must reach an agent within this (pickup included): FCC/Ofcom
ABANDON_AFTER = 2.0


#: the detail an abandoned call's attempt carries once its customer was sent to the abandon
#: message (the compliance report counts them)
IVR_SENT = "sent to IVR node"


class Phase(str, enum.Enum):
    DIALLING = "dialling"  # the port's call, not answered yet (the CallTracker's business)
    WAITING = "waiting"  # answered, no agent yet
    TRANSFERRING = "transferring"  # an agent reserved, the transfer sent
    HANDED = "handed"  # the customer is with the agent (or on the way to the one the queue picked)
    IVR = "ivr"  # sent to the abandon message
    ENDED = "ended"


class Move(enum.Enum):
    NO_AGENT = "no_agent"  # the customer answered; no agent is free
    AGENT_FREE = "agent_free"  # an agent is reserved; the transfer goes out
    TRANSFER_REFUSED = "transfer_refused"
    PORT_LEG_GONE = "port_leg_gone"  # the port's leg ended (handed on, or the customer hung up)
    AGENT_ANSWERED = "agent_answered"  # the bridge
    AGENT_LEG_OVER = "agent_leg_over"  # the agent's leg ended (after the bridge, or unanswered)
    DEADLINE = "deadline"  # the wait reached the 2 s rule
    HANDOVER_TIMEOUT = "handover_timeout"  # the transfer never reached an agent


class IllegalHandover(DialerError):
    def __init__(self, phase: Phase, move: Move) -> None:
        super().__init__(f"hand-over move {move.value} is not possible in phase {Phase(phase).value}")
        self.phase, self.move = phase, move


TRANSITIONS: dict[Phase, dict[Move, Phase]] = {
    Phase.DIALLING: {Move.AGENT_FREE: Phase.TRANSFERRING, Move.NO_AGENT: Phase.WAITING},
    Phase.WAITING: {Move.AGENT_FREE: Phase.TRANSFERRING, Move.DEADLINE: Phase.IVR, Move.PORT_LEG_GONE: Phase.ENDED},
    Phase.TRANSFERRING: {
        Move.TRANSFER_REFUSED: Phase.WAITING, Move.PORT_LEG_GONE: Phase.HANDED, Move.AGENT_ANSWERED: Phase.HANDED,
        Move.AGENT_LEG_OVER: Phase.ENDED, Move.HANDOVER_TIMEOUT: Phase.ENDED,
    },
    Phase.HANDED: {
        Move.PORT_LEG_GONE: Phase.HANDED, Move.AGENT_ANSWERED: Phase.HANDED, Move.AGENT_LEG_OVER: Phase.ENDED,
        Move.HANDOVER_TIMEOUT: Phase.ENDED,
    },
    Phase.IVR: {Move.PORT_LEG_GONE: Phase.IVR},  # its outcome was recorded when it was sent there
    Phase.ENDED: {},
}


def step(phase: Phase | str, move: Move) -> Phase:
    """The phase after `move`; IllegalHandover if the table has no such move."""
    row = TRANSITIONS[Phase(phase)]
    if move not in row:
        raise IllegalHandover(Phase(phase), move)
    return row[move]


def outcome_of(phase: Phase | str, move: Move, *, answered_at: dt.datetime | None, bridged_at: dt.datetime | None,
               why: str = "") -> tuple[str, str] | None:
    """The (outcome, detail) that `move` in `phase` records, or None."""
    phase = Phase(phase)
    if phase is Phase.WAITING and move is Move.DEADLINE:
        return "abandoned", why or f"no agent free within {ABANDON_AFTER:g} s"
    if phase is Phase.WAITING and move is Move.PORT_LEG_GONE:
        return "abandoned", why or "the customer hung up while waiting for an agent"
    if phase in (Phase.TRANSFERRING, Phase.HANDED) and move is Move.AGENT_LEG_OVER:
        if bridged_at is None:
            return "abandoned", why or "the agent did not pick up the transferred call"
        wait = (bridged_at - (answered_at or bridged_at)).total_seconds()
        if wait > ABANDON_AFTER:
            return "answered_late", why or f"bridged {wait:.1f} s after the answer"
        return "answered", why
    if phase in (Phase.TRANSFERRING, Phase.HANDED) and move is Move.HANDOVER_TIMEOUT and bridged_at is None:
        return "abandoned", why or "the transferred call never reached an agent"
    return None


def pickup_allowance(pickups: Sequence[float]) -> float:
    """How long before the 2 s limit the last transfer may start: the agents' quick (10th
    percentile) pickup, 0.3 s until 20 have been seen. A transfer whose pickup then runs past
    the 2 s still gives the customer an agent; it is recorded `answered_late` and counted as
    abandoned — exactly the calls the 2 s rule counts, no more."""
    if len(pickups) < 20:
        return 0.3
    ordered = sorted(pickups)
    return min(1.9, max(0.1, ordered[int(0.1 * (len(ordered) - 1))]))


def wait_left(answered_at: dt.datetime | None, now: dt.datetime, allowance: float, lag: float = 0.0) -> float:
    """Seconds a waiting caller may still wait for an agent: the 2 s rule, less the pickup
    allowance, the time since the answer, and the worker's own measured lag (a late timer must
    not carry the wait past the rule)."""
    spent = (now - answered_at).total_seconds() if answered_at is not None else 0.0
    return ABANDON_AFTER - allowance - spent - max(0.0, lag)
