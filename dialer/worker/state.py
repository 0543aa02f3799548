"""What the worker keeps in memory: a seat's state, a call in flight, a predictive queue."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from dialer import pacing
from dialer.handover import Phase
from dialer.cti.client import Seat
from dialer.outcomes import CallTracker
from dialer.store.claim import Callee
from dialer.store.models import Campaign
from dialer.store.repo import AgentRow

PARK_REASON = "连续未接听"  # busy reason given to a seat whose agent missed three calls in a row
MISSES_BEFORE_PARK = 3


@dataclass
class ActiveCall:
    attempt_id: int
    contact: Callee
    campaign: Campaign
    tracker: CallTracker
    timer: asyncio.TimerHandle | None = None
    armed_for: tuple[Any, bool] | None = None
    dialled_at: dt.datetime | None = None
    token: int = 0  # the fencing token its attempt was written under
    adopted: bool = False  # a call of an earlier life (or a lapsed worker) this worker follows
    confirmed: bool = True  # adopted: the server has shown the seat is still in the call
    lost_timer: asyncio.TimerHandle | None = None  # the seat's socket is gone: give up on it then
    # predictive: the call on a dialer port, after the customer answers
    phase: Phase = Phase.DIALLING  # the hand-over's phase (dialer/handover.py)
    queue: str = ""
    port: SeatRun | None = None
    agent: SeatRun | None = None  # the agent reserved for the call, then on it
    deadline: asyncio.TimerHandle | None = None
    transferred_at: dt.datetime | None = None
    bridged_at: dt.datetime | None = None


@dataclass
class SeatRun:
    info: AgentRow
    seat: Seat
    logged_in: bool = False
    registered: bool = True
    busy: str = ""
    server_idle: bool = False
    call: ActiveCall | None = None
    wrap_until: dt.datetime | None = None
    wrap_timer: asyncio.TimerHandle | None = None
    misses: int = 0
    parked: bool = False
    finishing: bool = False  # the last call's outcome is being handed to the recorder
    heard_at: float = 0.0  # loop time of the seat's last busy/status event
    released: bool = False  # the lease on it is gone: finish its call, then let it go
    connecting: bool = False
    unwritten: int = 0  # outcomes of its calls still in the outbox: the seat is not let go before
    # predictive agents: the answered call handed (or about to be handed) to this agent
    handling: ActiveCall | None = None
    after_call: bool = False  # the handed call ended; free when the server says idle
    wrap_started: dt.datetime | None = None
    acw_seen: bool = False
    bridged_at: dt.datetime | None = None  # the start of the agent's busy spell

    serves: str = ""  # the agents' queue: the seat's own, or the one a port dials for

    @property
    def is_port(self) -> bool:
        return self.info.role == "port"

    def dialable(self, now: dt.datetime) -> bool:
        if self.released or self.connecting:  # (logging in: a call left on it is not known yet)
            return False
        if self.is_port:  # a port is busy on purpose; it is free when its line is
            return (self.logged_in and self.registered and self.call is None and not self.finishing
                    and self.server_idle)
        return (self.logged_in and self.registered and self.call is None and not self.parked
                and not self.finishing and self.handling is None and not self.after_call
                and not self.busy and self.server_idle
                and (self.wrap_until is None or now >= self.wrap_until))


@dataclass
class PredictiveQueue:
    """What the worker keeps per queue worked in predictive mode."""

    name: str
    est: pacing.Estimates = field(default_factory=pacing.Estimates)
    waiting: deque[ActiveCall] = field(default_factory=deque)  # answered, no agent yet, oldest first
    pickups: deque[float] = field(default_factory=lambda: deque(maxlen=200))  # transfer → agent answer (s)
    changes_seen: int = 0  # changes the estimates found, as last logged
