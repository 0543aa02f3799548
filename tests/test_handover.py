"""The predictive hand-over table (dialer/handover.py), move by move: no worker, no sockets."""

from __future__ import annotations

import datetime as dt

import pytest

from dialer.handover import (
    ABANDON_AFTER, TRANSITIONS, IllegalHandover, Move, Phase, outcome_of, pickup_allowance, step, wait_left,
)

T0 = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.timezone.utc)


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def walk(*moves: Move, phase: Phase = Phase.DIALLING) -> Phase:
    for m in moves:
        phase = step(phase, m)
    return phase


@pytest.mark.parametrize(("moves", "end"), [
    ((Move.AGENT_FREE, Move.AGENT_ANSWERED, Move.PORT_LEG_GONE, Move.AGENT_LEG_OVER), Phase.ENDED),
    ((Move.AGENT_FREE, Move.PORT_LEG_GONE, Move.AGENT_ANSWERED, Move.AGENT_LEG_OVER), Phase.ENDED),
    ((Move.NO_AGENT, Move.AGENT_FREE, Move.TRANSFER_REFUSED, Move.DEADLINE), Phase.IVR),
    ((Move.NO_AGENT, Move.DEADLINE, Move.PORT_LEG_GONE), Phase.IVR),
    ((Move.NO_AGENT, Move.PORT_LEG_GONE), Phase.ENDED),
    ((Move.AGENT_FREE, Move.HANDOVER_TIMEOUT), Phase.ENDED),
])
def test_paths(moves, end) -> None:
    assert walk(*moves) is end


@pytest.mark.parametrize(("phase", "move"), [
    (Phase.DIALLING, Move.DEADLINE), (Phase.WAITING, Move.AGENT_ANSWERED), (Phase.IVR, Move.AGENT_FREE),
    (Phase.ENDED, Move.PORT_LEG_GONE), (Phase.HANDED, Move.TRANSFER_REFUSED), (Phase.WAITING, Move.NO_AGENT),
])
def test_an_illegal_move_names_the_phase_and_the_move(phase, move) -> None:
    with pytest.raises(IllegalHandover, match=f"{move.value}.*{phase.value}"):
        step(phase, move)


def test_ended_accepts_nothing_and_every_phase_has_a_row() -> None:
    assert set(TRANSITIONS) == set(Phase) and TRANSITIONS[Phase.ENDED] == {}


@pytest.mark.parametrize(("phase", "move", "bridged", "outcome"), [
    (Phase.WAITING, Move.DEADLINE, None, "abandoned"),
    (Phase.WAITING, Move.PORT_LEG_GONE, None, "abandoned"),  # the customer hung up waiting
    (Phase.TRANSFERRING, Move.AGENT_LEG_OVER, None, "abandoned"),  # the agent never picked up
    (Phase.HANDED, Move.AGENT_LEG_OVER, 1.5, "answered"),
    (Phase.HANDED, Move.AGENT_LEG_OVER, ABANDON_AFTER, "answered"),  # exactly 2 s: in time
    (Phase.HANDED, Move.AGENT_LEG_OVER, 2.01, "answered_late"),  # counted as abandoned
    (Phase.TRANSFERRING, Move.HANDOVER_TIMEOUT, None, "abandoned"),
    (Phase.HANDED, Move.HANDOVER_TIMEOUT, 1.0, None),  # bridged: the agent's hangup records it
    (Phase.TRANSFERRING, Move.PORT_LEG_GONE, None, None),
    (Phase.TRANSFERRING, Move.TRANSFER_REFUSED, None, None),
    (Phase.IVR, Move.PORT_LEG_GONE, None, None),  # recorded when it was sent there
])
def test_what_each_move_records(phase, move, bridged, outcome) -> None:
    got = outcome_of(phase, move, answered_at=T0, bridged_at=at(bridged) if bridged is not None else None)
    assert (got[0] if got else None) == outcome


def test_a_late_bridge_says_how_late() -> None:
    assert outcome_of(Phase.HANDED, Move.AGENT_LEG_OVER, answered_at=T0, bridged_at=at(2.4)) == (
        "answered_late", "bridged 2.4 s after the answer")


def test_the_wait_counts_the_time_spent_the_pickup_and_the_lag() -> None:
    assert wait_left(T0, T0, 0.3) == pytest.approx(1.7)
    assert wait_left(T0, at(1.0), 0.3) == pytest.approx(0.7)  # a refused transfer: what is left
    assert wait_left(T0, at(1.0), 0.3, lag=0.2) == pytest.approx(0.5)
    assert wait_left(T0, at(1.9), 0.3) < 0  # nothing left: straight to the message


def test_pickup_allowance() -> None:
    assert pickup_allowance([0.1] * 19) == 0.3  # too few seen
    assert pickup_allowance([0.5] * 18 + [0.2, 0.3]) == 0.3  # the 10th percentile
    assert pickup_allowance([5.0] * 30) == 1.9 and pickup_allowance([0.0] * 30) == 0.1
