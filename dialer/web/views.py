"""What each page shows, read from the database through the report library (the same records
as `dialer report … --format json` and `dialer status`): the wallboard's snapshot and a campaign
page's figures, charts and attempts. No HTTP here: the pages, the API and `dialer report html`
call these."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from dialer.reports import report
from dialer.reports.attempts import attempts as attempts_of
from dialer.reports.common import campaigns
from dialer.reports.period import Span, parse_when
from dialer.reports.status import status
from dialer.store.abandonment import AbandonCounts, abandon_counts
from dialer.store.dialable import count_dialable
from dialer.store.models import OUTCOMES, ImportBatch
from dialer.store.repo import campaign_record, get_campaign
from dialer.web import charts

#: amber from this share of the cap (the rate is near it)
NEAR = 0.8
#: the charts' default period: the compliance record's 30 days
CHART_DAYS = 30
#: the attempts table shows this many rows (the CSV download has them all)
PAGE_ROWS = 100


def level(rate: float | None, target: float) -> str:
    """green / amber (at NEAR × the cap or more) / red (over the cap) / none (no rate yet)."""
    if rate is None:
        return "none"
    if rate > target:
        return "red"
    return "amber" if rate >= NEAR * target else "green"


def wallboard(engine: Engine, now: dt.datetime, reader: Wallboard | None = None) -> dict[str, Any]:
    """`dialer status`'s snapshot, with each campaign's abandonment coloured against its cap
    (read through `reader`'s caches when given)."""
    with engine.connect() as conn:
        snap = status(conn, now) if reader is None else status(conn, now, counts=reader.counts, dialable=reader.dialable)
    for c in snap["campaigns"]:
        c["level_24h"] = level(c["abandon_rate_24h"], c["abandon_target"])
        c["level_30d"] = level(c["abandon_rate_30d"], c["abandon_target"])
    return snap


class Wallboard:
    """The wallboard's slow-changing figures, read less often than every tick: the abandonment
    counts in full every `full_every` up to `recent` before the read, and the attempts since on
    every read (as the worker's pacer reads them: dialer/worker/pace.py); the dialable contacts
    every `dialable_every`. What counts is abandon_counts's and count_dialable's alone."""

    def __init__(self, full_every: float = 60.0, recent: float = 600.0, dialable_every: float = 10.0) -> None:
        self.full_every = dt.timedelta(seconds=full_every)
        self.recent = dt.timedelta(seconds=recent)
        self.dialable_every = dt.timedelta(seconds=dialable_every)
        self._base: dict[int, AbandonCounts] = {}
        self._base_at: dt.datetime | None = None
        self._edge: dt.datetime | None = None
        self._dialable: dict[int, tuple[int, dt.datetime, str]] = {}
        self._lock = threading.Lock()  # (the board's thread and a page's may read at once)

    def counts(self, conn: Connection, ids: list[int], now: dt.datetime) -> dict[int, AbandonCounts]:
        with self._lock:
            return self._counts(conn, ids, now)

    def _counts(self, conn: Connection, ids: list[int], now: dt.datetime) -> dict[int, AbandonCounts]:
        if (self._base_at is None or set(ids) != set(self._base) or not self._base_at <= now < self._base_at + self.full_every):
            edge = now - self.recent
            self._base, self._base_at, self._edge = abandon_counts(conn, ids, now, end=edge), now, edge
        recent = abandon_counts(conn, ids, now, start=self._edge)
        return {i: self._base[i] + recent[i] for i in ids}

    def dialable(self, conn: Connection, campaign: Any, now: dt.datetime) -> int:
        with self._lock:
            got = self._dialable.get(campaign.id)
            if got is None or got[2] != campaign.status or not got[1] <= now < got[1] + self.dialable_every:
                got = self._dialable[campaign.id] = (count_dialable(conn, campaign, now), now, campaign.status)
            return got[0]


@dataclass(frozen=True)
class Filters:
    """The attempts table's filters (the charts keep their own 30 days)."""

    outcome: str | None = None
    since: str | None = None
    until: str | None = None
    phone: str | None = None

    @classmethod
    def of(cls, outcome: str | None, since: str | None, until: str | None, phone: str | None) -> Filters:
        """Raises ValueError (a one-line message) for a value that is not one."""
        outcome = outcome or None
        if outcome is not None and outcome not in (*OUTCOMES, "open"):
            raise ValueError(f"outcome: not one of {', '.join(OUTCOMES)}, open")
        for name, value in (("since", since), ("until", until)):
            if value:
                parse_when(value, name)  # PeriodError is a ValueError
        digits = "".join(ch for ch in (phone or "") if ch.isdigit())
        if phone and not digits:
            raise ValueError("phone: give digits of the number")
        return cls(outcome, since or None, until or None, digits or None)

    def query(self) -> dict[str, str]:
        return {k: v for k, v in (("outcome", self.outcome), ("since", self.since), ("until", self.until),
                                  ("phone", self.phone)) if v}


def attempt_rows(engine: Engine, name: str, f: Filters, limit: int | None = PAGE_ROWS) -> Any:
    """The attempts report's records through the filters, newest first (an iterator)."""
    with engine.connect() as conn:
        (c,) = campaigns(conn, [name])
        span = Span.of(c.timezone, parse_when(f.since, "since"), parse_when(f.until, "until"))
        yield from attempts_of(conn, c, span, outcome=f.outcome, phone=f.phone, newest_first=True, limit=limit)


def campaign_page(engine: Engine, name: str, now: dt.datetime, f: Filters = Filters(), *,
                  attempts: bool = True) -> dict[str, Any]:
    """Everything the campaign page shows (and the HTML report)."""
    with Session(engine) as s:
        c = get_campaign(s, name)
        record = campaign_record(c)
    tz = ZoneInfo(record["timezone"])
    first_day = now.astimezone(tz).date() - dt.timedelta(days=CHART_DAYS - 1)
    kw = {"campaign": name, "now": now}
    summary = report(engine, "summary", **kw)[0]
    daily = report(engine, "daily", since=first_day, **kw)
    hourly = report(engine, "hourly", since=first_day, **kw)
    compliance = report(engine, "compliance", since=first_day, **kw)
    agents = report(engine, "agents", since=first_day, **kw)
    return {
        "campaign": record, "summary": summary, "tz": record["timezone"], "now": now.astimezone(tz),
        "period": first_day.isoformat(), "agents": agents, "compliance": compliance,
        "charts": [("outcomes_daily", charts.outcomes_by_day(daily), len(daily)),
                   ("answer_by_hour", charts.answer_rate_by_hour(hourly), len(hourly)),
                   ("abandon_daily", charts.abandonment_by_day(compliance), len(compliance)),
                   ("occupancy", charts.occupancy(agents), len(agents))],
        "filters": f, "attempts": list(attempt_rows(engine, name, f)) if attempts else [],
        "outcomes": OUTCOMES,
    }


def batches(engine: Engine, name: str, limit: int = 20, only: int | None = None) -> list[dict[str, Any]]:
    """The campaign's latest imports (only import `only`, when given)."""
    with Session(engine) as s:
        c = get_campaign(s, name)
        q = select(ImportBatch).where(ImportBatch.campaign_id == c.id)
        if only is not None:
            q = q.where(ImportBatch.id == only)
        rows = s.scalars(q.order_by(ImportBatch.id.desc()).limit(limit))
        return [{"id": b.id, "file": b.file, "encoding": b.encoding, "rows": b.rows, "imported": b.imported,
                 "duplicates": b.duplicates, "dnc": b.dnc, "rejected": b.rejected,
                 "started_at": b.started_at.astimezone(ZoneInfo(c.timezone)).isoformat(timespec="seconds"),
                 "finished": b.finished_at is not None} for b in rows]


def rejects(engine: Engine, batch_id: int, limit: int | None = None) -> Any:
    """A batch's refused rows (line, reason, row), in line order (an iterator)."""
    from dialer.store.models import RejectedRow

    r = RejectedRow.__table__.c
    q = select(r.line, r.reason, r.raw).where(r.batch_id == batch_id).order_by(r.line).limit(limit)
    with engine.connect() as conn:
        for line, reason, raw in conn.execution_options(stream_results=True, yield_per=2000).execute(q):
            yield {"line": line, "reason": reason, "row": raw}


def batch_campaign(engine: Engine, batch_id: int) -> str | None:
    from dialer.store.models import Campaign

    with Session(engine) as s:
        return s.scalar(select(Campaign.name).join(ImportBatch, ImportBatch.campaign_id == Campaign.id)
                        .where(ImportBatch.id == batch_id))


__all__ = ["wallboard", "Wallboard", "campaign_page", "Filters", "attempt_rows", "batches", "rejects", "level", "batch_campaign"]
