"""Each report's fields, in order: the JSON contract (docs/reports.md) and the columns of its
table and CSV. Kept apart from the queries so that the command line loads only the report it runs."""

from __future__ import annotations

from dialer.store.models import CONTACT_STATUSES

REPORTS = ("summary", "outcomes", "daily", "compliance", "agents", "interval", "hourly", "attempts")
INTERVAL = ["campaign", "interval", "dials", "live_answers", "answer_rate", "abandoned", "agents_logged_in"]
COLUMNS: dict[str, list[str]] = {
    "summary": ["campaign", "status", "contacts", *CONTACT_STATUSES, "dialable", "dialled", "penetration",
                "attempts", "in_progress", "live_answers", "answer_rate", "contact_rate", "answered", "abandoned",
                "abandon_rate", "abandon_rate_24h", "abandon_rate_30d", "abandon_target", "mean_ring_seconds",
                "talk_seconds", "mean_talk_seconds", "attempts_per_done"],
    "outcomes": ["campaign", "pass", "outcome", "attempts", "share"],
    "daily": ["campaign", "day", "outcome", "attempts"],
    "compliance": ["campaign", "day", "live_answers", "abandoned", "rate", "live_answers_30d", "abandoned_30d",
                   "rate_30d", "target", "over_cap", "messages_played", "redials_within_72h"],
    "agents": ["agent", "name", "queue", "calls", "talk_seconds", "wrap_seconds", "wait_seconds", "dial_seconds",
               "paused_seconds", "logged_in_seconds", "occupancy", "mean_handle_seconds", "agent_no_answer"],
    "interval": INTERVAL,
    "hourly": INTERVAL,
    "attempts": ["id", "campaign", "phone", "attempt", "seat", "agent", "dial_string", "callid", "started_at",
                 "ringing_at", "answered_at", "bridged_at", "ended_at", "outcome", "talk_seconds", "ring_seconds",
                 "province", "city", "isp", "worker", "detail"],
}
