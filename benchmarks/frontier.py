"""The trade-off between talk occupancy and abandonment, for our pacer and three yardsticks.

Each rule is run with its knob fixed (no steering) at several settings on the OB-20 default
workload (shift_sim.py's simulation, seeds 0..9, 8-hour days); the table gives each point and,
per rule, the occupancy interpolated at 2.5 % mean abandonment (issue 5's cap):

* ``ours``: dialer.pacing with its margin z fixed (``z_gain=0``);
* ``oracle``: the same told exactly when each talking or wrapping agent will be free;
* ``exact``: a different decision rule on the same information as ours — the marginal risk of
  each further call, computed exactly: its chance of finding no agent, over its own answer time,
  from the Poisson-binomial count of the other answers (calls in flight, callers waiting, the
  calls placed before it) against that of the agents free by then. Calls are added while that
  risk stays under α. It is the greedy Lagrangian rule when every answered call is worth the
  same, and it needs no normal approximation;
* ``exact-oracle``: the exact rule told when each agent will be free.

    python benchmarks/frontier.py                        # N = 20 (about 10 min on 2 cores)
    python benchmarks/frontier.py --agents 50 --rules exact-oracle --points exact-oracle=0.025
    python benchmarks/frontier.py --json

Needs numpy for the exact rules (``pip install -e '.[bench]'``); the pacer itself does not.
"""

from __future__ import annotations

import argparse
import bisect
import importlib.util
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from shift_sim import Sim, summarise

from dialer import pacing
from dialer.sim.model import Workload

CAP = 0.025
#: the new call's answer time is represented by this many quantiles of the ring times seen
TIME_POINTS = 8
#: how long after an answer an agent freeing up still takes the call (2 s less a mean pickup)
PATIENCE = 2.0 - 0.65

DEFAULT_POINTS = {"ours": (2.0, 1.5, 1.0), "oracle": (2.0, 1.5, 1.0),
                  "exact": (0.02, 0.03, 0.05), "exact-oracle": (0.02, 0.03, 0.05)}


def _free_by(snap: pacing.Snapshot, est: pacing.Estimates, ts: list[float]):
    """The agents free by each time of `ts`: a certain count per time, and a row of
    probabilities per agent whose freeing is uncertain (the same predictions as the pacer's)."""
    import numpy as np

    br = bisect.bisect_right
    wt, nw = est.wrap_times, len(est.wrap_times)
    tt, nt = est.talk_times, len(est.talk_times)
    st, ns = est.short_times, len(est.short_times)
    wq = [wt[int(f * (nw - 1))] for f in pacing.WRAP_QUANTILES]
    sure = np.zeros(len(ts))
    rows = []
    for a in snap.agents:
        if a.state == "ready":
            sure += 1
        elif a.state not in ("busy", "wrap"):
            continue
        elif a.free_in is not None:
            sure += np.array([a.free_in <= t for t in ts], dtype=float)
        elif a.state == "wrap":
            i = br(wt, a.seconds_in_state)
            if i >= nw:
                sure += 1
            else:
                rows.append([(br(wt, a.seconds_in_state + t) - i) / (nw - i) for t in ts])
        else:
            e = a.seconds_in_state
            il, im = br(tt, e), br(st, e)
            tail = nt - il + ns - im
            if tail < pacing.MIN_TAIL:
                continue  # busy longer than nearly every talk seen: stays busy
            q = []
            for t in ts:
                done = float(br(st, e + t) - im) if im < ns else 0.0  # a machine's talk ends the spell
                done += sum(br(tt, e + t - w) - il for w in wq if w < t) / len(wq)
                q.append(done / tail)
            if q[-1] > 1e-9:
                rows.append(q)
    return sure, np.array(rows, dtype=float).reshape(-1, len(ts))


def decide_exact(snap: pacing.Snapshot, est: pacing.Estimates, alpha: float, max_per_agent: float = 3.0) -> int:
    """Add calls while the next one's chance of finding no agent (given it is answered) ≤ alpha.

    A call answered at τ finds no agent when the answers before it (callers waiting, calls in
    flight, the calls placed now before it) are at least the agents free by τ + PATIENCE; both
    counts are sums of independent Bernoulli variables, whose difference is computed exactly
    at TIME_POINTS quantiles of τ. Same edges as the pacer: nothing with no agent or a closing
    window, progressive until the estimates are ready, at least one call per ready agent."""
    import numpy as np

    logged = [a for a in snap.agents if a.state in ("ready", "busy", "wrap")]
    ready = sum(1 for a in logged if a.state == "ready")
    if not logged or snap.window_closing:
        return 0
    cap = math.floor(max_per_agent * len(logged)) - len(snap.calls_in_flight)
    if cap <= 0:
        return 0
    floor = max(0, min(cap, ready - len(snap.calls_in_flight) - snap.waiting))
    if not est.ready or len(est.busy_times) < pacing.WARMUP_SPELLS_PER_AGENT * len(logged):
        return floor
    p = max(est.p_answer, 1e-3)
    rt = np.asarray(est.ring_times)
    nr = len(rt)
    tau = rt[((np.arange(TIME_POINTS) + 0.5) / TIME_POINTS * nr).astype(int)]
    sure, free = _free_by(snap, est, list(tau + PATIENCE))
    if snap.calls_in_flight:
        ages = np.asarray(snap.calls_in_flight)
        f0 = np.searchsorted(rt, ages, "right") / nr
        ft = np.searchsorted(rt, ages[:, None] + tau[None, :], "right") / nr
        answer = p * (ft - f0[:, None]) / (p * (1 - f0) + (1 - p))[:, None]
        answer = answer[answer[:, -1] > 1e-9]
    else:
        answer = np.zeros((0, TIME_POINTS))
    # the distribution of X = answers of the calls in flight − uncertain agents free, per τ
    offset = len(free)
    pmf = np.zeros((TIME_POINTS, offset + len(answer) + cap + 2))
    pmf[:, offset] = 1.0
    for r in answer:
        nxt = pmf * (1 - r)[:, None]
        nxt[:, 1:] += pmf[:, :-1] * r[:, None]
        pmf = nxt
    for q in free:
        nxt = pmf * (1 - q)[:, None]
        nxt[:, :-1] += pmf[:, 1:] * q[:, None]
        pmf = nxt
    new = p * np.searchsorted(rt, tau, "right") / nr  # a call placed now answered before τ
    cols = np.arange(TIME_POINTS)
    need = (sure - snap.waiting).astype(int) + offset  # X at or above this: no agent left
    n = 0
    while n < cap:
        at_least = np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]
        risk = np.where(need < 0, 1.0, at_least[cols, np.clip(need, 0, pmf.shape[1] - 1)])
        risk = np.where(need >= pmf.shape[1], 0.0, risk)
        if n >= floor and risk.mean() > alpha:
            break
        n += 1
        nxt = pmf * (1 - new)[:, None]
        nxt[:, 1:] += pmf[:, :-1] * new[:, None]
        pmf = nxt
    return n


class FrontierSim(Sim):
    """shift_sim's simulation with the exact rule as two more policies."""

    def pace(self, pool) -> None:
        if not self.policy.startswith("exact"):
            super().pace(pool)
            return
        self.place(pool, decide_exact(self.snapshot(pool, oracle=self.policy == "exact-oracle"), pool.est, self.param))


def simulate(args: tuple[str, int, int, float, float]):
    rule, n, seed, knob, hours = args
    policy = rule if rule.startswith("exact") else ("oracle" if rule == "oracle" else "ours")
    pacer = replace(pacing.PacerConfig(), z_gain=0.0)
    return FrontierSim(policy, n, seed, Workload(), hours * 3600, 25.0, knob, pacer).run()


def at_cap(points: list[dict], cap: float = CAP) -> float | None:
    """Occupancy at `cap` mean abandonment, linearly between the two points around it."""
    pts = sorted((p["abandon_mean"], p["occupancy_mean"]) for p in points)
    for (a0, o0), (a1, o1) in zip(pts, pts[1:]):
        if a0 <= cap <= a1 and a1 > a0:
            return o0 + (o1 - o0) * (cap - a0) / (a1 - a0)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--shift-hours", type=float, default=8.0)
    ap.add_argument("--rules", default="ours,oracle,exact,exact-oracle")
    ap.add_argument("--points", action="append", default=[], metavar="RULE=K1,K2,…",
                    help="knob settings of a rule (z for ours/oracle, α for the exact rules)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    points = dict(DEFAULT_POINTS)
    for item in a.points:
        rule, _, values = item.partition("=")
        points[rule] = tuple(float(v) for v in values.split(","))
    rules = a.rules.split(",")
    for rule in rules:
        if rule not in DEFAULT_POINTS:
            ap.error(f"unknown rule {rule!r} (one of {', '.join(DEFAULT_POINTS)})")
    if any(r.startswith("exact") for r in rules):
        if importlib.util.find_spec("numpy") is None:
            ap.error("the exact rules need numpy: pip install -e '.[bench]'")
    started = time.monotonic()
    rows, caps = [], {}
    with ProcessPoolExecutor(a.workers) as pool:
        for rule in rules:
            mine = []
            for knob in points[rule]:
                results = list(pool.map(simulate, [(rule, a.agents, s, knob, a.shift_hours) for s in range(a.seeds)]))
                row = {**summarise(results, knob), "policy": rule}
                rows.append(row)
                mine.append(row)
            caps[rule] = at_cap(mine)
    elapsed = time.monotonic() - started
    if a.json:
        print(json.dumps({"agents": a.agents, "seeds": a.seeds, "rows": rows, "at_cap": caps, "cap": CAP,
                          "seconds": elapsed}, indent=2))
        return
    print(f"{'rule':<14}{'knob':>7}{'occ mean':>10}{'occ worst':>10}{'aband mean':>11}{'aband worst':>12}")
    for r in rows:
        print(f"{r['policy']:<14}{r['param']:>7.3f}{r['occupancy_mean']:>10.3f}{r['occupancy_worst']:>10.3f}"
              f"{r['abandon_mean'] * 100:>10.2f}%{r['abandon_worst'] * 100:>11.2f}%")
    print(f"\noccupancy at {CAP:.1%} mean abandonment (N = {a.agents}):")
    for rule, occ in caps.items():
        print(f"  {rule:<14}{'outside the points' if occ is None else f'{occ:.3f}'}")
    print(f"({a.seeds} seeds, {a.shift_hours:g} h shifts, {elapsed:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
