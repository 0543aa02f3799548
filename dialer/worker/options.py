"""The worker's options, its counters, and its default id."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dialer import pacing
from dialer.clock import Clock
from dialer.errors import DialerError

if TYPE_CHECKING:
    from dialer.worker.daemon import Worker


class WorkerError(DialerError):
    """The worker cannot start (no campaign, no seat) or cannot go on."""


def default_worker_id(cti_url: str = "", campaigns: tuple[str, ...] = ()) -> str:
    """A stable id: the host and a short hash of what the worker works. A restarted worker
    (a new pid: what systemd's Restart=always gives) finds its own seats and calls under it."""
    digest = hashlib.sha1("\n".join([cti_url, *sorted(campaigns)]).encode()).hexdigest()[:6]
    return f"{socket.gethostname()[:48]}-{digest}"


#: the shortest real time a lease may last, whatever the time scale: a loaded machine must be
#: able to renew it several times over (tests run at scales where 60 s of lease is 0.3 s)
MIN_LEASE_REAL = 4.0


@dataclass
class WorkerOptions:
    cti_url: str = "ws://127.0.0.1:8081/spcc/cti"
    campaigns: tuple[str, ...] = ()
    worker_id: str = ""  # "": default_worker_id(cti_url, campaigns)
    clock: Clock = field(default_factory=Clock)
    until_done: bool = False
    drain_timeout: float = 30.0  # real seconds
    lease: float = 60.0  # simulated seconds a lease lasts without renewal (at least MIN_LEASE_REAL real)
    orphan_after: float = 600.0  # simulated seconds after a lease lapsed before others close its calls
    refresh_every: float = 5.0
    status_every: float = 2.0  # simulated seconds between status rows (at least a real second)
    dispatch_every: float = 1.0
    counts_every: float = 5.0  # simulated seconds between reads of the latest abandonment counts
    seats_every: float = 10.0  # simulated seconds between looks for seats to lease
    agent_leg_timeout: float = 30.0  # how long the agent's extension may ring
    setup_timeout: float = 20.0  # agent up → customer ringing
    hangup_timeout: float = 10.0  # our hangup → the server's hangup event
    lost_timeout: float = 60.0  # a seat's socket lost mid-call: how long to wait for it to come back
    cti_heartbeat: float = 10.0  # real seconds between CTI heartbeats (0: none)
    db_timeout: float = 15.0  # real seconds any database call may take
    inbox: Path | None = None
    max_seats: int | None = None  # take at most this many seats (to split a roster between workers)
    backoff: Callable[[], Iterator[float]] | None = None
    #: predictive: how many calls to place now (dialer/pacing.py; tests may script their own)
    pacer: Callable[[pacing.Snapshot, pacing.Estimates, pacing.PacerConfig], int] = pacing.decide
    on_progress: Callable[[Worker], None] | None = None
    #: event-loop lag (real seconds) past which the worker warns that the 2 s rule is at risk
    lag_warning: float = 0.25

    def __post_init__(self) -> None:
        if not self.worker_id:
            self.worker_id = default_worker_id(self.cti_url, tuple(self.campaigns))

    @property
    def lease_sim(self) -> float:
        """The lease in simulated seconds, no shorter than MIN_LEASE_REAL of real time."""
        return max(self.lease, MIN_LEASE_REAL / self.clock.scale if self.clock.scale > 0 else self.lease)


@dataclass
class Stats:
    dials: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    #: the same by campaign name (the metrics' labels): dials, and (campaign, outcome) → count
    campaign_dials: dict[str, int] = field(default_factory=dict)
    campaign_outcomes: dict[tuple[str, str], int] = field(default_factory=dict)
    cti_lost: int = 0  # seats' sockets lost (SeatLost)
    cti_restored: int = 0  # seats reconnected and logged in again (SeatRestored)
    free_to_dial: list[float] = field(default_factory=list)  # real seconds, for the benchmark
    #: real seconds from the end of a call with no wrap-up to the seat's next dial: the line's
    #: idle time, outcome write included (free_to_dial starts when the seat is marked free)
    end_to_dial: list[float] = field(default_factory=list)
    not_written: int = 0  # outcomes refused because the attempt was closed already (fenced)
    adopted: int = 0  # calls of an earlier life (or a lapsed worker) followed to their end
    lag_max: float = 0.0  # the event loop's worst delay seen (real seconds)
    passes_overlapped: int = 0  # claim passes started while another was in flight
    extra: dict[str, Any] = field(default_factory=dict)

    def dialled(self, campaign: str) -> None:
        """A dial was sent for `campaign`."""
        self.dials += 1
        self.campaign_dials[campaign] = self.campaign_dials.get(campaign, 0) + 1

    def recorded(self, campaign: str, outcome: str) -> None:
        """An outcome of `campaign` was put to the outbox."""
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        key = (campaign, outcome)
        self.campaign_outcomes[key] = self.campaign_outcomes.get(key, 0) + 1
