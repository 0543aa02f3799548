"""OB-20: one outbound shift, simulated event by event, for each pacing policy.

The call model is the project's own (`dialer.sim.model`, what the CTI simulator does), the pacer
under test is the real one (`dialer.pacing.decide`) and sees only what the worker could see:
agent states and how long they have been in them, calls in flight and their ages, its own
running estimates, the abandonment counts. See shared/benchmarks/ob20.md.

    python benchmarks/shift_sim.py                  # 5 policies × N ∈ {5, 20, 50} × seeds 0..9
    python benchmarks/shift_sim.py --agents 20 --seeds 3 --policies ours,progressive --json
"""

from __future__ import annotations

import argparse
import bisect
import functools
import heapq
import itertools
import json
import math
import os
import random
import statistics
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace

from dialer import pacing
from dialer.sim.model import Workload, draw_fate, draw_pickup, draw_wrap_up

ABANDON_AFTER = 2.0
#: what the worker sees of an agent's state (picking up counts as on the call)
_VISIBLE = {"ready": "ready", "pickup": "busy", "talk": "busy", "wrap": "wrap", "dialling": "busy"}
_READY = pacing.AgentState("ready")


@dataclass
class Result:
    policy: str
    agents: int
    seed: int
    talk: float = 0.0
    live: int = 0
    abandoned: int = 0
    dials: int = 0
    connects: int = 0
    idle_wait: float = 0.0
    shift: float = 0.0

    @property
    def occupancy(self) -> float:
        return self.talk / (self.agents * self.shift)

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.live if self.live else 0.0


@dataclass
class Agent:
    i: int
    state: str = "ready"  # ready | pickup | talk | wrap | dialling (progressive)
    since: float = 0.0
    bridged: float = -1.0
    free_at: float = -1.0  # when a talking or wrapping agent will be free (for the oracle)


@dataclass
class Call:
    placed: float
    outcome: str
    ring: float
    talk: float
    answered_at: float = -1.0


@dataclass
class Sim:
    policy: str
    n: int
    seed: int
    w: Workload
    shift: float
    ring_timeout: float
    param: float = 1.0
    pacer: pacing.PacerConfig = field(default_factory=pacing.PacerConfig)
    rng: random.Random = field(init=False)
    now: float = 0.0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.events: list[tuple[float, int, str, object]] = []
        self.seq = itertools.count()
        self.agents = [Agent(i) for i in range(self.n)]
        self.ready: deque[Agent] = deque(self.agents)  # longest ready first
        self.flight: dict[int, Call] = {}
        self.waiting: deque[tuple[Call, float]] = deque()  # answered, waiting for an agent (deadline)
        self.result = Result(self.policy, self.n, self.seed, shift=self.shift)
        self.est = pacing.Estimates()
        self.level = 1.0  # ViciDial adaptive
        self.samples: list[tuple[int, int]] = []
        self.ids = itertools.count()
        self.talking = 0  # agents on a call (picking up or talking), not in wrap-up
        self._ours = replace(self.pacer, base_z=self.param)  # our pacer's settings, made once

    # -- events ---------------------------------------------------------------------------------
    def at(self, t: float, kind: str, payload: object = None) -> None:
        heapq.heappush(self.events, (t, next(self.seq), kind, payload))

    def run(self) -> Result:
        if self.policy == "progressive":
            for a in self.agents:
                self.at(0.0, "agent_dial", a)
        else:
            self.at(0.0, "tick")
        if self.policy == "adaptive":
            self.at(15.0, "adapt")
        while self.events:
            t, _, kind, payload = heapq.heappop(self.events)
            if t > self.shift:
                break
            self.now = t
            getattr(self, "on_" + kind)(payload)
        return self.result

    # -- predictive: calls on ports ---------------------------------------------------------------
    def place(self, count: int) -> None:
        for _ in range(count):
            fate = draw_fate(self.rng, self.w)
            call = Call(self.now, fate.outcome, fate.ring, fate.talk)
            cid = next(self.ids)
            self.flight[cid] = call
            self.result.dials += 1
            if fate.answers:
                self.at(self.now + fate.ring, "answer", cid)
            elif fate.outcome == "busy":
                self.at(self.now + fate.ring, "unanswered", cid)
            else:
                self.at(self.now + self.ring_timeout, "unanswered", cid)

    def on_unanswered(self, cid: int) -> None:
        self.flight.pop(cid)
        self.est.observe_dial_end(False, None)

    def on_answer(self, cid: int) -> None:
        call = self.flight.pop(cid)
        call.answered_at = self.now
        self.est.observe_dial_end(True, self.now - call.placed)
        if call.outcome == "answer":
            self.result.live += 1
        deadline = self.now + ABANDON_AFTER
        if not self.bridge(call, deadline):
            self.waiting.append((call, deadline))
            self.at(deadline, "deadline", call)

    def bridge(self, call: Call, deadline: float) -> bool:
        """Hand `call` to the longest-ready agent if the pickup lands before the deadline."""
        if not self.ready:
            return False
        agent = self.ready[0]
        pickup = draw_pickup(self.rng, self.w)
        if self.now + pickup > deadline:
            return False
        self.ready.popleft()
        self.result.idle_wait += self.now - agent.since
        agent.state, agent.since = "pickup", self.now
        self.talking += 1
        self.at(self.now + pickup, "pickup_done", (agent, call))
        return True

    def on_pickup_done(self, payload: tuple[Agent, Call]) -> None:
        self.talking -= 1
        self.on_talk(payload)

    def on_talk(self, payload: tuple[Agent, Call]) -> None:
        agent, call = payload
        agent.state, agent.since = "talk", self.now
        agent.bridged = self.now
        self.talking += 1
        if call.outcome == "answer":
            self.result.connects += 1
            self.result.talk += min(call.talk, self.shift - self.now)
            wrap = draw_wrap_up(self.rng, self.w)
            self.at(self.now + call.talk, "wrap", (agent, wrap))
        else:  # a machine: a short call, no wrap-up
            wrap = 0.0
            self.at(self.now + call.talk, "wrap", (agent, 0.0))
        agent.free_at = self.now + call.talk + wrap

    def on_wrap(self, payload: tuple[Agent, float]) -> None:
        agent, wrap = payload
        self.talking -= 1
        if wrap <= 0:
            self.on_free(agent)
            return
        agent.state, agent.since = "wrap", self.now  # the worker sees the hangup: wrap-up starts
        self.at(self.now + wrap, "free", agent)

    def on_free(self, agent: Agent) -> None:
        if agent.state == "wrap":  # learnt only when the spell is over, as the worker would
            self.est.observe_wrap(self.now - agent.since)
            if agent.bridged >= 0:
                self.est.observe_talk(agent.since - agent.bridged, True)
        elif agent.bridged >= 0:
            self.est.observe_talk(self.now - agent.bridged, False)
        if agent.bridged >= 0:
            self.est.observe_agent_busy(self.now - agent.bridged)
            agent.bridged = -1.0
        agent.state, agent.since = "ready", self.now
        if self.policy == "progressive":
            self.on_agent_dial(agent)
            return
        self.ready.append(agent)
        while self.waiting and self.ready:
            call, deadline = self.waiting[0]
            if deadline < self.now or not self.bridge(call, deadline):
                break
            self.waiting.popleft()
        self.pace()

    def on_deadline(self, call: Call) -> None:
        for i, (c, _) in enumerate(self.waiting):
            if c is call:
                del self.waiting[i]
                if call.outcome == "answer":
                    self.result.abandoned += 1
                break

    def on_tick(self, _: object) -> None:
        self.pace()
        self.at(self.now + 1.0, "tick")

    def on_adapt(self, _: object) -> None:
        if self.samples:
            avg_ready = statistics.fmean(r for r, _ in self.samples)
            avg_wait = statistics.fmean(w for _, w in self.samples)
            self.level *= 1 + (avg_ready - avg_wait) / self.n
            self.level = min(3.0, max(1.0, self.level))
            if self.result.live and self.result.abandoned / self.result.live > 0.03:
                self.level = max(1.0, self.level / 2)
        self.samples.clear()
        self.at(self.now + 15.0, "adapt")

    def pace(self) -> None:
        p = self.policy
        ready = len(self.ready)
        if p == "adaptive":
            self.samples.append((ready, len(self.waiting)))
        if p in ("ratio", "adaptive"):
            # ViciDial: level × (agents waiting + agents in calls) − calls up (ringing, waiting
            # for an agent, and those the agents are on)
            r = self.param if p == "ratio" else self.level
            up = len(self.flight) + len(self.waiting) + self.talking
            self.place(max(0, round(r * (ready + self.talking)) - up))
        elif p == "lookahead":
            est = self.est
            if not est.ready:
                self.place(max(0, ready - len(self.flight) - len(self.waiting)))
                return
            soon = _soon(est.busy_times, self.now, self.agents, 12.0)
            target = self.param * (ready + soon) / max(est.p_answer, 1e-3)
            self.place(max(0, math.floor(target) - len(self.flight)))
        elif p in ("ours", "oracle"):
            # the oracle is our pacer told when each talking or wrapping agent will be free: a
            # bound on what better predictions of the agents could give (not in the default table)
            snap = self.snapshot(oracle=p == "oracle")
            self.place(pacing.decide(snap, self.est, self._ours))

    def snapshot(self, oracle: bool = False) -> pacing.Snapshot:
        """What the worker would see now; with `oracle`, also when each talking or wrapping
        agent will be free. A ready agent is `READY`, as the worker gives it (how long it has
        been ready does not count). The agents' states are made with `tuple.__new__`, which is
        what `AgentState(...)` does less the Python frame of a named tuple's constructor: this
        runs at every decision for every agent."""
        now, state, make, ready = self.now, pacing.AgentState, tuple.__new__, _READY
        agents = [ready if a.state == "ready" else make(state, (
            _VISIBLE[a.state], now - (a.bridged if a.state == "talk" else a.since),
            a.free_at - now if oracle and a.state in ("talk", "wrap") else None)) for a in self.agents]
        return pacing.Snapshot(
            agents=agents,
            calls_in_flight=[now - c.placed for c in self.flight.values()],
            waiting=len(self.waiting), abandoned_today=self.result.abandoned, live_today=self.result.live)

    # -- progressive: the agent's own seat dials ----------------------------------------------------
    def on_agent_dial(self, agent: Agent) -> None:
        agent.state, agent.since = "dialling", self.now
        pickup = draw_pickup(self.rng, self.w)
        fate = draw_fate(self.rng, self.w)
        self.result.dials += 1
        start = self.now + pickup
        if fate.answers:
            call = Call(start, fate.outcome, fate.ring, fate.talk)
            if fate.outcome == "answer":
                self.result.live += 1
            self.at(start + fate.ring, "talk", (agent, call))
        else:
            self.at(start + (fate.ring if fate.outcome == "busy" else self.ring_timeout), "agent_dial", agent)


def _soon(times: list[float], now: float, agents: list[Agent], horizon: float) -> float:
    """Σ over agents on a call or in wrap-up of P(spell ends within `horizon` | it has lasted so
    long) — pacing's spell estimate, inlined: this runs on every decision of the look-ahead."""
    n, br, total, top = len(times), bisect.bisect_right, 0.0, len(times) - pacing.MIN_TAIL
    for a in agents:
        bridged = a.bridged
        if bridged >= 0:  # talking or in wrap-up (set at the bridge, cleared when free)
            e = now - bridged
            i = br(times, e)
            if i <= top:
                total += (br(times, e + horizon, i) - i) / (n - i)
    return total


def simulate(args: tuple[str, int, int, float, dict]) -> Result:
    policy, n, seed, param, opts = args
    w = Workload(**opts["workload"])
    pacer = pacing.PacerConfig(**opts.get("pacer", {}))
    return Sim(policy, n, seed, w, opts["shift"], opts["ring_timeout"], param, pacer).run()


class Runner:
    """Runs simulations on a process pool, no more at a time than it has processes, the most
    urgent first (lowest `priority`): the table's calibrations are chains of steps, each waiting
    for the last, and the other runs fill the processes in between, so that none stands idle.
    `map` may be called from several threads at once."""

    def __init__(self, pool: ProcessPoolExecutor, processes: int) -> None:
        self._pool, self._free = pool, processes
        self._lock = threading.Lock()
        self._queue: list[tuple[tuple, int, tuple, Future]] = []  # a heap
        self._order = itertools.count()

    def submit(self, tasks: list[tuple], priority: tuple = ()) -> list[Future]:
        """One future per task, in order; a future cancelled before its run starts is dropped."""
        futures: list[Future] = [Future() for _ in tasks]
        with self._lock:
            for task, future in zip(tasks, futures):
                heapq.heappush(self._queue, (priority, next(self._order), task, future))
        self._start()
        return futures

    def map(self, tasks: list[tuple], priority: tuple = ()) -> list[Result]:
        return [f.result() for f in self.submit(tasks, priority)]

    def _start(self) -> None:
        while True:
            with self._lock:
                if not self._free or not self._queue:
                    return
                *_, task, future = heapq.heappop(self._queue)
                if not future.set_running_or_notify_cancel():
                    continue
                self._free -= 1
            self._pool.submit(simulate, task).add_done_callback(functools.partial(self._done, future))

    def _done(self, future: Future, run: Future) -> None:
        with self._lock:
            self._free += 1
        self._start()
        if run.exception() is not None:
            future.set_exception(run.exception())
        else:
            future.set_result(run.result())


def run_many(runner: Runner, policy: str, n: int, seeds: range, param: float, opts: dict,
             priority: tuple = ()) -> list[Result]:
    return runner.map([(policy, n, s, param, opts) for s in seeds], priority)


def _step(runner: Runner, tasks: list[tuple], target: float, priority: tuple) -> list[Result] | None:
    """The runs of one bisection step, or None as soon as the runs done put the mean abandonment
    over `target` whatever the others give (a rate is never below 0): the step's answer is then
    known, and its runs are not used. Exact: `fmean` is `fsum` / n, and `fsum` of a part of the
    rates is never above `fsum` of all of them."""
    futures = runner.submit(tasks, priority)
    rates: list[float] = []
    try:
        for f in as_completed(futures):
            rates.append(f.result().abandon_rate)
            if len(rates) < len(futures) and math.fsum(rates) / len(futures) > target:
                return None
        return [f.result() for f in futures]
    finally:
        for f in futures:
            f.cancel()  # those not started yet (a no-op for the others)


def _holds(results: list[Result] | None, target: float) -> bool:
    """A step's runs hold the target: their mean abandonment is at most it."""
    return results is not None and statistics.fmean(r.abandon_rate for r in results) <= target


def calibrate(runner: Runner, policy: str, n: int, seeds: range, lo: float, hi: float, opts: dict,
              target: float, steps: int, fine: int = 2) -> tuple[float, list[Result]]:
    """Bisect the policy's parameter to `target` mean abandonment; the best run under it. The
    first steps only narrow the bracket: they look at the first half of the shift of half the
    seeds (the rate over 4 hours of 5 days says which half holds the target as well as the
    whole days do, but at a quarter of the cost: on the default workload every such step goes
    the same way either way). The last `fine` steps look at all the seeds over the whole shift,
    and the result is always such a run, under the target unless even the bracket's bottom is
    not. A step stops as soon as its runs so far decide it (see `_step`)."""
    best: tuple[float, list[Result]] | None = None
    half = seeds[: max(2, len(seeds) // 2)]
    narrow = dict(opts, shift=opts["shift"] / 2)
    bottom = lo
    urgent = (0, -n)  # a chain of steps: ahead of the single runs, the longest chain first
    for step in range(steps):
        full = step >= steps - fine
        mid = (lo + hi) / 2
        tasks = [(policy, n, s, mid, opts) for s in seeds] if full else [(policy, n, s, mid, narrow) for s in half]
        results = _step(runner, tasks, target, urgent)
        if _holds(results, target):
            lo = mid
            if full:
                best = (mid, results)
        else:
            hi = mid
    if best is not None:
        return best
    # No full step held the target: all the seeds at the highest value a narrowing step let
    # through, and, while that does not hold it either, half way down to the bracket's bottom.
    for _ in range(fine + 1):
        if lo == bottom:
            break
        results = _step(runner, [(policy, n, s, lo, opts) for s in seeds], target, urgent)
        if _holds(results, target):
            return lo, results
        lo = (bottom + lo) / 2
    return bottom, run_many(runner, policy, n, seeds, bottom, opts, urgent)


def summarise(results: list[Result], param: float) -> dict:
    occ = [r.occupancy for r in results]
    ab = [r.abandon_rate for r in results]
    hours = results[0].shift / 3600
    return {
        "policy": results[0].policy, "agents": results[0].agents, "param": round(param, 4),
        "occupancy_mean": statistics.fmean(occ), "occupancy_worst": min(occ),
        "abandon_mean": statistics.fmean(ab), "abandon_worst": max(ab),
        "connects_per_agent_hour": statistics.fmean(r.connects / (r.agents * hours) for r in results),
        "dials_per_connect": statistics.fmean(r.dials / max(r.connects, 1) for r in results),
        "idle_wait_per_connect": statistics.fmean(r.idle_wait / max(r.connects, 1) for r in results),
        "seeds": len(results),
    }


def upper_bound(w: Workload) -> dict:
    """Talk occupancy if agents never waited: each live connect still costs its pickup, talk and
    wrap-up, and each machine reached on the way its pickup and short talk (ob20.md)."""
    pickup = sum(w.pickup) / 2
    machine = sum(w.machine_talk) / 2
    wrap = w.wrap_k * w.wrap_theta
    per_live = w.talk_mean + wrap + pickup + (w.p_machine / w.p_live) * (pickup + machine) if w.p_live else math.inf
    return {"policy": "bound", "agents": None, "occupancy_mean": w.talk_mean / per_live if w.p_live else 0.0}


def _range(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(",")
    try:
        pair = (float(lo), float(hi))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI in seconds, got {text!r}") from None
    if not 0 <= pair[0] <= pair[1]:
        raise argparse.ArgumentTypeError(f"expected 0 ≤ LO ≤ HI, got {text!r}")
    return pair


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", default="5,20,50")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--policies", default="progressive,ratio,adaptive,lookahead,ours")
    ap.add_argument("--shift-hours", type=float, default=8.0)
    ap.add_argument("--p-live", type=float, default=0.25)
    ap.add_argument("--p-machine", type=float, default=0.10)
    ap.add_argument("--p-busy", type=float, default=0.10)
    ap.add_argument("--talk-mean", type=float, default=120.0)
    ap.add_argument("--talk-sd", type=float, default=90.0)
    ap.add_argument("--wrap-k", type=float, default=4.0)
    ap.add_argument("--wrap-theta", type=float, default=5.0)
    ap.add_argument("--ring-timeout", type=float, default=25.0)
    for flag, default in (("--live-ring", "4,20"), ("--machine-ring", "4,20"), ("--machine-talk", "3,8"),
                          ("--busy-ring", "2,6"), ("--pickup", "0.3,1.0")):
        ap.add_argument(flag, type=_range, default=_range(default), metavar="LO,HI",
                        help=f"uniform range in seconds [{default}]")
    ap.add_argument("--target", type=float, default=0.03, help="calibration target of the baselines")
    ap.add_argument("--z", type=float, default=pacing.PacerConfig().base_z,
                    help="our pacer's base safety margin (standard deviations) [the pacer's default]")
    ap.add_argument("--calibration-steps", type=int, default=6)
    ap.add_argument("--pacer", action="append", default=[], metavar="FIELD=VALUE",
                    help="a PacerConfig field for our pacer, e.g. --pacer split_talk=0 --pacer setpoint=0.7")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    opts = {"shift": a.shift_hours * 3600, "ring_timeout": max(15.0, a.ring_timeout), "workload": {
        "p_live": a.p_live, "p_machine": a.p_machine, "p_busy": a.p_busy, "talk_mean": a.talk_mean,
        "talk_sd": a.talk_sd, "wrap_k": a.wrap_k, "wrap_theta": a.wrap_theta, "live_ring": a.live_ring,
        "machine_ring": a.machine_ring, "machine_talk": a.machine_talk, "busy_ring": a.busy_ring, "pickup": a.pickup}}
    for item in a.pacer:
        key, _, value = item.partition("=")
        opts.setdefault("pacer", {})[key] = type(getattr(pacing.PacerConfig(), key))(float(value))
    seeds = range(a.seeds)

    def row(runner: Runner, n: int, policy: str) -> dict:
        if policy == "ratio":
            param, results = calibrate(runner, "ratio", n, seeds, 1.0, 2.0, opts, a.target, a.calibration_steps)
        elif policy == "lookahead":
            param, results = calibrate(runner, "lookahead", n, seeds, 0.3, 1.5, opts, a.target, a.calibration_steps)
        else:
            param = a.z if policy in ("ours", "oracle") else 1.0
            results = run_many(runner, policy, n, seeds, param, opts, (1, -n))
        return summarise(results, param)

    started = time.monotonic()
    jobs = [(int(n), policy) for n in a.agents.split(",") for policy in a.policies.split(",")]
    with ProcessPoolExecutor(a.workers) as pool, ThreadPoolExecutor(len(jobs)) as threads:
        runner = Runner(pool, a.workers)  # every row at once, in threads that wait on the pool
        rows = list(threads.map(lambda job: row(runner, *job), jobs))
    w = Workload(**opts["workload"])
    rows.append(upper_bound(w))
    elapsed = time.monotonic() - started
    if a.json:
        print(json.dumps({"rows": rows, "seconds": elapsed, "options": opts}, indent=2))
        return
    print(f"{'policy':<12}{'N':>4}{'param':>8}{'occ mean':>10}{'occ worst':>10}{'aband mean':>11}"
          f"{'aband worst':>12}{'conn/ag-h':>10}{'dials/conn':>11}{'wait/conn':>10}")
    for r in rows:
        if r["policy"] == "bound":
            print(f"{'bound':<12}{'any':>4}{'':>8}{r['occupancy_mean']:>10.4f}   (agents never wait; ob20.md)")
            continue
        print(f"{r['policy']:<12}{r['agents']:>4}{r['param']:>8.3f}{r['occupancy_mean']:>10.3f}{r['occupancy_worst']:>10.3f}"
              f"{r['abandon_mean'] * 100:>10.2f}%{r['abandon_worst'] * 100:>11.2f}%{r['connects_per_agent_hour']:>10.1f}"
              f"{r['dials_per_connect']:>11.2f}{r['idle_wait_per_connect']:>10.1f}")
    print(f"({a.seeds} seeds, {a.shift_hours:g} h shifts, {elapsed:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
