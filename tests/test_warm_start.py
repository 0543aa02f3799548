"""A worker paces from the campaign's recorded day: the warm start reads the recent attempts and
seat events (dialer/store/history.py), and every worker reads the others' abandonment within
seconds (dialer/worker/pace.py) — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

from sqlalchemy import insert
from sqlalchemy.orm import Session

from dialer import pacing
from dialer.store import abandonment, history, repo
from dialer.store.models import Attempt, Contact, SeatEvent
from tests.test_predictive import NODE, PORTS, SCALE, run_worker, setup_predictive, start_sim
from tests.test_worker_e2e import WED_10

NOW = WED_10
S = dt.timedelta(seconds=1)


def campaign(engine, name: str = "c") -> tuple[int, int]:
    with Session(engine) as s, s.begin():
        c = repo.create_campaign(s, name, queue="kefu", mode="predictive", abandon_ivr=NODE)
        contact = Contact(campaign_id=c.id, phone=f"+86138001380{len(name):02d}", kind="mobile")
        s.add(contact)
        s.flush()
        return c.id, contact.id


def attempt(cid: int, contact: int, at: dt.datetime, outcome: str, ring: float | None = None, *,
            answered: bool = False, ended: bool = True, no: int = 1, lasted: float = 30.0) -> dict:
    return {"campaign_id": cid, "contact_id": contact, "attempt_no": no, "outcome": outcome, "created_at": at,
            "ended_at": at + lasted * S if ended else None, "ring_seconds": ring,
            "answered_at": at + dt.timedelta(seconds=ring or 0) if answered else None}


def event(ext: str, at: dt.datetime, state: str, queue: str = "kefu", role: str = "agent", worker: str = "w0",
          session: int = 0) -> dict:
    return {"extension": ext, "at": at, "state": state, "queue": queue, "role": role, "worker_id": worker,
            "session": session}


def test_recent_history_reads_dials_in_the_order_placed_and_whole_spells(engine) -> None:
    cid, contact = campaign(engine)
    other, other_contact = campaign(engine, "other")
    t = NOW - dt.timedelta(minutes=50)
    rows = [attempt(cid, contact, t + 20 * S, "no_answer", no=2, lasted=25),  # placed after the next one, ends first
            attempt(cid, contact, t, "answered", 7.5, answered=True, lasted=200),
            attempt(cid, contact, t + 40 * S, "abandoned", 12.0, answered=True, no=3),
            attempt(cid, contact, t + 60 * S, "busy", 3.0, no=4),  # rang, never answered: no ring time
            attempt(cid, contact, t + 80 * S, "interrupted", no=5),  # the worker learnt nothing from it
            attempt(cid, contact, t + 82 * S, "agent_no_answer", no=8),  # nor from a port leg that failed
            attempt(cid, contact, t + 84 * S, "agent_no_answer", 6.0, answered=True, no=9),  # but this answered
            attempt(cid, contact, t + 90 * S, None, ended=False, no=6),  # still up
            attempt(cid, contact, NOW - dt.timedelta(minutes=70), "answered", 9.0, answered=True, no=7),  # too old
            attempt(other, other_contact, t, "answered", 5.0, answered=True)]  # another campaign
    events = [event("601", t, "talking"), event("601", t + 100 * S, "wrap"), event("601", t + 120 * S, "ready"),
              event("602", t + 5 * S, "talking"), event("602", t + 11 * S, "ready"),  # no after-call work
              event("603", t, "talking"), event("603", t + 50 * S, "lost"),  # broken: left out
              event("604", NOW - 5 * S * 60, "talking"), event("604", NOW - 4 * S * 60, "ready"),  # too recent
              event("605", t, "talking", queue="other"), event("605", t + 9 * S, "ready", queue="other"),
              event("801", t, "talking", role="port"), event("801", t + 9 * S, "ready", role="port"),
              # the worker died mid-call: the seat's next event is another worker's new login
              event("606", t, "talking"), event("606", t + 300 * S, "ready", worker="w1", session=1),
              event("607", t, "talking"), event("607", t + 20 * S, "ready", session=1),  # a new session
              event("608", t, "talking"), event("608", t + 3700 * S, "ready")]  # past the longest spell read
    with engine.begin() as conn:
        conn.execute(insert(Attempt), rows)
        conn.execute(insert(SeatEvent), events)
    got = history.recent_history(engine, [cid], "kefu", NOW)
    assert got.dials == [(True, 7.5), (False, None), (True, 12.0), (False, None), (True, 6.0)]
    assert got.talks == [(100.0, True), (6.0, False)]
    assert got.wraps == [20.0]
    assert got.spells == [120.0, 6.0]
    assert history.recent_history(engine, [], "nobody", NOW) == pacing.History()


def test_a_day_with_no_record_yet_reads_the_same_hours_of_the_days_before(engine) -> None:
    cid, contact = campaign(engine)
    day = dt.timedelta(days=1)
    rows = [attempt(cid, contact, NOW - day - dt.timedelta(minutes=30) + k * S, "answered", 6.0, answered=True, no=k)
            for k in range(40)]  # yesterday at this hour
    rows.append(attempt(cid, contact, NOW - day - dt.timedelta(hours=3), "answered", 8.0, answered=True, no=99))
    rows.append(attempt(cid, contact, NOW - dt.timedelta(minutes=10), "no_answer", no=100))  # today's one
    with engine.begin() as conn:
        conn.execute(insert(Attempt), rows)
    got = history.recent_history(engine, [cid], "kefu", NOW)
    assert got.dials == [(True, 6.0)] * 40 + [(False, None)]  # oldest first, today last; 3 h before left out
    # with enough answers today, only today's hour
    with engine.begin() as conn:
        conn.execute(insert(Attempt), [attempt(cid, contact, NOW - dt.timedelta(minutes=20) + k * S, "answered", 4.0,
                                               answered=True, no=200 + k) for k in range(30)])
    assert len(history.recent_history(engine, [cid], "kefu", NOW).dials) == 31


def test_abandon_counts_split_at_an_edge_add_up(engine) -> None:
    cid, contact = campaign(engine)
    rng = random.Random(1)
    outcomes = ["answered", "abandoned", "answered_late", "no_answer"]
    with engine.begin() as conn:
        conn.execute(insert(Attempt), [attempt(cid, contact, NOW - dt.timedelta(minutes=rng.randrange(1, 3000)),
                                               rng.choice(outcomes), no=k) for k in range(300)])
    edge = NOW - dt.timedelta(minutes=10)
    whole = abandonment.abandon_counts(engine, [cid], NOW)[cid]
    before = abandonment.abandon_counts(engine, [cid], NOW, end=edge)[cid]
    after = abandonment.abandon_counts(engine, [cid], NOW, start=edge)[cid]
    assert whole.live_30d > after.live_30d > 0 and whole.live_day > 0
    # an answer still on the line: live for the worker's recent read only
    with engine.begin() as conn:
        conn.execute(insert(Attempt), [attempt(cid, contact, NOW - 2 * S * 60, None, 5.0, answered=True, ended=False,
                                               no=999)])
    assert abandonment.abandon_counts(engine, [cid], NOW, start=edge)[cid] == after
    counting = abandonment.abandon_counts(engine, [cid], NOW, start=edge, in_progress=True)[cid]
    assert (counting.live_day, counting.live_30d, counting.abandoned_day) == (
        after.live_day + 1, after.live_30d + 1, after.abandoned_day)
    assert whole == abandonment.AbandonCounts(*(b + a for b, a in zip(
        (before.abandoned_day, before.live_day, before.abandoned_30d, before.live_30d),
        (after.abandoned_day, after.live_day, after.abandoned_30d, after.live_30d))))


def recorded_day(engine, cid: int, contact: int, start: dt.datetime, p: float = 0.4) -> None:
    """An hour of another worker's predictive dials and its agents' spells before `start`."""
    rng = random.Random(2)
    rows, events = [], []
    for k in range(600):
        at = start - dt.timedelta(minutes=55) + k * 5 * S
        answered = rng.random() < p
        rows.append(attempt(cid, contact, at, "answered" if answered else "no_answer",
                            rng.uniform(4, 20) if answered else None, answered=answered, no=k))
    for k in range(80):
        at = start - dt.timedelta(minutes=55) + k * 30 * S
        ext = f"7{k % 10:02d}"
        talk = rng.lognormvariate(4.5, 0.6)
        events += [event(ext, at, "talking"), event(ext, at + talk * S, "wrap"), event(ext, at + (talk + 20) * S, "ready")]
    with engine.begin() as conn:
        conn.execute(insert(Attempt), rows)
        conn.execute(insert(SeatEvent), events)


async def test_a_worker_started_mid_day_paces_from_the_campaigns_record(engine) -> None:
    """The first decision of a worker started on a campaign with an hour of record is made on
    estimates already ready, with that hour's answer rate: not progressive for the first
    quarter of an hour."""
    sim = await start_sim({"agents": [{"extension": "601"}, *PORTS]})
    setup_predictive(engine, ["13800138000"], ["601"], ["801"])
    with Session(engine) as s:
        cid = repo.get_campaign(s, "c").id
        contact = s.query(Contact).first().id
    recorded_day(engine, cid, contact, WED_10)
    seen: list[tuple[bool, float, int]] = []

    def pacer(snap: pacing.Snapshot, est: pacing.Estimates, cfg: pacing.PacerConfig) -> int:
        seen.append((est.ready, est.p_answer, est.spells_seen))
        return 0

    try:
        await run_worker(engine, sim, seconds=40 * SCALE, pacer=pacer)
    finally:
        await sim.stop()
    assert seen, "the pacer was never asked"
    ready, p, spells = seen[0]
    assert ready and abs(p - 0.4) < 0.06 and spells == 80


async def test_a_worker_reads_the_other_workers_abandonment_within_seconds(engine) -> None:
    """Calls another worker abandons reach this worker's pacer within `counts_every` (5 s), not
    at the next full read a minute later: two workers steer on one rate. At time scale 0.1 the
    minute is 6 s of real time and the test waits 3."""
    scale = 0.1
    sim = await start_sim({"agents": [{"extension": "601"}, *PORTS]}, scale)
    setup_predictive(engine, ["13800138000"], ["601"], ["801"])
    with Session(engine) as s:
        cid = repo.get_campaign(s, "c").id
        contact = s.query(Contact).first().id
    seen: list[int] = []

    def pacer(snap: pacing.Snapshot, est: pacing.Estimates, cfg: pacing.PacerConfig) -> int:
        seen.append(snap.abandoned_today)
        return 0

    async def other_worker_abandons() -> None:
        await asyncio.sleep(1.0)  # 10 simulated seconds in: well after the worker's first full read
        with engine.begin() as conn:
            conn.execute(insert(Attempt), [attempt(cid, contact, WED_10 + 5 * S, "abandoned", 8.0, answered=True,
                                                   no=k) for k in range(7)])

    try:
        await asyncio.gather(run_worker(engine, sim, seconds=4.0, scale=scale, pacer=pacer), other_worker_abandons())
    finally:
        await sim.stop()
    assert seen and seen[0] == 0 and seen[-1] == 7, seen[:3] + seen[-3:]
