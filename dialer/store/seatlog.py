"""Writes of the worker's seat events and status row (dialer/worker/seatlog.py keeps them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, insert

from dialer.store.models import SeatEvent, WorkerStatus


def _upsert(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    return upsert


def write(engine: Engine, rows: Sequence[dict[str, Any]], worker_id: str, host: str, pid: int,
          started_at: dt.datetime, now: dt.datetime, body: dict[str, Any], stopped: bool) -> None:
    """Append `rows` to seat_events and replace the worker's status row, in one transaction."""
    stmt = _upsert(engine.dialect.name)(WorkerStatus).values(
        worker_id=worker_id, host=host, pid=pid, started_at=started_at, at=now, stopped=stopped, body=body)
    stmt = stmt.on_conflict_do_update(
        index_elements=[WorkerStatus.worker_id],
        set_={"host": host, "pid": pid, "started_at": started_at, "at": now, "stopped": stopped, "body": body})
    with engine.begin() as conn:
        if rows:
            conn.execute(insert(SeatEvent), list(rows))
        conn.execute(stmt)
