"""The worker's periodic jobs, on an APScheduler `AsyncIOScheduler` (in memory): agent state
refresh, campaign reload (pause, resume, windows; the until-done check), reconciliation of
what no worker follows, seat leasing, the inbox scan, and the event loop's own lag."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dialer.cti import protocol as p
from dialer.errors import CTIError
from dialer.store import attempts as db
from dialer.store import leases
from dialer.store.engine import checkpoint
from dialer.worker.lanes import TRANSIENT
from dialer.worker.state import SeatRun

if TYPE_CHECKING:
    from dialer.worker.daemon import Worker as _Base
else:
    _Base = object

log = logging.getLogger(__name__)


def _quiet_on_shutdown(fn: Callable[[], Any]) -> Callable[[], Any]:
    """A periodic job that the scheduler's shutdown may cancel mid-way without an error log."""
    if not asyncio.iscoroutinefunction(fn):
        return fn

    @functools.wraps(fn)
    async def job() -> None:
        try:
            await fn()
        except asyncio.CancelledError:
            log.debug("job %s cancelled at shutdown", fn.__name__)

    return job


class _NoShutdownCancel(logging.Filter):
    """APScheduler logs "Error running job" with a CancelledError for a job its shutdown cancelled
    before the job had started (so `_quiet_on_shutdown` never ran): that is a stop, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


class _NoSkipNotice(logging.Filter):
    """A periodic job still running when its next turn comes is skipped (max_instances=1, the
    point of it): a database call waiting out an outage does that every turn; not a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in record.getMessage()


def _quiet_scheduler_shutdown() -> None:
    executors = logging.getLogger("apscheduler.executors.default")
    if not any(isinstance(f, _NoShutdownCancel) for f in executors.filters):
        executors.addFilter(_NoShutdownCancel())
    scheduler = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, _NoSkipNotice) for f in scheduler.filters):
        scheduler.addFilter(_NoSkipNotice())



class Jobs(_Base):
    """Periodic work (a mixin of `Worker`)."""

    def _poke(self) -> None:
        self._wake_all()

    async def _refresh(self) -> None:
        """Log in seats that are out; ask the server which seats of a queue are idle when one of
        them is in limbo — no call, no busy reason, not idle, and not heard from for a whole
        refresh period (an event missed). The seats' own events keep the others current: asking
        every queue every time cost a command and a long answer per queue, all day."""
        if self.draining:
            return
        for run in list(self.seats.values()):
            if (not run.logged_in and not run.connecting and not run.released and not self.draining
                    and run.seat.connected is False and run.seat._restorer is None):
                await self._connect(run)
        stale_before = self.loop.time() - self._real(self.opt.refresh_every)
        by_queue: dict[str, list[SeatRun]] = {}
        limbo: set[str] = set()
        for run in self.seats.values():
            by_queue.setdefault(run.info.queue, []).append(run)
            if (run.logged_in and not run.is_port and run.call is None and run.handling is None and not run.busy
                    and not run.server_idle and run.heard_at < stale_before):
                limbo.add(run.info.queue)
        for qname in sorted(limbo):
            runs = by_queue[qname]
            asker = next((r for r in runs if r.logged_in and not r.is_port), None)
            if asker is None or self.draining:
                continue
            asked = self.loop.time()
            try:
                records = await asker.seat.extension_list(p.ExtensionListType.AGENT_IDLE, queue=qname)
            except CTIError as exc:
                log.warning("agent state refresh for queue %s failed: %s", qname, exc)
                continue
            idle = {r.exten for r in records}
            for run in runs:
                if run.heard_at > asked or run.is_port:
                    continue  # the seat's own events since the question are fresher than the answer
                run.heard_at = asked
                run.server_idle = run.info.extension in idle and run.call is None
                self._mark_free(run)
        self._wake_all()

    async def _reload(self) -> None:
        """Pick up campaign changes, note windows opening and closing, and stop when done."""
        names = self.opt.campaigns or tuple(c.name for c in self.campaigns)
        try:
            version = await self.lanes.call("background", db.campaigns_version, names)
            if version != self._campaigns_version:  # changed: load them (ORM objects are dear)
                fresh = await self.lanes.call("background", db.load_campaigns, names)
                self._campaigns_version = version
                self.campaigns = fresh  # the same campaigns, by name, with their current settings and status
        except TRANSIENT as exc:
            self._db_trouble("campaign reload failed", exc)
            return
        now = self.clock.now()
        for c in self.campaigns:
            is_open = self._open_at(c, now)
            if self._window_open.get(c.id) != is_open:
                log.info("campaign %s: calling window %s", c.name, "open" if is_open else "closed")
                self._window_open[c.id] = is_open
                self._wake_all()
        if self.predictive and self._counts_due(now):
            await self._refresh_counts(now)
        if self.opt.until_done and not self.draining and self._quiet():
            try:
                left = await self.lanes.call("background", db.dialable_left, [c.id for c in self.campaigns], now)
            except TRANSIENT as exc:
                self._db_trouble("until-done check failed", exc)
                return
            if left == 0 and self._quiet():
                log.info("every contact is worked out; stopping")
                self.request_stop()

    def _quiet(self) -> bool:
        """No call in flight, none being finished, nothing waiting to be written."""
        return self.calls_in_flight == 0 and not self._finishing and len(self.outbox) == 0

    async def _reconcile(self) -> None:
        """Close what no worker follows: attempts of workers whose lease lapsed long ago, and
        this worker's own attempts that no call of its follows (a claim whose dial was never
        sent because its reply was lost), by the campaigns' rules."""
        import datetime as dt

        if not self.may_dial:
            return
        now = self.clock.now()
        try:
            closed = await self.lanes.call("background", leases.reconcile_dead, self.opt.worker_id, now,
                                           dt.timedelta(seconds=max(self.opt.orphan_after, self.opt.lease_sim)))
            mine = await self.lanes.call("background", db.open_attempts, self.opt.worker_id, self.token)
            followed = ({c.attempt_id for c in self._calls()} | {o.attempt_id for o in self._orphan_list()}
                        | self.outbox.pending_outcomes())
            stray = {a for a in mine if a not in followed}
            really = sorted(stray & self._stray_before)  # stray at two looks in a row: no claim in progress
            self._stray_before = stray - set(really)
            if really:
                closed.update(await self.lanes.call("background", leases.close_attempts, self.opt.worker_id,
                                                    self.token, really, now, "no call followed it"))
            # calls of the earlier life on seats that never logged in again: closed by their milestones
            if self._orphans and self.loop.time() - self._orphans_at > self._real(self.opt.lost_timeout):
                left = [o.attempt_id for o in self._orphan_list()]
                self._orphans.clear()
                closed.update(await self.lanes.call("background", leases.close_attempts, self.opt.worker_id,
                                                    self.token, left, now, "its seat did not come back"))
        except TRANSIENT as exc:
            self._db_trouble("reconcile failed", exc)
            return
        if closed:
            log.warning("closed %s attempt(s) no worker followed: %s", sum(closed.values()),
                        ", ".join(f"{k} {v}" for k, v in sorted(closed.items())))
            self._wake_all()

    async def _checkpoint(self) -> None:
        """SQLite: copy the WAL into the database every second, off the claims' thread (the
        worker's engine never checkpoints in a commit: dialer.store.engine.worker_engine)."""
        try:
            await self.lanes.call("background", checkpoint)
        except TRANSIENT as exc:
            log.debug("WAL checkpoint skipped: %s", exc)

    async def _scan_inbox(self) -> None:
        from dialer.inbox import scan_inbox

        if self.opt.inbox is None:
            return
        for campaign in self.campaigns:
            try:  # its own lane, no deadline: a long import blocks none of the worker's writes
                await self.lanes.call("inbox", scan_inbox, campaign.name, self.opt.inbox / campaign.name,
                                      self.opt.worker_id, timeout=0)
            except Exception:
                log.exception("inbox of campaign %s: scan failed; going on", campaign.name)

    async def _watch_lag(self) -> None:
        """Measure the event loop's delay: how late a timer fires. Past `lag_warning` the 2 s
        rule (and every timer) is at risk: say so, at most once a minute."""
        interval = 0.05
        warned = -1e9
        while True:
            before = self.loop.time()
            await asyncio.sleep(interval)
            lag = self.loop.time() - before - interval
            self.lag = lag
            self.stats.lag_max = max(self.stats.lag_max, lag)
            limit = self.opt.lag_warning
            if self.predictive:  # a quarter of the 2 s rule, in real time
                limit = min(limit, 0.25 * self._real(2.0))
            if lag > limit and self.loop.time() - warned > 60:
                warned = self.loop.time()
                share = lag / max(1e-9, self._real(2.0))
                log.warning("event loop lag %.0f ms (%.0f%% of the 2 s rule at this time scale): the machine cannot "
                            "keep up; use a larger --time-scale", lag * 1000, share * 100)
