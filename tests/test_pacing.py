"""The pacer at its edges, and its estimates."""

from __future__ import annotations

import random

from dialer import pacing
from dialer.pacing import AgentState, Estimates, PacerConfig, Snapshot, decide


def trained(p: float = 0.35, seed: int = 1, rings: bool = True) -> Estimates:
    rng = random.Random(seed)
    est = Estimates()
    for _ in range(400):
        answered = rng.random() < p
        ring = rng.uniform(4, 20)
        est.observe_dial_end(answered, ring if answered and rings else None)
    for _ in range(200):
        est.observe_agent_busy(rng.lognormvariate(4.6, 0.65) + rng.gammavariate(4, 5))
    return est


READY = AgentState("ready")


def busy(seconds: float) -> AgentState:
    return AgentState("busy", seconds)


def test_no_agent_logged_in_places_nothing() -> None:
    assert decide(Snapshot(agents=[], calls_in_flight=[]), trained()) == 0
    assert decide(Snapshot(agents=[AgentState("other")] * 5, calls_in_flight=[]), trained()) == 0


def test_window_closing_places_nothing() -> None:
    assert decide(Snapshot(agents=[READY] * 10, calls_in_flight=[], window_closing=True), trained()) == 0


def test_progressive_until_the_estimates_mean_something() -> None:
    fresh = Estimates()
    assert decide(Snapshot(agents=[READY] * 4 + [busy(30)] * 6, calls_in_flight=[1.0]), fresh) == 3
    assert decide(Snapshot(agents=[busy(30)] * 10, calls_in_flight=[]), fresh) == 0


def test_ready_agents_get_calls_ahead_and_the_cap_holds() -> None:
    est = trained()
    n = decide(Snapshot(agents=[READY] * 10, calls_in_flight=[]), est)
    assert 10 < n <= 30  # more calls than agents (p ≈ 0.35), never above 3 per agent
    assert decide(Snapshot(agents=[READY] * 10, calls_in_flight=[0.5] * 29), est) <= 1
    assert decide(Snapshot(agents=[READY] * 10, calls_in_flight=[0.5] * 30), est) == 0


def test_all_agents_busy_just_started_places_nothing() -> None:
    assert decide(Snapshot(agents=[busy(1.0)] * 20, calls_in_flight=[]), trained()) == 0


def test_agents_long_in_their_call_are_expected_to_free_up() -> None:
    est = trained()
    fresh = decide(Snapshot(agents=[busy(5)] * 20, calls_in_flight=[]), est)
    old = decide(Snapshot(agents=[busy(250)] * 20, calls_in_flight=[]), est)
    assert old > fresh


def test_agents_busy_beyond_every_spell_seen_are_not_counted_on() -> None:
    """Early in a shift only short spells have ended: an agent busy longer than nearly every
    spell seen is expected to stay busy, not to be due any second."""
    est = trained()
    longest = est.busy_times[-1]
    assert decide(Snapshot(agents=[busy(longest + 1)] * 20, calls_in_flight=[]), est) == 0


def test_warm_up_lasts_two_finished_spells_per_agent() -> None:
    est = trained()  # 200 spells
    agents = [READY] * 10 + [busy(100)] * 90  # 100 agents: 200 spells are just enough
    assert decide(Snapshot(agents=agents, calls_in_flight=[]), est) > 10
    assert decide(Snapshot(agents=agents + [busy(100)], calls_in_flight=[]), est) == 10  # one more: progressive


def test_abandonment_near_the_target_makes_it_careful() -> None:
    est = trained()
    agents = [READY] * 5 + [busy(150)] * 15
    calm = decide(Snapshot(agents=agents, calls_in_flight=[], abandoned_today=0, live_today=400), est)
    hot = decide(Snapshot(agents=agents, calls_in_flight=[], abandoned_today=16, live_today=400), est)
    assert hot < calm
    month = decide(Snapshot(agents=agents, calls_in_flight=[], abandoned_30d=600, live_30d=15000), est)
    assert month < calm  # the 30-day (FCC) window counts too


def test_old_calls_in_flight_are_worth_less() -> None:
    est = trained()
    agents = [READY] * 6
    young = decide(Snapshot(agents=agents, calls_in_flight=[1.0] * 6), est)
    old = decide(Snapshot(agents=agents, calls_in_flight=[19.5] * 6), est)  # mostly no-answers by now
    assert old > young
    # answered calls ring at most 20 s: calls older than that are worth nothing
    assert decide(Snapshot(agents=agents, calls_in_flight=[30.0] * 6), est) == \
        decide(Snapshot(agents=agents, calls_in_flight=[]), est)


def test_config_target_zero_and_margin() -> None:
    assert pacing._margin(Snapshot(agents=[], calls_in_flight=[], abandoned_today=0, live_today=0), PacerConfig()) \
        == PacerConfig().base_z


def test_never_fewer_calls_than_ready_agents_without_a_call() -> None:
    """One call in flight per ready agent cannot be abandoned: however hot the day, the pacer
    keeps at least that (it is what lifts it above progressive for small teams)."""
    est = trained()
    agents = [READY] * 4 + [busy(20)] * 4
    hot = Snapshot(agents=agents, calls_in_flight=[3.0], abandoned_today=40, live_today=400)
    assert pacing._margin(hot, PacerConfig()) > 5  # careful: the margin alone would place nothing
    assert decide(hot, est) == 3  # 4 ready agents, 1 call in flight
    assert decide(Snapshot(agents=agents, calls_in_flight=[3.0] * 4, abandoned_today=40, live_today=400), est) == 0


def test_known_free_times_count_as_certain_supply() -> None:
    """An agent whose free time is known (the benchmark's oracle) counts fully once it is free
    and not before; ten seconds away it is worth more than a predicted one just started."""
    est = trained()
    soon = [AgentState("wrap", 15.0, free_in=1.0)] * 10
    late = [AgentState("busy", 1.0, free_in=300.0)] * 10
    assert decide(Snapshot(agents=soon, calls_in_flight=[]), est) > decide(Snapshot(agents=[busy(1.0)] * 10,
                                                                                  calls_in_flight=[]), est)
    assert decide(Snapshot(agents=late, calls_in_flight=[]), est) == 0


def test_answers_without_ring_times_stay_progressive() -> None:
    """Answers whose ringing was not seen carry no ring time: until 30 have one the pacer has no
    time-to-answer to look ahead with, and keeps one call per ready agent (it used to divide by
    the count of none)."""
    est = trained(rings=False)
    snap = Snapshot(agents=[READY] * 4 + [busy(30.0)] * 6, calls_in_flight=[1.0])
    assert not est.ready
    assert decide(snap, est) == 3
    for _ in range(30):
        est.observe_dial_end(True, 10.0)
    assert est.ready and decide(snap, est) >= 3
