"""Engines for SQLite (embedded, the default) and PostgreSQL (psycopg 3), set up the same way
everywhere: SQLite gets WAL, foreign keys and a busy timeout on every connection."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from dialer.errors import DialerError
from dialer.redact import redact_url, split_password

#: How long a SQLite writer waits for the lock before "database is locked" (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 30_000


class StoreError(DialerError):
    """The database cannot be used as asked (bad URL, unreachable, schema behind)."""


def normalize_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 here; everything else is kept."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


#: PostgreSQL: how long a connection attempt may take (seconds); and TCP keepalives, so that a
#: dead server or route is noticed in seconds rather than the kernel's two hours
PG_CONNECT_TIMEOUT = 5
PG_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
                 "tcp_user_timeout": 10_000}


#: the worker's bound on any PostgreSQL statement or lock wait (milliseconds)
WORKER_STATEMENT_TIMEOUT_MS = 15_000


def worker_engine(url: str) -> Engine:
    """The engine the worker daemon runs on: every PostgreSQL statement bounded, and no ping
    before each transaction (a round trip on every claim; the worker retries whatever fails,
    and the pool drops its connections at the first one a restart broke). On SQLite its commits
    never checkpoint the WAL (a checkpoint copies pages and syncs the file: tens of milliseconds
    inside whichever claim happened to cross the threshold); the worker runs `checkpoint` from
    a job of its own instead."""
    engine = make_engine(url, statement_timeout_ms=WORKER_STATEMENT_TIMEOUT_MS, pre_ping=False)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _no_autocheckpoint)
    return engine


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def checkpoint(engine: Engine) -> tuple[int, int, int] | None:
    """Copy what the SQLite WAL holds into the database, without waiting for anyone (readers
    and writers go on): SQLite's (busy, frames in the WAL, frames copied). None elsewhere."""
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as conn:
        busy, log, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        return int(busy), int(log), int(done)


def make_engine(url: str, *, statement_timeout_ms: int | None = None, pre_ping: bool = True, **kw: Any) -> Engine:
    """An engine for `url`. Raises StoreError for a URL SQLAlchemy cannot read.

    PostgreSQL connections get a connect timeout and keepalives; `statement_timeout_ms` also
    bounds every statement and lock wait (the worker's engine sets it: no database call of the
    daemon can hang); `pre_ping` checks a pooled connection before each use."""
    url = normalize_url(url)
    found = split_password(url)
    if found and "@" in found[1]:
        raise StoreError(f"the password of {found[0]!r} holds an '@': write it as %40")
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018  (a port that is not a number fails here, not at the first connection)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"not a database URL: {redact_url(url)!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kw)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise StoreError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql+psycopg://")
    kw.setdefault("pool_pre_ping", pre_ping)
    kw.setdefault("pool_timeout", 10)
    args: dict[str, Any] = {"connect_timeout": PG_CONNECT_TIMEOUT, **PG_KEEPALIVES}
    if statement_timeout_ms:
        args["options"] = (f"-c statement_timeout={int(statement_timeout_ms)} "
                           f"-c lock_timeout={int(statement_timeout_ms)} "
                           f"-c idle_in_transaction_session_timeout={int(statement_timeout_ms) * 2}")
    kw["connect_args"] = {**args, **kw.get("connect_args", {})}
    try:
        return create_engine(parsed, **kw)
    except Exception as exc:  # a missing driver, a malformed option
        raise StoreError(f"cannot use {parsed.render_as_string(hide_password=True)}: {exc}") from exc


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextmanager
def scratch_database(server_url: str, prefix: str = "dialer_scratch") -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of `server_url` (its URL), dropped when
    the block ends — for tests and benchmarks that must not touch anything else."""
    from sqlalchemy import text

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield normalize_url(server_url).rsplit("/", 1)[0] + "/" + name
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
