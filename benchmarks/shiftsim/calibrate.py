"""Running many shifts on a process pool, calibrating a baseline's parameter by bisection, and
summing the runs up into the table's rows."""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import statistics
import threading
from concurrent.futures import Future, ProcessPoolExecutor, as_completed

from dialer.sim.model import Workload

from .shift import Result, simulate


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
    first steps only narrow the bracket: they look at the first half of the shift (the whole
    shift when the day changes: a schedule, a restart) of half the seeds (the rate over 4 hours of 5 days says which half holds the target as well as the
    whole days do, but at a quarter of the cost: on the default workload every such step goes
    the same way either way). The last `fine` steps look at all the seeds over the whole shift,
    and the result is always such a run, under the target unless even the bracket's bottom is
    not. A step stops as soon as its runs so far decide it (see `_step`)."""
    best: tuple[float, list[Result]] | None = None
    half = seeds[: max(2, len(seeds) // 2)]
    # a day that changes (a schedule, a restart) is not told by its first half: then whole days
    narrow = opts if opts.get("schedules") or opts.get("restart") else dict(opts, shift=opts["shift"] / 2)
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


def summarise(results: list[Result], param: float, restart_at: float | None = None) -> dict:
    occ = [r.occupancy for r in results]
    ab = [r.abandon_rate for r in results]
    hours = results[0].shift / 3600
    row = {
        "policy": results[0].policy, "agents": results[0].agents, "param": round(param, 4),
        "occupancy_mean": statistics.fmean(occ), "occupancy_worst": min(occ),
        "abandon_mean": statistics.fmean(ab), "abandon_worst": max(ab),
        "connects_per_agent_hour": statistics.fmean(r.connects / (r.agents * hours) for r in results),
        "dials_per_connect": statistics.fmean(r.dials / max(r.connects, 1) for r in results),
        "idle_wait_per_connect": statistics.fmean(r.idle_wait / max(r.connects, 1) for r in results),
        "changes": statistics.fmean(r.changes for r in results),
        "seeds": len(results),
    }
    if restart_at is not None:  # occupancy the hour before a restart, and by 5 minutes after it
        row["restart"] = {
            "before": statistics.fmean(r.occupancy_between(restart_at - 3600, restart_at) for r in results),
            "after": [statistics.fmean(r.occupancy_between(restart_at + m * 60, restart_at + (m + 5) * 60)
                                       for r in results) for m in range(0, 30, 5)]}
    return row


def upper_bound(w: Workload) -> dict:
    """Talk occupancy if agents never waited: each live connect still costs its pickup, talk and
    wrap-up, and each machine reached on the way its pickup and short talk (ob20.md)."""
    pickup = sum(w.pickup) / 2
    machine = sum(w.machine_talk) / 2
    wrap = w.wrap_k * w.wrap_theta
    per_live = w.talk_mean + wrap + pickup + (w.p_machine / w.p_live) * (pickup + machine) if w.p_live else math.inf
    return {"policy": "bound", "agents": None, "occupancy_mean": w.talk_mean / per_live if w.p_live else 0.0}
