"""What one `pacing.decide` costs, and whether another version of it decides the same.

Records a sample of the decisions of one OB-20 day (shift_sim.py's simulation, our pacer, the
default workload): the snapshot and a copy of the estimates each time. Then times `decide` over
them (best of `--repeat` passes) — and, with `--against FILE` (another version of
dialer/pacing.py, e.g. from `git show HEAD~3:dialer/pacing.py > /tmp/old.py`), times that one
over the same decisions in the same run and counts the decisions where the two differ.

    python benchmarks/decide_cost.py --agents 50
    python benchmarks/decide_cost.py --agents 50 --against /tmp/old.py --json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import time
from pathlib import Path

import shift_sim

from dialer import pacing


def record(agents: int, seed: int, hours: float, share: float) -> list[tuple]:
    """Every decision of the day with probability `share`: (snapshot, estimates, settings)."""
    pick, real, sample = random.Random(seed + 1), pacing.decide, []

    def keep(snap: pacing.Snapshot, est: pacing.Estimates, cfg: pacing.PacerConfig) -> int:
        if pick.random() < share:
            sample.append((snap, est.copy(), cfg))
        return real(snap, est, cfg)

    shift_sim.pacing.decide = keep
    try:
        shift_sim.simulate(("ours", agents, seed, pacing.PacerConfig().base_z,
                            {"shift": hours * 3600, "ring_timeout": 25.0, "workload": {}}))
    finally:
        shift_sim.pacing.decide = real
    return sample


def load(path: str):
    spec = importlib.util.spec_from_file_location(f"pacing_{Path(path).stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def cost(decide, sample: list[tuple], repeat: int) -> tuple[float, list[int]]:
    best, answers = float("inf"), []
    for _ in range(repeat):
        started = time.perf_counter()
        answers = [decide(snap, est, cfg) for snap, est, cfg in sample]
        best = min(best, time.perf_counter() - started)
    return best / len(sample) * 1e6, answers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--share", type=float, default=0.03, help="share of the day's decisions kept")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--against", metavar="FILE", help="another version of dialer/pacing.py")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.against and not Path(a.against).is_file():
        ap.error(f"--against: no such file: {a.against}")
    sample = record(a.agents, a.seed, a.hours, a.share)
    if not sample:
        ap.error("no decision recorded: a longer day or a larger --share")
    rows = []
    ours_us, ours = cost(pacing.decide, sample, a.repeat)
    rows.append({"version": "dialer/pacing.py", "us_per_decision": ours_us, "differ": 0})
    if a.against:
        other = load(a.against)
        # the other version gets settings of its own class, the same values
        theirs_sample = [(snap, est, other.PacerConfig(**{f: getattr(cfg, f) for f in cfg.__slots__}))
                         for snap, est, cfg in sample]
        theirs_us, theirs = cost(other.decide, theirs_sample, a.repeat)
        rows.append({"version": a.against, "us_per_decision": theirs_us,
                     "differ": sum(x != y for x, y in zip(ours, theirs))})
    if a.json:
        print(json.dumps({"agents": a.agents, "decisions": len(sample), "rows": rows}, indent=2))
        return
    print(f"{'version':<40}{'µs/decision':>12}{'differ':>8}")
    for r in rows:
        print(f"{r['version']:<40}{r['us_per_decision']:>12.1f}{r['differ']:>8}")
    print(f"({len(sample)} decisions of an {a.hours:g}-hour day, {a.agents} agents, seed {a.seed})", file=sys.stderr)


if __name__ == "__main__":
    main()
