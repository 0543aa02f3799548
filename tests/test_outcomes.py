"""The call state machine and the retry policy, event by event."""

from __future__ import annotations

import datetime as dt

import pytest

from dialer.cti import protocol as p
from dialer.outcomes import MAX_FREE_MISSES, CallTracker, Event, IllegalTransition, State, decide_retry
from dialer.window import CallingWindow

T0 = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.timezone.utc)  # Wednesday 10:00 in Beijing


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def run(*steps: tuple[float, p.Message | Event | str]) -> CallTracker:
    t = CallTracker(started=T0)
    for when, step in steps:
        if step == "hang_up":
            t.hang_up(Event.HANGUP, at(when))
        elif step == "shutdown":
            t.hang_up(Event.LOST, at(when))
        elif isinstance(step, Event):
            t.expire(step, at(when))
        else:
            t.feed(step, at(when))
    return t


UP = p.CallStatus("外呼振铃", "913800138000")
RING = p.OutboundRinging("13800138000", "c1")
ANSWER = p.OutboundAnswered("13800138000", "c1", "北京市", "北京市", "中国移动")
HANGUP = p.Hangup("c1")
BARE_HANGUP = p.Hangup("")


@pytest.mark.parametrize(("steps", "outcome"), [
    ([(1, UP), (2, RING), (8, ANSWER), (68, HANGUP)], "answered"),
    ([(2, RING), (8, ANSWER), (68, BARE_HANGUP)], "answered"),  # no agent-up event, no callid
    ([(8, ANSWER), (68, HANGUP)], "answered"),  # no ringing either
    ([(1, UP), (2, RING), (6, HANGUP)], "busy"),
    ([(1, UP), (2, RING), (27, "hang_up"), (27.2, HANGUP)], "no_answer"),
    ([(1, UP), (2, RING), (27, "hang_up"), (37, Event.HANGUP_TIMEOUT)], "no_answer"),
    ([(1, UP), (1.5, HANGUP)], "failed"),
    ([(0.1, p.CommandResponse("dial", False, "分机未注册"))], "failed"),
    ([(30, "hang_up"), (30.1, BARE_HANGUP)], "agent_no_answer"),
    ([(5, BARE_HANGUP)], "agent_no_answer"),
    ([(1, UP), (21, "hang_up"), (21.1, HANGUP)], "timeout"),
    ([(1, UP), (2, RING), (3, Event.LOST)], "interrupted"),
    ([(1, UP), (2, RING), (3, "shutdown"), (3.1, HANGUP)], "interrupted"),
    ([(1, UP), (2, RING), (8, ANSWER), (9, "shutdown"), (9.1, HANGUP)], "answered"),
    ([(1, UP), (3, "hang_up"), (13, Event.HANGUP_TIMEOUT)], "timeout"),
    # a conversation we lost sight of (the socket, the worker): answered, never redialled
    ([(1, UP), (2, RING), (8, ANSWER), (30, Event.LOST)], "answered"),
    # the customer picks up as our hangup at the ring timeout goes out: no conversation
    ([(1, UP), (2, RING), (27, "hang_up"), (27.01, ANSWER), (27.2, HANGUP)], "no_answer"),
])
def test_outcomes(steps, outcome: str) -> None:
    t = run(*steps)
    assert t.state is State.ENDED and t.outcome == outcome, t.history


def test_an_answer_after_our_hangup_is_no_conversation() -> None:
    t = run((1, UP), (2, RING), (27, "hang_up"), (27.01, ANSWER), (27.2, HANGUP))
    assert t.answered_at is None and t.talk_seconds is None and "answered as we hung up" in t.detail


def test_a_conversation_lost_from_sight_has_no_talk_time() -> None:
    t = run((1, UP), (2, RING), (8, ANSWER), (30, Event.LOST))
    assert t.outcome == "answered" and t.talk_seconds is None and t.ring_seconds == 6.0


def test_times_and_attribution() -> None:
    t = run((1, UP), (2, RING), (2.5, RING), (8, ANSWER), (68, HANGUP))
    assert (t.agent_up_at, t.ringing_at, t.answered_at, t.ended_at) == (at(1), at(2), at(8), at(68))
    assert (t.ring_seconds, t.talk_seconds, t.callid) == (6.0, 60.0, "c1")
    assert (t.province, t.city, t.isp) == ("北京市", "北京市", "中国移动")
    assert "ignored ringing in ringing" in t.history  # the repeated ringing kept its first time


def test_out_of_order_and_stale_events_are_ignored() -> None:
    t = run((1, UP), (2, RING), (8, ANSWER), (9, RING), (10, p.Hangup("another-call")))
    assert t.state is State.TALKING and t.ringing_at == at(2)
    assert t.feed(p.StatusChanged(call="呼入振铃"), at(11)) is False  # status after the answer
    t.feed(HANGUP, at(70))
    assert t.outcome == "answered" and t.feed(HANGUP, at(71)) is False


def test_agent_up_needs_a_state_other_than_the_extension_ringing() -> None:
    t = run((0.1, p.CallStatus("呼入振铃", "9138")), (0.2, p.StatusChanged(call="空闲")))
    assert t.state is State.DIALLING
    t.feed(p.StatusChanged(call="外呼彩铃"), at(1))
    assert t.state is State.AGENT_UP


def test_outcome_of_a_call_in_progress_is_an_error() -> None:
    with pytest.raises(IllegalTransition, match="not possible in state ringing"):
        _ = run((2, RING)).outcome


WINDOW = CallingWindow("09:00", "20:00", "mon,tue,wed,thu,fri", "Asia/Shanghai")
DELAYS = {"no_answer": 3600, "busy": 600, "agent_no_answer": 0, "interrupted": 300}


def retry(outcome: str, attempts: int = 0, misses: int = 0, now: dt.datetime = T0, max_attempts: int = 3):
    return decide_retry(outcome, attempts=attempts, free_misses=misses, max_attempts=max_attempts,
                        delays=DELAYS, window=WINDOW, now=now)


def test_retry_policy() -> None:
    assert retry("answered", attempts=1).status == "done"
    r = retry("no_answer")
    assert (r.status, r.attempts, r.next_attempt_at, r.spent) == ("pending", 1, at(3600), True)
    assert retry("busy", attempts=2).status == "exhausted"  # the third spent attempt
    r = retry("agent_no_answer")
    assert (r.status, r.attempts, r.free_misses, r.next_attempt_at, r.spent) == ("pending", 0, 1, T0, False)
    r = retry("agent_no_answer", misses=MAX_FREE_MISSES)  # a number that always dies before ringing
    assert (r.attempts, r.free_misses, r.spent) == (1, MAX_FREE_MISSES + 1, True)
    assert retry("busy", misses=MAX_FREE_MISSES + 1).free_misses == 0  # reaching the number resets it
    assert retry("agent_no_answer", attempts=2, misses=MAX_FREE_MISSES).status == "exhausted"
    assert retry("interrupted").next_attempt_at == at(300)


def test_retry_never_lands_outside_the_window() -> None:
    evening = dt.datetime(2026, 11, 27, 11, 30, tzinfo=dt.timezone.utc)  # Friday 19:30 in Beijing
    r = retry("no_answer", now=evening)
    assert r.next_attempt_at == dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.timezone.utc)  # Monday 09:00
