"""Chaos: the worker's promises under faults, against real processes — the simulator in a process
of its own, every worker a `dialer worker` process — audited from the simulator's own call
records against the database (benchmarks/chaos_audit.py). docs/reliability.md has the figures.

Scenarios:

* `sigkill`: a time-scaled campaign; `--kills` SIGKILLs at random moments, each followed at once
  by a restart with the default worker id (what systemd's Restart=always does); the last one runs
  until the list is worked out. Also: the first dial after each restart.
* `cut` (PostgreSQL): 4 workers share the list; one reaches the database through a TCP proxy
  that stalls for 3 leases. The cut worker must stop dialling by itself, and the outcomes of the
  calls it followed through the cut must land exactly once when it is back.
* `outage` (PostgreSQL): one worker, the database unreachable (stalled) for `--outage` seconds
  mid-campaign: nothing lost or written twice, dialling back within 5 s of recovery.
* `cti`: the CTI server restarted (every call dropped), every socket dropped (calls go on, as on
  a desk phone), heartbeats black-holed: how long to recover, nothing lost.

    python benchmarks/chaos.py                          # every scenario, SQLite and PostgreSQL
    python benchmarks/chaos.py --scenario sigkill --db sqlite --kills 5 --json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos_audit import DbAttempt, DbContact, SimCall, audit  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from dialer.sim.process import SimProcess  # noqa: E402
from dialer.sim.scenario import parse_scenario  # noqa: E402
from dialer.sim.stall import StallProxy  # noqa: E402
from dialer.store import repo  # noqa: E402
from dialer.store.engine import make_engine, scratch_database  # noqa: E402
from dialer.store.migrate import upgrade  # noqa: E402
from dialer.store.models import Attempt, Contact  # noqa: E402

START = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.timezone.utc)  # Wednesday 10:00 in Beijing
PG = os.environ.get("DIALER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MAX_ATTEMPTS = 3


# -- set-up ---------------------------------------------------------------------------------------

@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A fresh, migrated database: a SQLite file, or a PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'chaos.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    with scratch_database(PG, "dialer_chaos") as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


def seed(url: str, contacts: int, agents: int) -> None:
    engine = make_engine(url)
    with Session(engine) as s, s.begin():
        c = repo.create_campaign(s, "c", queue="kefu", area_code="010", max_attempts=MAX_ATTEMPTS, ring_timeout=25,
                                 wrap_up=3, window="00:00-24:00", days="mon-sun",
                                 retry=["no_answer=60", "busy=30", "failed=60", "interrupted=20"])
        repo.set_campaign_status(s, "c", "resume")
        for i in range(contacts):
            s.add(Contact(campaign_id=c.id, phone=f"+86139{i:08d}", kind="mobile", next_attempt_at=START))
        repo.upsert_agents(s, [repo.AgentRow(f"1{600 + i}", f"a{i}", str(600 + i), "kefu") for i in range(agents)])
    engine.dispose()


def sim_config(scale: float, seed_: int) -> Any:
    # calls that outlast a worker's restart (a Python start and a login: about a second), so that
    # a call answered while no worker runs is still up for the next one to follow
    return parse_scenario({"time_scale": scale, "seed": seed_, "workload": {
        "p_live": 0.8, "p_machine": 0.0, "p_busy": 0.1, "live_ring": [3, 10], "talk_mean": 90, "talk_sd": 20,
        "busy_ring": [2, 4]}, "agents": []})


class Run:
    def __init__(self, url: str, sim: SimProcess, scale: float, folder: Path) -> None:
        self.url, self.sim, self.scale, self.folder = url, sim, scale, folder
        self.epoch = time.time()
        self.logs: list[Path] = []

    def worker(self, *extra: str, db: str | None = None, worker_id: str | None = None) -> subprocess.Popen[bytes]:
        log = self.folder / f"worker-{len(self.logs)}.log"
        self.logs.append(log)
        args = [sys.executable, "-m", "dialer", "--db", db or self.url, "worker", "--cti", self.sim.url,
                "--campaign", "c", "--time-scale", str(self.scale), "--clock-epoch", repr(self.epoch),
                "--clock-start", START.isoformat(), "--drain-timeout", "5", "--cti-heartbeat", "1", *extra]
        if worker_id:
            args += ["--worker-id", worker_id]
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log.open("w"),
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def now(self) -> float:
        """The simulator's clock (its loop time, ≈ this process's monotonic clock)."""
        return time.monotonic() - self.sim.clock_offset

    def first_dial_after(self, t: float, timeout: float = 30.0) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log, live = self.sim.snapshot()
            times = [r.created for r in log if r.created > t] + [c[2] for c in live if c[2] > t]
            if times:
                return min(times) - t
            time.sleep(0.05)
        return None

    def audit(self) -> dict[str, Any]:
        log, _ = self.sim.stop()
        calls = [SimCall(r.callid, r.e164, r.created, r.ended, r.answered, r.end) for r in log]
        engine = make_engine(self.url)
        with Session(engine) as s:
            rows = s.execute(select(Attempt, Contact.phone).join(Contact, Contact.id == Attempt.contact_id)).all()
            attempts = [DbAttempt(a.id, phone, a.callid, a.outcome, a.ended_at is not None, a.worker_id,
                                  a.detail or "")
                        for a, phone in rows]
            contacts = [DbContact(c.phone, c.status, c.attempts) for c in s.scalars(select(Contact))]
        engine.dispose()
        return audit(calls, attempts, contacts, MAX_ATTEMPTS)

    def grep(self, text_: str) -> int:
        return sum(log.read_text(errors="replace").count(text_) for log in self.logs if log.exists())


# -- scenarios ------------------------------------------------------------------------------------

def sigkill(kind: str, folder: Path, *, kills: int, scale: float, seed_: int) -> dict[str, Any]:
    rng = random.Random(seed_)
    with database(kind, folder) as url, SimProcess(sim_config(scale, seed_)) as sim:
        seed(url, contacts=120, agents=4)
        run = Run(url, sim, scale, folder)
        delays: list[float] = []
        proc = run.worker("--until-done")
        t = run.now()
        for _ in range(kills):
            first = run.first_dial_after(t)
            if first is not None:
                delays.append(first)
            time.sleep(rng.uniform(1.0, 4.0))
            if proc.poll() is not None:
                break  # the list is worked out
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            t = run.now()
            proc = run.worker("--until-done")  # at once, the default worker id
        first = run.first_dial_after(t, timeout=10)
        if first is not None:
            delays.append(first)
        try:
            code = proc.wait(600)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
        result = run.audit()
        result.update(scenario="sigkill", db=kind, kills=kills, exit_code=code,
                      first_dial_max_s=round(max(delays), 2) if delays else None,
                      first_dial_mean_s=round(sum(delays) / len(delays), 2) if delays else None,
                      tracebacks=run.grep("Traceback"))
        return result


def cut(kind: str, folder: Path, *, scale: float, seed_: int, leases: float = 3.0) -> dict[str, Any]:
    from dialer.worker.options import MIN_LEASE_REAL

    lease_real = max(MIN_LEASE_REAL, 60 * scale)
    with database(kind, folder) as url, SimProcess(sim_config(scale, seed_)) as sim:
        seed(url, contacts=160, agents=8)
        host, port = _address(url)
        run = Run(url, sim, scale, folder)
        with StallProxy(host, port) as proxy:
            procs = [run.worker("--until-done", "--max-seats", "2", worker_id=f"w{i}") for i in (1, 2, 3)]
            procs.append(run.worker("--until-done", "--max-seats", "2", worker_id="w4", db=proxy.url_for(url)))
            time.sleep(8.0)
            cut_seats = _seats_of(url, "w4")
            open_before = _open_attempts(url, "w4")
            proxy.stall()
            t0 = run.now()
            time.sleep(leases * lease_real)
            proxy.resume()
            t1 = run.now()
            codes = [p.wait(900) for p in procs]
        log, live = sim.snapshot()
        own_window = [r for r in log if r.extension in cut_seats and t0 + 1.0 < r.created < t0 + lease_real]
        result = run.audit()
        closed, own = _closed(url, open_before, "w4")
        result.update(scenario="cut", db=kind, workers=4, cut_seconds=round(t1 - t0, 1),
                      cut_worker_dials_in_its_lease=len(own_window),
                      cut_calls_open_at_cut=len(open_before), cut_calls_closed=closed, cut_calls_written_by_it=own,
                      exit_code=max(codes), not_written=run.grep("not written"), tracebacks=run.grep("Traceback"))
        return result


def outage(kind: str, folder: Path, *, scale: float, seed_: int, seconds: float) -> dict[str, Any]:
    with database(kind, folder) as url, SimProcess(sim_config(scale, seed_)) as sim:
        seed(url, contacts=60, agents=4)
        host, port = _address(url)
        run = Run(url, sim, scale, folder)
        with StallProxy(host, port) as proxy:
            proc = run.worker("--until-done", db=proxy.url_for(url))
            time.sleep(6.0)
            proxy.stall()
            t0 = run.now()
            time.sleep(seconds)
            proxy.resume()
            t1 = run.now()
            back = run.first_dial_after(t1)
            code = proc.wait(900)
        log, _ = sim.snapshot()
        during = sum(1 for r in log if t0 + 1.0 < r.created < t1)
        result = run.audit()
        result.update(scenario="outage", db=kind, outage_seconds=round(t1 - t0, 1), dials_during_outage=during,
                      first_dial_after_recovery_s=round(back, 2) if back is not None else None, exit_code=code,
                      not_written=run.grep("not written"), tracebacks=run.grep("Traceback"))
        return result


def cti(kind: str, folder: Path, *, scale: float, seed_: int) -> dict[str, Any]:
    with database(kind, folder) as url, SimProcess(sim_config(scale, seed_)) as sim:
        seed(url, contacts=60, agents=4)
        run = Run(url, sim, scale, folder)
        proc = run.worker("--until-done")
        recover: dict[str, float | None] = {}
        for fault in ("restart", "drop", "stop_heartbeats"):
            time.sleep(5.0)
            t = run.now()
            sim.fault(fault)
            recover[fault] = run.first_dial_after(t, timeout=60)
        code = proc.wait(900)
        result = run.audit()
        result.update(scenario="cti", db=kind, exit_code=code, tracebacks=run.grep("Traceback"),
                      **{f"recover_{k}_s": round(v, 2) if v is not None else None for k, v in recover.items()})
        return result


def _address(url: str) -> tuple[str, int]:
    """The PostgreSQL server a URL names, for the proxy to stand in front of."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or 5432


def _seats_of(url: str, worker: str) -> set[str]:
    from dialer.store.models import Agent

    engine = make_engine(url)
    with Session(engine) as s:
        out = set(s.scalars(select(Agent.extension).where(Agent.claimed_by == worker)))
    engine.dispose()
    return out


def _open_attempts(url: str, worker: str) -> list[int]:
    engine = make_engine(url)
    with Session(engine) as s:
        out = list(s.scalars(select(Attempt.id).where(Attempt.worker_id == worker, Attempt.ended_at.is_(None))))
    engine.dispose()
    return out


def _closed(url: str, ids: list[int], worker: str) -> tuple[int, int]:
    """Of these attempts: how many are closed, and how many by `worker` itself with what it saw
    (not adopted by another worker and closed with the talk time unknown)."""
    engine = make_engine(url)
    with Session(engine) as s:
        rows = list(s.scalars(select(Attempt).where(Attempt.id.in_(ids))))
    engine.dispose()
    closed = [a for a in rows if a.ended_at is not None]
    own = [a for a in closed if a.worker_id == worker and "talk time unknown" not in (a.detail or "")]
    return len(closed), len(own)


@contextmanager
def _folder(keep: bool) -> Iterator[str]:
    if keep:
        path = tempfile.mkdtemp(prefix="dialer-chaos-")
        print(f"logs in {path}", file=sys.stderr)
        yield path
    else:
        with tempfile.TemporaryDirectory(prefix="dialer-chaos-") as tmp:
            yield tmp


# -- the table --------------------------------------------------------------------------------------

COLUMNS = ["scenario", "db", "calls", "answered_calls", "double_dials", "answered_unrecorded", "answered_otherwise",
           "redialled_after_answer", "open_attempts", "duplicate_attempts", "inconsistent_contacts", "exit_code"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=["sigkill", "cut", "outage", "cti", "all"], default="all")
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--outage", type=float, default=60.0, help="seconds the database is away (outage)")
    ap.add_argument("--scale", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the workers' logs (printed at the end)")
    args = ap.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    plan: list[tuple[str, str]] = []
    for name in (["sigkill", "cut", "outage", "cti"] if args.scenario == "all" else [args.scenario]):
        for kind in kinds:
            if name in ("cut", "outage") and kind != "postgresql":
                continue  # a database behind a network: PostgreSQL
            plan.append((name, kind))
    rows = []
    for name, kind in plan:
        with _folder(args.keep) as tmp:
            started = time.perf_counter()
            folder = Path(tmp)
            if name == "sigkill":
                row = sigkill(kind, folder, kills=args.kills, scale=args.scale, seed_=args.seed)
            elif name == "cut":
                row = cut(kind, folder, scale=args.scale, seed_=args.seed)
            elif name == "outage":
                row = outage(kind, folder, scale=args.scale, seed_=args.seed, seconds=args.outage)
            else:
                row = cti(kind, folder, scale=args.scale, seed_=args.seed)
            row["seconds"] = round(time.perf_counter() - started, 1)
            rows.append(row)
            if not args.json:
                extra = {k: v for k, v in row.items() if k not in COLUMNS}
                print("  ".join(f"{k}={row.get(k)}" for k in COLUMNS), "|", json.dumps(extra, ensure_ascii=False),
                      flush=True)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
