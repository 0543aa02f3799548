"""The process's logging: numbers masked, repeated warnings counted, JSON lines, passwords."""

from __future__ import annotations

import io
import json
import logging

from dialer import logs


def _capture(**kw):
    handler = logs.setup(logging.INFO, **kw)
    stream = io.StringIO()
    handler.setStream(stream)
    return stream


def test_numbers_are_masked_at_info_and_above_unless_asked() -> None:
    stream = _capture()
    log = logging.getLogger("dialer.t1")
    log.info("attempt 42 to %s answered (dialled %s)", "+8613912345678", "913912345678")
    assert stream.getvalue().endswith("attempt 42 to +86139****5678 answered (dialled 913****5678)\n")
    stream = _capture(mask=False)
    log.info("to %s", "+8613912345678")
    assert "+8613912345678" in stream.getvalue()


def test_a_repeated_warning_is_counted_not_repeated() -> None:
    now = [0.0]
    limit = logs.RateLimit(burst=5, window=10.0, clock=lambda: now[0])
    log = logging.getLogger("dialer.t2")
    handler = logs.setup(logging.INFO)
    handler.filters = [f for f in handler.filters if not isinstance(f, logs.RateLimit)] + [limit]
    stream = io.StringIO()
    handler.setStream(stream)
    for i in range(40_905):
        log.warning("garbage frame from seat %s: %s", "601", i)
    assert len(stream.getvalue().splitlines()) == 5
    now[0] = 10.0
    log.warning("garbage frame from seat %s: %s", "601", "x")
    assert stream.getvalue().splitlines()[-1].endswith("(… 40,900 more in the last 10 s)")
    log.info("info is never limited")
    assert stream.getvalue().splitlines()[-1].endswith("info is never limited")


def test_json_lines() -> None:
    stream = _capture(fmt="json")
    logging.getLogger("dialer.t3").warning("seat %s lost", "601")
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert (record["level"], record["logger"], record["message"]) == ("WARNING", "dialer.t3", "seat 601 lost")


def test_apscheduler_is_kept_to_warnings() -> None:
    logs.setup(logging.DEBUG)
    assert logging.getLogger("apscheduler").level == logging.WARNING
