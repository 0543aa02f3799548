"""The simulator in a process of its own, for runs where the client's timing matters (the
end-to-end predictive shift): the client's process then spends its CPU on the client only.

    with SimProcess(config) as sim:        # binds 127.0.0.1 on a free port
        ... connect to sim.url ...
        sim.fault("drop")                   # faults by name: drop, restart, stop_heartbeats
        log, live = sim.snapshot()          # the calls so far: finished, and in progress
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
from dialer.sim.server import Simulator
from dialer.sim.session import CallRecord, IvrVisit


def _serve(config: SimConfig, conn: Connection) -> None:
    async def main() -> None:
        sim = Simulator(config)
        port = await sim.start("127.0.0.1", 0)
        loop = asyncio.get_running_loop()
        conn.send(("started", port, loop.time()))
        while True:
            request = await loop.run_in_executor(None, conn.recv)
            if request == "stop":
                break
            name, *args = request
            if name == "snapshot":
                live = [(c.callid, c.e164, c.created, c.answered_at) for c in sim.calls.values()]
                conn.send(("snapshot", list(sim.call_log), live))
            elif name == "restart":
                await sim.restart()
                conn.send(("done",))
            elif name in ("drop", "stop_heartbeats"):
                getattr(sim, name)(*args)
                conn.send(("done",))
            else:
                conn.send(("error", f"unknown request {name!r}"))
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

    def snapshot(self) -> tuple[list[CallRecord], list[tuple[str, str, float, float | None]]]:
        """The finished calls, and those in progress as (callid, e164, created, answered_at)."""
        self._conn.send(("snapshot",))
        _, log, live = self._conn.recv()
        return log, live

    def fault(self, name: str, *args: Any) -> None:
        """`restart` (every call dropped, sessions gone), `drop` [extension], `stop_heartbeats`
        [extension, stop]: the simulator's fault methods, in its process."""
        self._conn.send((name, *args))
        reply = self._conn.recv()
        if reply[0] == "error":
            raise ValueError(reply[1])

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
