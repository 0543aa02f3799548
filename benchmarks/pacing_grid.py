"""Our pacer beyond the default workload: does it hold the 3 % cap per shift when answer rates,
talk times and team sizes change? A grid of OB-20 workloads (shift_sim.py's simulation), our
pacer and progressive beside it, each seed one 8-hour day.

    python benchmarks/pacing_grid.py                       # 3 × 3 × 3 grid, 3 seeds (~10 min on 2 cores)
    python benchmarks/pacing_grid.py --p-live 0.1,0.5 --talk-mean 30 --agents 5 --seeds 2 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from shift_sim import Runner, run_many, summarise, upper_bound

from dialer import pacing
from dialer.sim.model import Workload


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p-live", default="0.1,0.25,0.5")
    ap.add_argument("--talk-mean", default="30,120,300", help="talk sd is 0.75 × the mean (OB-20: 90 / 120)")
    ap.add_argument("--agents", default="5,20,100")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--shift-hours", type=float, default=8.0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    started = time.monotonic()
    z = pacing.PacerConfig().base_z
    cells = [(float(p), float(t), int(n)) for p in a.p_live.split(",") for t in a.talk_mean.split(",")
             for n in a.agents.split(",")]

    def cell(runner: Runner, p_live: float, talk: float, n: int) -> dict:
        workload = {"p_live": p_live, "talk_mean": talk, "talk_sd": 0.75 * talk}
        opts = {"shift": a.shift_hours * 3600, "ring_timeout": 25.0, "workload": workload}
        bound = upper_bound(Workload(**workload))["occupancy_mean"]
        ours = summarise(run_many(runner, "ours", n, range(a.seeds), z, opts, (-n,)), z)
        prog = summarise(run_many(runner, "progressive", n, range(a.seeds), 1.0, opts, (-n,)), 1.0)
        return {"p_live": p_live, "talk_mean": talk, "agents": n, "bound": bound,
                "progressive": prog["occupancy_mean"], **{k: ours[k] for k in (
                    "occupancy_mean", "occupancy_worst", "abandon_mean", "abandon_worst")}}

    with ProcessPoolExecutor(a.workers) as pool, ThreadPoolExecutor(len(cells)) as threads:
        runner = Runner(pool, a.workers)  # every cell at once, the largest teams first
        rows = list(threads.map(lambda c: cell(runner, *c), cells))
    elapsed = time.monotonic() - started
    if a.json:
        print(json.dumps({"rows": rows, "seconds": elapsed, "seeds": a.seeds}, indent=2))
        return
    print(f"{'p_live':>7}{'talk':>6}{'N':>5}{'bound':>7}{'prog':>7}{'ours':>7}{'worst':>7}"
          f"{'aband mean':>11}{'aband worst':>12}")
    for r in rows:
        print(f"{r['p_live']:>7.2f}{r['talk_mean']:>6.0f}{r['agents']:>5}{r['bound']:>7.3f}{r['progressive']:>7.3f}"
              f"{r['occupancy_mean']:>7.3f}{r['occupancy_worst']:>7.3f}{r['abandon_mean'] * 100:>10.2f}%"
              f"{r['abandon_worst'] * 100:>11.2f}%")
    worst = max(r["abandon_worst"] for r in rows)
    print(f"({a.seeds} seeds per cell, {a.shift_hours:g} h shifts, {elapsed:.0f} s; worst seed anywhere "
          f"{worst * 100:.2f}%; mean of means {statistics.fmean(r['abandon_mean'] for r in rows) * 100:.2f}%)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
