"""The process's logging: text or JSON lines on stderr, phone numbers masked, passwords
scrubbed, repeated warnings counted instead of repeated, APScheduler's chatter kept down.

* Phone numbers (7 to 15 digits, with or without ``+``) in records at INFO and above are masked
  to their first three and last four digits (``139****5678``) unless masking is turned off
  (``--no-mask-numbers``): logs are copied to places a list of customers' numbers must not go.
* A warning repeated from the same place (logger and message template) is written at most
  `RateLimit.burst` times in `RateLimit.window` seconds; the next one after that says how many
  were held back (``… 40,899 more in the last 10 s``). A garbage frame per millisecond from a
  broken peer does not fill the disk.
* APScheduler logs at WARNING and above only; its "skipped: maximum number of running
  instances" (a job still running when it is due again) goes through the same rate limit.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable

from dialer.redact import ScrubFilter, rewrite_record

_PHONE = re.compile(r"(?<![\d.])(\+86|\+)?(\d{3})\d{0,8}(\d{4})(?![\d.])")


def mask_numbers(text: str) -> str:
    """Phone-like digit runs (7–15 digits) as ``139****5678``."""
    return _PHONE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(3)}", text)


class MaskFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO:
            rewrite_record(record, mask_numbers)
        return True


class RateLimit(logging.Filter):
    """At most `burst` records per (logger, template) in `window` seconds, WARNING and above."""

    def __init__(self, burst: int = 5, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.window, self.clock = burst, window, clock
        self._seen: dict[tuple[str, object], list[float | int]] = {}  # key → [window start, count, held]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.msg)
        now = self.clock()
        state = self._seen.get(key)
        if state is None or now - state[0] >= self.window:
            held = int(state[2]) if state is not None else 0
            self._seen[key] = [now, 1, 0]
            if held:
                record.msg, record.args = f"{record.getMessage()} (… {held:,} more in the last {self.window:g} s)", None
            if len(self._seen) > 10_000:  # templates are few; guard against a flood of distinct ones
                self._seen.clear()
            return True
        state[1] += 1
        if state[1] <= self.burst:
            return True
        state[2] += 1
        return False


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info or record.exc_text:  # the filters' scrubbed text when they made one
            out["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


_installed: logging.Handler | None = None


def setup(level: int, *, fmt: str = "text", mask: bool = True) -> logging.Handler:
    """Configure the root logger for this process (replacing the handler an earlier call put)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RateLimit())
    if mask:
        handler.addFilter(MaskFilter())
    handler.addFilter(ScrubFilter())
    global _installed
    root = logging.getLogger()
    if _installed is not None:  # ours from an earlier call; handlers others installed stay
        root.removeHandler(_installed)
    _installed = handler
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))
    return handler


__all__ = ["JsonFormatter", "MaskFilter", "RateLimit", "mask_numbers", "setup"]
