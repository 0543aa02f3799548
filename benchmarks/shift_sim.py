"""OB-20: one outbound shift, simulated event by event, for each pacing policy.

The call model is the project's own (`dialer.sim.model`, what the CTI simulator does), the pacer
under test is the real one (`dialer.pacing.decide`) and sees only what the worker could see:
agent states and how long they have been in them, calls in flight and their ages, its own
running estimates, the abandonment counts. See shared/benchmarks/ob20.md. The simulation is in
`shiftsim/` (shift.py: one shift; day.py: the workload through the day; calibrate.py: the runs,
the baselines' calibration, the rows).

    python benchmarks/shift_sim.py                  # 5 policies × N ∈ {5, 20, 50} × seeds 0..9
    python benchmarks/shift_sim.py --agents 20 --seeds 3 --policies ours,progressive --json
    python benchmarks/shift_sim.py --policies ours,lookahead --p-live-step 4:0.35 --p-live 0.15
    python benchmarks/shift_sim.py --policies ours --restart-at 4 --restart cold
    python benchmarks/shift_sim.py --policies ours --split 2     # two workers, 10 agents each
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from shiftsim import day
from shiftsim.calibrate import Runner, calibrate, run_many, summarise, upper_bound
from shiftsim.shift import Result, Sim, simulate

from dialer import pacing
from dialer.sim.model import Workload

__all__ = ["Result", "Runner", "Sim", "calibrate", "pacing", "run_many", "simulate", "summarise", "upper_bound"]


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
    day_flags = ap.add_argument_group("the day", "the live answer rate and the talk mean through the shift")
    day_flags.add_argument("--p-live-step", type=day.step, metavar="HOURS:VALUE",
                           help="from this hour of the shift on, this live answer rate (e.g. 4:0.35)")
    day_flags.add_argument("--p-live-by-hour", type=day.by_hour, metavar="V0,V1,…",
                           help="the live answer rate at hours 0, 1, … of the shift, linear in between")
    day_flags.add_argument("--talk-mean-step", type=day.step, metavar="HOURS:SECONDS")
    day_flags.add_argument("--talk-mean-by-hour", type=day.by_hour, metavar="S0,S1,…")
    workers = ap.add_argument_group("workers")
    workers.add_argument("--split", type=int, default=1, help="workers the agents are split between [1]")
    workers.add_argument("--share-every", type=float, default=5.0,
                         help="seconds between a worker's reads of the others' abandonment counts [5]")
    workers.add_argument("--restart-at", type=float, metavar="HOURS",
                         help="the (first) worker restarts at this hour of the shift")
    workers.add_argument("--restart", choices=("warm", "cold"), default="warm",
                         help="warm: it reads the campaign's last hour first; cold: it starts empty [warm]")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.split < 1 or a.split > int(min(a.agents.split(","), key=int)):
        ap.error("--split: between 1 and the smallest number of agents")
    opts = {"shift": a.shift_hours * 3600, "ring_timeout": max(15.0, a.ring_timeout), "workload": {
        "p_live": a.p_live, "p_machine": a.p_machine, "p_busy": a.p_busy, "talk_mean": a.talk_mean,
        "talk_sd": a.talk_sd, "wrap_k": a.wrap_k, "wrap_theta": a.wrap_theta, "live_ring": a.live_ring,
        "machine_ring": a.machine_ring, "machine_talk": a.machine_talk, "busy_ring": a.busy_ring, "pickup": a.pickup}}
    try:
        schedules = {"p_live": day.schedule(a.p_live, a.p_live_step, a.p_live_by_hour),
                     "talk_mean": day.schedule(a.talk_mean, a.talk_mean_step, a.talk_mean_by_hour)}
    except argparse.ArgumentTypeError as exc:
        ap.error(str(exc))
    schedules = {k: v for k, v in schedules.items() if v}
    if schedules:
        opts["schedules"] = schedules
    if a.split > 1:
        opts["split"], opts["share_every"] = a.split, a.share_every
    restart_at = None
    if a.restart_at is not None:
        restart_at = a.restart_at * 3600
        opts["restart"] = {"at": restart_at, "warm": a.restart == "warm"}
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
        return summarise(results, param, restart_at)

    started = time.monotonic()
    jobs = [(int(n), policy) for n in a.agents.split(",") for policy in a.policies.split(",")]
    with ProcessPoolExecutor(a.workers) as pool, ThreadPoolExecutor(len(jobs)) as threads:
        runner = Runner(pool, a.workers)  # every row at once, in threads that wait on the pool
        rows = list(threads.map(lambda job: row(runner, *job), jobs))
    w = Workload(**opts["workload"])
    if not schedules:  # (the bound of a workload that changes through the day is not one number)
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
    if restart_at is not None:
        print(f"\nafter the {a.restart} restart at hour {a.restart_at:g}: talk occupancy by 5 minutes (mean over seeds)")
        print(f"{'policy':<12}{'N':>4}{'hour before':>12}" + "".join(f"{f'+{m}-{m + 5} min':>12}" for m in range(0, 30, 5)))
        for r in rows:
            if "restart" in r:
                x = r["restart"]
                print(f"{r['policy']:<12}{r['agents']:>4}{x['before']:>12.3f}" + "".join(f"{v:>12.3f}" for v in x["after"]))
    print(f"({a.seeds} seeds, {a.shift_hours:g} h shifts, {elapsed:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
