"""CSV in and out: records read from a list's lines (a malformed record costs its own line
alone), and the one writer of every CSV the project produces (formula cells escaped).

Reading
-------
A line without a quote is split as it is (most rows of most lists). A line with a quote goes
through the csv module, with the following lines while a quoted field holds a line break (an
address typed with Alt+Enter in Excel). A record that never closes, fails to parse, runs over
`MAX_RECORD_LINES` or comes out wider than the header is given up: its *first line* is reported
malformed and reading starts again at the line after it — so one stray quote costs one row, not
the rows after it.

Writing
-------
A spreadsheet treats a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return as a formula (CSV injection, OWASP). Every CSV we write goes through `CsvWriter`, which
prefixes such a text cell with a single quote (shown by Excel as the text itself). A cell that
is a plain number — an E.164 phone ``+8613800138000``, ``-1.5`` — is no formula and stays as it
is. JSON output keeps the raw values.
"""

from __future__ import annotations

import csv
import io
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any

MAX_RECORD_LINES = 50
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def sniff_delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff("\n".join(text.split("\n")[:20]), delimiters=",\t;").delimiter
    except csv.Error:
        return ","


class Records:
    """(line number, fields — None for a malformed record —, error, raw text) for each record of
    `lines` (text lines with their line ends). Set `width` (the header's) once the header is
    read: a record over several lines wider than that is given up."""

    def __init__(self, lines: Iterable[str], delimiter: str) -> None:
        self._source = enumerate(lines, 1)
        self._again: deque[tuple[int, str]] = deque()
        self.delimiter = delimiter
        self.width: int | None = None

    def _next(self) -> tuple[int, str] | None:
        if self._again:
            return self._again.popleft()
        return next(self._source, None)

    def __iter__(self) -> Iterator[tuple[int, list[str] | None, str, str]]:
        delimiter = self.delimiter
        pending: list[tuple[int, str]] = []
        while True:
            item = self._next()
            if item is None:
                if not pending:
                    return
                yield self._give_up(pending, "a quoted field is never closed")
                continue
            number, line = item
            if not pending and '"' not in line:
                text = line.rstrip("\r\n")
                yield number, text.split(delimiter), "", text
                continue
            pending.append(item)
            text = "".join(t for _, t in pending)
            try:
                fields = next(csv.reader([text], delimiter=delimiter, strict=True), [])
            except csv.Error as exc:
                unclosed = "unexpected end of data" in str(exc)
                if unclosed and len(pending) < MAX_RECORD_LINES:
                    continue  # a quoted field goes on over the next line
                yield self._give_up(pending, "a quoted field is never closed" if unclosed or len(pending) > 1
                                    else str(exc))
                continue
            if len(pending) > 1 and self.width is not None and len(fields) > self.width:
                yield self._give_up(pending, "a quoted field is never closed")
                continue
            first = pending[0][0]
            pending.clear()
            yield first, fields, "", text.rstrip("\r\n")

    def _give_up(self, pending: list[tuple[int, str]], error: str) -> tuple[int, None, str, str]:
        """Report the record's first line malformed; read the others again."""
        (number, line), rest = pending[0], pending[1:]
        self._again.extendleft(reversed(rest))
        pending.clear()
        return number, None, error, line.rstrip("\r\n")


def safe_cell(value: Any) -> Any:
    """`value` as a spreadsheet takes it for text: a text cell that would start a formula gets a
    leading single quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class CsvWriter:
    """csv.writer with every text cell through `safe_cell`."""

    def __init__(self, out: IO[str], **kw: Any) -> None:
        kw.setdefault("lineterminator", "\n")
        self._writer = csv.writer(out, **kw)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows of dicts as CSV text with a header, formula cells escaped (None: an empty cell)."""
    out = io.StringIO()
    writer = CsvWriter(out)
    writer.writerow(columns)
    for r in rows:
        writer.writerow("" if r.get(c) is None else r.get(c) for c in columns)
    return out.getvalue()


__all__ = ["MAX_RECORD_LINES", "CsvWriter", "Records", "safe_cell", "sniff_delimiter", "to_csv"]
