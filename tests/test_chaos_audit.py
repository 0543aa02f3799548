"""The chaos benchmark's audit (benchmarks/chaos_audit.py), on records made up to show each
count: a count that stayed 0 whatever happened would let a chaos run pass that should not."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from chaos_audit import DbAttempt, DbContact, SimCall, audit  # noqa: E402


def test_a_clean_run_counts_nothing_against_it() -> None:
    calls = [SimCall("c1", "+8613800000001", 0.0, 10.0, True), SimCall("c2", "+8613800000002", 1.0, 5.0, False)]
    attempts = [DbAttempt(1, "+8613800000001", "c1", "answered", True),
                DbAttempt(2, "+8613800000002", "c2", "no_answer", True)]
    contacts = [DbContact("+8613800000001", "done", 1), DbContact("+8613800000002", "pending", 1)]
    r = audit(calls, attempts, contacts, 3)
    assert {k: r[k] for k in ("double_dials", "answered_unrecorded", "answered_otherwise", "redialled_after_answer",
                              "open_attempts", "duplicate_attempts", "inconsistent_contacts")} == dict.fromkeys(
        ("double_dials", "answered_unrecorded", "answered_otherwise", "redialled_after_answer", "open_attempts",
         "duplicate_attempts", "inconsistent_contacts"), 0)
    assert r["never_dialled"] == {}


def test_each_fault_is_counted() -> None:
    n = "+8613800000001"
    calls = [SimCall("c1", n, 0.0, 10.0, True),
             SimCall("c2", n, 5.0, 12.0, True),  # while c1 is up: a double dial, and a redial after an answer
             SimCall("c3", "+8613800000003", 0.0, 3.0, True)]  # answered, no attempt
    attempts = [DbAttempt(1, n, "c1", "interrupted", True),  # answered, recorded otherwise
                DbAttempt(2, n, "c2", "answered", True),
                DbAttempt(3, n, "c2", None, False),  # a second attempt of c2, left open
                DbAttempt(4, "+8613800000004", "", "interrupted", True, detail="no call followed it")]
    contacts = [DbContact(n, "pending", 0)]
    r = audit(calls, attempts, contacts, 3)
    assert r["double_dials"] == 1
    assert r["redialled_after_answer"] == 1
    assert r["answered_unrecorded"] == 1
    assert r["answered_otherwise"] == 1  # c1 (c2 has an answered attempt beside its open one)
    assert r["open_attempts"] == 1
    assert r["duplicate_attempts"] == 1
    assert r["inconsistent_contacts"] == 1
    assert r["never_dialled"] == {"no call followed it": 1}
