"""Passwords never printed: database URLs redacted in every message, parsed or not.

A URL's password is whatever lies between the first ``:`` of its user part and the *last* ``@``
before the host (a password may hold an unescaped ``@`` or ``/``). `redact_url` masks it in a
URL that may not even parse; `remember` keeps the password of the URL this process was given,
so that `scrub` (used on every error message and, through `ScrubFilter`, on every log record)
removes it from text a driver wrote — "failed to resolve host 'PW@127.0.0.2'" included.
"""

from __future__ import annotations

import logging
import re
import threading

_AUTHORITY = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*(?:://|//|:))(?P<user>[^:@/]*):(?P<password>.*)@"
                        r"(?P<rest>[^@]*)$", re.DOTALL)
_secrets: set[str] = set()
_lock = threading.Lock()


def split_password(url: str) -> tuple[str, str] | None:
    """(the URL with its password masked, the password), or None when it names none."""
    m = _AUTHORITY.match(url)
    if m is None or not m.group("password"):
        return None
    return f"{m.group('scheme')}{m.group('user')}:***@{m.group('rest')}", m.group("password")


def redact_url(url: str) -> str:
    """`url` with its password masked as ``***``; any text without one as it is."""
    found = split_password(url)
    return found[0] if found else url


def remember(url: str) -> None:
    """Keep the password of `url` (and each part of it around an ``@``) to scrub from messages."""
    found = split_password(url)
    if not found:
        return
    password = found[1]
    with _lock:
        _secrets.add(password)
        _secrets.update(p for p in re.split(r"[@/:]", password) if len(p) >= 2)


def scrub(text: str) -> str:
    """`text` with every remembered password (or part of one) masked."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


class ScrubFilter(logging.Filter):
    """Masks remembered passwords in every log record (its message and arguments, formatted)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            clean = scrub(message)
            if clean != message:
                record.msg, record.args = clean, None
        return True


__all__ = ["ScrubFilter", "redact_url", "remember", "scrub", "split_password"]
