"""Contact lists from CSV into a campaign, streaming, with a report of every refused row.

The pipeline is a chain of generators: bytes → text (the detected or given encoding) → CSV rows
(the sniffed delimiter) → checked contacts or rejects → inserted a chunk at a time. Memory holds
one chunk, never the file: duplicates are found by asking the database about each chunk's
numbers (a number already stored by this batch is a duplicate within the file, one stored by
another batch is already in the campaign), the do-not-call list likewise.

Every row ends up in exactly one of: imported, duplicates, dnc, rejected (any other reason), so
``rows = imported + duplicates + dnc + rejected``. Refused rows are stored with their line number,
reason and text, and written to the `rejects` CSV when one is asked for.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from charset_normalizer import from_bytes
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from dialer.dialplan import DialPlan, NotDialable, parse_number
from dialer.errors import DialerError
from dialer.store.models import Campaign, Contact, DoNotCall, ImportBatch, RejectedRow, utcnow
from dialer.store.repo import plan_of
from dialer.window import WindowError, zone

CHUNK_ROWS = 5000
SAMPLE_BYTES = 64 * 1024
FIELDS = ("phone", "name", "customer_id", "priority", "timezone")
MAX_LEN = {"name": 100, "customer_id": 64, "phone": 64, "timezone": 64}

#: Header aliases (compared after lower-casing and removing spaces, '_', '-' and '.').
ALIASES: dict[str, str] = {}
for _field, _names in {
    "phone": ["phone", "mobile", "tel", "telephone", "number", "phonenumber", "mobilephone", "cellphone",
              "cell", "msisdn", "电话", "手机", "手机号", "手机号码", "号码", "联系电话", "电话号码",
              "联系方式", "客户电话", "联系手机"],
    "name": ["name", "fullname", "customername", "customer", "contact", "contactname", "姓名",
             "客户姓名", "客户名称", "名称", "客户名", "联系人"],
    "customer_id": ["customerid", "custid", "clientid", "externalid", "客户编号", "客户id", "客户代码",
                    "编号"],
    "priority": ["priority", "优先级"],
    "timezone": ["timezone", "tz", "时区"],
}.items():
    for _name in _names:
        ALIASES[_name] = _field


class ImportFailed(DialerError):
    """The file as a whole cannot be imported (unreadable, no phone column, bad mapping)."""


def header_key(name: str) -> str:
    return "".join(ch for ch in name.strip().lower() if ch not in " _-.\u3000\ufeff")


@dataclass
class ImportSummary:
    file: str
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    dnc: int = 0
    rejected: int = 0
    batch: int | None = None
    encoding: str = ""
    delimiter: str = ","
    columns: dict[str, str] = field(default_factory=dict)

    def contract(self) -> dict[str, Any]:
        """The JSON promised by the CLI contract."""
        return {k: v for k, v in asdict(self).items()
                if k in ("file", "rows", "imported", "duplicates", "dnc", "rejected", "batch")}


@dataclass(frozen=True, slots=True)
class Reject:
    line: int
    reason: str
    raw: str
    kind: str = "rejected"  # rejected | duplicates | dnc


# -- encodings and dialects ------------------------------------------------------------------------

_CHINESE_GB = {"gb2312", "gbk", "gb18030", "cp936", "hz"}


def detect_encoding(sample: bytes) -> str:
    """The encoding of a file from its first bytes: a BOM, then UTF-8 if it decodes, then
    charset-normalizer's best guess (GB2312 and GBK are read as their superset GB18030)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(sample).best()
    if best is None:
        raise ImportFailed("cannot tell the file's encoding; give it with --encoding (utf-8, gbk, …)")
    name = best.encoding.replace("_", "").lower()
    return "gb18030" if name in _CHINESE_GB else best.encoding


def check_encoding(name: str) -> str:
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise ImportFailed(f"unknown encoding {name!r}") from None
    return "gb18030" if info.name in _CHINESE_GB else info.name


def sniff_delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff("\n".join(text.split("\n")[:20]), delimiters=",\t;").delimiter
    except csv.Error:
        return ","


# -- mapping columns -------------------------------------------------------------------------------

def map_columns(header: Sequence[str], overrides: Mapping[str, str]) -> dict[int, str]:
    """Column index → field (a known field or ``extra:<header>``). Raises ImportFailed when no
    column is the phone, naming the headers found."""
    keys = [header_key(h) for h in header]
    mapping: dict[int, str] = {}
    over = {header_key(k): v for k, v in overrides.items()}
    for target in over.values():
        if target not in FIELDS and target != "-":
            raise ImportFailed(f"--map: unknown field {target!r} (one of {', '.join(FIELDS)}, or - to skip)")
    unknown = set(over) - set(keys)
    if unknown:
        raise ImportFailed(f"--map names column(s) not in the file: {', '.join(sorted(unknown))}; "
                           f"found: {', '.join(header)}")
    taken: set[str] = set()
    for i, key in enumerate(keys):
        target = over.get(key) or ALIASES.get(key)
        if target == "-":
            continue
        if target and target not in taken:
            mapping[i] = target
            taken.add(target)
        else:
            mapping[i] = "extra:" + header[i].strip().lstrip("\ufeff")
    if "phone" not in taken:
        raise ImportFailed("no phone column; found: " + ", ".join(h.strip() or "(empty)" for h in header)
                           + " (name one with --map COLUMN=phone)")
    return mapping


# -- the pipeline ----------------------------------------------------------------------------------

def _rows(stream: io.TextIOBase, delimiter: str) -> Iterator[tuple[int, list[str] | None, str]]:
    """(line number, fields or None on a CSV error, error text)."""
    reader = csv.reader(stream, delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, None, str(exc)
            continue
        yield reader.line_num, row, ""


def _raw(row: Sequence[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(row)
    return out.getvalue()


def _check_row(row: list[str], mapping: dict[int, str], plan: DialPlan, line: int,
               delimiter: str) -> dict[str, Any] | Reject:
    values: dict[str, str] = {}
    extra: dict[str, str] = {}
    for i, cell in enumerate(row):
        target = mapping.get(i)
        if target is None:
            if cell.strip():
                extra[f"column{i + 1}"] = cell
            continue
        if target.startswith("extra:"):
            if cell != "":
                extra[target[6:]] = cell
        else:
            values[target] = cell.strip()
    raw_phone = values.get("phone", "")
    for key, value in values.items():
        if "\n" in value or "\r" in value:
            return Reject(line, f"line break inside {key}", _raw(row, delimiter))
        if len(value) > MAX_LEN.get(key, 1000):
            return Reject(line, f"{key} longer than {MAX_LEN[key]} characters", _raw(row, delimiter))
    if not raw_phone:
        return Reject(line, "no phone number", _raw(row, delimiter))
    try:
        info = parse_number(raw_phone, plan.home_area_code)
        plan.decide(info)
    except NotDialable as exc:
        return Reject(line, str(exc), _raw(row, delimiter))
    priority = 0
    if values.get("priority"):
        try:
            priority = int(values["priority"])
        except ValueError:
            return Reject(line, f"priority is not a whole number: {values['priority']!r}", _raw(row, delimiter))
    timezone = values.get("timezone") or None
    if timezone:
        try:
            zone(timezone)
        except WindowError:
            return Reject(line, f"unknown timezone {timezone!r}", _raw(row, delimiter))
    return {
        "phone": info.e164, "raw_phone": raw_phone, "extension": info.extension, "kind": info.kind.value,
        "area_code": info.area_code, "province": info.province, "city": info.city, "isp": info.isp,
        "name": values.get("name", ""), "customer_id": values.get("customer_id", ""),
        "extra": extra or None, "priority": priority, "timezone": timezone, "_line": line,
        "_raw": row,
    }


class _Counting(io.RawIOBase):
    """A binary reader that counts the bytes read, for the progress bar."""

    def __init__(self, inner: BinaryIO, progress: Callable[[int], None] | None) -> None:
        self.inner, self.progress, self.count = inner, progress, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.inner.readinto(buffer)  # type: ignore[attr-defined]
        self.count += n or 0
        if self.progress and n:
            self.progress(n)
        return n or 0


def import_file(
    engine: Engine, campaign_name: str, path: str | os.PathLike[str], *, encoding: str = "auto",
    mapping: Mapping[str, str] | None = None, dry_run: bool = False,
    rejects: str | os.PathLike[str] | None = None, progress: Callable[[int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS, now: dt.datetime | None = None,
) -> ImportSummary:
    """Import a CSV list into a campaign. Raises ImportFailed (the file as a whole) or NotFound
    (the campaign); a bad row never stops the import, it is counted and reported."""
    path = Path(path)
    now = now or utcnow()
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read: {exc.strerror}") from None
    with handle, Session(engine, expire_on_commit=False) as s:
        from dialer.store.repo import get_campaign  # local: repo imports nothing of ours back

        campaign = get_campaign(s, campaign_name)
        plan = plan_of(campaign)
        sample = handle.read(SAMPLE_BYTES)
        handle.seek(0)
        enc = detect_encoding(sample) if encoding == "auto" else check_encoding(encoding)
        head_text = sample.decode(enc, errors="replace")
        delimiter = sniff_delimiter(head_text.lstrip("\ufeff"))
        stream = io.TextIOWrapper(io.BufferedReader(_Counting(handle, progress)), encoding=enc,
                                  errors="replace", newline="")
        rows = _rows(stream, delimiter)
        first = next(rows, None)
        if first is None or first[1] is None or not any(c.strip() for c in first[1]):
            raise ImportFailed(f"{path}: no header row")
        header = [h.lstrip("\ufeff") for h in first[1]]
        columns = map_columns(header, mapping or {})
        summary = ImportSummary(str(path), encoding=enc, delimiter=delimiter,
                                columns={header[i]: f for i, f in columns.items()})
        batch = ImportBatch(campaign_id=campaign.id, file=str(path), encoding=enc, started_at=now)
        s.add(batch)
        s.flush()
        reject_out = _RejectWriter(rejects, delimiter) if rejects else None
        zones: set[str] = set(campaign.contact_timezones)
        try:
            chunk: list[dict[str, Any] | Reject] = []
            for line, row, error in rows:
                if row is None:
                    chunk.append(Reject(line, f"malformed CSV: {error}", ""))
                elif not any(c.strip() for c in row):
                    continue  # blank lines are not rows
                elif any("\ufffd" in c for c in row):
                    chunk.append(Reject(line, f"bytes that are not {enc}", _raw(row, delimiter)))
                else:
                    chunk.append(_check_row(row, columns, plan, line, delimiter))
                if len(chunk) >= chunk_rows:
                    _flush(s, campaign, batch, chunk, summary, reject_out, zones, now)
                    chunk = []
            _flush(s, campaign, batch, chunk, summary, reject_out, zones, now)
            batch.rows, batch.imported, batch.duplicates = summary.rows, summary.imported, summary.duplicates
            batch.dnc, batch.rejected, batch.finished_at = summary.dnc, summary.rejected, utcnow()
            if zones != set(campaign.contact_timezones):
                campaign.contact_timezones = sorted(zones)
            if dry_run:
                s.rollback()
            else:
                s.commit()
                summary.batch = batch.id
        finally:
            if reject_out:
                reject_out.close()
    return summary


class _RejectWriter:
    def __init__(self, path: str | os.PathLike[str], delimiter: str) -> None:
        try:
            self.handle = open(path, "w", encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise ImportFailed(f"{path}: cannot write the rejects file: {exc.strerror}") from None
        self.writer = csv.writer(self.handle)
        self.writer.writerow(["line", "reason", "row"])

    def write(self, r: Reject) -> None:
        self.writer.writerow([r.line, r.reason, r.raw])

    def close(self) -> None:
        self.handle.close()


def _flush(s: Session, campaign: Campaign, batch: ImportBatch, chunk: list[dict[str, Any] | Reject],
           summary: ImportSummary, reject_out: _RejectWriter | None, zones: set[str], now: dt.datetime) -> None:
    """Insert one chunk: refuse what the database says is a duplicate or on the DNC list."""
    if not chunk:
        return
    summary.rows += len(chunk)
    good: dict[str, dict[str, Any]] = {}
    refused: list[Reject] = [r for r in chunk if isinstance(r, Reject)]
    for item in chunk:
        if isinstance(item, Reject):
            continue
        earlier = good.get(item["phone"])
        if earlier is not None:
            refused.append(Reject(item["_line"], f"duplicate of line {earlier['_line']} in this file",
                                  _raw(item["_raw"], summary.delimiter), "duplicates"))
        else:
            good[item["phone"]] = item
    phones = list(good)
    if phones:
        stored = dict(s.execute(select(Contact.phone, Contact.batch_id).where(
            Contact.campaign_id == campaign.id, Contact.phone.in_(phones))).all())
        blocked = set(s.scalars(select(DoNotCall.phone).where(
            DoNotCall.phone.in_(phones), (DoNotCall.until.is_(None)) | (DoNotCall.until > now))))
        for phone in phones:
            item = good[phone]
            if phone in stored:
                why = "duplicate of an earlier row in this file" if stored[phone] == batch.id \
                    else "already in the campaign"
                refused.append(Reject(item["_line"], why, _raw(item["_raw"], summary.delimiter), "duplicates"))
                del good[phone]
            elif phone in blocked:
                refused.append(Reject(item["_line"], "on the do-not-call list", _raw(item["_raw"], summary.delimiter), "dnc"))
                del good[phone]
    if good:
        rows = []
        for item in good.values():
            row = {k: v for k, v in item.items() if not k.startswith("_")}
            row.update(campaign_id=campaign.id, batch_id=batch.id, status="pending", attempts=0,
                       next_attempt_at=now, created_at=now)
            if row["timezone"]:
                zones.add(row["timezone"])
            rows.append(row)
        s.execute(insert(Contact), rows)
        summary.imported += len(rows)
    if refused:
        refused.sort(key=lambda r: r.line)
        s.execute(insert(RejectedRow), [
            {"batch_id": batch.id, "line": r.line, "reason": r.reason[:200], "raw": r.raw} for r in refused])
        for r in refused:
            if r.kind == "duplicates":
                summary.duplicates += 1
            elif r.kind == "dnc":
                summary.dnc += 1
            else:
                summary.rejected += 1
            if reject_out:
                reject_out.write(r)


def summary_json(summary: ImportSummary) -> str:
    return json.dumps(summary.contract(), ensure_ascii=False)


__all__ = ["ImportFailed", "ImportSummary", "import_file", "detect_encoding", "map_columns", "ALIASES"]
