"""Repository functions: what the rest of the dialer asks of the database, by intention.

Every function takes a `Session` (the caller owns the transaction). The claim is in
dialer/store/claim.py, the worker's call records in dialer/store/attempts.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from dialer.dialplan import UNKNOWN_CITY_CHOICES, DialPlan
from dialer.errors import DialerError
from dialer.outcomes import DEFAULT_RETRY  # the rules live in the pure core
from dialer.text import forbidden
from dialer.store.models import (
    CAMPAIGN_STATUSES, HANDOVERS, MODES, OUTCOMES, ROLES, Agent, Campaign, Contact, DoNotCall,
)
from dialer.store.dialable import window_of  # noqa: F401  (the recorder imports it from here)
from dialer.window import WindowError, parse_days, parse_range, zone


class NotFound(DialerError):
    """No such campaign, agent or number."""


class InvalidInput(DialerError):
    """A value a user gave cannot be used; the message names it."""


MIN_RING_TIMEOUT = 15


# -- campaigns ------------------------------------------------------------------------------------

def _digits(name: str, value: str, *, allow_empty: bool = False) -> str:
    value = str(value).strip()
    if not (value.isascii() and value.isdigit()) and not (allow_empty and value == ""):
        raise InvalidInput(f"{name} must be digits, got {value!r}")
    return value


def _number(name: str, value: Any, kind: type, low: float | None = None, high: float | None = None) -> Any:
    try:
        v = kind(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number, got {value!r}") from None
    if (low is not None and v < low) or (high is not None and v > high):
        bounds = f"{low if low is not None else '-∞'}..{high if high is not None else '∞'}"
        raise InvalidInput(f"{name} must be in {bounds}, got {value!r}")
    return v


def _queue_name(name: str, value: Any) -> str:
    """A CTI queue (技能组) name: it goes into the login frame, so one line of at most 64."""
    v = str(value).strip()
    bad = forbidden(v)
    if bad:
        raise InvalidInput(f"{name} cannot hold a {bad}")
    if len(v) > 64:
        raise InvalidInput(f"{name} must be at most 64 characters")
    return v


def parse_retry(items: Iterable[str] | Mapping[str, Any]) -> dict[str, int]:
    """``["busy=600", "no_answer=7200"]`` (or a mapping) → {outcome: seconds}, checked."""
    pairs = items.items() if isinstance(items, Mapping) else (i.partition("=")[::2] for i in items)
    out: dict[str, int] = {}
    for outcome, seconds in pairs:
        outcome = outcome.strip()
        if outcome not in OUTCOMES or outcome == "answered":
            raise InvalidInput(f"--retry: unknown outcome {outcome!r} (one of {', '.join(o for o in OUTCOMES if o != 'answered')})")
        out[outcome] = _number(f"--retry {outcome}", seconds, int, 0)
    return out


def campaign_settings(opts: Mapping[str, Any]) -> dict[str, Any]:
    """Check and convert campaign options (CLI names) into column values. Unknown keys and
    None values are ignored; raises InvalidInput naming the first bad option."""
    out: dict[str, Any] = {}
    o = {k: v for k, v in opts.items() if v is not None}
    if "mode" in o:
        if o["mode"] not in MODES:
            raise InvalidInput(f"--mode must be one of {', '.join(MODES)}")
        out["mode"] = o["mode"]
    for key in ("queue", "port_queue"):
        if key in o:
            out[key] = _queue_name("--" + key.replace("_", "-"), o[key])
    for key in ("area_code", "outside_prefix", "ld_mobile_prefix"):
        if key in o:
            out[key] = _digits("--" + key.replace("_", "-"), o[key], allow_empty=key != "area_code")
    if "unknown_city_mobile" in o:
        if o["unknown_city_mobile"] not in UNKNOWN_CITY_CHOICES:
            raise InvalidInput(f"--unknown-city-mobile must be one of {', '.join(UNKNOWN_CITY_CHOICES)}")
        out["unknown_city_mobile"] = o["unknown_city_mobile"]
    if "allow_international" in o:
        out["allow_international"] = bool(o["allow_international"])
    try:
        if "window" in o:
            out["window_start"], out["window_end"] = parse_range(o["window"])
        if "days" in o:
            out["days"] = parse_days(o["days"])
        if "timezone" in o:
            zone(o["timezone"])
            out["timezone"] = o["timezone"]
    except WindowError as exc:
        raise InvalidInput(str(exc)) from None
    if "max_attempts" in o:
        out["max_attempts"] = _number("--max-attempts", o["max_attempts"], int, 1, 100)
    if "retry" in o and o["retry"]:
        out["retry_delays"] = parse_retry(o["retry"])
    if "ring_timeout" in o:
        out["ring_timeout"] = _number("--ring-timeout", o["ring_timeout"], int, MIN_RING_TIMEOUT, 300)
    if "wrap_up" in o:
        out["wrap_up"] = _number("--wrap-up", o["wrap_up"], int, 0, 3600)
    if "abandon_target" in o:
        out["abandon_target"] = _number("--abandon-target", o["abandon_target"], float, 0.0, 0.5)
    if "handover" in o:
        if o["handover"] not in HANDOVERS:
            raise InvalidInput(f"--handover must be one of {', '.join(HANDOVERS)}")
        out["handover"] = o["handover"]
    if "abandon_ivr" in o:
        out["abandon_ivr"] = _digits("--abandon-ivr", o["abandon_ivr"], allow_empty=True)
    if "max_calls_per_agent" in o:
        out["max_calls_per_agent"] = _number("--max-calls-per-agent", o["max_calls_per_agent"], float, 1.0, 10.0)
    if "priority" in o:
        out["priority"] = _number("--priority", o["priority"], int, -1000, 1000)
    if "area_code" in out:
        plan_check = {k: out.get(k, "9" if k == "outside_prefix" else "0") for k in ("outside_prefix", "ld_mobile_prefix")}
        try:
            DialPlan(out["area_code"], **plan_check)
        except ValueError as exc:
            raise InvalidInput(f"--area-code: {exc}") from None
    return out


def create_campaign(s: Session, name: str, **opts: Any) -> Campaign:
    """A new campaign in status draft. Raises InvalidInput for a bad option or a taken name."""
    name = name.strip()
    bad = forbidden(name)
    if bad:
        raise InvalidInput(f"a campaign name cannot hold a {bad}")
    if not name or len(name) > 100:
        raise InvalidInput("a campaign name must be 1–100 characters")
    if "/" in name or "\\" in name:
        raise InvalidInput("a campaign name cannot hold '/' or '\\' (it is part of the console's addresses)")
    settings = campaign_settings(opts)
    values = {**settings, "retry_delays": {**DEFAULT_RETRY, **settings.get("retry_delays", {})},
              "contact_timezones": []}
    if s.scalar(select(Campaign.id).where(Campaign.name == name)) is not None:
        raise InvalidInput(f"campaign {name!r} exists already")
    campaign = Campaign(name=name, **values)
    s.add(campaign)
    s.flush()
    return campaign


def get_campaign(s: Session, name: str) -> Campaign:
    campaign = s.scalar(select(Campaign).where(Campaign.name == name))
    if campaign is None:
        raise NotFound(f"no campaign named {name!r}")
    return campaign


def list_campaigns(s: Session) -> list[Campaign]:
    return list(s.scalars(select(Campaign).order_by(Campaign.priority.desc(), Campaign.name)))


def update_campaign(s: Session, name: str, **opts: Any) -> Campaign:
    campaign = get_campaign(s, name)
    values = campaign_settings(opts)
    if "retry_delays" in values:
        values["retry_delays"] = {**campaign.retry_delays, **values["retry_delays"]}
    if "area_code" not in values:
        try:
            DialPlan(campaign.area_code, values.get("outside_prefix", campaign.outside_prefix),
                     values.get("ld_mobile_prefix", campaign.ld_mobile_prefix))
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    for key, value in values.items():
        setattr(campaign, key, value)
    s.flush()
    return campaign


_TRANSITIONS = {
    "pause": ({"active"}, "paused"),
    "resume": ({"draft", "paused", "active"}, "active"),
    "archive": (set(CAMPAIGN_STATUSES), "archived"),
    "finish": ({"active", "paused"}, "finished"),
}


def set_campaign_status(s: Session, name: str, action: str, *, check_ready: bool = False) -> Campaign:
    """pause | resume (also starts a draft) | archive | finish. Raises InvalidInput when the
    campaign's status does not allow it — or, with `check_ready` (what a user asks: the CLI and
    the console), when a campaign to resume lacks what it needs to be dialled."""
    campaign = get_campaign(s, name)
    allowed, target = _TRANSITIONS[action]
    if campaign.status not in allowed:
        raise InvalidInput(f"cannot {action} campaign {name!r}: it is {campaign.status}")
    if action == "resume" and check_ready:
        missing = _not_ready(s, campaign)
        if missing:
            raise InvalidInput(f"cannot resume campaign {name!r}: " + "; ".join(missing))
    campaign.status = target
    s.flush()
    return campaign


def _not_ready(s: Session, campaign: Campaign) -> list[str]:
    """What a predictive campaign lacks to be dialled (nothing for a progressive one)."""
    if campaign.mode != "predictive":
        return []
    missing = []
    if not campaign.queue:
        missing.append("it has no queue of agents to hand answered calls to (--queue)")
    if not campaign.abandon_ivr:
        missing.append("it has no abandon message: an answered call no agent can take must hear one "
                       "(--abandon-ivr NODE)")
    port_queue = campaign.port_queue or campaign.queue
    if port_queue and not s.scalar(select(Agent.id).where(Agent.role == "port", Agent.queue == port_queue).limit(1)):
        missing.append(f"queue {port_queue!r} has no dialer ports (dialer agents add STAFFID EXT --role port "
                       f"--queue {port_queue})")
    return missing


def plan_of(campaign: Campaign) -> DialPlan:
    return DialPlan(campaign.area_code, campaign.outside_prefix, campaign.ld_mobile_prefix,
                    campaign.unknown_city_mobile, campaign.allow_international)


def campaign_record(c: Campaign) -> dict[str, Any]:
    return {
        "name": c.name, "status": c.status, "mode": c.mode, "queue": c.queue, "priority": c.priority,
        "area_code": c.area_code, "outside_prefix": c.outside_prefix,
        "ld_mobile_prefix": c.ld_mobile_prefix, "unknown_city_mobile": c.unknown_city_mobile,
        "allow_international": c.allow_international,
        "window": f"{c.window_start}-{c.window_end}", "days": c.days, "timezone": c.timezone,
        "max_attempts": c.max_attempts, "retry": dict(sorted(c.retry_delays.items())),
        "ring_timeout": c.ring_timeout, "wrap_up": c.wrap_up, "abandon_target": c.abandon_target,
        "abandon_ivr": c.abandon_ivr, "max_calls_per_agent": c.max_calls_per_agent,
        "handover": c.handover, "port_queue": c.port_queue,
        "created_at": c.created_at.isoformat(),
    }


# -- do-not-call ----------------------------------------------------------------------------------

class DncAdded(NamedTuple):
    new: int  # numbers not on the list before
    refreshed: int  # on it already: reason and end updated
    kept: int  # on it already until later (or for ever): the earlier end was not taken


def later_end(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    """The later of two ends of a block (None: for ever)."""
    return None if a is None or b is None else max(a, b)


def add_dnc(s: Session, phones: Iterable[str], reason: str = "", until: dt.datetime | None = None, *,
            replace: bool = False) -> DncAdded:
    """Add (or refresh) E.164 numbers on the do-not-call list. A block is never shortened by a
    later add unless `replace`: an entry already blocked until later keeps its end."""
    new = refreshed = kept = 0
    for phone in dict.fromkeys(phones):
        entry = s.scalar(select(DoNotCall).where(DoNotCall.phone == phone))
        if entry is None:
            s.add(DoNotCall(phone=phone, reason=reason, until=until))
            new += 1
            continue
        end = until if replace else later_end(entry.until, until)
        if end != until:
            kept += 1
        else:
            refreshed += 1
        entry.reason, entry.until = reason or entry.reason, end
    s.flush()
    return DncAdded(new, refreshed, kept)


def remove_dnc(s: Session, phones: Iterable[str]) -> int:
    result = s.execute(delete(DoNotCall).where(DoNotCall.phone.in_(list(phones))))
    return result.rowcount or 0


def list_dnc(s: Session) -> list[DoNotCall]:
    return list(s.scalars(select(DoNotCall).order_by(DoNotCall.phone)))


def blocked_phones(s: Session, now: dt.datetime) -> set[str]:
    """Every number on the do-not-call list now."""
    rows = s.scalars(select(DoNotCall.phone).where(or_(DoNotCall.until.is_(None), DoNotCall.until > now)))
    return set(rows)


# -- agents ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AgentRow:
    staffid: str
    name: str
    extension: str
    queue: str = ""
    skill: int = 1
    role: str = "agent"
    sector: str = ""

    def check(self) -> AgentRow:
        for key in ("staffid", "name", "queue", "sector"):
            value = getattr(self, key)
            bad = forbidden(value)
            if bad:
                raise InvalidInput(f"{key} {value!r} cannot hold a {bad}")
            if "|" in value or "," in value:
                raise InvalidInput(f"{key} {value!r} cannot hold '|' or ','")
        if not self.staffid:
            raise InvalidInput("staffid is required")
        _digits("extension", self.extension)
        if self.role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")
        return self


def upsert_agents(s: Session, rows: Iterable[AgentRow]) -> tuple[int, int]:
    """Add agents or update them by staffid; returns (added, updated). Raises InvalidInput."""
    added = updated = 0
    for row in rows:
        row.check()
        agent = s.scalar(select(Agent).where(Agent.staffid == row.staffid))
        other = s.scalar(select(Agent).where(Agent.extension == row.extension))
        if other is not None and (agent is None or other.id != agent.id):
            raise InvalidInput(f"extension {row.extension} already belongs to staffid {other.staffid}")
        if agent is None:
            s.add(Agent(staffid=row.staffid, name=row.name, extension=row.extension, queue=row.queue,
                        skill=row.skill, role=row.role, sector=row.sector))
            added += 1
        else:
            agent.name, agent.extension, agent.queue = row.name, row.extension, row.queue
            agent.skill, agent.role, agent.sector, agent.enabled = row.skill, row.role, row.sector, True
            updated += 1
        s.flush()
    return added, updated


def list_agents(s: Session, queue: str | None = None) -> list[Agent]:
    q = select(Agent).order_by(Agent.extension)
    if queue is not None:
        q = q.where(Agent.queue == queue)
    return list(s.scalars(q))


def remove_agent(s: Session, key: str) -> None:
    """Remove the agent whose staffid or extension is `key`."""
    agent = s.scalar(select(Agent).where(or_(Agent.staffid == key, Agent.extension == key)))
    if agent is None:
        raise NotFound(f"no agent with staffid or extension {key!r}")
    s.delete(agent)
    s.flush()


# -- the claim ------------------------------------------------------------------------------------

def release_contacts(s: Session, worker_id: str, ids: Iterable[int]) -> int:
    """Give leased contacts back without touching their attempts (e.g. on shutdown)."""
    result = s.execute(
        update(Contact).where(Contact.id.in_(list(ids)), Contact.claimed_by == worker_id)
        .values(claimed_by=None, lease_until=None).execution_options(synchronize_session=False))
    return result.rowcount or 0
