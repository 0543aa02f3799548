"""A click-to-dial call's state machine and the retry policy. Pure: data and times in,
decisions out.

Theory of operation
-------------------
The worker feeds every event of a seat's call to `CallTracker.feed`, and every timer expiry to
`CallTracker.expire`. The tracker moves through the table `TRANSITIONS` and, when the call is
over, reports an `Outcome`. A seat has at most one call at a time, so the events need no call id
to be matched (the server may send none with `hangup`); a `hangup` carrying another call's id
is stale and ignored.

    DIALLING ──agent up──▶ AGENT_UP ──outbound ringing──▶ RINGING ──outbound answered──▶ TALKING
        │                     │                              │                           │
        └──────── hangup, dial refused, timers ─────────────┴───────────── hangup ──────┘──▶ ENDED

* DIALLING: `dial` was sent; the agent's own extension rings (manual §6.4). "Agent up" is any
  `call status`/`status changed` whose state is neither 呼入振铃 (the extension ringing) nor
  空闲, or directly `outbound ringing`.
* What is not documented is tolerated: a missing `agent up` is implied by `outbound ringing`, a
  missing `outbound ringing` by `outbound answered`; a repeated event keeps its first time; an
  event that does not fit the state (an `outbound ringing` after the answer) is ignored.

How each call ends (`OUTCOME_RULES`, also in docs/worker.md):

| state at the end | what ended it | outcome | spends an attempt |
|---|---|---|---|
| DIALLING | hangup (the agent's leg failed) | agent_no_answer | no (but see `MAX_FREE_MISSES`) |
| DIALLING | the dial refused (`success:false`) | failed | yes |
| AGENT_UP | hangup (the network refused before ringing) | failed | yes |
| RINGING | hangup before our ring timeout | busy | yes |
| TALKING | hangup | answered | yes (final) |
| TALKING | the call could no longer be followed (socket lost, worker gone) | answered, talk unknown | yes (final) |
| any other | the call could no longer be followed | interrupted | no |

When the worker hangs up itself (`hang_up`: a timer ran out) the call ends when the server's
`hangup` confirms it — or, failing that, when the hangup timer runs out — and the outcome
follows the state it had reached (`WE_HUNG_UP`): DIALLING → agent_no_answer (the agent's
extension rang too long), AGENT_UP → timeout (the customer's phone never rang), RINGING →
no_answer (our ring timeout), TALKING → answered. Hanging up at shutdown gives interrupted
unless the customer was talking. Until the call has ended the seat takes no new dial, so a late
`hangup` can never be taken for the next call's.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Literal

from dialer.cti import protocol as p
from dialer.errors import DialerError
from dialer.outcome_sets import FINAL_OUTCOMES
from dialer.window import CallingWindow, WindowError


class State(enum.Enum):
    DIALLING = "dialling"
    AGENT_UP = "agent_up"
    RINGING = "ringing"
    TALKING = "talking"
    ENDED = "ended"


class Event(enum.Enum):
    AGENT_UP = "agent_up"
    RINGING = "ringing"
    ANSWERED = "answered"
    HANGUP = "hangup"
    DIAL_REFUSED = "dial_refused"
    HANGUP_TIMEOUT = "hangup_timeout"  # we hung up, no hangup came back
    LOST = "lost"  # the seat's socket, or the worker, went away


class IllegalTransition(DialerError):
    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"event {event.value} is not possible in state {state.value}")
        self.state, self.event = state, event


#: {state: {event: next state}}. Events missing from a state's row are ignored (tolerance);
#: ENDED accepts nothing.
TRANSITIONS: dict[State, dict[Event, State]] = {
    State.DIALLING: {
        Event.AGENT_UP: State.AGENT_UP, Event.RINGING: State.RINGING, Event.ANSWERED: State.TALKING,
        Event.HANGUP: State.ENDED, Event.DIAL_REFUSED: State.ENDED,
        Event.LOST: State.ENDED, Event.HANGUP_TIMEOUT: State.ENDED,
    },
    State.AGENT_UP: {
        Event.RINGING: State.RINGING, Event.ANSWERED: State.TALKING, Event.HANGUP: State.ENDED,
        Event.LOST: State.ENDED, Event.HANGUP_TIMEOUT: State.ENDED, Event.DIAL_REFUSED: State.ENDED,
    },
    State.RINGING: {
        Event.ANSWERED: State.TALKING, Event.HANGUP: State.ENDED,
        Event.LOST: State.ENDED, Event.HANGUP_TIMEOUT: State.ENDED,
    },
    State.TALKING: {Event.HANGUP: State.ENDED, Event.LOST: State.ENDED, Event.HANGUP_TIMEOUT: State.ENDED},
    State.ENDED: {},
}

OutcomeName = Literal["answered", "no_answer", "busy", "failed", "agent_no_answer", "abandoned", "timeout",
                      "interrupted", "answered_late"]
# (FINAL_OUTCOMES: the outcomes after which the contact is done, dialer/outcome_sets.py)

#: (state when it ended, what ended it) → outcome. `RING_TIMEOUT` marks a call we hung up.
OUTCOME_RULES: dict[tuple[State, Event], OutcomeName] = {
    (State.DIALLING, Event.HANGUP): "agent_no_answer",
    (State.DIALLING, Event.DIAL_REFUSED): "failed",
    (State.AGENT_UP, Event.DIAL_REFUSED): "failed",
    (State.AGENT_UP, Event.HANGUP): "failed",
    (State.RINGING, Event.HANGUP): "busy",
    (State.TALKING, Event.HANGUP): "answered",
}

#: When we hung up (a timer ran out): the state the call had reached → outcome. Hanging up at
#: shutdown (reason LOST) gives `interrupted` unless the customer was talking.
WE_HUNG_UP: dict[State, OutcomeName] = {
    State.DIALLING: "agent_no_answer",
    State.AGENT_UP: "timeout",
    State.RINGING: "no_answer",
    State.TALKING: "answered",
}

#: Outcomes that do not spend one of the contact's attempts (the fault was not the number's).
FREE_OUTCOMES = frozenset({"agent_no_answer", "interrupted"})
#: After this many free misses in a row a contact's next miss spends an attempt, so that a
#: number whose calls always die before ringing reaches a final status.
MAX_FREE_MISSES = 3

_UP_STATES = {p.CallState.IDLE, p.CallState.INBOUND_RINGING}


@dataclass
class CallTracker:
    """One click-to-dial call on one seat, from `dial` to its outcome."""

    started: dt.datetime
    state: State = State.DIALLING
    callid: str = ""
    agent_up_at: dt.datetime | None = None
    ringing_at: dt.datetime | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    province: str = ""
    city: str = ""
    isp: str = ""
    detail: str = ""
    we_hung_up: dt.datetime | None = None
    hangup_reason: Event | None = None
    ended_by: Event | None = None
    history: list[str] = field(default_factory=list)

    # -- feeding --------------------------------------------------------------------------------
    def feed(self, msg: p.Message, now: dt.datetime) -> bool:
        """Apply a server message; True when it ended the call."""
        if isinstance(msg, p.OutboundRinging):
            self._set_callid(msg.callid)
            return self._move(Event.RINGING, now)
        if isinstance(msg, p.OutboundAnswered):
            self._set_callid(msg.callid)
            self.province, self.city, self.isp = msg.province, msg.city, msg.isp
            return self._move(Event.ANSWERED, now)
        if isinstance(msg, p.Hangup):
            if msg.callid and self.callid and msg.callid != self.callid:
                self.history.append(f"ignored hangup of call {msg.callid}")
                return False
            self._set_callid(msg.callid)  # a call followed from the middle learns its id here
            return self._move(Event.HANGUP, now)
        if isinstance(msg, (p.CallStatus, p.StatusChanged)):
            if self.state is State.DIALLING and msg.call_state not in _UP_STATES:
                return self._move(Event.AGENT_UP, now)
            return False
        if isinstance(msg, p.CommandResponse) and msg.command == "dial" and not msg.success:
            self.detail = msg.result_text
            return self._move(Event.DIAL_REFUSED, now)
        return False

    def expire(self, event: Event, now: dt.datetime) -> bool:
        """Apply a timer (or the loss of the seat); True when it ended the call."""
        return self._move(event, now)

    def hang_up(self, reason: Event, now: dt.datetime) -> None:
        """We hang up (a timer ran out, or the worker stops): the call ends when the server's
        `hangup` confirms it, or its HANGUP_TIMEOUT passes. The outcome then follows
        `WE_HUNG_UP` for the state the call had reached."""
        if self.we_hung_up is None:
            self.we_hung_up, self.hangup_reason = now, reason

    def _set_callid(self, callid: str) -> None:
        if callid and not self.callid:
            self.callid = callid

    def _move(self, event: Event, now: dt.datetime) -> bool:
        if event is Event.ANSWERED and self.we_hung_up is not None and self.state is not State.TALKING:
            # the customer picked up as our hangup (a timer ran out) went out: they met a line
            # being cleared, not an agent — no conversation, the call ends as the timer decided
            self.history.append(f"ignored an answer after our hangup in {self.state.value}")
            self.detail = self.detail or "answered as we hung up"
            return False
        row = TRANSITIONS[self.state]
        if event not in row:
            self.history.append(f"ignored {event.value} in {self.state.value}")
            return False
        target = row[event]
        if event is Event.AGENT_UP or (event in (Event.RINGING, Event.ANSWERED) and self.agent_up_at is None):
            self.agent_up_at = self.agent_up_at or now
        if event is Event.RINGING or (event is Event.ANSWERED and self.ringing_at is None):
            self.ringing_at = self.ringing_at or now
        if event is Event.ANSWERED:
            self.answered_at = now
        self.history.append(f"{self.state.value} --{event.value}--> {target.value}")
        if target is State.ENDED:
            self.ended_by, self.ended_at = event, now
        self.state = target
        return target is State.ENDED

    # -- the result -----------------------------------------------------------------------------
    @property
    def outcome(self) -> OutcomeName:
        """The outcome of an ended call. Raises IllegalTransition while it is not over."""
        if self.state is not State.ENDED or self.ended_by is None:
            raise IllegalTransition(self.state, Event.HANGUP)
        last = self._state_before_end()
        if self.ended_by is Event.LOST:
            # the customer talked: a conversation is never redialled because we lost sight of it
            return "answered" if last is State.TALKING else "interrupted"
        if self.we_hung_up is not None and self.ended_by in (Event.HANGUP, Event.HANGUP_TIMEOUT):
            if last is State.TALKING:
                return "answered"
            if self.hangup_reason is Event.LOST:
                return "interrupted"
            return WE_HUNG_UP[last]
        if self.ended_by is Event.HANGUP_TIMEOUT:
            return "timeout"
        return OUTCOME_RULES[(last, self.ended_by)]

    def _state_before_end(self) -> State:
        if self.answered_at is not None:
            return State.TALKING
        if self.ringing_at is not None:
            return State.RINGING
        if self.agent_up_at is not None:
            return State.AGENT_UP
        return State.DIALLING

    @property
    def ring_seconds(self) -> float | None:
        if self.ringing_at is None:
            return None
        end = self.answered_at or self.ended_at
        return (end - self.ringing_at).total_seconds() if end else None

    @property
    def talk_seconds(self) -> float | None:
        if self.answered_at is None or self.ended_at is None or self.ended_by is Event.LOST:
            return None  # a call we lost sight of ended at an unknown time
        return (self.ended_at - self.answered_at).total_seconds()


# -- the retry policy -------------------------------------------------------------------------------

#: Default seconds before a retry, by outcome. Answered is final; abandoned waits 72 h (the
#: rule for a number whose live answer found no agent).
DEFAULT_RETRY: dict[str, int] = {
    "no_answer": 3600, "busy": 900, "failed": 3600, "timeout": 3600, "agent_no_answer": 0,
    "abandoned": 72 * 3600, "interrupted": 300,
}
#: A number whose call was abandoned is not called again by a predictive campaign for this long
#: (FCC/Ofcom: an abandoned call is not repeated within 72 hours unless an agent is guaranteed).
ABANDON_QUIET = dt.timedelta(hours=72)

@dataclass(frozen=True, slots=True)
class Retry:
    """What happens to a contact after a call: its new status, attempts, and when it is due."""

    status: str  # pending | done | exhausted
    attempts: int
    free_misses: int
    next_attempt_at: dt.datetime | None
    spent: bool


def decide_retry(
    outcome: OutcomeName, *, attempts: int, free_misses: int, max_attempts: int,
    delays: dict[str, int], window: CallingWindow, now: dt.datetime, predictive: bool = False,
) -> Retry:
    """The contact's fate after a call that ended with `outcome`.

    `attempts` counts the attempts spent before this call (the dial does not spend one; the
    outcome does). Answered is final. A free outcome costs nothing, unless the contact already
    had `MAX_FREE_MISSES` of them in a row. A retry waits the campaign's delay for the outcome
    and then for the calling window to open.
    """
    if outcome in FINAL_OUTCOMES:
        return Retry("done", attempts + 1, 0, None, True)
    free = outcome in FREE_OUTCOMES
    spent = not free or free_misses >= MAX_FREE_MISSES
    misses = free_misses + 1 if free else 0  # only a call that reached the number resets it
    total = attempts + (1 if spent else 0)
    if total >= max_attempts:
        return Retry("exhausted", total, misses, None, spent)
    delay = dt.timedelta(seconds=delays.get(outcome, DEFAULT_RETRY.get(outcome, 0)))
    if predictive and outcome == "abandoned":
        delay = max(delay, ABANDON_QUIET)  # whatever the campaign's retry delay says
    try:
        due = window.next_open(now + delay)
    except WindowError:  # a window that never opens (no day, empty range): retry after the delay
        due = now + delay
    return Retry("pending", total, misses, due, spent)


@dataclass(frozen=True, slots=True)
class Milestones:
    """What the store knows of an attempt whose worker can no longer say how it ended."""

    dialled_at: dt.datetime | None = None
    ringing_at: dt.datetime | None = None
    answered_at: dt.datetime | None = None
    bridged_at: dt.datetime | None = None
    predictive: bool = False


def reconciled_outcome(m: Milestones) -> tuple[OutcomeName, str]:
    """The outcome of an attempt closed for a worker that is gone, from its written milestones:
    a conversation (answered, or bridged to an agent) is `answered` with its talk time unknown —
    never redialled; a predictive call answered but never bridged is `abandoned` (it counts
    against the cap); anything else is `interrupted` (a free miss)."""
    if m.bridged_at is not None or (m.answered_at is not None and not m.predictive):
        return "answered", "talk time unknown: the worker stopped before the call ended"
    if m.answered_at is not None:
        return "abandoned", "answered, no agent recorded: the worker stopped mid-hand-over"
    return "interrupted", "the worker stopped mid-call" if m.dialled_at else "the worker stopped before the dial"
