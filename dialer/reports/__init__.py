"""The reports: each a function of the database, the campaigns asked for, a period in each
campaign's own timezone, and the time now; each returns plain records (dicts) that the CLI
prints as a table, CSV or JSON. Field names are the contract (docs/reports.md).

    summary     what became of each list: penetration, answer and contact rates, abandonment
    outcomes    each outcome's count and share, over all passes and by attempt number
    daily       each outcome's count by day
    compliance  the abandonment record by day (FCC 30-day rate, 72-hour redials)
    agents      each agent's calls and time by state (from the workers' seat events)
    interval    dials, answers, abandoned and agents logged in by 15/30/60 minutes
    hourly      interval by 60 minutes
    attempts    one record per attempt (an iterator: streamed)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Engine

from dialer.reports.common import UnknownCampaign, campaigns
from dialer.reports.fields import COLUMNS, REPORTS
from dialer.reports.period import PeriodError, Span, When, parse_when

ATTEMPT_FIELDS = COLUMNS["attempts"]


def report(engine: Engine, name: str, *, campaign: str | Sequence[str] | None = None, since: When | None = None,
           until: When | None = None, now: dt.datetime | None = None, minutes: int = 60) -> list[dict[str, Any]]:
    """Run report `name` (one of REPORTS) and return its records (all of them, even `attempts`:
    stream that one with `stream_attempts`)."""
    # (each report's module is loaded when it runs: a command loads only its own)
    if name == "attempts":
        with engine.connect() as conn:
            return list(_stream(conn, campaign, since, until))
    if name not in REPORTS:
        raise ValueError(f"no report named {name!r}")
    names = [campaign] if isinstance(campaign, str) else list(campaign or ())
    now = now or dt.datetime.now(dt.timezone.utc)
    with engine.connect() as conn:
        camps = campaigns(conn, names)
        spans = {c.id: Span.of(c.timezone, since, until) for c in camps}
        if name == "agents":
            from dialer.reports.agents import agents

            return agents(conn, camps, _common_span(camps, spans), now) if camps else []
        out: list[dict[str, Any]] = []
        for c in camps:
            span = spans[c.id]
            if name == "summary":
                from dialer.reports.summary import summary

                out.append(summary(conn, c, span, now))
            elif name == "outcomes":
                from dialer.reports.summary import outcomes

                out += outcomes(conn, c, span)
            elif name == "daily":
                from dialer.reports.interval import daily

                out += daily(conn, c, span)
            elif name == "compliance":
                from dialer.reports.compliance import compliance

                out += compliance(conn, c, span, now)
            else:
                from dialer.reports.interval import interval

                out += interval(conn, c, span, now, 60 if name == "hourly" else minutes)
        return out


def stream_attempts(engine: Engine, *, campaign: str | Sequence[str] | None = None, since: When | None = None,
                    until: When | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
    """The attempts report, a record at a time (the connection is held until it is exhausted);
    `filters`: reports.attempts.attempts's (outcome, phone)."""
    with engine.connect() as conn:
        yield from _stream(conn, campaign, since, until, **filters)


def _stream(conn: Any, campaign: Any, since: When | None, until: When | None, **filters: Any) -> Iterator[dict[str, Any]]:
    from dialer.reports import attempts as _attempts

    names = [campaign] if isinstance(campaign, str) else list(campaign or ())
    for c in campaigns(conn, names):
        yield from _attempts.attempts(conn, c, Span.of(c.timezone, since, until), **filters)


def _common_span(camps: list[Any], spans: dict[int, Span]) -> Span:
    """The agents report covers agents, not campaigns: its period is read in the first
    campaign's timezone (the widest of the campaigns' bounds)."""
    first = spans[camps[0].id]
    sinces = [s.since for s in spans.values() if s.since is not None]
    untils = [s.until for s in spans.values() if s.until is not None]
    return Span(min(sinces) if len(sinces) == len(spans) else None,
                max(untils) if len(untils) == len(spans) else None, first.tz)


__all__ = ["REPORTS", "COLUMNS", "ATTEMPT_FIELDS", "report", "stream_attempts", "parse_when", "PeriodError",
           "UnknownCampaign", "When"]
