"""Characters that may not be in a value that reaches the CTI wire or the database.

The wire's frames are ``key:value`` lines. A line break in a value would inject keys; other
separators and controls — C0 (tab included) and C1 controls, DEL, NEL, the Unicode line and
paragraph separators, the byte order mark — are taken as line ends by some readers, garble the
agents' screens, or (NUL) cannot be stored in PostgreSQL text. Every entry point (list import,
roster files, command-line options) refuses them with the name of the field, and the codec
refuses them again as the last line of defence (dialer/cti/protocol.py).
"""

from __future__ import annotations

import re

_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]")

_NAMES = {"\n": "line break", "\r": "line break", "\x00": "NUL", "\t": "tab", "\x85": "line break (NEL)",
          "\u2028": "line separator U+2028", "\u2029": "paragraph separator U+2029", "\ufeff": "byte order mark",
          "\x7f": "DEL"}


def forbidden(value: str) -> str:
    """Name the first character of `value` that may not be in a value ("" if none)."""
    m = _FORBIDDEN.search(value)
    if m is None:
        return ""
    ch = m.group()
    return _NAMES.get(ch) or f"control character U+{ord(ch):04X}"


__all__ = ["forbidden"]
