"""Recording: each call's milestones as they happen and its outcome when it ends, through the
outbox (dialer/worker/outbox.py), with the contact's retry from the pure policy."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from dialer.outcomes import decide_retry
from dialer.store import attempts as db
from dialer.store.repo import window_of
from dialer.worker.outbox import Write
from dialer.worker.state import ActiveCall, SeatRun

if TYPE_CHECKING:
    from dialer.worker.daemon import Worker as _Base
else:
    _Base = object

log = logging.getLogger(__name__)


def masked(phone: str) -> str:
    """A phone number for the log: the last four digits only."""
    return f"…{phone[-4:]}" if len(phone) > 4 else "…"


class Recorder(_Base):
    """Milestones and outcomes (a mixin of `Worker`)."""

    def _milestones(self, call: ActiveCall) -> None:
        """Queue what the call has reached since the last look (ringing, answered, call id)."""
        t = call.tracker
        sent = call.__dict__.setdefault("_sent", {})
        values = {}
        for name, value in (("dialled_at", call.dialled_at), ("ringing_at", t.ringing_at),
                            ("answered_at", t.answered_at), ("callid", t.callid[:64] or None),
                            ("bridged_at", call.bridged_at)):
            if value is not None and sent.get(name) != value:
                values[name] = sent[name] = value
        if values:
            self.outbox.milestone(call.token, call.attempt_id, **values)

    def _end_of(self, call: ActiveCall) -> db.AttemptEnd:
        """What an ended progressive (or port) call records."""
        t = call.tracker
        outcome = t.outcome
        detail = t.detail
        if outcome == "answered" and t.talk_seconds is None:
            detail = (detail + "; " if detail else "") + "talk time unknown: the call was lost from sight"
        return db.AttemptEnd(outcome, t.callid, call.dialled_at, t.agent_up_at, t.ringing_at, t.answered_at,
                             t.ended_at or self.clock.now(), t.ring_seconds, t.talk_seconds, t.province, t.city,
                             t.isp, detail, bridged_at=t.answered_at)  # click-to-dial: the agent is on already

    async def _record(self, run: SeatRun, call: ActiveCall) -> None:
        """A progressive call (or a port's unanswered one) ended: its outcome, and the seat's
        next state."""
        end = self._end_of(call)
        outcome, now = end.outcome, end.ended_at or self.clock.now()
        status = self._store(call, end, run)
        log.info("seat %s: %s %s → %s (%s)", run.info.extension, call.campaign.name, masked(call.contact.phone),
                 outcome, status)
        if run.is_port:  # a predictive call that never reached a customer
            if call.queue in self.predictive and outcome not in ("agent_no_answer", "interrupted"):
                self.predictive[call.queue].est.observe_dial_end(False, None)
            self._progress()
            return
        if outcome == "agent_no_answer":
            self._missed(run, "dials")
        elif outcome != "interrupted":
            run.misses = 0
        wrap_up = call.campaign.wrap_up
        if outcome == "answered" and wrap_up > 0 and not call.adopted:
            run.wrap_until = now + dt.timedelta(seconds=wrap_up)
            run.wrap_timer = self.loop.call_later(
                self._real(wrap_up), lambda: self._spawn(self._free(run), f"end of wrap-up of seat {run.info.extension}"))
        else:
            run.wrap_until = None
            await self._free(run)
        self._progress()

    def _store(self, call: ActiveCall, end: db.AttemptEnd, run: SeatRun | None = None) -> str:
        """Queue a call's outcome and what it means for its contact; the contact's new status.
        The seat (`run`) is not let go while the outcome waits: another worker taking it would
        adopt the attempt and close it without what this worker knows."""
        contact, campaign = call.contact, call.campaign
        when = end.ended_at or self.clock.now()
        retry = decide_retry(end.outcome, attempts=contact.attempts, free_misses=contact.free_misses,  # type: ignore[arg-type]
                             max_attempts=campaign.max_attempts, delays=campaign.retry_delays,
                             window=window_of(campaign, contact.timezone), now=when,
                             predictive=campaign.mode == "predictive")
        self.stats.recorded(campaign.name, end.outcome)
        self._open_writes += 1
        seat = run or call.port or call.agent
        if seat is not None:
            seat.unwritten += 1

        def done(ok: bool) -> None:
            self._open_writes -= 1
            if seat is not None:
                seat.unwritten -= 1
            if not ok:
                self.stats.not_written += 1
                log.warning("attempt %s: outcome %s not written: the attempt was closed already (its lease "
                            "passed to another worker)", call.attempt_id, end.outcome)
            self._progress()

        self.outbox.put(Write(call.token, call.attempt_id, contact_id=contact.id, end=end, retry=retry, on_done=done))
        return retry.status

    def _predictive_outcome(self, call: ActiveCall, outcome: str, now: dt.datetime, *, agent: SeatRun | None = None,
                            detail: str = "") -> None:
        """Record the outcome of an answered predictive call."""
        if outcome in db.ABANDONED:
            self._count(call.campaign.id, abandoned=1)
        t = call.tracker
        talk = (now - call.bridged_at).total_seconds() if call.bridged_at is not None else None
        end = db.AttemptEnd(outcome, t.callid, call.dialled_at, t.agent_up_at, t.ringing_at, t.answered_at, now,
                            t.ring_seconds, talk, t.province, t.city, t.isp, detail, call.bridged_at,
                            agent.info.extension if agent is not None else "")
        status = self._store(call, end, agent)
        log.info("%s %s → %s (%s) %s", call.campaign.name, masked(call.contact.phone), outcome, status, detail)
        self._progress()

    def _progress(self) -> None:
        if self.opt.on_progress:
            self.opt.on_progress(self)
        self._wake.set()
