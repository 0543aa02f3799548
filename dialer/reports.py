"""Reporting queries on call outcomes. Each returns a list of plain records (dicts) that the CLI
prints as a table, CSV or JSON; times are ISO 8601 with their offset."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session

from dialer.outcomes import FINAL_OUTCOMES
from dialer.store.attempts import ABANDONED, LIVE
from dialer.store.models import CONTACT_STATUSES, OUTCOMES, Attempt, Campaign, Contact

REPORTS = ("summary", "outcomes", "agents", "hourly", "attempts")
ATTEMPT_FIELDS = ["id", "campaign", "phone", "attempt", "seat", "agent", "dial_string", "callid", "started_at",
                  "ringing_at", "answered_at", "bridged_at", "ended_at", "outcome", "talk_seconds", "ring_seconds",
                  "province", "city", "isp", "worker", "detail"]
COLUMNS = {
    "summary": ["campaign", "status", "contacts", *CONTACT_STATUSES, "attempts", "answered", "answer_rate",
                "abandoned", "abandon_rate", "talk_minutes", "mean_talk_seconds"],
    "outcomes": ["campaign", "outcome", "attempts", "share"],
    "agents": ["campaign", "seat", "attempts", "answered", "agent_no_answer", "talk_minutes", "mean_talk_seconds"],
    "hourly": ["campaign", "hour", "attempts", "answered", "answer_rate"],
    "attempts": ATTEMPT_FIELDS,
}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _filters(q: Any, campaign: str | None, since: dt.datetime | None, until: dt.datetime | None) -> Any:
    if campaign:
        q = q.where(Campaign.name == campaign)
    if since:
        q = q.where(Attempt.created_at >= since)
    if until:
        q = q.where(Attempt.created_at < until)
    return q


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def report(engine: Engine, name: str, *, campaign: str | None = None, since: dt.datetime | None = None,
           until: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Run report `name` (one of REPORTS)."""
    with Session(engine) as s:
        return globals()[f"_{name}"](s, campaign, since, until)


def _summary(s: Session, campaign: str | None, since: Any, until: Any) -> list[dict[str, Any]]:
    camps = s.scalars(select(Campaign).where(Campaign.name == campaign) if campaign else
                      select(Campaign).order_by(Campaign.name)).all()
    out = []
    for c in camps:
        by_status = dict(s.execute(select(Contact.status, func.count()).where(Contact.campaign_id == c.id)
                                   .group_by(Contact.status)).all())
        q = _filters(select(Attempt.outcome, func.count(), func.coalesce(func.sum(Attempt.talk_seconds), 0))
                     .join(Campaign, Campaign.id == Attempt.campaign_id).where(Attempt.campaign_id == c.id),
                     None, since, until).group_by(Attempt.outcome)
        outcomes = {o: (n, talk) for o, n, talk in s.execute(q).all()}
        attempts = sum(n for n, _ in outcomes.values())
        def count(names: Iterable[str]) -> int:
            return sum(outcomes.get(o, (0, 0))[0] for o in names)

        # answered_late reached an agent, after 2 s: in both columns
        answered, abandoned, live = count(FINAL_OUTCOMES), count(ABANDONED), count(LIVE)
        talk = float(sum(t for _, t in outcomes.values()))
        out.append({
            "campaign": c.name, "status": c.status, "contacts": sum(by_status.values()),
            **{st: by_status.get(st, 0) for st in CONTACT_STATUSES},
            "attempts": attempts, "answered": answered, "answer_rate": _rate(answered, attempts),
            "abandoned": abandoned, "abandon_rate": _rate(abandoned, live),
            "talk_minutes": round(talk / 60, 1), "mean_talk_seconds": round(talk / answered, 1) if answered else None,
        })
    return out


def _outcomes(s: Session, campaign: str | None, since: Any, until: Any) -> list[dict[str, Any]]:
    q = _filters(select(Campaign.name, Attempt.outcome, func.count()).join(Campaign, Campaign.id == Attempt.campaign_id)
                 .where(Attempt.outcome.is_not(None)), campaign, since, until)
    rows = s.execute(q.group_by(Campaign.name, Attempt.outcome)).all()
    totals: dict[str, int] = {}
    for name, _, n in rows:
        totals[name] = totals.get(name, 0) + n
    order = {o: i for i, o in enumerate(OUTCOMES)}
    rows = sorted(rows, key=lambda r: (r[0], order.get(r[1], 99)))
    return [{"campaign": n, "outcome": o, "attempts": k, "share": _rate(k, totals[n])} for n, o, k in rows]


def _agents(s: Session, campaign: str | None, since: Any, until: Any) -> list[dict[str, Any]]:
    answered = func.sum(case((Attempt.outcome.in_(list(FINAL_OUTCOMES)), 1), else_=0))
    missed = func.sum(case((Attempt.outcome == "agent_no_answer", 1), else_=0))
    talk = func.coalesce(func.sum(Attempt.talk_seconds), 0)
    q = _filters(select(Campaign.name, Attempt.agent_extension, func.count(), answered, missed, talk)
                 .join(Campaign, Campaign.id == Attempt.campaign_id), campaign, since, until)
    rows = s.execute(q.group_by(Campaign.name, Attempt.agent_extension)
                     .order_by(Campaign.name, Attempt.agent_extension)).all()
    return [{"campaign": n, "seat": seat, "attempts": k, "answered": int(a or 0), "agent_no_answer": int(m or 0),
             "talk_minutes": round(float(t) / 60, 1), "mean_talk_seconds": round(float(t) / a, 1) if a else None}
            for n, seat, k, a, m, t in rows]


def _hourly(s: Session, campaign: str | None, since: Any, until: Any) -> list[dict[str, Any]]:
    q = _filters(select(Campaign.name, Campaign.timezone, Attempt.created_at, Attempt.outcome)
                 .join(Campaign, Campaign.id == Attempt.campaign_id), campaign, since, until)
    buckets: dict[tuple[str, str], list[int]] = {}
    for name, tz, created, outcome in s.execute(q):
        hour = created.astimezone(ZoneInfo(tz)).replace(minute=0, second=0, microsecond=0).isoformat()
        b = buckets.setdefault((name, hour), [0, 0])
        b[0] += 1
        b[1] += outcome in FINAL_OUTCOMES
    return [{"campaign": n, "hour": h, "attempts": a, "answered": k, "answer_rate": _rate(k, a)}
            for (n, h), (a, k) in sorted(buckets.items())]


def _attempts(s: Session, campaign: str | None, since: Any, until: Any) -> list[dict[str, Any]]:
    q = _filters(select(Attempt, Campaign.name, Contact.phone).join(Campaign, Campaign.id == Attempt.campaign_id)
                 .join(Contact, Contact.id == Attempt.contact_id), campaign, since, until)
    out = []
    for a, name, phone in s.execute(q.order_by(Attempt.id)):
        out.append({
            "id": a.id, "campaign": name, "phone": phone, "attempt": a.attempt_no, "seat": a.seat,
            "agent": a.agent_extension, "bridged_at": _iso(a.bridged_at),
            "dial_string": a.dial_string, "callid": a.callid, "started_at": _iso(a.created_at),
            "ringing_at": _iso(a.ringing_at), "answered_at": _iso(a.answered_at), "ended_at": _iso(a.ended_at),
            "outcome": a.outcome, "talk_seconds": a.talk_seconds, "ring_seconds": a.ring_seconds,
            "province": a.province, "city": a.city, "isp": a.isp, "worker": a.worker_id, "detail": a.detail,
        })
    return out
