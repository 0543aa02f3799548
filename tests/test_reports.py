"""Every report figure against values worked out by hand on a fixed set of attempts and seat
events, on SQLite and PostgreSQL (the `engine` fixture).

The history (campaign `c` is in Asia/Shanghai, UTC+8; `ny` in America/New_York, whose clocks
go forward at 02:00 on 2026-03-08; now is 2026-03-08 13:30 UTC):

    #  contact pass  started (UTC)          local day  outcome          ring  talk  seat/agent
    1  k1      1     2026-03-05 15:59:59    03-05      answered         10    100   6001
    2  k2      1     2026-03-05 16:00:00    03-06      abandoned         5          7001 (port), IVR
    3  k3      1     2026-03-06 02:00       03-06      no_answer        30          6002
    4  k2      2     2026-03-07 01:00       03-07      answered_late     4     50   7001 → 6002
    5  k3      2     2026-03-07 03:00       03-07      answered          8     60   6002
    6  k4      1     2026-03-07 04:00       03-07      busy                         6001
    7  k5      1     2026-03-07 05:00       03-07      (open)                       6002
    8  k4      2     2026-03-07 06:00       03-07      agent_no_answer   6          7001 → 6001

k6 has its own timezone (America/New_York) and is due: at 13:30 UTC it is 09:30 there under
daylight time (08:30 had the change been missed), inside a 09:00-20:00 window; in Shanghai it is
21:30, outside it — so exactly one contact is dialable now.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy.orm import Session

from dialer.reports import report, stream_attempts
from dialer.reports.common import UnknownCampaign
from dialer.reports.status import status
from dialer.store.models import Agent, Attempt, Campaign, Contact, SeatEvent, Worker, WorkerStatus

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 8, 13, 30, tzinfo=UTC)


def t(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC)


@pytest.fixture
def history(engine):
    with Session(engine) as s, s.begin():
        c = Campaign(name="c", queue="q", mode="predictive", status="active", timezone="Asia/Shanghai",
                     window_start="09:00", window_end="20:00", days="mon,tue,wed,thu,fri,sat,sun",
                     contact_timezones=["America/New_York"], abandon_target=0.03, abandon_ivr="9")
        ny = Campaign(name="ny", queue="nyq", status="paused", timezone="America/New_York")
        empty = Campaign(name="empty", queue="q", status="draft")
        s.add_all([c, ny, empty])
        s.flush()
        statuses = {"k1": "done", "k2": "done", "k3": "done", "k4": "pending", "k5": "pending", "k6": "pending"}
        k = {}
        for i, (name, st) in enumerate(statuses.items(), 1):
            k[name] = Contact(campaign_id=c.id, phone=f"+8613800000{i:03d}", kind="mobile", status=st,
                              next_attempt_at=t("2026-03-01T00:00"),
                              timezone="America/New_York" if name == "k6" else None)
        for i in range(4):
            k[f"n{i}"] = Contact(campaign_id=ny.id, phone=f"+12125550{i:03d}", kind="international",
                                 status="done")
        s.add_all(k.values())
        s.flush()

        def a(contact, no, started, outcome, ring=None, talk=None, seat="6001", agent="", detail="", camp=c):
            s.add(Attempt(campaign_id=camp.id, contact_id=k[contact].id, attempt_no=no, created_at=t(started),
                          ended_at=None if outcome is None else t(started) + dt.timedelta(minutes=5),
                          outcome=outcome, ring_seconds=ring, talk_seconds=talk, seat=seat, agent_extension=agent,
                          detail=detail, worker_id="w1"))

        a("k1", 1, "2026-03-05T15:59:59", "answered", 10, 100)
        a("k2", 1, "2026-03-05T16:00:00", "abandoned", 5, seat="7001", detail="no agent in 2 s: sent to IVR node 9")
        a("k3", 1, "2026-03-06T02:00", "no_answer", 30, seat="6002")
        a("k2", 2, "2026-03-07T01:00", "answered_late", 4, 50, seat="7001", agent="6002")
        a("k3", 2, "2026-03-07T03:00", "answered", 8, 60, seat="6002")
        a("k4", 1, "2026-03-07T04:00", "busy")
        a("k5", 1, "2026-03-07T05:00", None, seat="6002")
        a("k4", 2, "2026-03-07T06:00", "agent_no_answer", 6, seat="7001", agent="6001")
        # New York: a day boundary on each side of the change to daylight time
        a("n0", 1, "2026-03-08T04:59", "answered", 3, 10, camp=ny)  # 03-07 23:59 EST
        a("n1", 1, "2026-03-08T05:00", "answered", 3, 10, camp=ny)  # 03-08 00:00 EST
        a("n2", 1, "2026-03-09T03:59", "answered", 3, 10, camp=ny)  # 03-08 23:59 EDT
        a("n3", 1, "2026-03-09T04:00", "answered", 3, 10, camp=ny)  # 03-09 00:00 EDT

        s.add_all([Agent(staffid="A1", name="王芳", extension="6001", queue="q"),
                   Agent(staffid="A2", name="李强", extension="6002", queue="q"),
                   Agent(staffid="P1", name="port", extension="7001", queue="q", role="port")])

        def ev(ext, at, state, session=0, reason="", worker="w1", role="agent"):
            s.add(SeatEvent(at=t(at), worker_id=worker, extension=ext, queue="q", role=role, state=state,
                            reason=reason, session=session))

        ev("6001", "2026-03-07T00:00", "ready", 1)
        ev("6001", "2026-03-07T00:30", "talking")
        ev("6001", "2026-03-07T00:40", "wrap")
        ev("6001", "2026-03-07T00:45", "busy", reason="午餐")
        ev("6001", "2026-03-07T01:00", "ready")
        ev("6001", "2026-03-07T02:00", "logged_out", -1)
        ev("6002", "2026-03-07T01:00", "ready", 1, worker="w2")
        ev("6002", "2026-03-07T02:00", "talking", worker="w2")  # w2 then died: last heard of at 02:30
        ev("7001", "2026-03-07T00:00", "ready", 1, role="port")
        s.add(WorkerStatus(worker_id="w2", host="h2", pid=2, started_at=t("2026-03-07T00:59"),
                           at=t("2026-03-07T02:30"), stopped=False, body={}))
    return engine


def one(rows, **match):
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, rows)
    return found[0]


def test_summary_by_hand(history) -> None:
    rows = report(history, "summary", now=NOW)
    assert [r["campaign"] for r in rows] == ["c", "empty", "ny"]
    c = rows[0]
    assert {k: c[k] for k in ("contacts", "pending", "done", "exhausted", "dialable", "dialled", "penetration")} == {
        "contacts": 6, "pending": 3, "done": 3, "exhausted": 0, "dialable": 1, "dialled": 5, "penetration": 0.8333}
    assert {k: c[k] for k in ("attempts", "in_progress", "live_answers", "answer_rate", "contact_rate", "answered",
                              "abandoned", "abandon_rate")} == {
        "attempts": 8, "in_progress": 1, "live_answers": 4, "answer_rate": 0.5, "contact_rate": 0.6, "answered": 3,
        "abandoned": 2, "abandon_rate": 0.5}
    assert c["mean_ring_seconds"] == 10.5 and c["talk_seconds"] == 210.0 and c["mean_talk_seconds"] == 70.0
    assert c["attempts_per_done"] == 2.67
    # rolling windows ending now: nothing in the last 24 h; 2 of 4 over 30 days
    assert c["abandon_rate_24h"] is None and c["abandon_rate_30d"] == 0.5
    empty = rows[1]
    assert empty["contacts"] == 0 and empty["attempts"] == 0 and empty["answer_rate"] is None
    assert empty["penetration"] is None and empty["mean_ring_seconds"] is None and empty["dialable"] == 0


def test_summary_of_one_local_day(history) -> None:
    """--since/--until as dates are the campaign's own calendar day (03-06 in Shanghai is
    03-05 16:00 to 03-06 16:00 UTC): attempt 1 a second before it is out, attempt 2 in."""
    [c] = report(history, "summary", campaign="c", since=dt.date(2026, 3, 6), until=dt.date(2026, 3, 6), now=NOW)
    assert (c["attempts"], c["live_answers"], c["abandoned"], c["abandon_rate"], c["dialled"]) == (2, 1, 1, 1.0, 2)
    # the rolling rates end at --until: the 24 hours before 03-07 00:00 local hold attempts 2 and 3
    assert c["abandon_rate_24h"] == 1.0 and c["abandon_rate_30d"] == 0.5
    # a time with an offset is taken as it is
    [c] = report(history, "summary", campaign="c", since=dt.datetime(2026, 3, 6, 0, 0, tzinfo=UTC), now=NOW)
    assert c["attempts"] == 6


def test_outcomes_and_passes(history) -> None:
    rows = report(history, "outcomes", campaign="c", now=NOW)
    assert one(rows, **{"pass": "all", "outcome": "answered"})["attempts"] == 2
    assert one(rows, **{"pass": "all", "outcome": "answered"})["share"] == 0.2857  # 2 of 7 closed
    assert sum(r["attempts"] for r in rows if r["pass"] == "all") == 7  # the open attempt is not an outcome
    assert {(r["outcome"], r["attempts"]) for r in rows if r["pass"] == 1} == {
        ("answered", 1), ("abandoned", 1), ("no_answer", 1), ("busy", 1)}
    assert {(r["outcome"], r["attempts"]) for r in rows if r["pass"] == 2} == {
        ("answered", 1), ("answered_late", 1), ("agent_no_answer", 1)}
    assert one(rows, **{"pass": 2, "outcome": "answered"})["share"] == 0.3333


def test_compliance_by_day(history) -> None:
    rows = report(history, "compliance", campaign="c", now=NOW)
    assert [r["day"] for r in rows] == ["2026-03-05", "2026-03-06", "2026-03-07"]
    d5, d6, d7 = rows
    assert (d5["live_answers"], d5["abandoned"], d5["rate"], d5["rate_30d"], d5["over_cap"]) == (1, 0, 0.0, 0.0, False)
    assert (d6["live_answers"], d6["abandoned"], d6["rate"], d6["rate_30d"], d6["over_cap"]) == (1, 1, 1.0, 0.5, True)
    assert (d7["live_answers"], d7["abandoned"], d7["rate"], d7["live_answers_30d"], d7["rate_30d"]) == (2, 1, 0.5, 4, 0.5)
    assert (d5["messages_played"], d6["messages_played"], d7["messages_played"]) == (0, 1, 0)
    # k2 was called again 33 hours after its call on 03-06 was abandoned
    assert (d5["redials_within_72h"], d6["redials_within_72h"], d7["redials_within_72h"]) == (0, 1, 0)
    # a period: only its days, but their 30-day rates still count the days before
    [only] = report(history, "compliance", campaign="c", since=dt.date(2026, 3, 7), now=NOW)
    assert only["day"] == "2026-03-07" and only["rate_30d"] == 0.5 and only["live_answers_30d"] == 4


def test_days_across_daylight_saving(history) -> None:
    rows = report(history, "compliance", campaign="ny", now=NOW)
    assert [(r["day"], r["live_answers"]) for r in rows] == [("2026-03-07", 1), ("2026-03-08", 2), ("2026-03-09", 1)]
    hours = report(history, "interval", campaign="ny", now=NOW, minutes=60)
    assert [h["interval"] for h in hours] == ["2026-03-07T23:00:00-05:00", "2026-03-08T00:00:00-05:00",
                                            "2026-03-08T23:00:00-04:00", "2026-03-09T00:00:00-04:00"]


def test_interval(history) -> None:
    rows = report(history, "interval", campaign="c", now=NOW, minutes=60)
    assert [r["interval"][:16] for r in rows] == ["2026-03-05T23:00", "2026-03-06T00:00", "2026-03-06T10:00",
                                                  "2026-03-07T09:00", "2026-03-07T11:00", "2026-03-07T12:00",
                                                  "2026-03-07T13:00", "2026-03-07T14:00"]
    assert all(r["dials"] == 1 for r in rows)
    nine = one(rows, interval="2026-03-07T09:00:00+08:00")
    assert (nine["live_answers"], nine["abandoned"], nine["answer_rate"]) == (1, 1, 1.0)
    # 6001 logged in 00:00-02:00 UTC, 6002 from 01:00 until its worker was last heard of (02:30)
    assert nine["agents_logged_in"] == 2
    assert one(rows, interval="2026-03-07T11:00:00+08:00")["agents_logged_in"] == 0
    quarter = report(history, "interval", campaign="c", now=NOW, minutes=15)
    assert one(quarter, interval="2026-03-05T23:45:00+08:00")["dials"] == 1
    assert report(history, "hourly", campaign="c", now=NOW) == rows


def test_agents_by_hand(history) -> None:
    rows = report(history, "agents", campaign="c", now=NOW)
    assert [r["agent"] for r in rows] == ["6001", "6002"]  # the port is not an agent
    a1, a2 = rows
    assert a1["name"] == "王芳"
    assert (a1["calls"], a1["talk_seconds"], a1["wrap_seconds"], a1["paused_seconds"], a1["wait_seconds"]) == (
        1, 600.0, 300.0, 900.0, 5400.0)
    assert (a1["logged_in_seconds"], a1["occupancy"], a1["mean_handle_seconds"], a1["agent_no_answer"]) == (
        7200.0, 0.0833, 900.0, 1)
    # 6002's worker died at 02:30: its last state (talking) ends there, not now
    assert (a2["calls"], a2["wait_seconds"], a2["talk_seconds"], a2["logged_in_seconds"], a2["occupancy"]) == (
        2, 3600.0, 1800.0, 5400.0, 0.3333)
    part = report(history, "agents", campaign="c", since=dt.datetime(2026, 3, 7, 9, 30), now=NOW)
    a1, a2 = part
    assert (a1["wait_seconds"], a1["logged_in_seconds"], a1["calls"], a1["agent_no_answer"]) == (1800.0, 1800.0, 0, 1)
    assert (a2["wait_seconds"], a2["talk_seconds"], a2["logged_in_seconds"]) == (1800.0, 1800.0, 3600.0)


def test_attempts_streamed_in_campaign_time(history) -> None:
    rows = list(stream_attempts(history, campaign="c"))
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows) and len(rows) == 8
    assert rows[0]["started_at"] == "2026-03-05T23:59:59+08:00" and rows[0]["phone"] == "+8613800000001"
    assert rows[6]["outcome"] is None and rows[6]["ended_at"] is None
    assert rows[3]["agent"] == "6002" and rows[3]["seat"] == "7001"
    assert report(history, "attempts", campaign=["c"]) == rows


def test_several_campaigns_and_unknown(history) -> None:
    rows = report(history, "summary", campaign=["ny", "c"], now=NOW)
    assert [r["campaign"] for r in rows] == ["ny", "c"]
    with pytest.raises(UnknownCampaign, match="nope"):
        report(history, "summary", campaign=["c", "nope"], now=NOW)


def test_status_from_rows(history) -> None:
    with Session(history) as s, s.begin():
        s.add(Worker(id="w3", host="h3", token=5, lease_until=NOW + dt.timedelta(seconds=30)))
        s.add(WorkerStatus(worker_id="w3", host="h3", pid=3, started_at=NOW, at=NOW - dt.timedelta(seconds=2),
                           body={"seats": [{"extension": "6001", "name": "王芳", "queue": "q", "role": "agent",
                                            "state": "busy", "reason": "午餐",
                                            "since": (NOW - dt.timedelta(seconds=75)).isoformat()},
                                           {"extension": "7001", "queue": "q", "role": "port", "state": "ready",
                                            "since": NOW.isoformat()}],
                                 "queues": {"q": {"calls": 3, "waiting": 1, "level": 1.5}},
                                 "calls": 3, "may_dial": True, "outbox": 0, "campaigns": ["c"]}))
    with history.connect() as conn:
        snap = status(conn, NOW)
    json.dumps(snap)
    w = {r["worker"]: r for r in snap["workers"]}
    assert w["w3"]["alive"] and w["w3"]["lease"] == "held" and w["w3"]["seats"] == 1 and w["w3"]["ports"] == 1
    assert not w["w2"]["alive"] and w["w2"]["lease"] == "released"
    [q] = snap["queues"]
    assert (q["queue"], q["agents"], q["ports"], q["calls"], q["waiting"], q["level"]) == ("q", {"busy": 1}, 1, 3, 1, 1.5)
    assert q["seats"][0]["seconds_in_state"] == 75 and q["seats"][0]["reason"] == "午餐"
    c = {r["campaign"]: r for r in snap["campaigns"]}
    assert set(c) == {"c", "ny"}  # active and paused ones
    assert c["c"]["dialable"] == 1 and c["c"]["abandon_rate_30d"] == 0.5 and c["c"]["over_cap"]
    assert c["c"]["dials_today"] == 0 and c["c"]["level"] == 1.5
    # New York's day began at 05:00 UTC (midnight EST): one of its calls so far today
    assert c["ny"]["dials_hour"] == 0 and c["ny"]["dials_today"] == 1
