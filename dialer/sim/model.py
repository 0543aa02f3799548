"""The call model: what a dialled customer and a simulated agent do (pure, seeded).

The same model drives the CTI simulator and the OB-20 shift benchmark, so what the benchmark
proves about pacing is what the worker meets against the simulator. Defaults are the OB-20
workload (``shared/benchmarks/ob20.md``). Every duration is in simulated seconds; the simulator
applies its time scale, the model never does.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["answer", "machine", "busy", "failed", "no_answer"]
OUTCOMES: tuple[Outcome, ...] = ("answer", "machine", "busy", "failed", "no_answer")

Range = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Workload:
    """The stochastic model's parameters (OB-20 defaults)."""

    p_live: float = 0.25
    live_ring: Range = (4.0, 20.0)
    p_machine: float = 0.10
    machine_ring: Range = (4.0, 20.0)
    machine_talk: Range = (3.0, 8.0)
    p_busy: float = 0.10
    busy_ring: Range = (2.0, 6.0)
    p_failed: float = 0.0  # the trunk refuses the number outright (no ringing)
    talk_mean: float = 120.0
    talk_sd: float = 90.0
    wrap_k: float = 4.0
    wrap_theta: float = 5.0
    pickup: Range = (0.3, 1.0)

    def __post_init__(self) -> None:
        total = self.p_live + self.p_machine + self.p_busy + self.p_failed
        if not 0.0 <= total <= 1.0 or min(self.p_live, self.p_machine, self.p_busy, self.p_failed) < 0:
            raise ValueError("outcome probabilities must be ≥ 0 and add up to at most 1")
        if self.talk_mean <= 0 or self.talk_sd < 0:
            raise ValueError("talk mean must be > 0 and sd ≥ 0")

    @property
    def p_no_answer(self) -> float:
        return 1.0 - self.p_live - self.p_machine - self.p_busy - self.p_failed


@dataclass(frozen=True, slots=True)
class CustomerFate:
    """What one dialled number does: its outcome, how long it rings first, how long it talks.

    For ``no_answer`` the ring time is infinite: the caller (dialer or network) gives up.
    """

    outcome: Outcome
    ring: float = math.inf
    talk: float = 0.0

    @property
    def answers(self) -> bool:
        return self.outcome in ("answer", "machine")


def _uniform(rng: random.Random, r: Range) -> float:
    return rng.uniform(r[0], r[1])


def draw_talk(rng: random.Random, w: Workload) -> float:
    """A live talk time: lognormal with the workload's mean and standard deviation."""
    if w.talk_sd == 0:
        return w.talk_mean
    sigma2 = math.log(1.0 + (w.talk_sd / w.talk_mean) ** 2)
    return rng.lognormvariate(math.log(w.talk_mean) - sigma2 / 2.0, math.sqrt(sigma2))


def draw_fate(rng: random.Random, w: Workload) -> CustomerFate:
    """The fate of one dial, drawn from the workload."""
    u = rng.random()
    if u < w.p_live:
        return CustomerFate("answer", _uniform(rng, w.live_ring), draw_talk(rng, w))
    u -= w.p_live
    if u < w.p_machine:
        return CustomerFate("machine", _uniform(rng, w.machine_ring), _uniform(rng, w.machine_talk))
    u -= w.p_machine
    if u < w.p_busy:
        return CustomerFate("busy", _uniform(rng, w.busy_ring))
    u -= w.p_busy
    if u < w.p_failed:
        return CustomerFate("failed", 0.0)
    return CustomerFate("no_answer")


def draw_wrap_up(rng: random.Random, w: Workload) -> float:
    """After-call work of a live call: Gamma(k, θ)."""
    return rng.gammavariate(w.wrap_k, w.wrap_theta)


def draw_pickup(rng: random.Random, w: Workload) -> float:
    """How long an agent takes to pick up a ringing extension."""
    return _uniform(rng, w.pickup)


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """A simulated agent behind an extension.

    `pickup` None draws from the workload; `wrap_up` None draws from the workload, a negative
    value means the agent never leaves after-call work by itself (the client must send `idle`).
    """

    extension: str
    pickup: float | Range | None = None
    answers: bool = True
    registered: bool = True
    wrap_up: float | None = None

    def pickup_delay(self, rng: random.Random, w: Workload) -> float:
        if self.pickup is None:
            return draw_pickup(rng, w)
        if isinstance(self.pickup, tuple):
            return _uniform(rng, self.pickup)
        return float(self.pickup)

    def wrap_up_time(self, rng: random.Random, w: Workload) -> float | None:
        """Seconds of after-call work, or None when the agent waits for the client's `idle`."""
        if self.wrap_up is None:
            return draw_wrap_up(rng, w)
        return None if self.wrap_up < 0 else self.wrap_up
