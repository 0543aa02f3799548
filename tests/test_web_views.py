"""What the console's pages read: the wallboard's cached counts against the report library's
own, its colours, and the campaign page's data (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from dialer.reports.status import status
from dialer.store import repo
from dialer.store.models import Attempt, Contact
from dialer.web import views
from tests.test_worker_e2e import WED_10
from tests.web_support import make_campaign, seed_history


@pytest.mark.parametrize("rate, colour", [(None, "none"), (0.0, "green"), (0.0239, "green"), (0.024, "amber"),
                                          (0.03, "amber"), (0.0301, "red")])
def test_abandonment_colours_against_the_cap(rate, colour) -> None:
    assert views.level(rate, 0.03) == colour


def _campaign_figures(snap: dict) -> dict:
    keys = ("dialable", "dials_today", "live_answers_today", "abandoned_today", "abandon_rate_24h", "abandon_rate_30d")
    return {c["campaign"]: {k: c[k] for k in keys} for c in snap["campaigns"]}


def _attempt(engine, phone: str, at: dt.datetime, outcome: str) -> None:
    with Session(engine) as s, s.begin():
        c = repo.get_campaign(s, "c")
        contact = Contact(campaign_id=c.id, phone=phone, kind="mobile", status="done", next_attempt_at=at)
        s.add(contact)
        s.flush()
        s.add(Attempt(campaign_id=c.id, contact_id=contact.id, attempt_no=1, created_at=at, ended_at=at, outcome=outcome,
                      answered_at=at if outcome != "no_answer" else None))


def test_the_wallboards_cached_reads_are_the_status_figures(engine) -> None:
    """Read through the console's caches, every figure is `dialer status`'s: after new attempts
    (read on the next tick), after contacts are added (within `dialable_every`), and after the
    full read is due again."""
    make_campaign(engine)
    # a Wednesday at 10:00 in Beijing (in the calling window), the last one before today
    week = dt.timedelta(weeks=1)
    now = WED_10 + week * ((dt.datetime.now(dt.timezone.utc) - WED_10) // week)
    seed_history(engine, "c", days=3, per_day=30, now=now - dt.timedelta(minutes=30))
    reader = views.Wallboard(full_every=60, recent=600, dialable_every=10)

    def both(at: dt.datetime) -> tuple[dict, dict]:
        with engine.connect() as conn:
            plain = _campaign_figures(status(conn, at))
        return _campaign_figures(views.wallboard(engine, at, reader)), plain

    cached, plain = both(now)
    assert cached == plain and plain["c"]["live_answers_today"] + plain["c"]["dials_today"] > 0
    _attempt(engine, "+8617700000001", now + dt.timedelta(seconds=1), "abandoned")
    _attempt(engine, "+8617700000002", now + dt.timedelta(seconds=2), "answered")
    cached, plain = both(now + dt.timedelta(seconds=5))
    assert cached == plain  # the new ones are in the recent range: read on this tick
    with Session(engine) as s, s.begin():
        c = repo.get_campaign(s, "c")
        s.add(Contact(campaign_id=c.id, phone="+8617700000009", kind="mobile", next_attempt_at=now))
    cached, plain = both(now + dt.timedelta(seconds=6))
    assert cached["c"]["dialable"] == plain["c"]["dialable"] - 1  # (held for dialable_every)
    cached, plain = both(now + dt.timedelta(seconds=11))
    assert cached == plain
    cached, plain = both(now + dt.timedelta(seconds=75))  # a full read again
    assert cached == plain


def test_the_campaign_page_and_its_filters(engine) -> None:
    make_campaign(engine)
    now = dt.datetime.now(dt.timezone.utc)
    seed_history(engine, "c", days=2, per_day=20, now=now)
    page = views.campaign_page(engine, "c", now, views.Filters.of("answered", None, None, None))
    assert [k for k, _, _ in page["charts"]] == ["outcomes_daily", "answer_by_hour", "abandon_daily", "occupancy"]
    assert all(n > 0 and svg.startswith("<svg") and "<script" not in svg for _, svg, n in page["charts"])
    assert page["attempts"] and all(a["outcome"] == "answered" for a in page["attempts"])
    ids = [a["id"] for a in page["attempts"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    one = page["attempts"][0]["phone"]
    got = views.campaign_page(engine, "c", now, views.Filters.of("", None, None, one[-8:]))["attempts"]
    assert [a["phone"] for a in got] == [one]
    for bad in (("nope", None, None, None), (None, "yesterday", None, None), (None, None, None, "abc")):
        with pytest.raises(ValueError):
            views.Filters.of(*bad)
    assert views.Filters.of(None, "2026-12-01", None, "138-0013").query() == {"since": "2026-12-01", "phone": "1380013"}
