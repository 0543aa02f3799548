"""The OB-20 simulation (benchmarks/shift_sim.py): its runs are deterministic and the pacer's
decisions are pinned, so that a faster `pacing.decide` is checked to decide exactly as before."""

from __future__ import annotations

import pytest

from tests.test_predictive_shift import _load

sim = _load("shift_sim")

HOUR = {"shift": 3600.0, "ring_timeout": 25.0, "workload": {}}


@pytest.mark.parametrize(("policy", "agents", "pacer", "expected"), [
    # dials, live answers, abandoned, connects: recorded with the pacer before its rewrite for speed
    # (the rule unchanged: a different decision anywhere in the hour changes these counts)
    ("ours", 20, {}, (1918, 456, 12, 444)),
    ("oracle", 20, {}, (1764, 446, 12, 434)),
    ("ours", 20, {"split_talk": False}, (1902, 467, 11, 456)),
    ("ours", 50, {}, (4715, 1197, 24, 1173)),
])
def test_pacer_decides_as_recorded(policy: str, agents: int, pacer: dict, expected: tuple) -> None:
    seed = 3 if agents == 20 else 1
    r = sim.simulate((policy, agents, seed, 1.75, dict(HOUR, pacer=pacer)))
    assert (r.dials, r.live, r.abandoned, r.connects) == expected


def test_runner_returns_each_run_in_order_whatever_the_priority() -> None:
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    opts = dict(HOUR, shift=600.0)
    seeds = range(4)
    direct = {(p, s): sim.simulate((p, 5, s, 1.2, opts)) for p in ("ratio", "lookahead") for s in seeds}
    with ProcessPoolExecutor(2) as pool, ThreadPoolExecutor(2) as threads:
        runner = sim.Runner(pool, 2)
        # two callers at once, the later one more urgent
        later = threads.submit(sim.run_many, runner, "ratio", 5, seeds, 1.2, opts, (1,))
        sooner = threads.submit(sim.run_many, runner, "lookahead", 5, seeds, 1.2, opts, (0,))
        got = {"ratio": later.result(timeout=60), "lookahead": sooner.result(timeout=60)}
    for policy, results in got.items():
        assert [r.seed for r in results] == list(seeds)
        for r in results:
            want = direct[(policy, r.seed)]
            assert (r.policy, r.dials, r.live, r.abandoned, r.talk) == (
                policy, want.dials, want.live, want.abandoned, want.talk)


def test_runner_passes_a_failed_run_on() -> None:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1) as pool:
        runner = sim.Runner(pool, 1)
        with pytest.raises(TypeError, match="no_such_value"):
            sim.run_many(runner, "ours", 5, range(1), 1.0, dict(HOUR, workload={"no_such_value": 1}))
        # and the runner still works after it
        assert len(sim.run_many(runner, "progressive", 5, range(2), 1.0, dict(HOUR, shift=60.0))) == 2


def test_decide_cost_counts_the_decisions_another_version_makes_differently(tmp_path, capsys, monkeypatch) -> None:
    import json
    import sys
    from pathlib import Path

    cost = _load("decide_cost")
    source = (Path(__file__).parent.parent / "dialer" / "pacing.py").read_text(encoding="utf-8")
    same, warier = tmp_path / "same.py", tmp_path / "warier.py"
    same.write_text(source, encoding="utf-8")
    # counts on agents talking longer than nearly every talk seen (with 5 longer talks, not 500)
    warier.write_text(source.replace("\nMIN_TAIL = 5\n", "\nMIN_TAIL = 500\n"), encoding="utf-8")
    assert "\nMIN_TAIL = 500\n" in warier.read_text(encoding="utf-8")
    for path, differ in ((same, 0), (warier, None)):
        monkeypatch.setattr(sys, "argv", ["decide_cost.py", "--agents", "20", "--hours", "1", "--share", "0.2",
                                          "--repeat", "1", "--against", str(path), "--json"])
        cost.main()
        rows = json.loads(capsys.readouterr().out)["rows"]
        assert rows[0]["differ"] == 0 and rows[1]["us_per_decision"] > 0
        if differ is None:
            assert rows[1]["differ"] > 0
        else:
            assert rows[1]["differ"] == differ


def test_calibration_returns_a_run_under_the_target() -> None:
    """Here (3 one-hour days) both full steps miss the target and so does the value the
    narrowing steps let through (3.75 % before the fall-back looked further down)."""
    from concurrent.futures import ProcessPoolExecutor

    opts = dict(HOUR, shift=3600.0)
    with ProcessPoolExecutor(2) as pool:
        param, results = sim.calibrate(sim.Runner(pool, 2), "lookahead", 5, range(3), 0.3, 1.5, opts, 0.03, 6)
    assert [r.seed for r in results] == [0, 1, 2]
    assert sum(r.abandon_rate for r in results) / 3 <= 0.03
    assert 0.3 <= param < 0.525


def test_schedules_of_the_day() -> None:
    import argparse

    from shiftsim import day

    step = day.schedule(0.15, day.step("4:0.35"), None)
    assert [day.value_at(step, h * 3600) for h in (0, 3.99, 4, 7)] == [0.15, 0.15, 0.35, 0.35]
    drift = day.by_hour("0.15,0.35,0.15")
    assert [round(day.value_at(drift, t), 4) for t in (0, 1800, 3600, 5400, 7200, 9999)] == [0.15, 0.25, 0.35, 0.25, 0.15, 0.15]
    assert day.retune_times({"p_live": step}, 8 * 3600) == [4 * 3600.0]
    assert day.retune_times({"p_live": drift}, 8 * 3600) == [60.0 * k for k in range(1, 121)]  # each minute
    with pytest.raises(argparse.ArgumentTypeError):
        day.schedule(0.2, day.step("1:0.3"), drift)
    with pytest.raises(argparse.ArgumentTypeError):
        day.step("four:0.3")


def test_the_answer_rate_steps_in_the_simulation() -> None:
    opts = dict(HOUR, shift=7200.0, schedules={"p_live": [(0.0, 0.15), (3600.0, 0.15), (3600.0, 0.45)]})
    sim_run = sim.Sim("ours", 20, 1, sim.Workload(p_live=0.15), 7200.0, 25.0, 1.75, schedules=opts["schedules"])
    r = sim_run.run()
    assert sim_run.w.p_live == 0.45
    first, second = (r.occupancy_between(0, 3600), r.occupancy_between(3600, 7200))
    assert second > first  # more answers: the agents talk more
    assert sim_run.est.changes >= 1  # the estimates saw the step
    assert abs(sim_run.est.p_answer - 0.55) < 0.06  # live 0.45 + machines 0.10


def test_a_warm_restart_keeps_the_occupancy_a_cold_one_loses() -> None:
    """A worker restarted at hour 1: warmed from the campaign's last hour it paces at once; cold,
    it dials progressive until it has learnt again (the first 5 minutes after the restart)."""
    import statistics

    def first_minutes(warm: bool) -> float:
        runs = [sim.simulate(("ours", 20, seed, 1.75, dict(HOUR, shift=5400.0, restart={"at": 3600.0, "warm": warm})))
                for seed in range(3)]
        return statistics.fmean(r.occupancy_between(3600, 3900) for r in runs)

    warm, cold = first_minutes(True), first_minutes(False)
    assert warm > cold + 0.08, (warm, cold)


def test_two_workers_each_pace_their_own_agents_on_one_rate() -> None:
    run = sim.Sim("ours", 20, 2, sim.Workload(), 3600.0, 25.0, 1.75, split=2, share_every=5.0)
    r = run.run()
    a, b = run.pools
    assert (a.n, b.n) == (10, 10) and a.est is not b.est
    assert a.est.dials > 100 and b.est.dials > 100 and a.live + b.live == r.live
    assert a.abandoned + b.abandoned == r.abandoned
    # each worker steers on the campaign's rate: its own calls and the other's as last read
    snap = run.snapshot(a)
    assert snap.live_today == a.live + a.others[1] and a.others[1] <= b.live and a.others[1] > 0.9 * b.live
