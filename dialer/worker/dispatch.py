"""Dispatch: claim due contacts for the seats that are free and dial them.

The dispatcher wakes when a seat frees up (and every `dispatch_every` in any case), claims as
many due contacts as there are dialable seats — each queue's campaigns by priority, equal ones in
turn; predictive queues as many as the pacer wants, on free ports — and for each writes the
attempt (under the worker's fencing token, on seats it still holds), then sends `dial`. Nothing is
claimed while the worker's lease is not fresh (`may_dial`): a worker that cannot renew stops
dialling by itself, well before anyone else may take its work.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING

from dialer.errors import CTIError, LocalProtocolError
from dialer.outcomes import CallTracker, Event
from dialer.store import claim
from dialer.store.leases import LeaseLapsed, LeaseLost
from dialer.store.models import Campaign
from dialer.worker.handover import ACW
from dialer.worker.lanes import TRANSIENT
from dialer.worker.state import MISSES_BEFORE_PARK, PARK_REASON, ActiveCall, SeatRun

if TYPE_CHECKING:
    from dialer.worker.daemon import Worker as _Base
else:
    _Base = object

log = logging.getLogger(__name__)



#: claim passes in flight at once: a seat freed while a claim runs is claimed right behind it
#: (its claim queued ahead of the outcomes being written) rather than once it has returned. One
#: when a queue is predictive: the pacer counts the calls up, not those being claimed.
MAX_PASSES = 2


class Dispatch(_Base):
    """Claim and dial (a mixin of `Worker`)."""

    async def _dispatcher(self) -> None:
        passes: set[asyncio.Task[None]] = set()
        try:
            while not self.draining:
                try:
                    async with asyncio.timeout(self._real(self.opt.dispatch_every)):
                        await self._wake.wait()
                except TimeoutError:
                    self._rescan = True
                self._wake.clear()
                if self.draining:
                    return
                while len(passes) >= (1 if self.predictive else MAX_PASSES):
                    await asyncio.wait(passes, return_when=asyncio.FIRST_COMPLETED)
                if passes:
                    self.stats.passes_overlapped += 1
                task = asyncio.create_task(self._pass())
                passes.add(task)
                task.add_done_callback(passes.discard)
        finally:
            if passes:  # their claims are settled (dialled, or closed if the worker stops) first
                await asyncio.gather(*passes, return_exceptions=True)

    async def _pass(self) -> None:
        try:
            await self._dispatch_once()
        except TRANSIENT as exc:
            self._db_trouble("dispatch skipped", exc)
        except LeaseLapsed as exc:
            log.info("dispatch skipped: %s", exc)
        except LeaseLost as exc:
            self._lease_lost(exc)
        except Exception:
            log.exception("dispatch failed; going on")

    def _wake_all(self) -> None:
        """Wake the dispatcher to look at every seat (not only those freed since its last pass):
        a window opened, the lease came back, contacts were freed, or simply every
        `dispatch_every`."""
        self._rescan = True
        self._wake.set()

    def _candidates(self) -> list[SeatRun]:
        """The seats this pass looks at: those freed since the last pass, or all of them."""
        if self._rescan:
            self._rescan = False
            self._freed_since.clear()
            return list(self.seats.values())
        exts, self._freed_since = self._freed_since, set()
        return [run for ext in exts if (run := self.seats.get(ext)) is not None]

    async def _dispatch_once(self) -> None:
        now = self.clock.now()
        free: dict[str, list[SeatRun]] = {}
        ports: dict[str, list[SeatRun]] = {}
        claiming = self._claiming
        for run in self._candidates():
            if (not run.is_port and run.info.queue not in self.predictive and run.dialable(now)
                    and run.info.extension not in claiming):
                free.setdefault(run.info.queue, []).append(run)  # predictive agents take calls, not dial
        if self.predictive:  # the pacer looks at every port of its queue
            for run in self.seats.values():
                if run.is_port and run.dialable(now):
                    ports.setdefault(run.serves, []).append(run)
        turn = next(self._turn)

        def by_priority(active: list[Campaign]) -> list[Campaign]:
            # campaigns of equal priority take turns being first
            return sorted(active, key=lambda c: (-c.priority, (c.id + turn) % max(1, len(active))))

        work = []
        for qname, runs in free.items():
            active = by_priority([c for c in self.campaigns if c.queue == qname and c.status == "active"])
            if active:
                work.append((active, [r.info.extension for r in runs]))
        for qname in self.predictive:
            self._serve(qname)
            idle_ports = ports.get(qname, [])
            if not idle_ports:
                continue
            n = min(self._pace(qname, now), len(idle_ports))
            active = by_priority([c for c in self.campaigns if c.queue == qname and c.status == "active"
                                  and c.mode == "predictive"])
            if n > 0 and active:
                work.append((active, [r.info.extension for r in idle_ports[:n]]))
        if not work or self.draining or not self.may_dial:
            return
        mine = {x for _, seats in work for x in seats}
        claiming |= mine
        try:
            started = await self.lanes.call("dispatch", claim.claim_for_queues, self.opt.worker_id, self.token, work,
                                            now, dt.timedelta(seconds=self.opt.lease_sim))
            self._db_ok()
            for campaign, st in started:
                run = self.seats.get(st.seat)
                if run is None:  # let go while the claim ran: its attempt is closed by the reconciler
                    log.warning("seat %s went while its claim ran; attempt %s is left to the reconciler", st.seat,
                                st.attempt_id)
                    continue
                try:
                    await self._dial(run, campaign, st)  # sending does not wait (dialer/cti/wire.py)
                except Exception as exc:  # one dial's fault does not cost the others theirs
                    log.exception("seat %s: dialling attempt %s failed", st.seat, st.attempt_id)
                    call = run.call
                    if call is not None and call.attempt_id == st.attempt_id and call.dialled_at is None:
                        call.tracker.detail = f"dial not sent: {type(exc).__name__}"  # closed, the seat freed
                        self._ended(run, call.tracker.expire(Event.LOST, self.clock.now()))
        finally:
            claiming -= mine

    async def _dial(self, run: SeatRun, campaign: Campaign, started: claim.Started) -> None:
        now = self.clock.now()
        contact = started.contact
        if not run.dialable(now) or self.draining:  # the seat changed while the claim ran: no dial
            call = ActiveCall(started.attempt_id, contact, campaign, CallTracker(started=now), token=self.token)
            # (a free miss either way: `interrupted`, not counted against the contact's attempts)
            call.tracker.detail = ("the worker stopped before the dial" if self.draining
                                   else "the seat was taken before the dial")
            call.tracker.expire(Event.LOST, now)
            self._store(call, self._end_of(call), run)  # the seat and its own call are left alone
            return
        run.call = ActiveCall(started.attempt_id, contact, campaign, CallTracker(started=now), token=self.token)
        if run.is_port:
            run.call.port, run.call.queue = run, run.serves
        run.server_idle = False
        freed = self._freed_at.pop(run.info.extension, None)
        if freed is not None:
            self.stats.free_to_dial.append(self.loop.time() - freed)
        idle = self._line_idle.pop(run.info.extension, None)
        if idle is not None:
            self.stats.end_to_dial.append(self.loop.time() - idle)
        self._arm(run)
        self._note_seat(run)
        try:
            await run.seat.dial(started.dial_string, cusid=contact.customer_id or str(contact.id),
                                cusname=contact.name, proid=str(campaign.id), proname=campaign.name)
        except (CTIError, LocalProtocolError) as exc:
            if run.call is not None and run.call.attempt_id == started.attempt_id:
                run.call.tracker.detail = f"dial not sent: {exc}"
                self._ended(run, run.call.tracker.expire(Event.LOST, self.clock.now()))
            return
        if run.call is not None and run.call.attempt_id == started.attempt_id:
            run.call.dialled_at = self.clock.now()
            self._milestones(run.call)
        self.stats.dialled(campaign.name)

    async def _finish(self, run: SeatRun, call: ActiveCall) -> None:
        try:
            await self._record(run, call)
        except Exception:
            log.exception("seat %s: recording attempt %s failed", run.info.extension, call.attempt_id)
        finally:
            run.finishing = False
            if run.released and run.handling is None:
                self._spawn(self._drop_seat(run), f"release of seat {run.info.extension}")
            else:
                self._mark_free(run)

    def _missed(self, run: SeatRun, what: str) -> None:
        """The agent did not pick up: after `MISSES_BEFORE_PARK` in a row the seat is set busy
        until the agent frees it."""
        run.misses += 1
        if run.misses >= MISSES_BEFORE_PARK and not run.parked:
            run.parked = True
            log.warning("seat %s (%s): %d %s in a row not picked up; set busy (%s) until the agent frees it",
                        run.info.extension, run.info.name, run.misses, what, PARK_REASON)
            self._spawn(self._send_busy(run), f"busy of seat {run.info.extension}")

    async def _free(self, run: SeatRun) -> None:
        """End the seat's after-call work (ours, and the server's 话后 if it set one)."""
        run.wrap_until = None
        if (run.busy == ACW or run.after_call) and not run.parked and run.logged_in:
            try:
                await run.seat.idle()
            except CTIError as exc:
                log.warning("seat %s: idle not sent: %s", run.info.extension, exc)
        self._mark_free(run)

    def _mark_free(self, run: SeatRun) -> None:
        """The seat may have become dialable: note when (for the free → dial delay) and wake
        the dispatcher."""
        if run.dialable(self.clock.now()):
            self._freed_at.setdefault(run.info.extension, self.loop.time())
            self._freed_since.add(run.info.extension)
            if not run.is_port and run.info.queue in self.predictive:
                self._serve(run.info.queue)  # a caller may be waiting for just this agent
        else:
            self._freed_at.pop(run.info.extension, None)
        self._note_seat(run)
        self._wake.set()

