"""Calling windows: when a campaign (or a contact in its own timezone) may be called. Pure.

A window is a daily time range on some weekdays in an IANA timezone: ``09:00-20:00`` on
``mon-fri`` in ``Asia/Shanghai``. A range whose end is not after its start crosses midnight
(``20:00-02:00``); it belongs to the day it starts on. Times are compared in the window's own
timezone, so daylight-saving changes move nothing (a window is never shifted to the server's
clock).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialer.errors import DialerError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class WindowError(DialerError):
    """A window, day list or timezone that cannot be read."""


def parse_time(text: str) -> dt.time:
    m = _TIME.match(text.strip())
    if not m:
        raise WindowError(f"not a time of day (HH:MM): {text!r}")
    return dt.time(int(m.group(1)), int(m.group(2)))


def parse_range(text: str) -> tuple[str, str]:
    """``"09:00-20:00"`` → (``"09:00"``, ``"20:00"``), checked and zero-padded. ``24:00`` may
    end a window (``00:00-24:00`` is the whole day)."""
    parts = text.split("-")
    if len(parts) != 2:
        raise WindowError(f"not a window (HH:MM-HH:MM): {text!r}")
    start = parse_time(parts[0])
    if parts[1].strip() == "24:00":
        return start.strftime("%H:%M"), "24:00"
    end = parse_time(parts[1])
    if start == end:
        raise WindowError(f"empty window: {text!r}")
    return start.strftime("%H:%M"), end.strftime("%H:%M")


def parse_days(text: str) -> str:
    """``"mon-fri"``, ``"mon,wed,sat-sun"``, ``"all"`` → ``"mon,tue,…"`` in week order."""
    text = text.strip().lower()
    if text in ("all", "*", "daily"):
        return ",".join(DAY_NAMES)
    chosen: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            a, b = (p.strip()[:3] for p in part.split("-", 1))
            if a not in DAY_NAMES or b not in DAY_NAMES:
                raise WindowError(f"unknown day in {part!r} (use mon..sun)")
            i, j = DAY_NAMES.index(a), DAY_NAMES.index(b)
            chosen.update(range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)])
        else:
            if part[:3] not in DAY_NAMES:
                raise WindowError(f"unknown day {part!r} (use mon..sun)")
            chosen.add(DAY_NAMES.index(part[:3]))
    if not chosen:
        raise WindowError("no days given")
    return ",".join(DAY_NAMES[i] for i in sorted(chosen))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError(f"unknown timezone {name!r} (use an IANA name like Asia/Shanghai)") from None


@dataclass(frozen=True, slots=True)
class CallingWindow:
    start: str = "09:00"
    end: str = "20:00"
    days: str = "mon,tue,wed,thu,fri"
    timezone: str = "Asia/Shanghai"

    def _spans(self, local_day: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime] | None:
        if DAY_NAMES[local_day.weekday()] not in self.days.split(","):
            return None
        s = parse_time(self.start)
        opens = dt.datetime.combine(local_day, s, tz)
        if self.end == "24:00":
            return opens, dt.datetime.combine(local_day + dt.timedelta(days=1), dt.time(0), tz)
        e = parse_time(self.end)
        closes = dt.datetime.combine(local_day + dt.timedelta(days=1 if e <= s else 0), e, tz)
        return opens, closes

    def is_open(self, now: dt.datetime) -> bool:
        """True when `now` (aware) falls inside the window."""
        tz = zone(self.timezone)
        local = now.astimezone(tz)
        for day in (local.date() - dt.timedelta(days=1), local.date()):
            span = self._spans(day, tz)
            if span and span[0] <= local < span[1]:
                return True
        return False

    def next_open(self, after: dt.datetime) -> dt.datetime:
        """`after` itself when the window is open then, else the next opening (aware, UTC)."""
        if self.is_open(after):
            return after
        tz = zone(self.timezone)
        local = after.astimezone(tz)
        for offset in range(0, 15):  # two weeks: a one-day-a-week window whose day is today, past its close
            span = self._spans(local.date() + dt.timedelta(days=offset), tz)
            if span and span[0] > local:
                return span[0].astimezone(dt.timezone.utc)
        raise WindowError(f"window {self} never opens")

    def closes_at(self, now: dt.datetime) -> dt.datetime | None:
        """When the window that is open at `now` closes (None when it is closed)."""
        tz = zone(self.timezone)
        local = now.astimezone(tz)
        for day in (local.date() - dt.timedelta(days=1), local.date()):
            span = self._spans(day, tz)
            if span and span[0] <= local < span[1]:
                return span[1].astimezone(dt.timezone.utc)
        return None
