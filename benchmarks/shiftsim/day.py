"""The workload through the day: the live answer rate and the talk mean as schedules of the
shift's hours (a step at an hour, a drift by hour of day), read by the simulation each minute."""

from __future__ import annotations

import argparse
import bisect

Knots = list[tuple[float, float]]  # (seconds into the shift, value), in time order; a repeated time is a step

#: how often a drifting value is read again (seconds)
RETUNE_EVERY = 60.0


def value_at(knots: Knots, t: float) -> float:
    """The schedule's value at `t`: linear between knots, the last value after a step, the
    first before the first knot and the last after the last."""
    times = [k for k, _ in knots]
    i = bisect.bisect_right(times, t)
    if i == 0:
        return knots[0][1]
    if i == len(knots):
        return knots[-1][1]
    (t0, v0), (t1, v1) = knots[i - 1], knots[i]
    return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1


def retune_times(schedules: dict[str, Knots], shift: float) -> list[float]:
    """When the simulation must read the schedules again: at each knot, and every
    `RETUNE_EVERY` seconds while a value drifts."""
    times: set[float] = set()
    for knots in schedules.values():
        for (t0, v0), (t1, v1) in zip(knots, knots[1:]):
            if 0 < t0 <= shift:
                times.add(t0)
            if v0 != v1 and t1 > t0:
                t = t0 + RETUNE_EVERY
                while t < min(t1, shift):
                    times.add(t)
                    t += RETUNE_EVERY
        if 0 < knots[-1][0] <= shift:
            times.add(knots[-1][0])
    return sorted(times)


def step(text: str) -> tuple[float, float]:
    """HOURS:VALUE, e.g. 4:0.35 (from hour 4 on, 0.35)."""
    hours, _, value = text.partition(":")
    try:
        pair = (float(hours) * 3600, float(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HOURS:VALUE, e.g. 4:0.35, got {text!r}") from None
    if pair[0] < 0:
        raise argparse.ArgumentTypeError(f"expected HOURS ≥ 0, got {text!r}")
    return pair


def by_hour(text: str) -> Knots:
    """V0,V1,…: the value at hour 0, 1, …, linear in between."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated values by hour, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one value")
    return [(i * 3600.0, v) for i, v in enumerate(values)]


def schedule(base: float, step_at: tuple[float, float] | None, hourly: Knots | None) -> Knots | None:
    """The knots of one value from its flags (None: constant)."""
    if step_at is not None and hourly is not None:
        raise argparse.ArgumentTypeError("give a step or values by hour, not both")
    if step_at is not None:
        return [(0.0, base), (step_at[0], base), (step_at[0], step_at[1])]
    return hourly
