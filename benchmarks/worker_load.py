"""Worker load: N seats (default 500, in 20 queues of 25) dialling a large list against the
simulator; one campaign per queue.

The simulator runs in its own process (`dialer sim`); the worker runs here, on a fresh SQLite
file, so this process's CPU is the worker's (its database thread included). Measured after a
warm-up: the delay from the event that frees a seat (the server's `busy status` with no reason,
or the end of the campaign's wrap-up) to the next `dial` sent on that seat, p50 and p99; the
same from the end of a call that has no wrap-up (the line's whole idle time: the outcome's
write included, which the worker before the redesign did before it marked the seat free); dials
per second; the frames the seats received; and the worker's CPU seconds per 1,000 calls (the part
spent in the kernel apart).

The first 20 s are not measured: all 500 seats are free at the start, so the first dials, and
then their ends (a no-answer at each 25 s ring timeout), come in waves of hundreds that take
about 15 s to spread out; the figures are those of the steady state after.

    python benchmarks/worker_load.py                       # 500 seats, 30 s after 20 s, time scale 0.1
    python benchmarks/worker_load.py --seats 100 --seconds 10 --json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session

from common import percentile, print_rows
from dialer.clock import Clock
from dialer.store import repo
from dialer.store.engine import scratch_database, worker_engine
from dialer.store.migrate import upgrade
from dialer.store.models import Contact
from dialer.worker import Worker, WorkerOptions


async def main_async(args: argparse.Namespace, tmp: Path) -> dict:
    if args.db:  # a fresh database on that server, dropped afterwards
        with scratch_database(args.db, "dialer_load") as url:
            return await measure(args, url, tmp)
    return await measure(args, f"sqlite:///{tmp / 'load.db'}", tmp)


async def measure(args: argparse.Namespace, url: str, tmp: Path) -> dict:
    engine = worker_engine(url)
    upgrade(engine)
    now = dt.datetime.now(dt.timezone.utc)
    names = [f"load{q:02d}" for q in range(args.queues)]
    with Session(engine) as s, s.begin():
        ids = []
        for q, name in enumerate(names):  # one campaign per queue (skill group)
            ids.append(repo.create_campaign(s, name, queue=f"q{q:02d}", area_code="010", window="00:00-24:00",
                                            days="all", max_attempts=1, ring_timeout=25, wrap_up=args.wrap_up).id)
            repo.set_campaign_status(s, name, "resume")
        repo.upsert_agents(s, [repo.AgentRow(f"S{i:04d}", f"坐席{i}", str(10000 + i), f"q{i % args.queues:02d}")
                               for i in range(args.seats)])
        s.execute(insert(Contact), [
            {"campaign_id": ids[i % args.queues], "phone": f"+86138{i:08d}", "kind": "mobile", "area_code": "010",
             "status": "pending", "attempts": 0, "next_attempt_at": now - dt.timedelta(minutes=1)}
            for i in range(args.contacts)])
    scenario = tmp / "sim.toml"
    scenario.write_text(f"seed = 1\ntime_scale = {args.time_scale}\n[trunk]\nstrict = false\n", encoding="utf-8")
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialer", "-q", "sim", "--port", "0", "--scenario", str(scenario),
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert sim.stdout is not None
    line = (await asyncio.wait_for(sim.stdout.readline(), 30)).decode()
    sim_url = line.split("listening on ")[1].split()[0]
    worker = Worker(engine, WorkerOptions(cti_url=sim_url, campaigns=tuple(names), worker_id="bench",
                                          clock=Clock(scale=args.time_scale), cti_heartbeat=0, drain_timeout=1.0),
                    handle_signals=False)
    run = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(args.warmup)
        worker.stats.free_to_dial.clear()
        worker.stats.end_to_dial.clear()
        frames0 = sum(r.seat.frames_in for r in worker.seats.values())
        dials0, cpu0, t0 = worker.stats.dials, resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        ended0 = sum(worker.stats.outcomes.values())
        await asyncio.sleep(args.seconds)
        delays = list(worker.stats.free_to_dial)
        idle = list(getattr(worker.stats, "end_to_dial", []))
        dials, cpu1, elapsed = worker.stats.dials - dials0, resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
        ended = sum(worker.stats.outcomes.values()) - ended0
        frames = sum(r.seat.frames_in for r in worker.seats.values()) - frames0
    finally:
        worker.request_stop()
        await run
        sim.send_signal(signal.SIGINT)
        await sim.wait()
        engine.dispose()
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    sys_cpu = cpu1.ru_stime - cpu0.ru_stime
    return {
        "seats": args.seats, "logged_in": sum(1 for s in worker.seats.values() if s.logged_in) or args.seats,
        "seconds": elapsed, "dials": dials, "dials_per_s": dials / elapsed, "calls_ended": ended,
        "free_to_dial_p50_ms": percentile(delays, 50) * 1e3, "free_to_dial_p99_ms": percentile(delays, 99) * 1e3,
        "samples": len(delays), "end_to_dial_p50_ms": percentile(idle, 50) * 1e3,
        "end_to_dial_p99_ms": percentile(idle, 99) * 1e3, "end_samples": len(idle), "frames_in_per_s": frames / elapsed, "worker_cpu_s": cpu, "worker_sys_cpu_s": sys_cpu, "cpu_s_per_1000_calls": cpu / max(ended, 1) * 1000,
        "time_scale": args.time_scale, "cpus": os.cpu_count(), "queues": args.queues,
        "database": "postgresql" if args.db else "sqlite",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seats", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=20.0,
                        help="seconds not measured: the start's 500 simultaneous dials come back in waves (each "
                        "ring timeout) for about 15 s before the calls spread out")
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--wrap-up", type=int, default=20)
    parser.add_argument("--queues", type=int, default=20, help="queues (skill groups), one campaign each")
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--db", help="a PostgreSQL server URL to run on instead of SQLite (a fresh database "
                        "is made and dropped)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = asyncio.run(main_async(args, Path(tmp)))
    if args.json:
        print(json.dumps(r, indent=2))
        return
    rows = [
        ("seats", f"{r['seats']} in {r['queues']} queues, {r['database']}"),
        ("measured", f"{r['seconds']:.1f} s after {args.warmup:g} s of warm-up, time scale {r['time_scale']:g}"),
        ("dials/s", f"{r['dials_per_s']:.1f} ({r['dials']} dials, {r['calls_ended']} calls ended)"),
        ("seat freed → next dial p50 / p99", f"{r['free_to_dial_p50_ms']:.1f} / {r['free_to_dial_p99_ms']:.1f} ms "
                                             f"({r['samples']} samples)"),
        ("call end → next dial p50 / p99", f"{r['end_to_dial_p50_ms']:.1f} / {r['end_to_dial_p99_ms']:.1f} ms "
                                           f"({r['end_samples']} calls without wrap-up)"),
        ("frames received/s", f"{r['frames_in_per_s']:.0f}"),
        ("worker CPU", f"{r['worker_cpu_s']:.1f} s ({r['worker_sys_cpu_s']:.1f} s in the kernel); "
                       f"{r['cpu_s_per_1000_calls']:.1f} s per 1,000 calls"),
    ]
    print_rows(rows)


if __name__ == "__main__":
    main()
