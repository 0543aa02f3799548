"""Predictive mode end to end: the worker against the CTI simulator over real sockets, one
OB-20 shift compressed by the time scale, scored the way `shift_sim.py` scores its runs.

The simulator draws every customer and agent from the OB-20 workload (dialer/sim/model.py, the
model `shift_sim.py` uses); the worker runs its real pacer on what it sees over the wire, places
calls on dialer ports, hands answers to agents (`transfer`) and sends the ones no agent can take
within 2 s to the campaign's IVR node. Scoring uses the simulator's knowledge (who was a live
person, when each agent joined), not the worker's:

* talk occupancy = live talk time inside the shift / (agents × shift);
* abandonment = live answers not bridged within 2.0 s / live answers (machines excluded);
* every call the worker sent to the abandon message (`sent_to_ivr`) must have reached the IVR
  node (`sent_to_ivr_not_there` = 0); `abandoned_otherwise` counts, by the worker's reason, the
  calls recorded `abandoned` that never could (the customer hung up while waiting, the agent did
  not pick up a transferred call, the run's stop hung it up).

    python benchmarks/predictive_e2e.py                    # 20 agents, 8 h at time scale 0.02 (~10 min)
    python benchmarks/predictive_e2e.py --scale 0.01       # twice as compressed (~5 min; latency shows)
    python benchmarks/predictive_e2e.py --hours 1 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from dialer.clock import Clock
from dialer.sim import Simulator
from dialer.sim.model import AgentProfile
from dialer.sim.process import SimProcess
from dialer.sim.scenario import SimConfig
from dialer.store import repo
from dialer.store.abandonment import LIVE
from dialer.store.engine import make_engine, scratch_database
from dialer.store.migrate import upgrade
from dialer.store.models import Attempt, Contact
from dialer.worker import Worker, WorkerOptions

NODE = "9001"
#: in the detail of an attempt the worker sent to the abandon message
SENT_TO_IVR = f"sent to IVR node {NODE}"
START = dt.datetime(2026, 11, 25, 1, 0, tzinfo=dt.timezone.utc)  # 09:00 in Beijing


async def run_shift(db_url: str, *, agents: int = 20, hours: float = 8.0, scale: float = 0.02, seed: int = 0,
                    ports: int | None = None, ring_timeout: int = 25, separate: bool = True,
                    port_queue: str = "", workers: int = 1) -> dict:
    """One compressed shift; returns the scores (see the module's docstring). With `workers` > 1
    the agents are split between that many workers on the one database (`max_seats`), each
    pacing its own and leasing its own ports."""
    ports = ports if ports is not None else 3 * agents
    agent_ext = [str(6000 + i) for i in range(agents)]
    port_ext = [str(8000 + i) for i in range(ports)]
    profiles = {x: AgentProfile(x, pickup=0.0) for x in port_ext}  # ports answer at once
    config = SimConfig(seed=seed, time_scale=scale, post_dial_delay=0.0, ring_timeout=ring_timeout + 60,
                       agents=profiles)
    if separate:  # the simulator's CPU apart from the worker's: the worker's timing is its own
        sim: Simulator | SimProcess = SimProcess(config)
        url = await asyncio.to_thread(sim.start)
    else:
        sim = Simulator(config)
        await sim.start("127.0.0.1", 0)
        url = sim.url
    engine = make_engine(db_url)
    upgrade(engine)
    n_contacts = int(agents * hours * 120) + 200
    with Session(engine) as s, s.begin():
        c = repo.create_campaign(s, "shift", queue="ob20", mode="predictive", area_code="010", window="00:00-24:00",
                                 days="all", max_attempts=1, ring_timeout=ring_timeout, wrap_up=600,
                                 abandon_ivr=NODE, port_queue=port_queue)
        repo.set_campaign_status(s, "shift", "resume")
        repo.upsert_agents(s, [repo.AgentRow(f"A{x}", f"坐席{x}", x, "ob20") for x in agent_ext]
                           + [repo.AgentRow(f"P{x}", f"端口{x}", x, port_queue or "ob20", role="port")
                              for x in port_ext])
        cid = c.id
    with engine.begin() as conn:  # Beijing mobiles, all distinct
        conn.execute(insert(Contact), [
            {"campaign_id": cid, "phone": f"+86138{i:08d}", "kind": "mobile", "next_attempt_at": START}
            for i in range(n_contacts)])
    clock = Clock(scale=scale, origin=START)  # one clock: the workers of one machine
    pool = [Worker(engine, WorkerOptions(
        cti_url=url, campaigns=("shift",), worker_id="e2e" if workers == 1 else f"e2e-{k}", clock=clock,
        cti_heartbeat=0, drain_timeout=0.0, backoff=lambda: itertools.repeat(0.05),
        max_seats=None if workers == 1 else (agents * (k + 1)) // workers - (agents * k) // workers),
        handle_signals=False) for k in range(workers)]
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    tasks = []
    for worker in pool:  # one after the other: each leases its share of the seats
        tasks.append(asyncio.create_task(worker.run()))
        await asyncio.sleep(0.3)  # logins
    t0 = loop.time()
    shift_real = hours * 3600 * scale
    await asyncio.sleep(shift_real)
    t1 = loop.time()
    seats = [[sum(1 for r in w.seats.values() if r.is_port == port) for port in (False, True)] for w in pool]
    # what each pacer counts of the campaign's day: its own calls and, from the database, the others'
    views = [[sum(n.abandoned_day for _, n in w.abandonment()), sum(n.live_day for _, n in w.abandonment())] for w in pool]
    for worker in pool:
        worker.request_stop()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    if isinstance(sim, SimProcess):
        call_log, ivr_log = await asyncio.to_thread(sim.stop)
    else:
        await sim.stop()
        call_log, ivr_log = sim.call_log, sim.ivr_log
    wall = time.monotonic() - started

    def sim_s(real: float) -> float:
        return real / scale

    talk = 0.0
    live = abandoned = bridged_late = 0
    for r in call_log:
        if r.fate != "answer" or r.answered_at is None or r.answered_at > t1:
            continue
        live += 1
        if r.bridged_at is None or sim_s(r.bridged_at - r.answered_at) > 2.0:
            abandoned += 1
            bridged_late += r.bridged_at is not None
        if r.bridged_at is not None:
            talk += sim_s(max(0.0, min(r.ended, t1) - max(r.bridged_at, t0)))
    with Session(engine) as s:
        rows = s.execute(select(Attempt.outcome, Attempt.callid, Attempt.detail)).all()
    engine.dispose()
    outcomes: dict[str, int] = {}
    for outcome, _, _ in rows:
        outcomes[str(outcome)] = outcomes.get(str(outcome), 0) + 1
    ivr = {v.callid for v in ivr_log}
    sent = [callid for outcome, callid, detail in rows if outcome == "abandoned" and SENT_TO_IVR in (detail or "")]
    otherwise: dict[str, int] = {}  # abandoned before the message could be sent, by the worker's reason
    for outcome, _, detail in rows:
        if outcome == "abandoned" and SENT_TO_IVR not in (detail or ""):
            otherwise[str(detail)] = otherwise.get(str(detail), 0) + 1
    return {
        "agents": agents, "ports": ports, "port_queue": port_queue or "ob20", "hours": hours, "scale": scale, "seed": seed,
        "occupancy": talk / (agents * hours * 3600), "live": live, "abandoned": abandoned,
        "abandon_rate": abandoned / live if live else 0.0, "bridged_late": bridged_late,
        "dials": sum(w.stats.dials for w in pool), "outcomes": outcomes, "workers": workers,
        "seats_by_worker": seats,  # [agents, ports] each worker held at the end
        "counts_by_worker": views,  # [abandoned, live] each worker's pacer counted at the end
        "recorded_live": sum(outcomes.get(o, 0) for o in LIVE),
        "dials_by_worker": [w.stats.dials for w in pool],
        "worker_abandoned": len(sent) + sum(otherwise.values()),
        "sent_to_ivr": len(sent),
        "sent_to_ivr_not_there": sum(1 for callid in sent if callid not in ivr),
        "abandoned_otherwise": otherwise,
        "wall_seconds": wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--scale", type=float, default=0.02, help="real seconds per simulated second")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ports", type=int, default=None, help="dialer ports [3 × agents]")
    ap.add_argument("--port-queue", default="", help="the ports' own queue [the agents' queue, ob20]")
    ap.add_argument("--workers", type=int, default=1, help="workers splitting the agents (PostgreSQL: --db)")
    ap.add_argument("--db", help="database URL [a fresh SQLite file]; on a PostgreSQL server, a scratch database")
    ap.add_argument("--same-process", action="store_true", help="run the simulator in this process")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO if a.verbose else logging.ERROR)
    if a.workers > 1 and not (a.db or "").startswith("postgresql"):
        ap.error("--workers > 1 needs PostgreSQL (--db postgresql+psycopg://…): SQLite is for one worker")
    with contextlib.ExitStack() as stack:
        if a.db and a.db.startswith("postgresql"):  # a database of its own on that server, dropped after
            url = stack.enter_context(scratch_database(a.db, "dialer_e2e"))
        else:
            url = a.db or f"sqlite:///{Path(stack.enter_context(tempfile.TemporaryDirectory())) / 'e2e.db'}"
        result = asyncio.run(run_shift(url, agents=a.agents, hours=a.hours, scale=a.scale, seed=a.seed, ports=a.ports,
                                      separate=not a.same_process, port_queue=a.port_queue, workers=a.workers))
    if a.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:<24}{value:.4f}" if isinstance(value, float) else f"{key:<24}{value}")


if __name__ == "__main__":
    sys.exit(main())
