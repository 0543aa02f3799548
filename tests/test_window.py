from __future__ import annotations

import datetime as dt

import pytest

from dialer.window import CallingWindow, WindowError, parse_days, parse_range

UTC = dt.timezone.utc


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def test_window_is_read_in_its_own_timezone() -> None:
    w = CallingWindow("09:00", "20:00", "mon,tue,wed,thu,fri", "Asia/Shanghai")
    assert w.is_open(at("2026-11-25T09:00:00+08:00"))  # Wednesday 09:00 Beijing
    assert not w.is_open(at("2026-11-25T08:59:59+08:00"))
    assert not w.is_open(at("2026-11-25T20:00:00+08:00"))
    assert w.is_open(at("2026-11-25T01:30:00+00:00"))  # 09:30 in Beijing, 01:30 UTC
    assert not w.is_open(at("2026-11-28T10:00:00+08:00"))  # Saturday


def test_next_open_skips_weekend_and_closed_hours() -> None:
    w = CallingWindow("09:00", "20:00", "mon,tue,wed,thu,fri", "Asia/Shanghai")
    assert w.next_open(at("2026-11-27T21:00:00+08:00")) == at("2026-11-30T09:00:00+08:00")  # Fri → Mon
    assert w.next_open(at("2026-11-25T07:00:00+08:00")) == at("2026-11-25T09:00:00+08:00")
    now = at("2026-11-25T10:00:00+08:00")
    assert w.next_open(now) == now
    assert w.closes_at(now) == at("2026-11-25T20:00:00+08:00")
    assert w.closes_at(at("2026-11-25T21:00:00+08:00")) is None


def test_window_across_midnight_belongs_to_its_start_day() -> None:
    w = CallingWindow("20:00", "02:00", "fri", "Asia/Shanghai")
    assert w.is_open(at("2026-11-27T23:00:00+08:00"))  # Friday night
    assert w.is_open(at("2026-11-28T01:59:00+08:00"))  # Saturday early, still Friday's window
    assert not w.is_open(at("2026-11-28T23:00:00+08:00"))  # Saturday night


def test_daylight_saving_does_not_shift_the_window() -> None:
    w = CallingWindow("09:00", "17:00", "mon,tue,wed,thu,fri,sat,sun", "America/New_York")
    # 09:00 local is 14:00 UTC in winter and 13:00 UTC in summer.
    assert w.is_open(at("2026-01-15T14:00:00+00:00")) and not w.is_open(at("2026-01-15T13:30:00+00:00"))
    assert w.is_open(at("2026-07-15T13:00:00+00:00")) and not w.is_open(at("2026-07-15T12:30:00+00:00"))
    # the Sunday clocks go forward (2026-03-08): the window still opens at 09:00 local
    assert w.next_open(at("2026-03-08T06:00:00+00:00")) == at("2026-03-08T09:00:00-04:00")


@pytest.mark.parametrize(("text", "days"), [
    ("mon-fri", "mon,tue,wed,thu,fri"), ("sat,sun", "sat,sun"), ("all", "mon,tue,wed,thu,fri,sat,sun"),
    ("fri-mon", "mon,fri,sat,sun"), ("Monday,wed", "mon,wed"),
])
def test_parse_days(text: str, days: str) -> None:
    assert parse_days(text) == days


@pytest.mark.parametrize("text", ["", "funday", "mon-xyz"])
def test_parse_days_errors(text: str) -> None:
    with pytest.raises(WindowError):
        parse_days(text)


def test_parse_range() -> None:
    assert parse_range("9:00-20:30") == ("09:00", "20:30")
    for bad in ("9-20", "25:00-26:00", "09:00-09:00", "09:00"):
        with pytest.raises(WindowError):
            parse_range(bad)


def test_whole_day_window() -> None:
    assert parse_range("00:00-24:00") == ("00:00", "24:00")
    w = CallingWindow("00:00", "24:00", "mon,tue,wed,thu,fri,sat,sun", "Asia/Shanghai")
    for text in ("2026-11-25T23:59:30+08:00", "2026-11-26T00:00:00+08:00", "2026-11-26T12:00:00+08:00"):
        assert w.is_open(at(text))
    weekdays = CallingWindow("00:00", "24:00", "mon", "Asia/Shanghai")
    assert weekdays.is_open(at("2026-11-30T23:59:59+08:00")) and not weekdays.is_open(at("2026-12-01T00:00:00+08:00"))
