"""The audit of a chaos run: what the simulator saw (its own call records) against what the
database says. Pure: records in, counts out.

* `double_dials`: numbers in two calls at once at the simulator.
* `answered_unrecorded`: calls the simulator saw answered with no attempt of that call id.
* `answered_otherwise`: answered calls whose attempt has another outcome than answered.
* `redialled_after_answer`: calls placed to a number after it had answered.
* `open_attempts`: attempts never closed.
* `duplicate_attempts`: call ids with more than one attempt.
* `inconsistent_contacts`: contacts whose status and attempt count differ from a replay of the
  retry policy over their attempts' outcomes.
* `calls_without_attempt`: calls whose id no attempt carries (a worker killed before it wrote
  the call id; informative: the attempt is then closed without it).
* `never_dialled`: attempts with no call id, by their detail (informative: a claim that was not
  dialled — the seat changed, the worker stopped, the claim's reply was lost in an outage).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

FINAL = {"answered", "answered_late"}


@dataclass(frozen=True)
class SimCall:
    callid: str
    e164: str
    created: float
    ended: float
    answered: bool
    end: str = ""  # why it ended (the simulator's word: server_stopped when the server went down)


@dataclass(frozen=True)
class DbAttempt:
    id: int
    phone: str
    callid: str
    outcome: str | None
    ended: bool
    worker_id: str = ""
    detail: str = ""


@dataclass(frozen=True)
class DbContact:
    phone: str
    status: str
    attempts: int


def audit(calls: Sequence[SimCall], attempts: Sequence[DbAttempt], contacts: Iterable[DbContact],
          max_attempts: int) -> dict[str, Any]:
    """Calls the CTI server itself dropped (it went down) are no conversation the worker could
    keep: they are counted apart (`dropped_by_server`), not against the answered-call checks."""
    by_number: dict[str, list[SimCall]] = defaultdict(list)
    for c in calls:
        by_number[c.e164].append(c)
    dropped = {c.callid for c in calls if c.end == "server_stopped"}
    double = 0
    redialled = 0
    for items in by_number.values():
        items.sort(key=lambda c: c.created)
        if any(b.created < a.ended - 1e-3 for a, b in zip(items, items[1:])):
            double += 1
        first_answer = next((c for c in items if c.answered and c.callid not in dropped), None)
        if first_answer is not None:
            redialled += sum(1 for c in items if c.created > first_answer.created)
    by_callid: dict[str, list[DbAttempt]] = defaultdict(list)
    for a in attempts:
        if a.callid:
            by_callid[a.callid].append(a)
    unrecorded = otherwise = 0
    for c in calls:
        rows = by_callid.get(c.callid, [])
        if c.callid in dropped:
            continue
        if c.answered and not rows:
            unrecorded += 1
        elif c.answered and not any(r.outcome in FINAL for r in rows):
            otherwise += 1
    known = {c.callid for c in calls}
    per_phone: dict[str, list[DbAttempt]] = defaultdict(list)
    for a in sorted(attempts, key=lambda a: a.id):
        per_phone[a.phone].append(a)
    inconsistent = [c.phone for c in contacts
                    if replay([a.outcome or "" for a in per_phone.get(c.phone, [])], max_attempts) != (c.status, c.attempts)]
    return {
        "calls": len(calls), "answered_calls": sum(1 for c in calls if c.answered), "attempts": len(attempts),
        "double_dials": double,
        "answered_unrecorded": unrecorded, "answered_otherwise": otherwise,
        "redialled_after_answer": redialled,
        "open_attempts": sum(1 for a in attempts if not a.ended),
        "duplicate_attempts": sum(1 for rows in by_callid.values() if len(rows) > 1),
        "inconsistent_contacts": len(inconsistent),
        "calls_without_attempt": sum(1 for c in calls if c.callid not in by_callid),
        "dropped_by_server": len(dropped),
        "attempts_without_call": sum(1 for a in attempts if a.callid and a.callid not in known),
        "outcomes": dict(sorted(_count(a.outcome or "open" for a in attempts).items())),
        # attempts that never reached the server (no call id), by why: a claim the worker could
        # not dial (the seat changed, the worker stopped, the dial was refused)
        "never_dialled": dict(sorted(_count(a.detail or a.outcome or "open" for a in attempts
                                            if not a.callid).items())),
    }


def replay(outcomes: Sequence[str], max_attempts: int) -> tuple[str, int]:
    """A contact's (status, attempts) after these outcomes, by the worker's own retry policy."""
    import datetime as dt

    from dialer.outcomes import decide_retry
    from dialer.window import CallingWindow

    window = CallingWindow("00:00", "24:00", "mon,tue,wed,thu,fri,sat,sun")
    now = dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc)
    status, spent, misses = "pending", 0, 0
    for outcome in outcomes:
        if not outcome:
            continue
        r = decide_retry(outcome, attempts=spent, free_misses=misses, max_attempts=max_attempts,  # type: ignore[arg-type]
                         delays={}, window=window, now=now)
        status, spent, misses = r.status, r.attempts, r.free_misses
    return status, spent


def _count(items: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for x in items:
        out[x] += 1
    return dict(out)
