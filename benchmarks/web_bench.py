"""The console under watchers: N browsers (default 50) on the wallboard's live events at once,
while the workers' status rows change every second, and the pages still asked for.

The console runs as `dialer web` in a process of its own, on a fresh SQLite file (or a scratch
PostgreSQL database with --db); this process plays the workers (five status rows holding
--seats seats, rewritten every second, one seat changing state each time) and the browsers
(each logged in with its own session, reading /events with httpx). Measured, first with no
watcher and then with N:
  - each page's time to answer (/, /campaigns, /campaigns/c), p50 / p95 / worst;
  - the gap between a watcher's frames (the board is pushed every --every seconds);
  - from a status row's change to each watcher's frame that shows it (the wallboard's lag);
  - the console's CPU (user + system seconds per second of wall time).

    python benchmarks/web_bench.py                      # 50 watchers, 200 seats, 20 s each phase
    python benchmarks/web_bench.py --watchers 100 --seconds 30 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import percentile, print_rows  # noqa: E402
from dialer.store import repo  # noqa: E402
from dialer.store.engine import make_engine, scratch_database  # noqa: E402
from dialer.store.migrate import upgrade  # noqa: E402
from dialer.store.users import add_user  # noqa: E402

PASSWORD = "bench-password-1"


def setup(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as s, s.begin():
        repo.create_campaign(s, "c", queue="q0", area_code="010")
        repo.set_campaign_status(s, "c", "resume")
        add_user(s, "watcher", "viewer", PASSWORD)
    engine.dispose()


class Workers:
    """Five workers' status rows, rewritten every second with one seat changed each time."""

    def __init__(self, url: str, seats: int) -> None:
        self.engine = make_engine(url)
        self.rng = random.Random(1)
        self.pg = self.engine.dialect.name == "postgresql"
        per = seats // 5
        self.seats = [[{"extension": f"{7000 + w * 1000 + i}", "name": f"坐席{i}", "queue": f"q{w}", "role": "agent",
                        "state": "ready", "reason": "", "since": ""} for i in range(per)] for w in range(5)]
        self.changes: dict[str, float] = {}  # marker → when its row was committed

    def write(self, change: bool) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        marker = None
        if change:
            w, i = self.rng.randrange(5), self.rng.randrange(len(self.seats[0]))
            marker = f"m{int(time.time() * 1000)}"
            # the change: the seat goes busy with the marker as its reason (it shows on the board)
            self.seats[w][i].update(state="busy", reason=marker, since=now.isoformat())
        t = now if self.pg else now.replace(tzinfo=None).isoformat(" ")
        lease = (now + dt.timedelta(minutes=5))
        with self.engine.begin() as conn:
            for w in range(5):
                body = {"seats": [{**s, "since": s["since"] or now.isoformat()} for s in self.seats[w]],
                        "queues": {f"q{w}": {"calls": 3, "waiting": 0, "level": 1.2}}, "campaigns": ["c"],
                        "calls": 3, "may_dial": True, "outbox": 0}
                conn.execute(text("DELETE FROM worker_status WHERE worker_id = :w"), {"w": f"w{w}"})
                conn.execute(text("INSERT INTO worker_status (worker_id, host, pid, started_at, at, stopped, body) "
                                  "VALUES (:w, 'bench', 1, :t, :t, false, :b)"), {"w": f"w{w}", "t": t, "b": json.dumps(body)})
                conn.execute(text("DELETE FROM workers WHERE id = :w"), {"w": f"w{w}"})
                conn.execute(text("INSERT INTO workers (id, host, pid, started_at, last_seen, token, lease_until) "
                                  "VALUES (:w, 'bench', 1, :t, :t, 1, :u)"),
                             {"w": f"w{w}", "t": t, "u": lease if self.pg else lease.replace(tzinfo=None).isoformat(" ")})
        if marker:
            self.changes[marker] = time.monotonic()

    async def run(self, stop: asyncio.Event, change: bool) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self.write, change)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def login(base: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=30)
    page = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = await client.post("/login", data={"username": "watcher", "password": PASSWORD, "csrf": csrf})
    assert r.status_code == 303, r.text[:200]
    return client


async def watch(client: httpx.AsyncClient, stop: asyncio.Event, frames: list[float], seen: dict[str, float]) -> None:
    buf = ""
    async with client.stream("GET", "/events") as r:
        async for chunk in r.aiter_text():
            buf += chunk
            while "\n\n" in buf:
                event, buf = buf.split("\n\n", 1)
                if event.startswith("event: board"):
                    now = time.monotonic()
                    frames.append(now)
                    for m in re.findall(r"m\d{13}", event):
                        seen.setdefault(m, now)
            if stop.is_set():
                return


async def phase(base: str, workers: Workers, watchers: int, seconds: float, pid: int) -> dict:
    stop = asyncio.Event()
    clients = [await login(base) for _ in range(watchers)]
    frames: list[list[float]] = [[] for _ in clients]
    seen: list[dict[str, float]] = [{} for _ in clients]
    tasks = [asyncio.create_task(watch(c, stop, frames[i], seen[i])) for i, c in enumerate(clients)]
    writer = asyncio.create_task(workers.run(stop, change=True))
    pages = {"/": [], "/campaigns": [], "/campaigns/c": []}
    asker = await login(base)
    await asyncio.sleep(2.0)  # everyone connected
    workers.changes.clear()
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    while time.monotonic() - t0 < seconds:
        for path, times in pages.items():
            s = time.perf_counter()
            r = await asker.get(path)
            times.append(time.perf_counter() - s)
            assert r.status_code == 200, (path, r.status_code)
        await asyncio.sleep(0.25)
    cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    changes = dict(workers.changes)
    await asyncio.sleep(3.0)  # the last changes reach the watchers
    stop.set()
    for t in tasks:
        t.cancel()
    writer.cancel()
    await asyncio.gather(*tasks, writer, return_exceptions=True)
    for c in [*clients, asker]:
        await c.aclose()
    gaps = [b - a for f in frames for a, b in zip(f, f[1:]) if a >= t0]
    lags = [s[m] - at for s in seen for m, at in changes.items() if m in s]
    missed = sum(1 for s in seen for m in changes if m not in s) if watchers else 0
    out = {"watchers": watchers, "cpu": round(cpu, 3), "changes": len(changes)}
    for path, times in pages.items():
        out[f"page {path}"] = {"p50_ms": round(1000 * percentile(times, 50), 1), "p95_ms": round(1000 * percentile(times, 95), 1),
                               "max_ms": round(1000 * max(times), 1), "n": len(times)}
    if watchers:
        out["frame_gap_s"] = {"p50": round(percentile(gaps, 50), 3), "p95": round(percentile(gaps, 95), 3),
                              "max": round(max(gaps), 3), "frames": len(gaps)}
        out["lag_s"] = {"p50": round(percentile(lags, 50), 3), "p95": round(percentile(lags, 95), 3),
                        "max": round(max(lags), 3), "seen": len(lags), "missed": missed}
    return out


async def run(url: str, args: argparse.Namespace) -> list[dict]:
    setup(url)
    workers = Workers(url, args.seats)
    workers.write(False)
    proc = subprocess.Popen([sys.executable, "-m", "dialer", "--db", url, "web", "--port", "0", "--board-every",
                             str(args.every)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        while "console on" not in line:
            if proc.poll() is not None:
                raise SystemExit("the console did not start: " + line + proc.stderr.read())
            line = proc.stderr.readline()
        base = line.split("console on ")[1].split("/ ")[0]
        results = [await phase(base, workers, 0, args.seconds, proc.pid),
                   await phase(base, workers, args.watchers, args.seconds, proc.pid)]
    finally:
        proc.terminate()
        proc.wait(15)
        workers.engine.dispose()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--watchers", type=int, default=50)
    ap.add_argument("--seats", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--every", type=float, default=1.0, help="the console's --board-every")
    ap.add_argument("--db", help="a PostgreSQL URL (a scratch database is made on its server) [SQLite file]")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.db:
        with scratch_database(args.db, "dialer_web_bench") as url:
            results = asyncio.run(run(url, args))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            results = asyncio.run(run(f"sqlite:///{tmp}/web.db", args))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        rows = [("watchers", str(r["watchers"])), ("console CPU (s per s)", f"{r['cpu']:.3f}")]
        for k, v in r.items():
            if k.startswith("page "):
                rows.append((f"{k} p50 / p95 / worst (ms)", f"{v['p50_ms']} / {v['p95_ms']} / {v['max_ms']}"))
        if r["watchers"]:
            g, lag = r["frame_gap_s"], r["lag_s"]
            rows.append(("frame gap p50 / p95 / worst (s)", f"{g['p50']} / {g['p95']} / {g['max']}"))
            rows.append(("status change → watcher p50 / p95 / worst (s)",
                         f"{lag['p50']} / {lag['p95']} / {lag['max']} ({lag['seen']} seen, {lag['missed']} missed)"))
        print_rows(rows)
        print()


if __name__ == "__main__":
    main()
