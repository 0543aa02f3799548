"""Statements compiled once and run through the driver (dialer/store/prepared.py), on real
SQLite and real PostgreSQL: the values they write and read are the ORM's, to the microsecond."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dialer.store import prepared, repo
from dialer.store.engine import checkpoint, make_engine, worker_engine
from dialer.store.migrate import upgrade
from dialer.store.models import Attempt, Campaign, Contact

CST = dt.timezone(dt.timedelta(hours=8))
WHEN = dt.datetime(2026, 11, 25, 10, 0, 7, 123456, tzinfo=CST)  # 02:00:07.123456 UTC


def _contact(engine) -> int:
    with Session(engine) as s, s.begin():
        c = repo.create_campaign(s, "c", queue="kefu")
        contact = Contact(campaign_id=c.id, phone="+8613800138000", kind="mobile", next_attempt_at=WHEN)
        s.add(contact)
        s.flush()
        return contact.id


def _set(conn, cid: int, when: dt.datetime):
    c = Contact.__table__.c
    return prepared.run(conn, "test set", lambda: update(Contact.__table__).where(c.id == bindparam("id"))
                        .values(next_attempt_at=bindparam("when")), {"id": cid, "when": when})


def test_times_written_and_read_are_the_orms(engine) -> None:
    cid = _contact(engine)
    later = WHEN + dt.timedelta(microseconds=1)
    with engine.begin() as conn:
        assert _set(conn, cid, later).rowcount == 1
    with Session(engine) as s:
        assert s.get(Contact, cid).next_attempt_at == later  # written here, read by the ORM
    c = Contact.__table__.c
    with engine.connect() as conn:
        raw = prepared.run(conn, "test get", lambda: select(c.next_attempt_at).where(c.id == bindparam("id")),
                           {"id": cid}).scalar_one()
    assert prepared.from_db_time(raw) == later and prepared.from_db_time(raw).tzinfo == dt.timezone.utc
    with Session(engine) as s:  # the claim compares stored times with `now` given here: same order
        n = s.scalar(select(Contact.id).where(Contact.next_attempt_at > WHEN))
    assert n == cid
    whole = WHEN.replace(microsecond=0)  # (SQLite compares text: "…:07" sorts before "…:07.000000")
    with engine.begin() as conn:
        _set(conn, cid, whole)
    with Session(engine) as s:
        assert s.scalar(select(Contact.id).where(Contact.next_attempt_at >= whole)) == cid
        assert s.scalar(select(Contact.id).where(Contact.next_attempt_at > whole)) is None


def test_literals_in_a_statement_keep_their_values(engine) -> None:
    _contact(engine)
    c = Contact.__table__.c
    with engine.connect() as conn:
        pending = prepared.run(conn, "test pending", lambda: select(c.id).where(
            c.status == "pending", c.phone == bindparam("phone")), {"phone": "+8613800138000"}).all()
        done = prepared.run(conn, "test done", lambda: select(c.id).where(
            c.status == "done", c.phone == bindparam("phone")), {"phone": "+8613800138000"}).all()
    assert len(pending) == 1 and done == []


def test_a_missing_parameter_or_a_naive_time_is_refused(engine) -> None:
    cid = _contact(engine)
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="naive"):
            _set(conn, cid, WHEN.replace(tzinfo=None))
        if engine.dialect.name == "sqlite":  # (psycopg names the missing key itself)
            with pytest.raises(TypeError, match="when"):
                prepared.run(conn, "test set", lambda: None, {"id": cid})


def test_database_errors_stay_sqlalchemys(engine) -> None:
    # the worker's lanes sort errors by SQLAlchemy's classes (a lost connection, a constraint)
    cid = _contact(engine)
    with pytest.raises(IntegrityError), engine.begin() as conn:  # no campaign 999999
        prepared.run(conn, "test bad attempt", lambda: Attempt.__table__.insert().values(
            campaign_id=bindparam("campaign"), contact_id=bindparam("contact"), attempt_no=1),
            {"campaign": 999_999, "contact": cid})


def test_run_many_writes_every_row(engine) -> None:
    cid = _contact(engine)
    with Session(engine) as s, s.begin():
        campaign = s.scalars(select(Campaign)).one()
        for n in range(3):  # (one open attempt per contact: the first two ended)
            s.add(Attempt(campaign_id=campaign.id, contact_id=cid, attempt_no=n + 1, lease_token=7,
                          ended_at=WHEN if n < 2 else None))
    with Session(engine) as s:
        ids = list(s.scalars(select(Attempt.id)))
    a = Attempt.__table__.c
    with engine.begin() as conn:
        prepared.run_many(conn, "test ring", lambda: update(Attempt.__table__).where(
            a.id == bindparam("attempt"), a.lease_token == bindparam("token")).values(ringing_at=bindparam("at")),
            [{"attempt": i, "token": 7, "at": WHEN + dt.timedelta(seconds=i)} for i in ids])
    with Session(engine) as s:
        assert {x.id: x.ringing_at for x in s.scalars(select(Attempt))} == {i: WHEN + dt.timedelta(seconds=i)
                                                                             for i in ids}


def test_padded_lists_have_few_shapes() -> None:
    assert [len(prepared.padded(list(range(n)))) for n in (1, 2, 3, 5, 8, 9, 500)] == [1, 2, 4, 8, 8, 16, 512]
    assert prepared.padded(["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_the_workers_sqlite_engine_leaves_checkpoints_to_its_job(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(make_engine(url))
    engine = worker_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0  # no commit checkpoints
    _contact(engine)
    with engine.begin() as conn:
        for i in range(200):
            conn.exec_driver_sql("UPDATE contacts SET attempts = ?", (i,))
    busy, log, done = checkpoint(engine)
    assert busy == 0 and log > 0 and done == log  # all of the WAL copied into the database
    engine.dispose()
