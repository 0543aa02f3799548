"""The pacer's estimates follow the day: a change the samples show shortens their memory, a
steady day keeps it whole, and a warm start learns a recorded history (dialer/estimates.py)."""

from __future__ import annotations

import random

from dialer import estimates
from dialer.estimates import DialMemory, Estimates, History, Window


def dials(est: Estimates, rng: random.Random, p: float, n: int) -> None:
    for _ in range(n):
        answered = rng.random() < p
        est.observe_dial_end(answered, rng.uniform(4, 20) if answered else None)


def test_a_steady_day_keeps_every_dial_and_reads_the_whole_rate() -> None:
    rng, est = random.Random(7), Estimates()
    dials(est, rng, 0.35, 15000)
    assert est.changes == 0 and est.memory()["dials"] == 15000
    # the rate of every dial seen: on a steady day the same as before the estimates followed change
    assert est.p_answer == est.answers / est.dials


def test_a_step_in_the_answer_rate_is_followed_within_a_few_hundred_dials() -> None:
    """Four hours at 0.25 then 0.45 (the OB-20 live rate stepping 0.15 → 0.35, machines
    included): the rate since the start would still read about 0.29 three hundred dials later."""
    rng, est = random.Random(3), Estimates()
    dials(est, rng, 0.25, 6000)
    dials(est, rng, 0.45, 300)
    assert abs(est.p_answer - 0.45) < 0.06, est.p_answer
    assert est.answers / est.dials < 0.30  # what the rate since the start says
    assert est.changes >= 1 and est.memory()["dials"] < 1000
    # and down again
    dials(est, rng, 0.20, 300)
    assert abs(est.p_answer - 0.20) < 0.06, est.p_answer


def test_a_slow_drift_is_followed_closer_than_by_the_whole_day() -> None:
    """0.25 → 0.45 over 8,000 dials (a few hours): Lepski's rule leaves out the dials that pull
    the rate away from the recent ones."""
    rng, est = random.Random(5), Estimates()
    n = 8000
    for i in range(n):
        p = 0.25 + 0.2 * i / n
        answered = rng.random() < p
        est.observe_dial_end(answered, 10.0 if answered else None)
    whole = est.answers / est.dials  # about 0.35
    assert abs(est.p_answer - 0.45) < abs(whole - 0.45) - 0.04, (est.p_answer, whole)


def test_lepski_leaves_out_older_dials_the_change_test_keeps() -> None:
    """4,000 dials at 0.30 then 1,024 at 0.36: the difference is too small for the change test
    (3.7 standard errors, not 4.5) but the older dials pull the rate of the whole memory (0.312)
    away from what the recent ones say: the rate read is that of the last 2,048 (0.33)."""
    est = Estimates()
    for i in range(4000):
        est.observe_dial_end(i % 10 < 3, 9.0 if i % 10 < 3 else None)
    for i in range(1024):
        est.observe_dial_end(i % 25 < 9, 9.0 if i % 25 < 9 else None)
    assert est.changes == 0 and est.memory()["dials"] == 5024
    assert est._dials.rate() < 0.315
    assert abs(est.p_answer - est._dials.rate(2048)) < 1e-12 and est.p_answer > 0.325


def test_dial_ends_out_of_order_are_not_a_change() -> None:
    """A burst of calls ends in its answers first (4–20 s) and its no-answers last (the ring
    timeout): runs of ends all answered or all not, every burst, must not read as changes."""
    est = Estimates()
    for _ in range(300):  # 300 bursts of 40 dials: 10 answers, then 30 not
        for k in range(40):
            est.observe_dial_end(k < 10, 8.0 if k < 10 else None)
    assert est.changes == 0 and abs(est.p_answer - 0.25) < 0.01


def test_time_windows_slide_and_follow_longer_talks() -> None:
    """Times are not cut at a change (docs/pacing.md says why): the last 2,000 are kept, and
    talks getting longer replace the old ones."""
    rng, est = random.Random(11), Estimates()
    for _ in range(1500):
        est.observe_talk(rng.lognormvariate(4.56, 0.67), True)  # mean 120 s
    for _ in range(2000):
        est.observe_talk(rng.lognormvariate(5.25, 0.67), True)  # mean 240 s
    talks = est.talk_times
    assert talks == sorted(talks) and len(talks) == 2000
    assert 170 < talks[len(talks) // 2] < 230  # the new talks' median (about 190 s), not the old's 112
    assert est.changes == 0  # (changes are the answer rate's)


def test_a_window_keeps_its_sorted_values_in_step_with_its_samples() -> None:
    rng, w = random.Random(2), Window(cap=300)
    for _ in range(2000):
        w.add(rng.expovariate(1 / 30))
        assert w.values == sorted(w.order) and len(w) <= 300
    assert len(w) == 300


def test_nothing_is_cut_below_two_parts() -> None:
    m = DialMemory()
    for answered in [False] * 128 + [True] * 127:
        m.add(answered)
    assert m.changed_at() == 0 and m.cuts == 0
    m.add(True)  # two parts of 128: the older one goes
    assert m.cuts == 1 and len(m) == 128 and m.rate() == 1.0


def test_warm_start_learns_a_history_and_is_ready_at_once() -> None:
    rng = random.Random(4)
    record = History(
        dials=[(a, rng.uniform(4, 20) if a else None) for a in (rng.random() < 0.35 for _ in range(1500))],
        talks=[(rng.lognormvariate(4.56, 0.67), True) for _ in range(300)] + [(5.0, False)] * 50,
        wraps=[rng.gammavariate(4, 5) for _ in range(300)],
        spells=[rng.lognormvariate(4.56, 0.67) + 20 for _ in range(350)])
    est = Estimates()
    assert not est.ready
    est.warm(record)
    assert est.ready and est.spells_seen == 350 and est.dials == 1500
    assert abs(est.p_answer - 0.35) < 0.04
    assert len(est.talk_times) == 300 and len(est.short_times) == 50 and len(est.wrap_times) == 300
    assert not History() and record


def test_a_copy_does_not_move_with_the_original() -> None:
    rng, est = random.Random(9), Estimates()
    dials(est, rng, 0.3, 500)
    copy = est.copy()
    before = (copy.p_answer, list(copy.ring_times), copy.dials)
    dials(est, rng, 0.9, 500)
    assert (copy.p_answer, list(copy.ring_times), copy.dials) == before
    assert est.p_answer > before[0] + 0.1


def test_the_constants_hold_together() -> None:
    assert estimates.MIN_PART >= estimates.MIN_SAMPLES
    assert estimates.Z_CUT > estimates.Z_AGREE > 0


def test_memory_stays_bounded_however_long_the_worker_runs() -> None:
    """A worker runs for weeks: what the dial memory holds, prefix sums included, stays bounded."""
    dials, rng, seen = DialMemory(), random.Random(1), []
    for _ in range(200_000):
        seen.append(rng.random() < 0.3)
        dials.add(seen[-1])
    assert len(dials) == 20000 and len(dials._sum) < 2 * (20000 + 4096) + 2
    assert dials.rate() == sum(seen[-20000:]) / 20000 and dials.rate(777) == sum(seen[-777:]) / 777
