"""The worker's clock: wall time, or simulated time running 1/scale times faster.

With a time scale the worker lives in simulated time, like the simulator: a 30 s ring timeout
lasts 0.3 real seconds at scale 0.01, and every time it records is simulated. Processes that
share an `epoch` (a real instant) and `origin` (the simulated time at that instant) agree on the
simulated time, so several workers, or a worker restarted after a crash, see one timeline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field

UTC = dt.timezone.utc


@dataclass(frozen=True)
class Clock:
    scale: float = 1.0
    epoch: float = field(default_factory=time.time)  # a real instant (Unix seconds)
    origin: dt.datetime | None = None  # the simulated time at `epoch`; None: the epoch itself

    def __post_init__(self) -> None:
        # the simulated time at `epoch` as Unix seconds: `now` is then one conversion (it runs
        # for every event the worker handles)
        start = self.origin.timestamp() if self.origin is not None else self.epoch
        object.__setattr__(self, "_start", start)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._start + (time.time() - self.epoch) / self.scale, UTC)  # type: ignore[attr-defined]

    def real(self, seconds: float) -> float:
        """Real seconds that `seconds` of simulated time take."""
        return max(0.0, seconds * self.scale)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(self.real(seconds))
