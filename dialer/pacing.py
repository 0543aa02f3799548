"""How many calls to place now: the predictive pacer. Pure: a snapshot in, a decision out.

Theory of operation
-------------------
In predictive mode calls go out on dialer ports ahead of the agents; an answered call must reach
an agent within 2 s or it is abandoned. For each point t of `GRID` (2 to 19 s ahead) the pacer
compares the answers it expects by t with the agents it expects free by t:

* answers: the callers waiting, each call in flight by P(answered within t | unanswered after
  `age` s), each new call by p̂ · P(ring ≤ t) — from the running answer rate and ring times
  (dialer/estimates.py: the answer rate forgets what came before a change the dials show);
* agents: ready ones fully; one in after-call work by the distribution of after-call work given
  how long it has lasted; one talking by the talks that lasted longer than its present one, each
  followed by after-call work (five quantiles) unless it was a machine's;

and places the largest n that keeps, at every t, answers + z standard deviations ≤ agents. The
margin z is `base_z` at the setpoint and grows with the abandonment measured over the last 24
hours (Ofcom) and 30 days (FCC), live answers only. It starts as progressive (one call per ready
agent) until it has enough samples (a worker warms them from the campaign's recent record first), never places fewer calls than that (they cannot be
abandoned), never more than `max_calls_per_agent` per logged-in agent, and nothing when no agent
is logged in or the window is closing. docs/pacing.md has the details and the measurements.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from dialer.estimates import MIN_SAMPLES, Estimates, History

__all__ = ["MIN_SAMPLES", "AgentState", "Estimates", "History", "PacerConfig", "Snapshot", "decide"]

WARMUP_SPELLS_PER_AGENT = 2  # finished spells per agent logged in (seen in all) before looking ahead
#: Talks (or spells) that lasted longer than an agent's present one, needed to say when it will
#: end; with fewer the agent is expected to stay busy.
MIN_TAIL = 5


class AgentState(NamedTuple):
    """ready | busy (on a call: seconds since the bridge) | wrap (after-call work: seconds since
    the hangup) | other (logged in, not available). A named tuple: one is made per agent per
    decision, and a tuple is made in a third of the time of a frozen dataclass."""

    state: str
    seconds_in_state: float = 0.0
    #: seconds until the agent is free, when known for certain (benchmarks: the oracle bound of
    #: what predicting agents can give); None: predicted from the estimates
    free_in: float | None = None


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
    base_z: float = 1.75  # safety margin in standard deviations at the setpoint
    z_gain: float = 4.0  # how fast the margin grows with the abandonment's excess over the setpoint
    setpoint: float = 0.75  # aim at this share of the target
    split_talk: bool = True  # predict a talking agent from talks and wrap-ups apart (else whole spells)


#: Quantiles of the wrap-up time that stand for its distribution after a talk.
WRAP_QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9)

#: Points (seconds ahead) at which expected answers are checked against expected free agents.
GRID = (2.0, 4.0, 7.0, 10.0, 14.0, 19.0)
#: The order they are checked in. Each point can only lower n, so any order gives the same n;
#: this one finds it soonest in the benchmark: 7 s first (cheap: no talking agent can be free by
#: then), then 14 s (the tightest at most decisions), so that the others are often known not to
#: matter before their talking agents are looked at (see `decide`).
CHECK_ORDER = (2.0, 4.0, 7.0, 14.0, 10.0, 19.0)
assert sorted(CHECK_ORDER) == list(GRID)


def decide(snap: Snapshot, est: Estimates, cfg: PacerConfig = PacerConfig()) -> int:
    """How many calls to place now (≥ 0).

    For each point t of `GRID` it compares the answers expected by t (from the calls in flight,
    the callers waiting, and n new calls) with the agents expected free by t (ready ones, and
    busy ones by the distribution of their remaining talk and wrap-up), keeping a safety margin
    of `z` standard deviations: n is the largest number that fits at every t. z grows as the
    measured abandonment approaches the target.
    """
    states = [a.state for a in snap.agents]
    ready = states.count("ready")
    logged_in = ready + states.count("busy") + states.count("wrap")
    in_flight = len(snap.calls_in_flight)
    if not logged_in or snap.window_closing:
        return 0
    cap = math.floor(cfg.max_calls_per_agent * logged_in) - in_flight
    if cap <= 0:
        return 0
    # one call in flight per ready agent can never be abandoned (each answer finds the agent it
    # was placed for): never fewer than that
    floor = max(0, min(cap, ready - in_flight - snap.waiting))
    if not est.ready or est.spells_seen < WARMUP_SPELLS_PER_AGENT * logged_in:
        # progressive until the estimates mean something: early in a shift only the short
        # spells have ended, so the spell lengths seen so far are too short
        return floor
    p = max(est.p_answer, 1e-3)
    z = _margin(snap, cfg)
    br = bisect.bisect_right
    wt, nw = est.wrap_times, len(est.wrap_times)
    use_wrap = nw >= MIN_SAMPLES
    bt, nb = est.busy_times, len(est.busy_times)
    tt, nt = est.talk_times, len(est.talk_times)
    st, ns = est.short_times, len(est.short_times)
    rt, nr = est.ring_times, len(est.ring_times)
    # A talking agent is free when its talk ends and then its wrap-up: from the talks seen and
    # a few quantiles of the wrap-ups (a talk with no wrap-up, a machine's, ends the spell)
    split = cfg.split_talk and use_wrap and nt + ns >= MIN_SAMPLES
    wq = [wt[int(f * (nw - 1))] for f in WRAP_QUANTILES] if split else []
    kw = 1.0 / len(wq) if wq else 0.0
    # What does not depend on t, once per decision (this runs on every agent freed and every
    # tick): where each busy agent's present age falls among the samples. This is the hot path
    # of the benchmark (a decision costs about 200 bisections at N = 50), hence the shortcuts,
    # each exact: a count past the last sample is the sample's length, a later count is searched
    # for only after the earlier one, a talking agent past every machine's talk (`talking`) can
    # be free by t only after a wrap-up (from the first t with a wrap-up quantile under it).
    sure = float(ready)  # agents certain to be free by any t
    known = []  # when agents will be free, where known for certain (the benchmark's oracle)
    spells, wrapping, early, talking = [], [], [], []
    last_short = st[-1] if ns else -math.inf
    for a in snap.agents:
        if a.state != "busy" and a.state != "wrap":
            continue
        e = a.seconds_in_state
        if a.free_in is not None:
            known.append(a.free_in)
        elif a.state == "wrap":
            # the wrap-up is far more predictable than a talk: it has its own distribution
            i = br(wt, e) if use_wrap else nw
            if i >= nw:
                sure += 1.0
            else:
                wrapping.append((e, i, 1.0 / (nw - i)))
        elif not split:
            i = br(bt, e)
            if nb - i >= MIN_TAIL:  # else: busy longer than nearly every spell seen, stays busy
                spells.append((e, i, 1.0 / (nb - i)))
        elif e < last_short:  # a machine's talk may still end the spell
            il, im = br(tt, e), br(st, e)
            tail = nt - il + ns - im
            if tail >= MIN_TAIL:  # else: busy longer than nearly every talk seen, stays busy
                early.append((e, il, im, 1.0 / tail))
        else:
            talking.append(e)
    known.sort()
    talked: list[tuple[float, int, float]] | None = None  # `talking` with their place among the talks
    flight = []
    first_ring, last_ring = rt[0], rt[-1]
    for age in snap.calls_in_flight:
        if age >= last_ring:  # rung longer than every answered call: not counted on to answer
            continue
        i = br(rt, age) if age >= first_ring else 0
        survive = p * (1.0 - i / nr) + (1.0 - p)
        if survive > 0:
            flight.append((age, i, p / (survive * nr)))
    best = cap
    for t in CHECK_ORDER:
        m = p * br(rt, t) / nr  # what one new call adds to the answers expected by t
        if m <= 0:
            continue
        supply, var = sure + br(known, t), 0.0
        for elapsed, i, inv in spells:
            q = (br(bt, elapsed + t) - i) * inv
            supply += q
            var += q * (1 - q)
        ahead = [t - w for w in wq if w < t]  # how far a talk may run and its wrap-up still end by t
        for elapsed, il, im, inv in early:
            done = float(br(st, elapsed + t, im) - im)  # a machine's talk ends the spell
            for d in ahead:
                done += (br(tt, elapsed + d, il) - il) * kw
            q = done * inv
            supply += q
            var += q * (1 - q)
        for elapsed, i, inv in wrapping:
            q = (br(wt, elapsed + t, i) - i) * inv
            supply += q
            var += q * (1 - q)
        demand = float(snap.waiting)
        for age, i, coef in flight:
            x = age + t
            r = ((nr if x >= last_ring else br(rt, x, i)) - i) * coef
            demand += r
            var += r * (1 - r)
        if ahead and talking:
            # The agents still talking come last, and only when they can matter: each adds q to
            # the supply and q(1 - q) to the variance, which cannot make n smaller while
            # z ≤ 2·√(variance) — so if `best` calls already fit without them, t cannot lower it.
            spread = var + best * m * (1 - m)
            if z * z <= 4 * spread and demand + best * m + z * math.sqrt(spread) <= supply:
                continue
            if talked is None:
                talked = []
                for e in talking:
                    il = br(tt, e)
                    if nt - il >= MIN_TAIL:  # else: talking longer than nearly every talk seen
                        talked.append((e, il, kw / (nt - il)))
            longest, rest = ahead[0], ahead[1:]  # the longest first: it bounds the others' counts
            for elapsed, il, w in talked:
                hi = br(tt, elapsed + longest, il)
                done = hi - il
                for d in rest:
                    hi = br(tt, elapsed + d, il, hi)
                    done += hi - il
                q = done * w
                supply += q
                var += q * (1 - q)
        n = 0
        while n < best and demand + (n + 1) * m + z * math.sqrt(var + (n + 1) * m * (1 - m)) <= supply:
            n += 1
        best = min(best, n)
        if best <= floor:
            break
    return max(best, floor)


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
