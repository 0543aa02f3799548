"""The store on real SQLite and real PostgreSQL: schema, repository functions and the claim."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import multiprocessing
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from dialer.store import claim, repo
from dialer.store.engine import StoreError, make_engine
from dialer.store.migrate import alembic_head, current, head, require_current, upgrade
from dialer.store.models import Attempt, Base, Contact

UTC = dt.timezone.utc
WED_10 = dt.datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Beijing
WED_22 = dt.datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # Wednesday 22:00 in Beijing


def test_migrations_produce_exactly_the_models(engine) -> None:
    assert current(engine) == head()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        if engine.dialect.name == "sqlite":
            # Alembic cannot reflect a DESC column of a SQLite index, so it sees the claim's index
            # as different; check that one by hand instead.
            diff = [d for d in diff if not (d[0] in ("add_index", "remove_index") and d[1].name == "ix_contacts_claim_order")]
            columns = conn.exec_driver_sql("PRAGMA index_xinfo('ix_contacts_claim_order')").all()
            assert [(c[2], c[3]) for c in columns if c[5]] == [
                ("campaign_id", 0), ("status", 0), ("priority", 1), ("next_attempt_at", 0), ("id", 0)]
    assert diff == []


def test_the_head_every_command_checks_is_alembics() -> None:
    """migrate.HEAD spares each command Alembic's start-up: it must name the newest migration."""
    assert head() == alembic_head()


def test_sqlite_pragmas(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_schema_behind_is_refused_with_the_fix(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(StoreError, match="run: dialer db upgrade"):
        require_current(engine)
    upgrade(engine)
    require_current(engine)


def test_bad_urls() -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        make_engine("nonsense")
    with pytest.raises(StoreError, match="unsupported database"):
        make_engine("mysql://x@y/z")
    assert make_engine("postgresql://u@h/d").url.drivername == "postgresql+psycopg"


def _campaign(s: Session, name: str = "c", **kw) -> object:
    c = repo.create_campaign(s, name, queue="kefu", **kw)
    repo.set_campaign_status(s, name, "resume")
    return c


def _contacts(s: Session, campaign, phones, **kw) -> None:
    for phone in phones:
        s.add(Contact(campaign_id=campaign.id, phone=phone, kind="mobile", next_attempt_at=WED_10 - dt.timedelta(hours=1), **kw))
    s.flush()


def test_campaign_lifecycle_and_validation(engine) -> None:
    with Session(engine, expire_on_commit=False) as s, s.begin():
        c = repo.create_campaign(s, "回访", queue="kefu", window="08:30-21:00", days="mon-sat",
                                 retry=["busy=60"], max_attempts=5, timezone="Asia/Urumqi")
        assert (c.status, c.window_start, c.days, c.retry_delays["busy"], c.retry_delays["no_answer"]) == \
            ("draft", "08:30", "mon,tue,wed,thu,fri,sat", 60, 3600)
        with pytest.raises(repo.InvalidInput, match="exists already"):
            repo.create_campaign(s, "回访")
        for bad, message in [({"ring_timeout": 10}, "ring-timeout"), ({"retry": ["answered=5"]}, "unknown outcome"),
                             ({"area_code": "10"}, "area code"), ({"timezone": "Nowhere/X"}, "unknown timezone"),
                             ({"window": "9-5"}, "HH:MM"), ({"abandon_target": 0.9}, "abandon-target")]:
            with pytest.raises(repo.InvalidInput, match=message):
                repo.create_campaign(s, "bad", **bad)
        assert repo.set_campaign_status(s, "回访", "resume").status == "active"
        assert repo.set_campaign_status(s, "回访", "pause").status == "paused"
        with pytest.raises(repo.InvalidInput, match="cannot pause"):
            repo.set_campaign_status(s, "回访", "pause")
        repo.update_campaign(s, "回访", retry=["no_answer=120"], priority=5)
        c = repo.get_campaign(s, "回访")
        assert (c.retry_delays["busy"], c.retry_delays["no_answer"], c.priority) == (60, 120, 5)
        assert repo.campaign_record(c)["window"] == "08:30-21:00"
        with pytest.raises(repo.NotFound):
            repo.get_campaign(s, "nope")


def test_agents_and_dnc(engine) -> None:
    with Session(engine, expire_on_commit=False) as s, s.begin():
        assert repo.upsert_agents(s, [repo.AgentRow("1001", "张三", "601", "kefu"),
                                      repo.AgentRow("9001", "port", "8001", "kefu", role="port")]) == (2, 0)
        assert repo.upsert_agents(s, [repo.AgentRow("1001", "张三丰", "601", "kefu", skill=3)]) == (0, 1)
        with pytest.raises(repo.InvalidInput, match="already belongs"):
            repo.upsert_agents(s, [repo.AgentRow("1002", "李四", "601")])
        with pytest.raises(repo.InvalidInput, match="role"):
            repo.upsert_agents(s, [repo.AgentRow("1003", "x", "603", role="boss")])
        with pytest.raises(repo.InvalidInput, match="line break"):
            repo.upsert_agents(s, [repo.AgentRow("1004", "x\ncommand:hangup", "604")])
        assert [(a.staffid, a.name, a.skill) for a in repo.list_agents(s, "kefu")] == [("1001", "张三丰", 3), ("9001", "port", 1)]
        repo.remove_agent(s, "8001")
        assert len(repo.list_agents(s)) == 1
        assert repo.add_dnc(s, ["+8613800138000", "+8613800138000", "+8613912345678"], "投诉").new == 2
        # a later add never shortens a block unless asked
        assert repo.add_dnc(s, ["+8613912345678"], until=WED_10) == (0, 0, 1)
        assert repo.blocked_phones(s, WED_10 + dt.timedelta(days=999)) == {"+8613800138000", "+8613912345678"}
        assert repo.add_dnc(s, ["+8613912345678"], until=WED_10, replace=True) == (0, 1, 0)
        assert repo.blocked_phones(s, WED_10 - dt.timedelta(seconds=1)) == {"+8613800138000", "+8613912345678"}
        assert repo.blocked_phones(s, WED_10) == {"+8613800138000"}
        assert repo.remove_dnc(s, ["+8613800138000"]) == 1


def test_claim_respects_every_rule(engine) -> None:
    with Session(engine, expire_on_commit=False) as s, s.begin():
        c = _campaign(s, max_attempts=2)
        _contacts(s, c, [f"+86138001380{i:02d}" for i in range(10)])
        phones = {ct.phone: ct for ct in s.scalars(select(Contact))}
        phones["+8613800138000"].status = "done"
        phones["+8613800138001"].attempts = 2  # out of attempts
        phones["+8613800138002"].next_attempt_at = WED_10 + dt.timedelta(minutes=1)  # not due
        phones["+8613800138003"].claimed_by, phones["+8613800138003"].lease_until = "other", WED_10 + dt.timedelta(minutes=1)
        phones["+8613800138004"].claimed_by, phones["+8613800138004"].lease_until = "dead", WED_10 - dt.timedelta(minutes=1)
        phones["+8613800138005"].priority = 9
        repo.add_dnc(s, ["+8613800138006"])
        repo.add_dnc(s, ["+8613800138007"], until=WED_10 - dt.timedelta(days=1))  # expired entry
    got = claim.claim_contacts(engine, c, "w1", 100, WED_10)
    assert got[0].phone == "+8613800138005"  # priority first
    assert sorted(x.phone for x in got) == [f"+86138001380{i:02d}" for i in (4, 5, 7, 8, 9)]
    with Session(engine) as s:  # the lease, as stored
        leased = s.scalars(select(Contact).where(Contact.id.in_([x.id for x in got]))).all()
        assert all(x.claimed_by == "w1" and x.lease_until == WED_10 + dt.timedelta(minutes=5) for x in leased)
    assert claim.claim_contacts(engine, c, "w2", 100, WED_10) == []  # all leased now
    later = WED_10 + dt.timedelta(minutes=6)  # leases expired: taken back
    assert len(claim.claim_contacts(engine, c, "w2", 100, later)) == 7
    with Session(engine, expire_on_commit=False) as s, s.begin():
        assert repo.release_contacts(s, "w2", [x.id for x in got]) == 5


def test_claim_limits_and_campaign_state(engine) -> None:
    with Session(engine, expire_on_commit=False) as s, s.begin():
        c = _campaign(s)
        _contacts(s, c, [f"+86138001380{i:02d}" for i in range(10)])
    assert len(claim.claim_contacts(engine, c, "w", 3, WED_10)) == 3
    assert claim.claim_contacts(engine, c, "w", 0, WED_10) == []
    assert claim.claim_contacts(engine, c, "w", 10, WED_22) == []  # window closed
    with Session(engine, expire_on_commit=False) as s, s.begin():
        repo.set_campaign_status(s, "c", "pause")
        paused = repo.get_campaign(s, "c")
    assert claim.claim_contacts(engine, paused, "w", 10, WED_10) == []


def test_claim_uses_each_contacts_own_timezone(engine) -> None:
    with Session(engine, expire_on_commit=False) as s, s.begin():
        c = _campaign(s)
        _contacts(s, c, ["+8613800138000"])
        _contacts(s, c, ["+8613800138001"], timezone="America/New_York")  # 21:00 Tuesday there
        _contacts(s, c, ["+8613800138002"], timezone="Asia/Tokyo")  # 11:00 Wednesday there
        c.contact_timezones = ["America/New_York", "Asia/Tokyo"]
    assert sorted(x.phone for x in claim.claim_contacts(engine, c, "w", 10, WED_10)) == ["+8613800138000", "+8613800138002"]


def _claim_all(url: str, campaign_id: int, worker: str, barrier=None) -> list[int]:
    engine = make_engine(url)
    try:
        with Session(engine, expire_on_commit=False) as s:
            campaign = s.get(repo.Campaign, campaign_id)
        if barrier is not None:
            barrier.wait()
        ids: list[int] = []
        while True:
            got = claim.claim_contacts(engine, campaign, worker, 7, WED_10)
            if not got:
                return ids
            ids += [x.id for x in got]
    finally:
        engine.dispose()


def _seed_many(engine, n: int) -> int:
    with Session(engine, expire_on_commit=False) as s, s.begin():
        c = _campaign(s)
        s.execute(insert(Contact), [
            {"campaign_id": c.id, "phone": f"+86139{i:08d}", "kind": "mobile", "next_attempt_at": WED_10,
             "status": "pending", "attempts": 0} for i in range(n)])
        return c.id


def test_concurrent_claimers_threads(engine, db_url) -> None:
    campaign_id = _seed_many(engine, 600)
    barrier = threading.Barrier(6)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda w: _claim_all(db_url, campaign_id, f"t{w}", barrier), range(6)))
    ids = [i for r in results for i in r]
    assert len(ids) == len(set(ids)) == 600
    if engine.dialect.name == "postgresql":
        assert sum(1 for r in results if r) >= 2  # the claimers really ran side by side


def test_concurrent_claimers_processes(engine, db_url) -> None:
    campaign_id = _seed_many(engine, 1500)
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=ctx) as pool:
        results = list(pool.map(_claim_all, [db_url] * 4, [campaign_id] * 4, [f"p{i}" for i in range(4)]))
    ids = [i for r in results for i in r]
    assert len(ids) == len(set(ids)) == 1500
    with engine.connect() as conn:
        owners = dict(conn.execute(select(Contact.claimed_by, func.count()).group_by(Contact.claimed_by)).all())
    assert sum(owners.values()) == 1500 and None not in owners


def test_postgres_uses_skip_locked(engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    with Session(engine, expire_on_commit=False) as s, s.begin():
        c = _campaign(s)
        _contacts(s, c, ["+8613800138000", "+8613800138001"])
    with engine.connect() as locker:
        locker.begin()
        locker.execute(text("SELECT id FROM contacts WHERE phone = '+8613800138000' FOR UPDATE"))
        got = claim.claim_contacts(engine, c, "w", 10, WED_10)  # does not wait for the lock
        assert [x.phone for x in got] == ["+8613800138001"]
        locker.rollback()


def test_upgrade_from_the_first_revision_keeps_contacts(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO campaigns (name, mode, queue, status, priority, area_code, outside_prefix,"
                             " ld_mobile_prefix, unknown_city_mobile, allow_international, window_start, window_end,"
                             " days, timezone, contact_timezones, max_attempts, retry_delays, ring_timeout, wrap_up,"
                             " max_calls_per_agent, abandon_target, abandon_ivr, created_at, updated_at) VALUES"
                             " ('c','progressive','q','draft',0,'010','9','0','long_distance',0,'09:00','20:00',"
                             "'mon','Asia/Shanghai','[]',3,'{}',30,20,3,0.03,'','2026-01-01','2026-01-01')")
        conn.exec_driver_sql("INSERT INTO contacts (campaign_id, phone, raw_phone, extension, kind, area_code, province,"
                             " city, isp, name, customer_id, priority, status, attempts, next_attempt_at, created_at)"
                             " VALUES (1,'+8613800138000','','','mobile','','','','','','',0,'pending',1,"
                             "'2026-01-01','2026-01-01')")
    upgrade(engine)
    with Session(engine) as s:
        contact = s.scalar(select(Contact))
        assert (contact.attempts, contact.free_misses) == (1, 0)


def test_claim_skips_a_contact_whose_call_is_still_open(engine) -> None:
    with Session(engine, expire_on_commit=False) as s, s.begin():
        c = _campaign(s)
        _contacts(s, c, ["+8613800138000", "+8613800138001"])
        first = s.scalar(select(Contact).where(Contact.phone == "+8613800138000"))
        s.add(Attempt(campaign_id=c.id, contact_id=first.id, attempt_no=1, worker_id="dead", created_at=WED_10))
    got = claim.claim_contacts(engine, c, "w", 10, WED_10)  # no lease on it, but a call still open
    assert [x.phone for x in got] == ["+8613800138001"]
