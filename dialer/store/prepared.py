"""Statements of the worker's hot path: written once as SQLAlchemy Core, compiled once per
database, run through the driver.

Theory of operation
-------------------
The worker runs about eight statements for every call it places (the claim, the attempt, the
milestones, the outcome). Built and executed through Core each time, one costs about 0.4 ms of
CPU on a 2-core machine; built once and executed through Core, 0.07 ms; its compiled SQL sent
with `Connection.exec_driver_sql`, 0.02 ms. With 500 seats that difference is most of a core.

So a hot statement is still written once, with the models' tables (the SQL has one definition),
but it is compiled once per dialect and *shape* — the few things that change its text, such as
how many values an ``IN`` holds — and cached. Each execution passes the statement's own
parameters, converted to what the column stores (`to_db`), through `exec_driver_sql`, which
keeps SQLAlchemy's error wrapping (a lost connection is still a `DBAPIError` and invalidates
the pool's connection) but skips its per-call compilation and parameter processing. Rows come
back as the driver gives them: times through `from_db_time`.

Parameters are named with `bindparam("name")` in the statement; the statement's own literals
(``status = 'pending'``) keep the values they were compiled with.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, CursorResult, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable

UTC = dt.timezone.utc


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: str
    names: tuple[str, ...] | None  # the parameters' order (positional drivers: SQLite), else None
    defaults: dict[str, Any]  # the statement's own literals, already converted
    sqlite: bool


_cache: weakref.WeakKeyDictionary[Dialect, dict[Hashable, Compiled]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def to_db(value: Any, sqlite: bool) -> Any:
    """A parameter as the column stores it: an aware datetime as naive UTC text on SQLite (the
    format of SQLAlchemy's DATETIME, which `UTCDateTime` uses), as an aware UTC datetime on
    PostgreSQL. Raises ValueError for a naive datetime, as `UTCDateTime` does."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else value
    return value


def from_db_time(value: Any) -> dt.datetime | None:
    """A time column as the driver returns it → an aware UTC datetime (or None)."""
    if value is None:
        return None
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value).replace(tzinfo=UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def padded(values: Sequence[Any]) -> list[Any]:
    """`values` (not empty) padded with its first to a power of two: an ``IN`` list then has
    few shapes (1, 2, 4, … values), so few compiled statements."""
    size = 1
    while size < len(values):
        size *= 2
    return [*values, *[values[0]] * (size - len(values))]


def in_list(column: Any, name: str, n: int) -> Any:
    """``column IN (:name0, …, :name{n-1})``."""
    return column.in_([bindparam(f"{name}{i}") for i in range(n)])


def compiled(dialect: Dialect, key: Hashable, build: Callable[[], Executable]) -> Compiled:
    """The statement `build()` makes, compiled for `dialect`, cached under `key` (which must
    name everything that changes the statement's text)."""
    per = _cache.get(dialect)
    if per is not None:
        found = per.get(key)
        if found is not None:
            return found
    stmt = build()
    comp = stmt.compile(dialect=dialect)  # type: ignore[attr-defined]
    sqlite = dialect.name == "sqlite"
    defaults = {name: to_db(bp.value, sqlite) for bp, name in comp.bind_names.items()
                if not bp.required and bp.callable is None}
    names = tuple(comp.positiontup) if comp.positional else None
    result = Compiled(comp.string, names, defaults, sqlite)
    with _lock:
        _cache.setdefault(dialect, {})[key] = result
    return result


def run(conn: Connection, key: Hashable, build: Callable[[], Executable],
        params: Mapping[str, Any] | None = None) -> CursorResult[Any]:
    """Execute the statement cached under `key` (built by `build` the first time) with
    `params`; every parameter the statement names must be given."""
    c = compiled(conn.dialect, key, build)
    values = dict(c.defaults)
    if params:
        sqlite = c.sqlite
        for name, value in params.items():
            values[name] = to_db(value, sqlite)
    if c.names is not None:
        try:
            return conn.exec_driver_sql(c.sql, tuple(values[n] for n in c.names))
        except KeyError as exc:
            raise TypeError(f"statement {key!r}: no value for parameter {exc.args[0]!r}") from None
    return conn.exec_driver_sql(c.sql, values)


def run_many(conn: Connection, key: Hashable, build: Callable[[], Executable],
             params: Sequence[Mapping[str, Any]]) -> None:
    """Execute the statement once per parameter set, in one driver call (`executemany`: one
    round trip on PostgreSQL); how many rows each changed is not told."""
    if not params:
        return
    c = compiled(conn.dialect, key, build)
    rows = []
    for p in params:
        values = dict(c.defaults)
        for name, value in p.items():
            values[name] = to_db(value, c.sqlite)
        rows.append(tuple(values[n] for n in c.names) if c.names is not None else values)
    conn.exec_driver_sql(c.sql, rows)


__all__ = ["Compiled", "run_many", "compiled", "run", "to_db", "from_db_time", "padded", "in_list"]
