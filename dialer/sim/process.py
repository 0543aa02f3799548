"""The simulator in a process of its own, for runs where the client's timing matters (the
end-to-end predictive shift): the client's process then spends its CPU on the client only.

    with SimProcess(config) as sim:        # binds 127.0.0.1 on a free port
        ... connect to sim.url ...
        log, ivr = sim.stop()               # what the simulator remembers, at the end

The child is spawned (a fresh interpreter, no inherited event loop): a script that uses this
needs the usual `if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
from multiprocessing.connection import Connection
from typing import Any

from dialer.sim.scenario import SimConfig
from dialer.sim.server import CallRecord, IvrVisit, Simulator


def _serve(config: SimConfig, conn: Connection) -> None:
    async def main() -> None:
        sim = Simulator(config)
        port = await sim.start("127.0.0.1", 0)
        loop = asyncio.get_running_loop()
        conn.send(("started", port, loop.time()))
        await loop.run_in_executor(None, conn.recv)  # the stop request
        await sim.stop()
        conn.send(("stopped", sim.call_log, sim.ivr_log, loop.time()))

    asyncio.run(main())


class SimProcess:
    """A `Simulator` in a child process (spawned). Times in the records it returns are the
    child's loop clock; `clock_offset` maps them onto this process's `time.monotonic()`."""

    def __init__(self, config: SimConfig) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(config, child), daemon=True)
        self.port = 0

    def start(self) -> str:
        import time

        self._proc.start()
        if not self._conn.poll(60):
            raise RuntimeError("the simulator process did not start")
        _, self.port, child_now = self._conn.recv()
        self.clock_offset = time.monotonic() - child_now  # both are CLOCK_MONOTONIC on Linux: ≈ 0
        return self.url

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/spcc/cti"

    def stop(self) -> tuple[list[CallRecord], list[IvrVisit]]:
        self._conn.send("stop")
        _, log, ivr, _ = self._conn.recv()
        self._proc.join(10)
        return log, ivr

    def __enter__(self) -> SimProcess:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
