"""Which contacts could be dialled now: the claim's conditions (dialer/store/claim.py takes
them), counted by `dialer report summary` and `dialer status` from the same expression. Kept
apart from the claim so that a report loads neither the dial plan nor phonenumbers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, false, func, or_, select, true

from dialer.store import prepared
from dialer.store.models import Attempt, Campaign, Contact, DoNotCall
from dialer.window import CallingWindow

_c = Contact.__table__.c
_a = Attempt.__table__.c


def window_of(campaign: Campaign, timezone: str | None = None) -> CallingWindow:
    return CallingWindow(campaign.window_start, campaign.window_end, campaign.days,
                         timezone or campaign.timezone)


def open_timezones(campaign: Campaign, now: dt.datetime) -> tuple[bool, list[str]]:
    """Whether the campaign's own window is open, and which contact timezones are open now."""
    own = window_of(campaign).is_open(now)
    zones = [tz for tz in campaign.contact_timezones if window_of(campaign, tz).is_open(now)]
    return own, zones


def dialable_where(own_open: bool, zones: int) -> list[Any]:
    """What makes a contact dialable now (bind parameters `now`, `campaign`, `max_attempts`,
    `z0`…): the claim takes these, `dialer report summary` and `dialer status` count them."""
    in_window = or_(and_(_c.timezone.is_(None), true() if own_open else false()),
                    prepared.in_list(_c.timezone, "z", zones) if zones else false())
    now = bindparam("now")
    free = or_(_c.claimed_by.is_(None), _c.lease_until < now)
    blocked = exists().where(DoNotCall.phone == _c.phone, or_(DoNotCall.until.is_(None), DoNotCall.until > now))
    # a contact whose last call is still open (its worker may be dead, not yet reconciled) waits:
    # never two calls at once, whatever the leases say
    in_call = exists().where(_a.contact_id == _c.id, _a.ended_at.is_(None))
    # (the 72-hour rule for abandoned numbers lives in outcomes.decide_retry: their next attempt
    # is set no sooner)
    return [_c.campaign_id == bindparam("campaign"), _c.status == "pending", _c.next_attempt_at <= now,
            _c.attempts < bindparam("max_attempts"), free, in_window, ~blocked, ~in_call]


def count_dialable(conn: Connection, campaign: Campaign, now: dt.datetime) -> int:
    """How many contacts of `campaign` a claim could take at `now` (0 unless it is active)."""
    if campaign.status != "active":
        return 0
    own_open, zones = open_timezones(campaign, now)
    if not own_open and not zones:
        return 0
    params: dict[str, object] = {"now": now, "campaign": campaign.id, "max_attempts": campaign.max_attempts}
    params.update({f"z{i}": z for i, z in enumerate(zones)})
    return int(conn.execute(select(func.count()).select_from(Contact.__table__)
                            .where(*dialable_where(own_open, len(zones))), params).scalar_one())


