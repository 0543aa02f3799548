"""Reading the small files: the agent roster and do-not-call lists (same encodings and
delimiters as contact lists)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from dialer.dialplan import Kind, NotDialable, parse_number
from dialer.csvio import sniff_delimiter
from dialer.importer import check_encoding, detect_encoding, header_key, unreadable
from dialer.store.repo import AgentRow, InvalidInput

AGENT_COLUMNS = ("staffid", "name", "extension", "queue", "skill", "role")
_AGENT_ALIASES = {
    "staffid": "staffid", "工号": "staffid", "员工号": "staffid", "loginid": "staffid",
    "name": "name", "姓名": "name", "坐席姓名": "name",
    "extension": "extension", "exten": "extension", "分机": "extension", "分机号": "extension",
    "queue": "queue", "group": "queue", "技能组": "queue", "队列": "queue",
    "skill": "skill", "技能值": "skill", "role": "role", "角色": "role",
    "sector": "sector", "部门": "sector",
}


def _text(path: str | Path, encoding: str) -> str:
    try:
        data = Path(path).read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise unreadable(path, exc) from None
    enc = detect_encoding(data, complete=True) if encoding == "auto" else check_encoding(encoding)
    return data.decode(enc, errors="replace").lstrip("\ufeff")


def read_agents(path: str | Path, encoding: str = "auto") -> list[AgentRow]:
    """Agents from a CSV (staffid,name,extension,queue,skill,role[,sector]). Raises
    InvalidInput naming the file, line and problem for the first bad row (a roster is
    all-or-nothing: half a floor logged in is worse than none)."""
    text = _text(path, encoding)
    reader = csv.reader(io.StringIO(text), delimiter=sniff_delimiter(text))
    header = next(reader, None)
    if not header:
        raise InvalidInput(f"{path}: empty file")
    columns = {i: _AGENT_ALIASES.get(header_key(h)) for i, h in enumerate(header)}
    missing = {"staffid", "extension"} - set(columns.values())
    if missing:
        raise InvalidInput(f"{path}: missing column(s) {', '.join(sorted(missing))}; found: {', '.join(header)}")
    rows = []
    for row in reader:
        if not any(c.strip() for c in row):
            continue
        values = {columns[i]: c.strip() for i, c in enumerate(row) if columns.get(i)}
        try:
            skill = int(values.get("skill") or 1)
            agent = AgentRow(values.get("staffid", ""), values.get("name", ""), values.get("extension", ""),
                             values.get("queue", ""), skill, values.get("role") or "agent",
                             values.get("sector", "")).check()
        except ValueError:
            raise InvalidInput(f"{path}, line {reader.line_num}: skill must be a whole number") from None
        except InvalidInput as exc:
            raise InvalidInput(f"{path}, line {reader.line_num}: {exc}") from None
        rows.append(agent)
    return rows


def read_dnc(path: str | Path, encoding: str = "auto") -> tuple[list[str], list[tuple[int, str]]]:
    """E.164 numbers from a file of one number a line, or a CSV with a phone column; and the
    (line, reason) of every line that held no valid number."""
    text = _text(path, encoding)
    reader = csv.reader(io.StringIO(text), delimiter=sniff_delimiter(text))
    phones: list[str] = []
    bad: list[tuple[int, str]] = []
    column = 0
    for row in reader:
        if not any(c.strip() for c in row):
            continue
        if reader.line_num == 1:
            from dialer.importer import ALIASES

            keys = [ALIASES.get(header_key(c)) for c in row]
            if "phone" in keys:
                column = keys.index("phone")
                continue
        cell = row[column] if column < len(row) else ""
        try:
            info = parse_number(cell)
        except NotDialable as exc:
            bad.append((reader.line_num, str(exc)))
            continue
        if info.kind is Kind.INVALID:
            bad.append((reader.line_num, f"invalid number {cell.strip()!r}"))
            continue
        phones.append(info.e164)
    return phones, bad
