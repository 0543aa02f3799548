"""`dialer worker --metrics-port P [--metrics-host H]`: the worker's metrics for Prometheus, and
its health.

Theory of operation
-------------------
Each worker has a registry of its own (not prometheus_client's global one, so that several
workers in one process — tests, `dialer demo` — each report their own): a collector that reads
the worker's state when Prometheus scrapes, the process metrics, and two histograms the
database lanes feed as calls finish (the claim's and the outbox batch's real seconds). The small
HTTP server below runs on the worker's event loop, so the collector reads the worker from the
one thread that changes it: no lock, no torn read. docs/operations.md lists every metric.

    GET /metrics, /   the registry in Prometheus' text format
    GET /healthz      200 "ok" while the worker holds its lease and the database answers;
                      503 and a one-line reason otherwise
    anything else     404 (405 for a method other than GET or HEAD)
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dialer.store.models import SEAT_STATES
from dialer.worker.seatlog import seat_state

if TYPE_CHECKING:
    from dialer.worker import Worker

log = logging.getLogger(__name__)

#: real seconds: a claim or a batch takes milliseconds; a stalled database up to the lanes' 15 s
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WorkerCollector(Collector):
    """The worker's counters and gauges, read at scrape time (on the worker's event loop)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        w = self.worker
        stats = w.stats
        names = sorted({c.name for c in w.campaigns} | set(stats.campaign_dials)
                       | {c for c, _ in stats.campaign_outcomes})
        dials = CounterMetricFamily("dialer_dials", "Dials sent to the CTI server, by campaign.",
                                    labels=["campaign"])
        for name in names:  # 0 for a campaign not dialled yet: "no dials" is then a series, not a gap
            dials.add_metric([name], stats.campaign_dials.get(name, 0))
        yield dials
        outcomes = CounterMetricFamily("dialer_outcomes", "Call outcomes recorded (put to the outbox), by campaign "
                                       "and outcome.", labels=["campaign", "outcome"])
        for (name, outcome), n in sorted(stats.campaign_outcomes.items()):
            outcomes.add_metric([name, outcome], n)
        yield outcomes
        yield CounterMetricFamily("dialer_outcomes_refused", "Outcomes the database refused because the attempt "
                                  "was closed already (its lease had passed to another worker).",
                                  value=stats.not_written)
        yield self._seats()
        yield GaugeMetricFamily("dialer_calls_in_flight", "Calls up on this worker's seats (dialling, ringing, "
                                "talking or being handed to an agent).", value=w.calls_in_flight)
        waiting = GaugeMetricFamily("dialer_callers_waiting", "Answered predictive calls waiting for an agent, "
                                    "by agents' queue.", labels=["queue"])
        level = GaugeMetricFamily("dialer_pacing_level", "Predictive calls in flight on the queue's ports per "
                                  "ready agent (absent while no agent is ready).", labels=["queue"])
        for queue, pq in sorted(w.predictive.items()):
            waiting.add_metric([queue], len(pq.waiting))
            value = w.pacing_level(queue)
            if value is not None:
                level.add_metric([queue], value)
        yield waiting
        yield level
        rate = GaugeMetricFamily("dialer_abandon_rate", "Abandoned calls / live answers of a predictive campaign "
                                 "over the last 24 hours or 30 days (every worker's, as the pacer sees them).",
                                 labels=["campaign", "window"])
        target = GaugeMetricFamily("dialer_abandon_target", "A predictive campaign's abandonment cap (its "
                                   "abandon target).", labels=["campaign"])
        for campaign, n in w.abandonment():
            for window, abandoned, live in (("24h", n.abandoned_day, n.live_day), ("30d", n.abandoned_30d, n.live_30d)):
                rate.add_metric([campaign.name, window], abandoned / live if live else 0.0)
            target.add_metric([campaign.name], campaign.abandon_target)
        yield rate
        yield target
        yield GaugeMetricFamily("dialer_outbox_depth", "Milestones and outcomes waiting to be written to the "
                                "database.", value=len(w.outbox))
        yield CounterMetricFamily("dialer_cti_connections_lost", "Seats' CTI sockets lost (closed by the server, "
                                  "the network or unanswered heartbeats).", value=stats.cti_lost)
        yield CounterMetricFamily("dialer_cti_reconnects", "Seats reconnected to the CTI server and logged in "
                                  "again after a lost socket.", value=stats.cti_restored)
        yield GaugeMetricFamily("dialer_lease_held", "1 while the worker's lease is fresh (renewed within half a "
                                "lease: it may dial), else 0.", value=1 if w.may_dial else 0)
        yield GaugeMetricFamily("dialer_database_up", "1 while the database answers the worker, 0 from a failed "
                                "call until one succeeds.", value=1 if w._db_down_since is None else 0)
        yield CounterMetricFamily("dialer_db_calls_stuck", "Database calls that ran past their deadline (their "
                                  "thread replaced).", value=w.lanes.stuck)
        yield GaugeMetricFamily("dialer_event_loop_lag_seconds", "The worker's event loop's latest delay "
                                "(real seconds; the 2 s rule is at risk past a few tenths).", value=w.lag)

    def _seats(self) -> GaugeMetricFamily:
        w = self.worker
        now = w.clock.now()
        counts: dict[tuple[str, str], dict[str, int]] = {}
        for run in w.seats.values():
            states = counts.setdefault((run.serves or run.info.queue, run.info.role), dict.fromkeys(SEAT_STATES, 0))
            states[seat_state(run, now)[0]] += 1
        seats = GaugeMetricFamily("dialer_seats", "This worker's seats by agents' queue, role (agent or port) and "
                                  "state (ready, dialling, talking, wrap, busy, lost, logged_out).",
                                  labels=["queue", "role", "state"])
        for (queue, role), states in sorted(counts.items()):
            for state, n in states.items():
                seats.add_metric([queue, role, state], n)
        return seats


class WorkerMetrics:
    """One worker's registry: its collector, the process metrics and the latency histograms
    (fed by the worker's database lanes from the moment this is made)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.registry = CollectorRegistry()
        self.registry.register(WorkerCollector(worker))
        ProcessCollector(registry=self.registry)
        self.claim = Histogram("dialer_claim_seconds", "Real seconds a claim of due contacts took on the "
                               "database, time queued for the lane included.", buckets=BUCKETS,
                               registry=self.registry)
        self.outbox_write = Histogram("dialer_outbox_write_seconds", "Real seconds each outbox batch of milestones "
                                      "and outcomes took to write (one transaction), time queued included.",
                                      buckets=BUCKETS, registry=self.registry)
        worker.lanes.observers["dispatch"] = self.claim.observe  # the dispatch lane runs claims only
        worker.lanes.observers["outbox"] = self.outbox_write.observe

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def health(self) -> tuple[bool, str]:
        """(healthy, one line): the lease held and the database answering."""
        w = self.worker
        if w._db_down_since is not None:
            return False, f"database unavailable for {w.loop.time() - w._db_down_since:.0f} s"
        if w.lost_lease:
            return False, "lease lost to another worker"
        if not w.may_dial:
            if w._renewed_at is None:
                return False, "no lease yet"
            return False, f"lease not renewed for {w.loop.time() - w._renewed_at:.0f} s"
        return True, "ok"


_metrics: weakref.WeakKeyDictionary[Worker, WorkerMetrics] = weakref.WeakKeyDictionary()


def metrics_of(worker: Worker) -> WorkerMetrics:
    """The worker's metrics, made on first use (make them before the worker runs for the
    histograms to see every call)."""
    m = _metrics.get(worker)
    if m is None:
        m = _metrics[worker] = WorkerMetrics(worker)
    return m


def render(worker: Worker) -> str:
    """What /metrics answers (call it on the worker's event loop)."""
    return metrics_of(worker).render().decode()


async def serve_metrics(worker: Worker, port: int, host: str = "127.0.0.1") -> asyncio.base_events.Server:
    """Listen on host:port for /metrics and /healthz. Raises OSError when it cannot listen."""
    metrics = metrics_of(worker)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, path = _request_line(head)
            status, ctype, body = _answer(metrics, method, path)
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


_TEXT = "text/plain; charset=utf-8"


def _request_line(head: bytes) -> tuple[str, str]:
    parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
    if len(parts) < 2:
        return "", ""
    return parts[0], parts[1].split("?", 1)[0]


def _answer(metrics: WorkerMetrics, method: str, path: str) -> tuple[str, str, bytes]:
    if method not in ("GET", "HEAD"):
        return "405 Method Not Allowed", _TEXT, b"GET or HEAD only\n"
    if path in ("/metrics", "/"):
        try:
            return "200 OK", CONTENT_TYPE_LATEST, metrics.render()
        except Exception:  # a bug of ours: say so in the log, not as a half page to Prometheus
            log.exception("metrics: collecting failed")
            return "500 Internal Server Error", _TEXT, b"collecting the metrics failed (see the worker's log)\n"
    if path == "/healthz":
        ok, reason = metrics.health()
        return ("200 OK" if ok else "503 Service Unavailable"), _TEXT, f"{reason}\n".encode()
    return "404 Not Found", _TEXT, b"not found: try /metrics or /healthz\n"
