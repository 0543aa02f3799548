"""Lists loaded through the console: the uploaded file is on disk (never whole in memory), and
the import runs on a thread of its own while the browser follows its progress; the API's
contacts (a JSON array or a CSV body) go through the same importer, with the same checks and
the same report of refused rows."""

from __future__ import annotations

import csv
import io
import os
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from dialer.importer import ImportFailed, ImportSummary, import_file
from dialer.store.models import ImportBatch
from dialer.store.repo import NotFound
from dialer.store.users import audit
from dialer.text import forbidden

#: contacts in one API request, at most
JSON_MAX_ITEMS = 100_000
#: finished jobs are forgotten after this long (their batches stay in the database)
KEEP_JOBS = 3600.0


class BadContacts(ValueError):
    """The API's body is not a list of contacts (nothing is stored)."""


@dataclass
class Job:
    id: str
    campaign: str
    file: str
    total: int
    user: str
    via: str
    done: int = 0
    state: str = "running"  # running | done | failed
    error: str = ""
    summary: ImportSummary | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    transient: bool = False  # it failed on the database (away, locked), not on the file

    def advance(self, n: int) -> None:
        self.done += n

    def record(self) -> dict[str, Any]:
        s = self.summary
        return {"id": self.id, "campaign": self.campaign, "file": self.file, "state": self.state, "error": self.error,
                "bytes": self.total, "bytes_done": min(self.done, self.total),
                "percent": 100.0 if self.state != "running" else round(100 * self.done / self.total, 1) if self.total else 0.0,
                "summary": None if s is None else {**s.contract(), "encoding": s.encoding,
                                                   "other_encoding_rows": s.other_encoding_rows,
                                                   "extra_cells_rows": s.extra_cells_rows}}


def run_import(engine: Engine, job: Job, path: str, encoding: str = "auto", *, remove: bool = True,
               commit_chunks: bool | None = None) -> None:
    """Import the file into the job's campaign (on the calling thread) and write the audit row.
    On SQLite a chunk at a time (as the worker's inbox: the workers' writes are not held up
    behind a large list) unless `commit_chunks` is False: then all of it or none."""
    if commit_chunks is None:
        commit_chunks = engine.dialect.name == "sqlite"
    try:
        summary = import_file(engine, job.campaign, path, encoding=encoding, progress=job.advance,
                              commit_chunks=commit_chunks, pause_gc=False)
        summary.file = job.file
        job.summary, job.state = summary, "done"
        with Session(engine) as s, s.begin():
            if summary.batch is not None:  # (the batch names the upload, not the temporary file)
                s.execute(update(ImportBatch).where(ImportBatch.id == summary.batch).values(file=job.file[:500]))
            audit(s, job.user, job.via, "import", job.campaign, file=job.file[:200], batch=summary.batch,
                  rows=summary.rows, imported=summary.imported, rejected=summary.rows - summary.imported)
    except (ImportFailed, NotFound) as exc:
        job.state, job.error = "failed", str(exc).replace(path, job.file)
    except Exception as exc:  # a database away: said on the page, the console is not ours to crash
        from sqlalchemy.exc import DBAPIError, OperationalError

        job.transient = isinstance(exc, (OperationalError, DBAPIError, TimeoutError))
        why = str(getattr(exc, "orig", exc) or type(exc).__name__).splitlines()[0][:200]
        job.state, job.error = "failed", f"the import stopped: {why}"
        if job.via == "web" and commit_chunks:
            job.error += " (the chunks stored before it are kept: see the campaign's imports)"
    finally:
        job.ended = time.monotonic()
        if remove:
            try:
                os.unlink(path)
            except OSError:
                pass


class Jobs:
    """The console's imports in progress and just finished."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, campaign: str, file: str, path: str, user: str, encoding: str = "auto") -> Job:
        job = Job(secrets.token_urlsafe(12), campaign, file, os.path.getsize(path), user, "web")
        with self._lock:
            now = time.monotonic()
            for k in [k for k, j in self._jobs.items() if j.ended is not None and now - j.ended > KEEP_JOBS]:
                del self._jobs[k]
            self._jobs[job.id] = job
        threading.Thread(target=run_import, args=(self.engine, job, path, encoding), name=f"import-{job.id}",
                         daemon=True).start()
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)


def save_upload(src: IO[bytes], chunk: int = 1 << 20) -> str:
    """Copy an upload (or an API body) to a file of our own (the importer reads a path), a
    chunk at a time."""
    fd, path = tempfile.mkstemp(prefix="dialer-upload-", suffix=".csv")
    with os.fdopen(fd, "wb") as out:
        while block := src.read(chunk):
            out.write(block)
    return path


def json_to_csv(items: Any) -> bytes:
    """The API's JSON contacts as a CSV list (UTF-8) for the importer: the keys of the objects
    are its header (phone, name, customer_id, priority, timezone, or any the import maps)."""
    if not isinstance(items, list):
        raise BadContacts("the body must be a JSON array of contacts (objects with a \"phone\")")
    if not items:
        raise BadContacts("the array is empty: no contacts to add")
    if len(items) > JSON_MAX_ITEMS:
        raise BadContacts(f"at most {JSON_MAX_ITEMS} contacts in one request")
    keys: dict[str, None] = {}
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise BadContacts(f"item {i}: not an object")
        for k, v in item.items():
            if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                raise BadContacts(f"item {i}: {str(k)[:40]!r} must be a string or a number")
            bad = forbidden(f"{k}{v}")
            if bad:
                raise BadContacts(f"item {i}: {str(k)[:40]!r} holds a control character ({bad})")
            keys.setdefault(str(k), None)
    if "phone" not in keys:
        raise BadContacts('no item has a "phone"')
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = list(keys)
    w.writerow(header)
    for item in items:
        w.writerow(["" if item.get(k) is None else item.get(k) for k in header])
    return buf.getvalue().encode("utf-8")


__all__ = ["Job", "Jobs", "run_import", "save_upload", "json_to_csv", "BadContacts"]
