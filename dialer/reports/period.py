"""Report periods: `--since` / `--until` as dates or times in each campaign's timezone (or with
an offset), and the time slots the SQL groups attempts into.

Every IANA timezone's offset is a whole number of quarter hours, so a 15-minute slot of UTC
falls inside one 15-, 30- or 60-minute interval and one calendar day of any timezone: the
database groups attempts by slot (cheap, the same SQL on SQLite and PostgreSQL) and
`local_bucket` rolls the slots up into the campaign's own intervals and days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Integer, cast, func, literal_column

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

    def where(self, column: Any) -> list[Any]:
        out = []
        if self.since is not None:
            out.append(column >= self.since)
        if self.until is not None:
            out.append(column < self.until)
        return out


def epoch(column: Any, dialect: str) -> Any:
    """Seconds since 1970 of a UTC time column, as a number, in SQL."""
    if dialect == "postgresql":
        return func.extract("epoch", column)
    # SQLite keeps the UTC time as text: julianday() reads it (to the microsecond)
    return (func.julianday(column) - literal_column("2440587.5")) * literal_column("86400.0")


def slot(column: Any, dialect: str) -> Any:
    """The 15-minute UTC slot of a time column (an integer)."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / SLOT), BigInteger)
    return cast(func.strftime("%s", column), Integer) / SLOT


def slot_start(n: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(n) * SLOT, UTC)


def local_bucket(n: int, tz: ZoneInfo, minutes: int) -> dt.datetime:
    """The start, in `tz`, of the `minutes`-long local interval slot `n` falls in
    (`minutes` = 1440: the local calendar day)."""
    local = slot_start(n).astimezone(tz)
    if minutes >= 1440:
        return dt.datetime.combine(local.date(), dt.time(0), tz)
    return local.replace(minute=local.minute - local.minute % minutes, second=0, microsecond=0)
