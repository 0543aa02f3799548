"""Leases and seats: the worker id's lease and its renewal, the seats leased — at start-up and
continuously after (lapsed seats, seats of dead workers, seats added while it runs) — logged in,
and given back.

Theory of operation
-------------------
The lease is renewed on a lane of its own (it never queues behind a claim) every quarter of its
length. `may_dial` holds while the last renewal is younger than half the lease: a worker that
cannot renew stops claiming by itself, half a lease before anyone else may take its seats, and
starts again with its next renewal. Past the whole lease it logs out its idle seats so that
another worker may take them; calls in progress go on being followed and their outcomes wait in
the outbox. A renewal that finds the token gone (another life of the id took over) stops the
worker: what it holds is someone else's now.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import math
import os
from typing import TYPE_CHECKING

from dialer.cti import protocol as p
from dialer.cti.client import Seat, exponential_backoff
from dialer.errors import CTIError, ProtocolError
from dialer.store import attempts as db
from dialer.store import leases
from dialer.store.leases import LeaseLost, Orphan
from dialer.store.repo import AgentRow
from dialer.worker.lanes import TRANSIENT, DatabaseUnavailable, describe
from dialer.worker.options import WorkerError
from dialer.worker.state import SeatRun

if TYPE_CHECKING:
    from dialer.worker.daemon import Worker as _Base
else:
    _Base = object

log = logging.getLogger(__name__)

PORT_BUSY = "外呼端口"
#: events no part of the worker reads: a queue's counts (each seat gets every change of its queue)
IGNORED_EVENTS = frozenset({p.QueueStatus.NAME})  # a dialer port stays busy so that its queue never offers it a caller


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Seats(_Base):
    """The lease and the seats (a mixin of `Worker`)."""

    # -- the lease ------------------------------------------------------------------------------
    @property
    def lease_real(self) -> float:
        return self._real(self.opt.lease_sim)

    @property
    def may_dial(self) -> bool:
        """The lease was renewed less than half a lease ago."""
        return self._renewed_at is not None and self.loop.time() - self._renewed_at < self.lease_real / 2

    async def _register(self) -> None:
        now = self.clock.now()
        token, orphans = await self.lanes.call(
            "heartbeat", leases.register_worker, self.opt.worker_id, now, dt.timedelta(seconds=self.opt.lease_sim),
            pid=os.getpid(), pid_alive=pid_alive)
        self.token, self._renewed_at = token, self.loop.time()
        self._orphans_at = self.loop.time()
        for o in orphans:
            self._orphans.setdefault(o.seat, []).append(o)
        if orphans:
            log.info("worker %s: %d call(s) of its earlier life to follow or close", self.opt.worker_id, len(orphans))

    def _orphan_list(self) -> list[Orphan]:
        return [o for items in self._orphans.values() for o in items]

    async def _keep_lease(self) -> None:
        """Renew the lease every quarter lease, for as long as the worker runs."""
        while True:
            await asyncio.sleep(self.lease_real / 4)
            now = self.clock.now()
            sent = self.loop.time()  # the lease counts from here, however long the renewal takes
            before = set(self.seats)
            try:
                held = await self.lanes.call("heartbeat", leases.renew, self.opt.worker_id, self.token, now,
                                             dt.timedelta(seconds=self.opt.lease_sim), timeout=self.lease_real / 2)
            except LeaseLost as exc:
                self._lease_lost(exc)
                return
            except TRANSIENT as exc:
                self._db_trouble("lease not renewed", exc)
                if self._renewed_at is not None and self.loop.time() - self._renewed_at > self.lease_real:
                    await self._let_idle_seats_go("the lease ran out")
                continue
            if not self.may_dial:
                log.warning("lease renewed again: dialling resumes")
            self._renewed_at = sent
            self._db_ok()
            if self._let_go:  # seats logged out while the lease had run out: give them back now
                gone, self._let_go = self._let_go, set()
                try:
                    await self.lanes.call("background", leases.release_seats, self.opt.worker_id, self.token,
                                          sorted(gone - set(self.seats)))
                except TRANSIENT:
                    self._let_go |= gone
            for ext, run in list(self.seats.items()):
                if ext in before and ext not in held and not run.released:
                    log.warning("seat %s: its lease passed to another worker; letting it go", ext)
                    run.released = True
                    if run.call is None and run.handling is None:
                        await self._drop_seat(run)
            self._wake_all()

    def _lease_lost(self, exc: Exception) -> None:
        if self.lost_lease:
            return
        self.lost_lease = True
        log.error("worker %s: %s; stopping (its seats and calls are another worker's now)", self.opt.worker_id, exc)
        self.exit_code = 1
        self.request_stop()

    def _db_trouble(self, what: str, exc: BaseException) -> None:
        if self._db_down_since is None:
            self._db_down_since = self.loop.time()
            log.error("%s: database unavailable (%s); no new calls until it is back", what, describe(exc))
        else:
            log.debug("%s: %s", what, describe(exc))

    def _db_ok(self) -> None:
        if self._db_down_since is not None:
            log.warning("database back after %.1f s", self.loop.time() - self._db_down_since)
            self._db_down_since = None

    # -- seats ----------------------------------------------------------------------------------
    async def _lease_seats(self) -> list[AgentRow]:
        """Lease what seats there are to take: agents of the campaigns' queues (up to
        `max_seats`), and for predictive queues enough dialer ports. Returns the new ones."""
        now = self.clock.now()
        lease = dt.timedelta(seconds=self.opt.lease_sim)
        queues = sorted({c.queue for c in self.campaigns})
        infos = await self.lanes.call("background", leases.lease_seats, self.opt.worker_id, self.token, queues, now,
                                      lease, limit=self.opt.max_seats)
        predictive = sorted({c.queue for c in self.campaigns if c.mode == "predictive"})
        new_ports: list[AgentRow] = []
        if predictive:
            ports = {ext: run.info for ext, run in self.seats.items() if run.is_port and not run.released}
            pools: list[str] = []
            for qname in predictive:  # enough ports for the most calls the pacer may have up
                mine = [c for c in self.campaigns if c.queue == qname and c.mode == "predictive"]
                agents = sum(1 for i in infos if i.queue == qname)
                pool = sorted({c.port_queue or qname for c in mine})  # the ports' own queue(s)
                pools += pool
                have = sum(1 for ext in ports if self._serves.get(ext) == qname)
                want = max(1, math.ceil(max(c.max_calls_per_agent for c in mine) * agents)) - have
                if want <= 0:
                    continue
                # a port queue may serve several agents' queues: the lease keeps this worker's
                # ports first, so asking for those already held plus `want` takes `want` more
                given = sum(1 for row in ports.values() if row.queue in pool)
                held = await self.lanes.call("background", leases.lease_seats, self.opt.worker_id, self.token, pool,
                                             now, lease, roles=("port",), limit=given + want)
                for row in held:
                    if row.extension not in ports and row.queue in pool and want > 0:
                        ports[row.extension] = row
                        self._serves[row.extension] = qname
                        new_ports.append(row)
                        want -= 1
            if not ports:
                raise WorkerError(f"predictive dialing needs dialer ports in queue(s) {', '.join(sorted(set(pools)))} "
                                  "(dialer agents add --role port)")
        return [i for i in [*infos, *new_ports] if i.extension not in self.seats]

    def _add_seat(self, info: AgentRow) -> SeatRun:
        seat = Seat(name=info.extension, heartbeat_interval=self.opt.cti_heartbeat,
                    backoff=self.opt.backoff or exponential_backoff(), ignore=IGNORED_EVENTS,
                    on_event=functools.partial(self._on_event, info.extension))
        run = SeatRun(info, seat, serves=self._serves.get(info.extension, info.queue))
        self.seats[info.extension] = run
        return run

    async def _more_seats(self) -> None:
        """The periodic look for seats: lapsed leases, dead workers' seats, seats added since."""
        if self.draining or not self.may_dial:
            return
        try:
            queues = {c.queue for c in self.campaigns} | {c.port_queue for c in self.campaigns if c.port_queue}
            if not await self.lanes.call("background", leases.seats_to_take, self.opt.worker_id, self.token,
                                         sorted(queues), self.clock.now()):
                return  # nothing free: no lease taken, nothing loaded
            if self.opt.max_seats is not None and sum(1 for r in self.seats.values() if not r.is_port) >= self.opt.max_seats:
                return
            fresh = await self._lease_seats()
        except TRANSIENT as exc:
            self._db_trouble("seat lease failed", exc)
            return
        except LeaseLost as exc:
            self._lease_lost(exc)
            return
        except WorkerError as exc:
            log.warning("%s", exc)
            return
        if fresh:
            log.info("worker %s: %d more seat(s): %s", self.opt.worker_id, len(fresh),
                     ", ".join(i.extension for i in fresh))
            runs = [self._add_seat(i) for i in fresh]
            await self._connect_all(runs)

    async def _connect_all(self, runs: list[SeatRun]) -> None:
        """Log seats in; those with a call left open on them (one query for all) are checked
        for calls to follow."""
        try:
            self._left_open |= await self.lanes.call("background", leases.seats_with_open_calls,
                                                     [r.info.extension for r in runs])
        except TRANSIENT as exc:
            log.warning("calls left open on new seats not looked up (%s); looking on each", describe(exc))
            self._left_open |= {r.info.extension for r in runs}
        await asyncio.gather(*(self._connect(r) for r in runs))

    async def _connect(self, run: SeatRun) -> None:
        """Log the seat in; then follow any call an earlier worker left on it."""
        info = run.info
        run.connecting = True
        try:
            if not run.seat.connected:
                await run.seat.connect(self.opt.cti_url)
            if run.is_port:  # busy, so that the queue never offers it a caller; no after-call work
                acw, busy = p.AutoAcw.OFF, PORT_BUSY
            elif info.queue in self.predictive:  # agents take transferred (inbound) calls
                acw, busy = p.AutoAcw.ALL, ""
            else:
                acw, busy = p.AutoAcw.OUTBOUND, ""
            login_at = self.loop.time()
            await run.seat.login(info.name or info.staffid, info.extension, info.queue, info.staffid,
                                 skill=info.skill, secname=info.sector, autoacw=int(acw), busy_string=busy)
            run.logged_in = True
            await self._take_over_calls(run, login_at)
            if run.is_port:  # free once no call of an earlier worker is left on it
                run.server_idle = run.call is None
        except (CTIError, ProtocolError) as exc:
            log.error("seat %s: %s; will retry", info.extension, exc)
            await run.seat.close()  # a refused login keeps no socket; the refresh job tries again
        finally:
            run.connecting = False
            if run.logged_in and run.info.extension in self.seats:
                self._mark_free(run)  # what the login's status said, now that the look is done

    async def _take_over_calls(self, run: SeatRun, login_at: float) -> None:
        """Calls left open on this seat — by this id's earlier life, or by a worker whose lease
        lapsed — are followed to their end (or closed by the campaign's rules if not up)."""
        ext = run.info.extension
        orphans = self._orphans.pop(ext, [])
        if ext not in self._left_open and not orphans:
            return
        self._left_open.discard(ext)
        try:
            orphans += await self.lanes.call("background", leases.adopt_seat_attempts, self.opt.worker_id, self.token,
                                             ext, self.clock.now())
        except (*TRANSIENT, LeaseLost) as exc:
            log.warning("seat %s: calls left on it not checked (%s); the reconciler will", ext, describe(exc))
        if not orphans:
            return
        orphans.sort(key=lambda o: o.created_at)
        *older, last = orphans
        close = [o.attempt_id for o in older]
        contact = None
        try:
            contact = (await self.lanes.call("background", db.load_contacts, [last.contact_id])).get(last.contact_id)
        except TRANSIENT as exc:
            log.warning("seat %s: contact of attempt %s not loaded (%s)", ext, last.attempt_id, describe(exc))
        if run.call is None and self._adopt(run, last, contact):
            call = run.call
            if call is not None and run.heard_at >= login_at:  # the login's status came already
                self._confirm(run, call, p.StatusChanged("", run.seat.call_state.value, "", run.busy, ""),
                              self.clock.now())
        else:
            close.append(last.attempt_id)
        if close:
            try:
                await self.lanes.call("background", leases.close_attempts, self.opt.worker_id, self.token, close,
                                      self.clock.now(), "left open by an earlier worker")
            except (*TRANSIENT, LeaseLost) as exc:
                log.warning("seat %s: attempts %s not closed (%s); the reconciler will", ext, close, describe(exc))

    async def _drop_seat(self, run: SeatRun, *, forget: bool = True) -> None:
        """Let a seat go: log it out (it has no call) and close its socket; `forget` it too
        (not at shutdown: the stopped worker's seats stay to be reported on)."""
        if forget:
            self.seats.pop(run.info.extension, None)
        try:
            if run.logged_in and run.call is None:
                await asyncio.wait_for(run.seat.logout(), 2)
        except (CTIError, asyncio.TimeoutError):
            pass
        await run.seat.close()
        if run.call is None:
            self._seat_gone(run)

    async def _let_idle_seats_go(self, why: str) -> None:
        idle = [r for r in self.seats.values() if r.call is None and r.handling is None and not r.finishing
                and not r.unwritten]
        if idle:
            log.warning("%s: logging out %d idle seat(s) so that another worker may take them", why, len(idle))
        for run in idle:
            run.released = True
            self._let_go.add(run.info.extension)
            await self._drop_seat(run)


__all__ = ["Seats", "pid_alive", "DatabaseUnavailable"]
