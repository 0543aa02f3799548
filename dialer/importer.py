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

import datetime as dt
import gc
import io
import json
import os
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from dialer.charsets import SAMPLE_BYTES, EncodingUnknown, LineDecoder, canonical, detect
from dialer.csvio import CsvWriter, Records, sniff_delimiter
from dialer.dialplan import DialPlan, NotDialable, parse_number
from dialer.errors import DialerError
from dialer.text import forbidden
from dialer.store.listload import bulk_insert, db_time, load_chunk
from dialer.store.models import Campaign, ImportBatch, utcnow
from dialer.store.repo import plan_of
from dialer.window import WindowError, zone

CHUNK_ROWS = 2000
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


def unreadable(path: str | os.PathLike[str], exc: OSError | ValueError, what: str = "cannot read") -> ImportFailed:
    """The one-line error for a file that cannot be opened (a ValueError: a NUL in its name)."""
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a file name"
    return ImportFailed(f"{os.fspath(path)!s:.200}: {what}: {why}")


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
    #: rows read in the other of UTF-8 and GB18030 (a file stitched from both)
    other_encoding_rows: int = 0
    #: rows with cells beyond the header's columns (kept as extra data: column7, …)
    extra_cells_rows: int = 0

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


# -- encodings -------------------------------------------------------------------------------------

def check_encoding(name: str) -> str:
    import codecs

    try:
        if not getattr(codecs.lookup(name), "_is_text_encoding", True):
            raise LookupError(name)
        return canonical(name)
    except (LookupError, ValueError):  # (ValueError: a NUL in the name)
        raise ImportFailed(f"unknown encoding {name[:40]!r}") from None


def detect_encoding(sample: bytes, complete: bool = False) -> str:
    """The file's encoding from its first bytes (dialer/charsets.py); ImportFailed if it cannot
    be told."""
    try:
        return detect(sample, complete=complete)
    except EncodingUnknown as exc:
        raise ImportFailed(str(exc)) from None


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
            mapping[i] = "-"
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

def _lines(handle: BinaryIO, encoding: str, decoder: LineDecoder | None) -> Iterator[str]:
    """The file's text lines, each decoded by itself (a line that does not decode holds U+FFFD
    and is refused as a row); UTF-16 through a text stream."""
    if decoder is None:
        yield from io.TextIOWrapper(handle, encoding=encoding, errors="replace", newline="")
        return
    for raw in handle:
        text = decoder.decode(raw)
        yield text if text is not None else raw.decode(encoding, errors="replace")


def _storable(raw: str) -> str:
    """A refused row's text as it can be stored and written (PostgreSQL text holds no NUL)."""
    return raw.replace("\x00", "\\x00")


class _Good(NamedTuple):
    """A row that passed every check, in the order of `CONTACT_COLUMNS` (dialer/store/listload.py)
    after its first two."""

    line: int
    raw: str
    phone: str
    raw_phone: str
    extension: str
    kind: str
    area_code: str
    province: str
    city: str
    isp: str
    name: str
    customer_id: str
    priority: int
    timezone: str | None
    extra: str | None


class _Columns:
    """Where each field is in a row, computed once from the header mapping."""

    def __init__(self, mapping: dict[int, str], width: int) -> None:
        where = {f: i for i, f in mapping.items() if f in FIELDS}
        self.phone = where["phone"]
        self.name, self.customer_id = where.get("name", -1), where.get("customer_id", -1)
        self.priority, self.timezone = where.get("priority", -1), where.get("timezone", -1)
        self.extras = [(i, f[6:]) for i, f in sorted(mapping.items()) if f.startswith("extra:")]
        self.width = width


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _cell(row: list[str], i: int) -> str:
    return row[i].strip() if 0 <= i < len(row) else ""


def _check_row(row: list[str], cols: _Columns, plan: DialPlan, line: int, raw: str) -> _Good | Reject:
    """Check one row; a Reject says why it cannot be imported."""
    if not raw.isprintable():
        for i, cell in enumerate(row):
            bad = forbidden(cell)
            if bad:
                return Reject(line, f"{bad} inside {_column_name(cols, i)}", raw)
    raw_phone, name, customer_id = _cell(row, cols.phone), _cell(row, cols.name), _cell(row, cols.customer_id)
    if not raw_phone:
        return Reject(line, "no phone number", raw)
    for field_name, value in (("phone", raw_phone), ("name", name), ("customer_id", customer_id)):
        if len(value) > MAX_LEN[field_name]:
            return Reject(line, f"{field_name} longer than {MAX_LEN[field_name]} characters", raw)
    try:
        info = parse_number(raw_phone, plan.home_area_code)
        plan.decide(info)
    except NotDialable as exc:
        return Reject(line, str(exc), raw)
    priority = 0
    text = _cell(row, cols.priority)
    if text:
        try:
            priority = int(text)
        except ValueError:
            return Reject(line, f"priority is not a whole number: {text!r}", raw)
    timezone = _cell(row, cols.timezone) or None
    if timezone:
        try:
            zone(timezone)
        except WindowError:
            return Reject(line, f"unknown timezone {timezone!r}", raw)
    extra = {key: row[i] for i, key in cols.extras if i < len(row) and row[i] != ""}
    for i in range(cols.width, len(row)):  # cells beyond the header
        if row[i].strip():
            extra[f"column{i + 1}"] = row[i]
    return _Good(line, raw, info.e164, raw_phone, info.extension, info.kind.value, info.area_code,
                 info.province, info.city, info.isp, name, customer_id, priority, timezone,
                 _JSON.encode(extra) if extra else None)


def _column_name(cols: _Columns, i: int) -> str:
    for key in ("phone", "name", "customer_id", "priority", "timezone"):
        if getattr(cols, key) == i:
            return key
    return dict(cols.extras).get(i, f"column {i + 1}")


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
    chunk_rows: int = CHUNK_ROWS, now: dt.datetime | None = None, commit_chunks: bool = False,
    pause_gc: bool = True,
) -> ImportSummary:
    """Import a CSV list into a campaign. Raises ImportFailed (the file as a whole) or NotFound
    (the campaign); a bad row never stops the import, it is counted and reported.

    The file goes in as one transaction, unless `commit_chunks` (the worker's inbox: a chunk per
    short transaction, so that the import never holds the write lock the worker's own writes
    wait for). `pause_gc` turns the cyclic collector off for the loop (not inside a daemon)."""
    path = Path(path)
    now = now or utcnow()
    try:
        handle = path.open("rb")
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise unreadable(path, exc) from None
    with handle, Session(engine, expire_on_commit=False) as s:
        from dialer.store.repo import get_campaign  # local: repo imports nothing of ours back

        campaign = get_campaign(s, campaign_name)
        plan = plan_of(campaign)
        sample = handle.read(SAMPLE_BYTES)
        handle.seek(0)
        enc = (detect_encoding(sample, complete=len(sample) < SAMPLE_BYTES) if encoding == "auto"
               else check_encoding(encoding))
        decoder = None if enc.startswith("utf-16") else LineDecoder(enc, detected=encoding == "auto")
        delimiter = sniff_delimiter(sample.decode(enc, errors="replace").lstrip("\ufeff"))
        records = Records(_lines(io.BufferedReader(_Counting(handle, progress)), enc, decoder), delimiter)
        rows = iter(records)
        first = next(rows, None)
        if first is None or first[1] is None or not any(c.strip() for c in first[1]):
            raise ImportFailed(f"{path}: no header row")
        header = [h.lstrip("\ufeff") for h in first[1]]
        if any("\ufffd" in h for h in header):
            raise ImportFailed(f"{path}: the header row is not {enc}; give the file's encoding with --encoding")
        records.width = len(header)
        header_switched = decoder.switched if decoder else 0
        columns = map_columns(header, mapping or {})
        cols = _Columns(columns, len(header))
        summary = ImportSummary(str(path), encoding=enc, delimiter=delimiter,
                                columns={header[i]: f for i, f in columns.items() if f != "-"})
        batch = ImportBatch(campaign_id=campaign.id, file=str(path), encoding=enc, started_at=now)
        s.add(batch)
        s.flush()
        commit_chunks = commit_chunks and not dry_run
        if commit_chunks:
            s.commit()
        reject_out = _RejectWriter(rejects, delimiter) if rejects else None
        zones: set[str] = set(campaign.contact_timezones)
        # The loop makes millions of short-lived objects and no reference cycles; the cyclic
        # collector would walk the heap every 700 of them for nothing (about 15 % of the time).
        gc_was_enabled = gc.isenabled()
        if pause_gc:
            gc.disable()

        def write(chunk: list[_Good | Reject]) -> None:
            _flush(s, campaign, batch, chunk, summary, reject_out, zones, now)
            if commit_chunks:
                s.commit()

        writer = _ChunkWriter(write)
        width = len(header)
        finished = False
        try:
            chunk: list[_Good | Reject] = []
            for line, row, error, raw in rows:
                if row is None:
                    chunk.append(Reject(line, f"malformed CSV: {error}", raw))
                elif not raw.replace(delimiter, "").strip():
                    continue  # blank lines are not rows
                elif "\ufffd" in raw:
                    chunk.append(Reject(line, decoder.describe() if decoder else f"bytes that are not {enc}", raw))
                else:
                    if len(row) > width and any(c.strip() for c in row[width:]):
                        summary.extra_cells_rows += 1
                    chunk.append(_check_row(row, cols, plan, line, raw))
                if len(chunk) >= chunk_rows:
                    writer.put(chunk)
                    chunk = []
            writer.put(chunk)
            writer.close()
            summary.other_encoding_rows = decoder.switched - header_switched if decoder else 0
            batch.rows, batch.imported, batch.duplicates = summary.rows, summary.imported, summary.duplicates
            batch.dnc, batch.rejected, batch.finished_at = summary.dnc, summary.rejected, utcnow()
            if zones != set(campaign.contact_timezones):
                campaign.contact_timezones = sorted(zones)
            if dry_run:
                s.rollback()
            else:
                s.commit()
                summary.batch = batch.id
            finished = True
        finally:
            writer.close(raise_error=False)
            if gc_was_enabled and pause_gc:
                gc.enable()
            if reject_out:  # in place only when the import finished: never half a report
                reject_out.close(keep=finished)
    return summary


class _ChunkWriter:
    """Writes chunks to the database on a thread of its own while the next chunk is parsed:
    the database spends most of an insert outside the GIL. At most two chunks wait, so memory
    stays bounded; an error in the writer stops the import at the next chunk."""

    def __init__(self, write: Callable[[list[Any]], None]) -> None:
        self._write = write
        self._queue: queue.Queue[list[Any] | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            if self._error is None:
                try:
                    self._write(chunk)
                except BaseException as exc:  # handed to the importing thread
                    self._error = exc

    def put(self, chunk: list[Any]) -> None:
        if self._error is not None:
            raise self._error
        if chunk:
            self._queue.put(chunk)

    def close(self, raise_error: bool = True) -> None:
        """Wait for every chunk to be written; raise the writer's error, if any."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if raise_error and self._error is not None:
            raise self._error


class _RejectWriter:
    """The rejects CSV, written beside its final name and moved there when the import finishes
    (an interrupted import leaves no half report)."""

    def __init__(self, path: str | os.PathLike[str], delimiter: str) -> None:
        self.path = Path(path)
        self.part = self.path.with_name(self.path.name + ".part")
        try:
            self.handle = open(self.part, "w", encoding="utf-8-sig", newline="")
        except (OSError, ValueError) as exc:
            raise unreadable(path, exc, "cannot write the rejects file") from None
        self.writer = CsvWriter(self.handle, lineterminator="\r\n")
        self.writer.writerow(["line", "reason", "row"])

    def write(self, r: Reject) -> None:
        self.writer.writerow([r.line, r.reason, _storable(r.raw)])

    def close(self, keep: bool = True) -> None:
        self.handle.close()
        if keep:
            os.replace(self.part, self.path)
        else:
            self.part.unlink(missing_ok=True)


def _flush(s: Session, campaign: Campaign, batch: ImportBatch, chunk: list[_Good | Reject],
           summary: ImportSummary, reject_out: _RejectWriter | None, zones: set[str], now: dt.datetime) -> None:
    """Insert one chunk: refuse what the database says is a duplicate or on the DNC list."""
    if not chunk:
        return
    summary.rows += len(chunk)
    good: dict[str, _Good] = {}
    refused: list[Reject] = []
    for item in chunk:
        if isinstance(item, Reject):
            refused.append(item)
            continue
        earlier = good.get(item.phone)
        if earlier is not None:
            refused.append(Reject(item.line, f"duplicate of line {earlier.line} in this file", item.raw, "duplicates"))
        else:
            good[item.phone] = item
    conn = s.connection()
    if good:
        stamp = db_time(conn, now)
        stored, blocked = load_chunk(conn, campaign.id, {
            phone: (campaign.id, batch.id, *item[2:], "pending", 0, stamp, stamp) for phone, item in good.items()}, now)
        for phone in stored.keys() | blocked:
            item = good.pop(phone)
            if phone in stored:
                why = ("duplicate of an earlier row in this file" if stored[phone] == batch.id
                       else "already in the campaign")
                refused.append(Reject(item.line, why, item.raw, "duplicates"))
            else:
                refused.append(Reject(item.line, "on the do-not-call list", item.raw, "dnc"))
        for item in good.values():
            if item.timezone:
                zones.add(item.timezone)
        summary.imported += len(good)
    if refused:
        refused.sort(key=lambda r: r.line)
        bulk_insert(conn, "rejected_rows", ("batch_id", "line", "reason", "raw"),
                     [(batch.id, r.line, r.reason[:200], _storable(r.raw)) for r in refused])
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
