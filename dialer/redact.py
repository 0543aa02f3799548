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
from collections.abc import Callable

_AUTHORITY = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*(?:://|//|:))(?P<user>[^:@/]*):(?P<password>.*)@"
                        r"(?P<rest>[^@]*)$", re.DOTALL)
_secrets: set[str] = set()
_lock = threading.Lock()


def split_password(url: str) -> tuple[str, str] | None:
    """(the URL with its password masked, the password), or None when it names none. (The
    query string is apart: an ``@`` in it is not the password's.)"""
    head, sep, query = url.partition("?")
    m = _AUTHORITY.match(head)
    if m is None or not m.group("password"):
        return None
    return f"{m.group('scheme')}{m.group('user')}:***@{m.group('rest')}{sep}{query}", m.group("password")


_QUERY_PASSWORD = re.compile(r"([?&](?:password|passwd|pwd)=)([^&#]*)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """`url` with its password masked as ``***`` (in its user part or as a ``password=`` query
    parameter); any text without one as it is."""
    found = split_password(url)
    return _QUERY_PASSWORD.sub(r"\1***", found[0] if found else url)


def remember(url: str) -> None:
    """Keep the password of `url` (and each part of it around an ``@``) to scrub from messages."""
    from urllib.parse import unquote

    passwords = [m.group(2) for m in _QUERY_PASSWORD.finditer(url)]
    found = split_password(url)
    if found:
        passwords.append(found[1])
    for password in passwords:
        _remember(password)
        _remember(unquote(password))


def _remember(password: str) -> None:
    if not password:
        return
    with _lock:
        _secrets.add(password)
        _secrets.update(p for p in re.split(r"[@/:]", password) if len(p) >= 2)


def scrub(text: str) -> str:
    """`text` with every remembered password (or part of one) masked."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


def rewrite_record(record: logging.LogRecord, fn: Callable[[str], str]) -> None:
    """Apply `fn` to a log record's message and to the text of its exception, if any (a
    traceback quotes the values it was raised with)."""
    message = record.getMessage()
    clean = fn(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = fn(record.exc_text)


class ScrubFilter(logging.Filter):
    """Masks remembered passwords in every log record (its message, its arguments and its
    exception's text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            rewrite_record(record, scrub)
        return True


__all__ = ["ScrubFilter", "redact_url", "remember", "scrub", "split_password"]
