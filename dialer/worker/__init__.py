"""The worker daemon (see dialer/worker/daemon.py for how its parts fit)."""

from dialer.worker.daemon import Worker
from dialer.handover import ABANDON_AFTER
from dialer.worker.handover import ACW
from dialer.worker.jobs import _quiet_on_shutdown, _quiet_scheduler_shutdown
from dialer.worker.options import Stats, WorkerError, WorkerOptions, default_worker_id
from dialer.worker.state import ActiveCall, PredictiveQueue, SeatRun

__all__ = ["Worker", "WorkerOptions", "WorkerError", "Stats", "ActiveCall", "SeatRun", "PredictiveQueue",
           "default_worker_id", "ABANDON_AFTER", "ACW", "_quiet_on_shutdown", "_quiet_scheduler_shutdown"]
