"""An import's chunks into `contacts`: rows not already in the campaign and not on the
do-not-call list are inserted; the others are reported back with why.

SQLite asks about the chunk's numbers, then inserts the rest with a bare executemany (the rows
are already in the database's own types). PostgreSQL streams the chunk with COPY into a
temporary staging table and moves it into `contacts` with one statement, which inserts what is
new and tells, for every number it did not insert, whether it is blocked or under which batch
it is stored already, then empties the stage: four round trips a chunk whatever its size.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

#: the columns an import writes, in the order of each row's values
CONTACT_COLUMNS = ("campaign_id", "batch_id", "phone", "raw_phone", "extension", "kind", "area_code", "province",
                   "city", "isp", "name", "customer_id", "priority", "timezone", "extra", "status", "attempts",
                   "next_attempt_at", "created_at")

_STAGE = "dialer_import_stage"


def db_time(conn: Any, when: dt.datetime) -> Any:
    """`when` as the column type stores it (UTCDateTime: naive UTC text on SQLite)."""
    if conn.dialect.name == "sqlite":
        return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return when


def bulk_insert(conn: Any, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """A plain DB-API executemany: the rows are already in the database's own types. (Through
    SQLAlchemy's per-row parameter processing the insert costs four times as much.)"""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    conn.exec_driver_sql(sql, rows)


def load_chunk(conn: Any, campaign_id: int, rows: Mapping[str, tuple[Any, ...]],
               now: dt.datetime) -> tuple[dict[str, int], set[str]]:
    """Insert `rows` (phone → values in `CONTACT_COLUMNS` order) but those already in the
    campaign or blocked now; return (phone → batch of those already stored, blocked phones)."""
    if not rows:
        return {}, set()
    if conn.dialect.name == "postgresql":
        return _load_pg(conn, campaign_id, rows, now)
    stored, blocked = _known_sqlite(conn, campaign_id, list(rows), now)
    bulk_insert(conn, "contacts", CONTACT_COLUMNS,
                [values for phone, values in rows.items() if phone not in stored and phone not in blocked])
    return stored, blocked


def _known_sqlite(conn: Any, campaign_id: int, phones: list[str], now: dt.datetime) -> tuple[dict[str, int], set[str]]:
    marks = ",".join("?" * len(phones))
    stored = conn.exec_driver_sql(
        f"SELECT phone, batch_id FROM contacts WHERE campaign_id = ? AND phone IN ({marks})",
        (campaign_id, *phones)).all()
    blocked = conn.exec_driver_sql(
        f"SELECT phone FROM dnc WHERE phone IN ({marks}) AND (until IS NULL OR until > ?)",
        (*phones, db_time(conn, now))).all()
    return dict(stored), {row[0] for row in blocked}


def _load_pg(conn: Any, campaign_id: int, rows: Mapping[str, tuple[Any, ...]],
             now: dt.datetime) -> tuple[dict[str, int], set[str]]:
    columns = ", ".join(CONTACT_COLUMNS)
    conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} AS SELECT {columns} FROM contacts WITH NO DATA")
    with conn.connection.dbapi_connection.cursor() as cursor, \
            cursor.copy(f"COPY {_STAGE} ({columns}) FROM STDIN") as copy:
        for values in rows.values():
            copy.write_row(values)
    # one statement: insert what is new and not blocked, and say why the others were not (a
    # lookup by the unique index per number not inserted: the planner has no statistics for a
    # table that grows inside this transaction and would scan it whole for a join); its
    # snapshot sees the contacts stored before it, not those it inserts
    result = conn.exec_driver_sql(
        f"""WITH staged AS (SELECT * FROM {_STAGE}),
                 blocked AS (SELECT s.phone FROM staged s JOIN dnc d ON d.phone = s.phone
                             AND (d.until IS NULL OR d.until > %(now)s)),
                 inserted AS (INSERT INTO contacts ({columns})
                              SELECT {columns} FROM staged s WHERE s.phone NOT IN (SELECT phone FROM blocked)
                              ON CONFLICT (campaign_id, phone) DO NOTHING RETURNING phone)
            SELECT s.phone, s.phone IN (SELECT phone FROM blocked) AS is_blocked,
                   (SELECT c.batch_id FROM contacts c WHERE c.campaign_id = %(campaign)s AND c.phone = s.phone)
            FROM staged s WHERE s.phone NOT IN (SELECT phone FROM inserted)""",
        {"now": now, "campaign": campaign_id}).all()
    # emptied by TRUNCATE, not DELETE: in an import's one long transaction deleted rows stay
    # behind (nothing can vacuum them), and each chunk's scan of the stage grew with the file
    conn.exec_driver_sql(f"TRUNCATE {_STAGE}")
    # (a number another import stored after this statement's snapshot has no batch to show)
    stored = {phone: -1 if batch is None else batch for phone, is_blocked, batch in result if not is_blocked}
    blocked = {phone for phone, is_blocked, _ in result if is_blocked}
    return stored, blocked


__all__ = ["CONTACT_COLUMNS", "bulk_insert", "db_time", "load_chunk"]
