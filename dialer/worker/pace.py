"""Predictive pacing inputs: the campaign's abandonment counts (every worker's, from the
database, plus this worker's own since the last refresh) and the snapshot the pacer decides on
(dialer/pacing.py is the pure decision)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from dialer import pacing
from dialer.store import abandonment, history
from dialer.store.models import Campaign
from dialer.store.dialable import window_of
from dialer.worker.lanes import TRANSIENT, describe

if TYPE_CHECKING:
    from dialer.worker.daemon import Worker as _Base
else:
    _Base = object

log = logging.getLogger(__name__)

#: the abandonment counts are read in full this often; the attempts of the last `RECENT` before
#: that read are read again every `counts_every` (their outcomes may still change)
COUNTS_FULL = dt.timedelta(seconds=60)
RECENT = dt.timedelta(minutes=10)


class Pacing(_Base):
    """Abandonment counts and the pacer's snapshot (a mixin of `Worker`)."""

    def _count(self, campaign_id: int, *, abandoned: int = 0, live: int = 0) -> None:
        c = self._counted.setdefault(campaign_id, [0, 0])
        c[0] += abandoned
        c[1] += live

    async def _refresh_counts(self, now: dt.datetime) -> None:
        """Abandoned calls and live answers of the predictive campaigns, from the database (every
        worker's), over the last day and 30 days: in full every `COUNTS_FULL`, counted up to
        `RECENT` before the refresh; the attempts since then again every `counts_every` (a range of
        a few minutes of the index), so that what other workers record reaches this one's pacer
        within seconds — the cap holds for the campaign, not for each worker."""
        ids = [c.id for c in self.campaigns if c.mode == "predictive"]
        full = self._counts_at is None or now - self._counts_at >= COUNTS_FULL
        edge = now - RECENT if full else self._counts_edge
        try:
            if full:
                base = await self.lanes.call("background", abandonment.abandon_counts, ids, now, end=edge)
            # (the answers still on the line too: this worker's own count of them is dropped here)
            recent = await self.lanes.call("background", abandonment.abandon_counts, ids, now, start=edge,
                                           in_progress=True)
        except TRANSIENT as exc:
            log.error("abandonment counts not refreshed: %s", describe(exc))
            return
        if full:
            self._counts, self._counts_at, self._counts_edge = base, now, edge
        self._recent, self._counted, self._recent_at = recent, {}, now

    def _counts_due(self, now: dt.datetime) -> bool:
        return self._recent_at is None or now - self._recent_at >= dt.timedelta(seconds=self.opt.counts_every)

    async def _warm_start(self, now: dt.datetime) -> None:
        """Each predictive queue's estimates learn the campaigns' recent record first (the last
        hour, or the same hours of the last days): a worker started mid-day, or a second one,
        paces from it at once. A campaign with no record starts progressive."""
        for name, q in self.predictive.items():
            ids = [c.id for c in self.campaigns if c.queue == name and c.mode == "predictive"]
            try:
                record = await self.lanes.call("background", history.recent_history, ids, name, now)
            except TRANSIENT as exc:
                log.error("queue %s: recent record not read, pacing starts progressive: %s", name, describe(exc))
                continue
            q.est.warm(record)
            q.changes_seen = q.est.changes  # (changes inside the record are not news)
            log.info("queue %s: pacing starts from %d dials and %d spells of the campaign's record%s", name,
                     len(record.dials), len(record.spells), "" if q.est.ready else " (progressive until it has more)")

    def abandonment(self) -> list[tuple[Campaign, abandonment.AbandonCounts]]:
        """Each predictive campaign's abandoned calls and live answers over the last 24 hours
        and 30 days, as the pacer sees them (the database's, every worker's, read again every
        `counts_every` seconds, plus this worker's own since)."""
        out = []
        for c in self.campaigns:
            if c.mode != "predictive":
                continue
            base = self._counts.get(c.id, abandonment.AbandonCounts())
            recent = self._recent.get(c.id, abandonment.AbandonCounts())
            ab, live = self._counted.get(c.id, [0, 0])
            out.append((c, base + recent + abandonment.AbandonCounts(ab, live, ab, live)))
        return out

    def _pace(self, queue: str, now: dt.datetime) -> int:
        """How many calls the queue's pacer wants placed now."""
        q = self.predictive[queue]
        campaigns = [c for c in self.campaigns if c.queue == queue and c.mode == "predictive" and c.status == "active"]
        if not campaigns:
            return 0
        agents: list[pacing.AgentState] = []
        for run in self._agents_of(queue):
            if not run.logged_in:
                continue
            if run.handling is not None:
                since = run.bridged_at or now
                agents.append(pacing.AgentState("busy", (now - since).total_seconds()))
            elif run.after_call:
                agents.append(pacing.AgentState("wrap", (now - (run.wrap_started or now)).total_seconds()))
            elif run.dialable(now):
                agents.append(pacing.AgentState("ready"))
            else:
                agents.append(pacing.AgentState("other"))
        flight = [(now - (r.call.dialled_at or r.call.tracker.started)).total_seconds() for r in self.seats.values()
                  if r.is_port and r.serves == queue and r.call is not None and r.call.phase == "dialling"]
        ab1 = live1 = ab30 = live30 = 0
        for c, n in self.abandonment():
            if c in campaigns:
                ab1, live1 = ab1 + n.abandoned_day, live1 + n.live_day
                ab30, live30 = ab30 + n.abandoned_30d, live30 + n.live_30d
        closing = all(not self._open_at(c, now + dt.timedelta(seconds=max(c.ring_timeout, 15))) for c in campaigns)
        cfg = pacing.PacerConfig(target=min(c.abandon_target for c in campaigns),
                                 max_calls_per_agent=min(c.max_calls_per_agent for c in campaigns))
        snap = pacing.Snapshot(agents, flight, len(q.waiting), ab1, live1, ab30, live30, window_closing=closing)
        if q.est.changes != q.changes_seen:
            q.changes_seen = q.est.changes
            log.info("queue %s: the answer rate changed; the pacer now reads %.2f over the last %d dials", queue,
                     q.est.p_answer, q.est.rate_from)
        return self.opt.pacer(snap, q.est, cfg)

    @staticmethod
    def _open_at(c: Campaign, when: dt.datetime) -> bool:
        return window_of(c).is_open(when) or any(window_of(c, tz).is_open(when) for tz in c.contact_timezones)

