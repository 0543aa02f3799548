"""Report periods: `--since` / `--until` as dates or times in each campaign's timezone (or with
an offset), and the time slots the SQL groups attempts into.

Every IANA timezone's offset is a whole number of quarter hours, so a 15-minute slot of UTC
falls inside one 15-, 30- or 60-minute interval and one calendar day of any timezone: the
database groups attempts by slot (cheap, the same SQL on SQLite and PostgreSQL) and
`local_bucket` rolls the slots up into the campaign's own intervals and days.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Integer, String, cast, func, literal_column

SLOT = 900  # seconds in a slot
UTC = dt.timezone.utc

#: what `--since` and `--until` accept: an aware time, a local time, or a local date
When = dt.datetime | dt.date


class PeriodError(ValueError):
    """A --since/--until value that is not a date or time."""


def parse_when(text: str | None, option: str = "--since") -> When | None:
    """An ISO 8601 date (2026-12-01), local time (2026-12-01T09:00) or time with an offset."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        value = dt.datetime.fromisoformat(text)
        if value.tzinfo is not None:
            value.astimezone(UTC)
        return value
    except (ValueError, OverflowError):
        raise PeriodError(f"{option}: not a date or time (YYYY-MM-DD[THH:MM[+08:00]]): {text!r}") from None


def resolve(value: When | None, tz: ZoneInfo, *, end: bool = False) -> dt.datetime | None:
    """`value` as an aware UTC instant in timezone `tz`: a date is its local midnight (`end`: the
    midnight after it, so that `--until 2026-12-01` takes the whole day)."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        try:
            day = value + dt.timedelta(days=1) if end else value
            return dt.datetime.combine(day, dt.time(0), tz).astimezone(UTC)
        except OverflowError:
            raise PeriodError(f"date out of range: {value}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PeriodError(f"time out of range: {value}") from None


@dataclass(frozen=True)
class Span:
    """One campaign's period: [since, until) in UTC (None: unbounded)."""

    since: dt.datetime | None
    until: dt.datetime | None
    tz: ZoneInfo

    @classmethod
    def of(cls, tzname: str, since: When | None, until: When | None) -> Span:
        tz = ZoneInfo(tzname)
        return cls(resolve(since, tz), resolve(until, tz, end=True), tz)

    @property
    def bounded(self) -> bool:
        return self.since is not None or self.until is not None

    def key(self, column: Any) -> Any:
        """A grouping key: the column itself for all time (the reports' indexes are in its
        order), `column + 0` for a period, so that SQLite's planner reads the period's range of
        the campaign/time index instead of a whole index in the key's order (text: `column || ''`)."""
        if not self.bounded:
            return column
        return column.concat(literal_column("''")) if isinstance(column.type, String) else column + literal_column("0")

    def where(self, column: Any) -> list[Any]:
        out = []
        if self.since is not None:
            out.append(column >= self.since)
        if self.until is not None:
            out.append(column < self.until)
        return out


def epoch(column: Any, dialect: str) -> Any:
    """Seconds since 1970 of a UTC time column, as a number, in SQL."""
    if dialect == "postgresql":  # date_part gives a double (extract a numeric: several times slower)
        return func.date_part("epoch", column)
    # SQLite keeps the UTC time as text: julianday() reads it (to the microsecond)
    return (func.julianday(column) - literal_column("2440587.5")) * literal_column("86400.0")


def slot(column: Any, dialect: str) -> Any:
    """The 15-minute UTC slot of a time column (an integer)."""
    if dialect == "postgresql":  # (the expression of the statistics st_attempts_slot, migration 0009)
        utc = func.timezone(literal_column("'UTC'"), column)
        return cast(func.floor(func.date_part(literal_column("'epoch'"), utc).op("/")(literal_column(str(SLOT)))),
                    BigInteger)
    # (the expression of the SQLite index ix_attempts_slot, migration 0009: keep them equal)
    # (literals, not parameters: a parameter would not match the index's expression)
    return cast(func.strftime(literal_column("'%s'"), column), Integer).op("/")(literal_column(str(SLOT)))


def slot_start(n: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(n) * SLOT, UTC)


@functools.lru_cache(maxsize=65536)
def local_bucket(n: int, tz: ZoneInfo, minutes: int) -> dt.datetime:
    """The start, in `tz`, of the `minutes`-long local interval slot `n` falls in
    (`minutes` = 1440: the local calendar day)."""
    local = slot_start(n).astimezone(tz)
    if minutes >= 1440:
        return dt.datetime.combine(local.date(), dt.time(0), tz)
    return local.replace(minute=local.minute - local.minute % minutes, second=0, microsecond=0)
