"""How many calls to place now: the predictive pacer. Pure: a snapshot in, a decision out.

Theory of operation
-------------------
In predictive mode calls go out on dialer ports ahead of the agents; an answered call must reach
an agent within 2 s or it is abandoned. The pacer keeps the number of calls in flight such that
the answers it expects over the next seconds match the agents it expects to be free then, with a
safety margin steered by the abandonment measured so far:

* every call in flight is worth P(it will still be answered | it has rung `age` seconds), from the
  running distribution of ring times of answered calls and the running answer probability;
* every agent is worth P(free within the look-ahead horizon | state and time in it), from the
  running distributions of talk and wrap-up times (a ready agent is worth 1);
* calls to place = ⌊(k · expected free agents − expected answers) / p̂⌋, where k (≤ 1 + slack)
  shrinks as the abandonment rate approaches the target over the day (Ofcom) and over 30 days
  (FCC), counting live answers only;
* it starts as progressive (one call per ready agent, no look-ahead) until it has enough samples,
  never places more than `max_calls_per_agent` per agent, and places nothing when no agent is
  logged in or the window is closing.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

MIN_SAMPLES = 30  # answered calls and finished talks needed before looking ahead
WARMUP_SPELLS_PER_AGENT = 2  # and this many finished spells per agent logged in


@dataclass
class Estimates:
    """Running estimates the worker keeps (pure data; `observe_*` update them)."""

    dials: int = 0
    answers: int = 0  # answered (live or machine)
    ring_times: list[float] = field(default_factory=list)  # of answered calls, sorted
    busy_times: list[float] = field(default_factory=list)  # whole spells, talk + wrap-up, sorted
    wrap_times: list[float] = field(default_factory=list)  # wrap-ups alone, sorted
    window: int = 2000  # keep at most this many samples of each

    def observe_dial_end(self, answered: bool, ring: float | None) -> None:
        self.dials += 1
        if answered:
            self.answers += 1
            if ring is not None:
                _insort_bounded(self.ring_times, ring, self.window)

    def observe_agent_busy(self, seconds: float) -> None:
        """A finished spell: from the bridge to the agent being free again."""
        _insort_bounded(self.busy_times, seconds, self.window)

    def observe_wrap(self, seconds: float) -> None:
        """A finished after-call work (the worker sees it start at the hangup)."""
        _insort_bounded(self.wrap_times, seconds, self.window)

    @property
    def p_answer(self) -> float:
        return self.answers / self.dials if self.dials else 0.0

    @property
    def ready(self) -> bool:
        return self.answers >= MIN_SAMPLES and len(self.busy_times) >= MIN_SAMPLES


def _insort_bounded(values: list[float], x: float, limit: int) -> None:
    bisect.insort(values, x)
    if len(values) > limit:
        del values[len(values) // 2 % len(values)]  # thin evenly; the shape stays


def _cdf(sorted_values: Sequence[float], x: float) -> float:
    if not sorted_values:
        return 0.0
    return bisect.bisect_right(sorted_values, x) / len(sorted_values)


@dataclass(frozen=True, slots=True)
class AgentState:
    """ready | busy (on a call: seconds since the bridge) | wrap (after-call work: seconds since
    the hangup) | other (logged in, not available)."""

    state: str
    seconds_in_state: float = 0.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    agents: Sequence[AgentState]
    calls_in_flight: Sequence[float]  # ages (seconds) of calls placed and not yet answered or ended
    waiting: int = 0  # answered calls waiting for an agent now
    abandoned_today: int = 0
    live_today: int = 0
    abandoned_30d: int = 0
    live_30d: int = 0
    window_closing: bool = False


@dataclass(frozen=True, slots=True)
class PacerConfig:
    target: float = 0.03  # abandoned / live answers
    max_calls_per_agent: float = 3.0
    horizon: float = 12.0  # seconds looked ahead (the look-ahead baseline's single horizon)
    base_z: float = 1.25  # safety margin in standard deviations at the setpoint
    z_gain: float = 4.0  # how fast the margin grows with the abandonment's excess over the setpoint
    setpoint: float = 0.75  # aim at this share of the target


#: Points (seconds ahead) at which expected answers are checked against expected free agents.
GRID = (2.0, 4.0, 7.0, 10.0, 14.0, 19.0)


def decide(snap: Snapshot, est: Estimates, cfg: PacerConfig = PacerConfig()) -> int:
    """How many calls to place now (≥ 0).

    For each point t of `GRID` it compares the answers expected by t (from the calls in flight,
    the callers waiting, and n new calls) with the agents expected free by t (ready ones, and
    busy ones by the distribution of their remaining talk and wrap-up), keeping a safety margin
    of `z` standard deviations: n is the largest number that fits at every t. z grows as the
    measured abandonment approaches the target.
    """
    logged_in = [a for a in snap.agents if a.state in ("ready", "busy", "wrap")]
    ready = sum(1 for a in logged_in if a.state == "ready")
    in_flight = len(snap.calls_in_flight)
    if not logged_in or snap.window_closing:
        return 0
    cap = math.floor(cfg.max_calls_per_agent * len(logged_in)) - in_flight
    if cap <= 0:
        return 0
    if not est.ready or len(est.busy_times) < WARMUP_SPELLS_PER_AGENT * len(logged_in):
        # progressive until the estimates mean something: early in a shift only the short
        # spells have ended, so the spell lengths seen so far are too short
        return max(0, min(cap, ready - in_flight - snap.waiting))
    p = max(est.p_answer, 1e-3)
    z = _margin(snap, cfg)
    br = bisect.bisect_right
    # What does not depend on t, once per decision (this runs on every agent freed and every
    # tick): for each busy agent, calls in flight, where its present age falls among the samples
    bt, nb = est.busy_times, len(est.busy_times)
    busy = []
    for a in logged_in:
        if a.state == "busy":
            i = br(bt, a.seconds_in_state)
            if nb - i >= MIN_TAIL:  # else: busy longer than nearly every spell seen, stays busy
                busy.append((a.seconds_in_state, i, 1.0 / (nb - i)))
    wt, nw = est.wrap_times, len(est.wrap_times)
    use_wrap = nw >= MIN_SAMPLES
    sure = float(ready)  # agents certain to be free by any t
    wrapping = []
    for a in logged_in:
        if a.state == "wrap":
            # the wrap-up is far more predictable than a talk: it has its own distribution
            i = br(wt, a.seconds_in_state) if use_wrap else nw
            if not use_wrap or i >= nw:
                sure += 1.0
            else:
                wrapping.append((a.seconds_in_state, i, 1.0 / (nw - i)))
    rt, nr = est.ring_times, len(est.ring_times)
    flight = []
    for age in snap.calls_in_flight:
        i = br(rt, age)
        survive = p * (1.0 - i / nr) + (1.0 - p)
        if survive > 0 and i < nr:
            flight.append((age, i, p / (survive * nr)))
    best = cap
    for t in GRID:
        m = p * br(rt, t) / nr  # what one new call adds to the answers expected by t
        if m <= 0:
            continue
        supply, var = sure, 0.0
        for elapsed, i, inv in busy:
            q = (br(bt, elapsed + t) - i) * inv
            supply += q
            var += q * (1 - q)
        for elapsed, i, inv in wrapping:
            q = (br(wt, elapsed + t) - i) * inv
            supply += q
            var += q * (1 - q)
        demand = float(snap.waiting)
        for age, i, coef in flight:
            r = (br(rt, age + t) - i) * coef
            demand += r
            var += r * (1 - r)
        n = 0
        while n < best and demand + (n + 1) * m + z * math.sqrt(var + (n + 1) * m * (1 - m)) <= supply:
            n += 1
        best = min(best, n)
        if best == 0:
            break
    return best


def _p_answered_within(age: float, t: float, est: Estimates) -> float:
    """P(a call that has rung `age` s unanswered is answered within the next `t` s)."""
    p = est.p_answer
    before = _cdf(est.ring_times, age)
    survive = p * (1.0 - before) + (1.0 - p)
    if survive <= 0:
        return 0.0
    return p * (_cdf(est.ring_times, age + t) - before) / survive


def _p_answer_after(age: float, est: Estimates) -> float:
    """P(a call that has rung `age` s unanswered will be answered)."""
    p = est.p_answer
    survive = 1.0 - _cdf(est.ring_times, age)  # of answered calls, those not answered yet by `age`
    denominator = p * survive + (1.0 - p)
    return p * survive / denominator if denominator > 0 else 0.0


#: Spells that lasted longer than an agent's present one, needed to say when it will end.
MIN_TAIL = 5


def _p_free_within(elapsed: float, horizon: float, est: Estimates) -> float:
    """P(an agent busy for `elapsed` s is free within `horizon` s). An agent already busy
    longer than nearly every spell seen is expected to stay busy: early in a shift only the short
    spells have ended, and treating the long ones as due would over-dial."""
    times = est.busy_times
    if len(times) - bisect.bisect_right(times, elapsed) < MIN_TAIL:
        return 0.0
    return _p_within(times, elapsed, horizon)


def _p_within(sorted_durations: Sequence[float], elapsed: float, horizon: float) -> float:
    """P(a spell that has lasted `elapsed` s ends within `horizon` s more)."""
    done = _cdf(sorted_durations, elapsed)
    if done >= 1.0:
        return 1.0
    return (_cdf(sorted_durations, elapsed + horizon) - done) / (1.0 - done)


def _margin(snap: Snapshot, cfg: PacerConfig) -> float:
    """z: `base_z` standard deviations of margin, growing as the abandonment measured over the
    day (Ofcom) or the 30 days (FCC) nears the target — a rate smoothed towards the setpoint so
    that the first answers of a day do not swing it."""
    worst = 0.0
    for abandoned, live in ((snap.abandoned_today, snap.live_today), (snap.abandoned_30d, snap.live_30d)):
        prior = 100  # live answers' worth of weight on the setpoint
        rate = (abandoned + prior * cfg.setpoint * cfg.target) / (live + prior)
        worst = max(worst, rate)
    excess = worst / cfg.target - cfg.setpoint
    return max(0.0, cfg.base_z + cfg.z_gain * excess)
