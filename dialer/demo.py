"""`dialer demo`: everything embedded — a fresh SQLite file, the simulator, the example list,
simulated agents and the worker — in one process at a short time scale, until the list is
worked out; or, with `mode="predictive"`, dialler ports and the pacer for a simulated hour of a
longer list (predictive mode never works a list out: abandoned numbers wait 72 hours)."""

from __future__ import annotations

import asyncio
import logging
import csv
import io
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.orm import Session

from dialer.clock import Clock
from dialer.importer import import_file
from dialer.reports import report
from dialer.sim import AgentProfile, SimConfig, Simulator, Trunk
from dialer.sim.process import SimProcess
from dialer.store import repo
from dialer.store.engine import make_engine
from dialer.store.migrate import upgrade
from dialer.worker import Worker, WorkerOptions

CAMPAIGN = "demo"
QUEUE = "demo"
ABANDON_NODE = "9001"  # the simulator's IVR node playing the abandon message
PORTS_PER_AGENT = 3


@dataclass
class DemoResult:
    summary: dict[str, Any]
    outcomes: list[dict[str, Any]]
    seconds: float
    db: str
    imported: int
    rejected: int
    time_scale: float  # the one it ran at (the mode's default unless given)


def example_list(contacts: int | None, seed: int) -> str:
    """The example list, cut to `contacts` rows or topped up with generated ones."""
    text = files("dialer.data").joinpath("campaigns.example.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    if contacts is not None:
        body = body[:contacts]
        rng = random.Random(seed)
        while len(body) < contacts:
            n = len(body) + 1
            phone = rng.choice(["138", "139", "186", "150", "177"]) + f"{rng.randrange(10**8):08d}"
            body.append([f"GEN{n:05d}", f"客户{n}", phone, "", "", ""])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *body])
    return out.getvalue()


#: the time scales the demo runs at unless told: predictive mode's 2 s rule must stay well above
#: the worker's own event-loop delay on a busy machine (at 0.01 it is 20 ms of real time)
DEFAULT_SCALE = {"progressive": 0.01, "predictive": 0.05}


async def run_demo(*, agents: int = 8, contacts: int | None = None, time_scale: float | None = None, seed: int = 1,
                   workdir: Path | None = None, progress: TextIO | None = None, mode: str = "progressive",
                   minutes: float = 60.0) -> DemoResult:
    started = time.monotonic()
    time_scale = time_scale or DEFAULT_SCALE[mode]
    tmp = tempfile.TemporaryDirectory(prefix="dialer-demo-") if workdir is None else None
    folder = Path(tmp.name) if tmp else Path(workdir)  # type: ignore[arg-type]
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'demo.db'}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        with Session(engine) as s, s.begin():
            predictive = dict(mode="predictive", abandon_ivr=ABANDON_NODE, wrap_up=120) if mode == "predictive" else {}
            repo.create_campaign(s, CAMPAIGN, **{**dict(
                queue=QUEUE, area_code="010", window="00:00-24:00", days="all", timezone="Asia/Shanghai",
                max_attempts=3, ring_timeout=25, wrap_up=10,
                retry=["no_answer=300", "busy=120", "failed=300", "timeout=300"]), **predictive})
            seats = [repo.AgentRow(f"D{i:03d}", f"坐席{i}", str(6000 + i), QUEUE) for i in range(1, agents + 1)]
            if mode == "predictive":
                seats += [repo.AgentRow(f"P{i:03d}", f"端口{i}", str(8000 + i), QUEUE, role="port")
                          for i in range(1, PORTS_PER_AGENT * agents + 1)]
            repo.upsert_agents(s, seats)
            repo.set_campaign_status(s, CAMPAIGN, "resume")
        listing = folder / "list.csv"
        if mode == "predictive" and contacts is None:  # enough for the hour: ≈ 1.5 dials per agent-minute
            contacts = int(agents * minutes * 2) + 50
        listing.write_text(example_list(contacts, seed), encoding="utf-8")
        imported = import_file(engine, CAMPAIGN, listing)

        ports = {str(8000 + i): AgentProfile(str(8000 + i), pickup=0.0)  # dialler ports answer at once
                 for i in range(1, PORTS_PER_AGENT * agents + 1)} if mode == "predictive" else {}
        config = SimConfig(seed=seed, time_scale=time_scale, trunk=Trunk(home_area_code="010"), agents=ports)
        # predictive: the simulator in a process of its own, so that the worker's loop (and the
        # 2 s rule it keeps) does not share a core's time with the simulated server's
        sim: Simulator | SimProcess = SimProcess(config) if mode == "predictive" else Simulator(config)
        if isinstance(sim, SimProcess):
            sim.start()
        else:
            await sim.start("127.0.0.1", 0)
        last = [0.0]

        def show(worker: Worker) -> None:
            if progress is None or time.monotonic() - last[0] < 0.2:
                return
            last[0] = time.monotonic()
            o = worker.stats.outcomes
            progress.write(f"\rdemo: {worker.stats.dials} dials, {o.get('answered', 0)} answered, "
                           f"{o.get('no_answer', 0)} no answer, {o.get('busy', 0)} busy, "
                           f"{o.get('abandoned', 0) + o.get('answered_late', 0)} abandoned, "
                           f"{worker.calls_in_flight} in flight, {time.monotonic() - started:4.1f}s ")
            progress.flush()

        options = WorkerOptions(cti_url=sim.url, campaigns=(CAMPAIGN,), worker_id="demo",
                                clock=Clock(scale=time_scale), until_done=mode != "predictive", drain_timeout=5.0,
                                cti_heartbeat=0, on_progress=show)
        worker = Worker(engine, options, handle_signals=sys.platform != "win32")
        # the scheduler's "skipped: maximum number of running instances" (a job overran, the
        # worker coalesces it) must not land in the middle of the progress line
        scheduler_log = logging.getLogger("apscheduler")
        scheduler_level = scheduler_log.level
        if progress is not None:
            scheduler_log.setLevel(logging.ERROR)
        try:
            if mode == "predictive":  # a simulated hour (or `minutes`), then a graceful stop
                task = asyncio.create_task(worker.run())
                done, _ = await asyncio.wait([task], timeout=minutes * 60 * time_scale)
                if not done:
                    worker.request_stop()
                await task
            else:
                await worker.run()
        finally:
            scheduler_log.setLevel(scheduler_level)
            if isinstance(sim, SimProcess):
                await asyncio.get_running_loop().run_in_executor(None, sim.stop)
            else:
                await sim.stop()
        if progress is not None:
            progress.write("\n")
            if worker.stats.lag_max > 0.25 * time_scale * 2.0:
                progress.write(f"demo: the worker's event loop lagged up to {worker.stats.lag_max * 1000:.0f} ms "
                               f"(the 2 s rule is {time_scale * 2000:.0f} ms here); a larger --time-scale "
                               "gives truer figures\n")
        summary = report(engine, "summary", campaign=CAMPAIGN)[0]
        outcomes = [o for o in report(engine, "outcomes", campaign=CAMPAIGN) if o["pass"] == "all"]
        return DemoResult(summary, outcomes, time.monotonic() - started, url if workdir else "(temporary)",
                          imported.imported, imported.rows - imported.imported, time_scale)
    finally:
        engine.dispose()
        if tmp is not None:
            tmp.cleanup()


def demo(**kw: Any) -> DemoResult:
    return asyncio.run(run_demo(**kw))

