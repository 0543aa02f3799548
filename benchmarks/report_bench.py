"""Reports on a large history: 1,000,000 attempts (300,000 contacts) over 90 days, 200 agents and
their seat events, and 1,000 seats in the workers' status rows; each report timed as the whole
`dialer report …` command (process start included), `attempts --format csv` with its peak RSS,
and `dialer status` with 1,000 seats; and the console's wallboard (dialer/web/views.py): its read
of the database and its rendering, in process, as the console does them once a second.

    python benchmarks/report_bench.py                                   # SQLite (a temporary file)
    python benchmarks/report_bench.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test
    python benchmarks/report_bench.py --attempts 100000 --runs 1 --json
    python benchmarks/report_bench.py --only wallboard                  # the wallboard alone

On PostgreSQL the data goes into a database of its own (`<db>_report_bench`), dropped at the end
unless --keep. Each command runs --runs times; the table shows the median and the worst.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer.store import migrate  # noqa: E402

TZ_OFFSET = dt.timedelta(hours=8)  # the campaign is in Asia/Shanghai (no DST)
OUTCOMES = [("answered", 0.30), ("no_answer", 0.45), ("busy", 0.10), ("failed", 0.03), ("agent_no_answer", 0.02),
            ("abandoned", 0.012), ("answered_late", 0.003), ("timeout", 0.02), ("interrupted", 0.065)]
COMMANDS = [["report", "summary"], ["report", "outcomes"], ["report", "compliance"], ["report", "interval"],
            ["report", "interval", "--minutes", "15"], ["report", "agents"],
            ["report", "summary", "--since", "{last_week}"], ["report", "agents", "--since", "{yesterday}"],
            ["status"]]


def _ts(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


def generate(url: str, attempts: int, agents: int, days: int, seats: int, seed: int) -> dict[str, int]:
    """Fill a fresh schema with the history. Returns what was written."""
    rng = random.Random(seed)
    engine = create_engine(url)
    migrate.upgrade(engine)
    pg = engine.dialect.name == "postgresql"
    contacts = max(1, attempts * 3 // 10)
    today = dt.datetime.now(dt.timezone.utc).replace(hour=1, minute=0, second=0, microsecond=0)  # 09:00 +08
    start = today - dt.timedelta(days=days - 1)
    names = [o for o, _ in OUTCOMES]
    weights = [w for _, w in OUTCOMES]
    exts = [str(6000 + i) for i in range(agents)]
    rows_c, rows_a, rows_e = [], [], []
    per_day = attempts / days
    aid = 0
    next_contact = 1
    for d in range(days):
        day = start + dt.timedelta(days=d)
        for ext in exts:  # a login session a day: 09:00 → 20:00 local
            rows_e.append((day, "w1", ext, "bench", "agent", "ready", "", 1))
            rows_e.append((day + dt.timedelta(hours=11), "w1", ext, "bench", "agent", "logged_out", "", -1))
        n = int(per_day) + (1 if rng.random() < per_day - int(per_day) else 0)
        for _ in range(n):
            aid += 1
            t = day + dt.timedelta(seconds=rng.uniform(0, 11 * 3600 - 600))
            if next_contact <= contacts and (rng.random() < 0.35 or aid < contacts / 3):
                cid = next_contact
                next_contact += 1
            else:
                cid = rng.randint(1, max(1, next_contact - 1))
            outcome = rng.choices(names, weights)[0]
            ring = round(rng.uniform(3, 25), 2) if outcome not in ("failed", "interrupted") else None
            answered = outcome in ("answered", "answered_late", "abandoned", "agent_no_answer")
            talk = round(rng.expovariate(1 / 90), 2) if outcome in ("answered", "answered_late") else None
            ext = rng.choice(exts)
            ans = t + dt.timedelta(seconds=ring) if answered and ring else None
            end = t + dt.timedelta(seconds=(ring or 1) + (talk or 0))
            detail = "no agent in time: sent to IVR node 99" if outcome == "abandoned" else ""
            rows_a.append((aid, 1, cid, 1 + aid % 3, "w1", ext, ext, f"9138{aid:08d}", f"c{aid}", t, t,
                           t + dt.timedelta(seconds=1), ans, ans if talk else None, end, outcome, ring, talk,
                           "广东", "深圳", "移动", detail))
            rows_e.append((t, "w1", ext, "bench", "agent", "dialling", "", 0))
            if talk:
                rows_e.append((ans, "w1", ext, "bench", "agent", "talking", "", 0))
                rows_e.append((end, "w1", ext, "bench", "agent", "wrap", "", 0))
                rows_e.append((end + dt.timedelta(seconds=15), "w1", ext, "bench", "agent", "ready", "", 0))
            else:
                rows_e.append((end, "w1", ext, "bench", "agent", "ready", "", 0))
    statuses = ["pending"] * 5 + ["done"] * 3 + ["exhausted"] * 2
    for cid in range(1, contacts + 1):
        rows_c.append((cid, 1, f"+86138{cid:08d}", f"138{cid:08d}", "", "mobile", "", "广东", "深圳", "移动", "", "",
                       0, rng.choice(statuses), rng.randint(0, 3), 0, start if cid % 2 else today + dt.timedelta(days=1),
                       start))
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO campaigns (id, name, mode, queue, status, priority, area_code, outside_prefix, "
            "ld_mobile_prefix, unknown_city_mobile, allow_international, window_start, window_end, days, timezone, "
            "contact_timezones, max_attempts, retry_delays, ring_timeout, wrap_up, max_calls_per_agent, "
            "abandon_target, abandon_ivr, handover, port_queue, created_at, updated_at) VALUES (1, 'bench', "
            "'predictive', 'bench', 'active', 0, '010', '9', '0', 'long_distance', false, '00:00', '24:00', "
            "'mon,tue,wed,thu,fri,sat,sun', 'Asia/Shanghai', '[]', 3, '{}', 30, 20, 3.0, 0.03, '99', 'agent', '', "
            ":t, :t)"), {"t": start if pg else _ts(start)})
        conn.execute(text("INSERT INTO agents (staffid, name, extension, queue, skill, sector, role, enabled) "
                          "VALUES (:s, :n, :e, 'bench', 1, '', 'agent', true)"),
                     [{"s": f"A{e}", "n": f"坐席{e}", "e": e} for e in exts])
    _load(engine, "contacts", ["id", "campaign_id", "phone", "raw_phone", "extension", "kind", "area_code", "province",
                               "city", "isp", "name", "customer_id", "priority", "status", "attempts", "free_misses",
                               "next_attempt_at", "created_at"], rows_c)
    _load(engine, "attempts", ["id", "campaign_id", "contact_id", "attempt_no", "worker_id", "seat", "agent_extension",
                               "dial_string", "callid", "created_at", "dialled_at", "ringing_at", "answered_at",
                               "bridged_at", "ended_at", "outcome", "ring_seconds", "talk_seconds", "province", "city",
                               "isp", "detail"], rows_a)
    _load(engine, "seat_events", ["at", "worker_id", "extension", "queue", "role", "state", "reason", "session"],
          sorted(rows_e, key=lambda r: r[0]))
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:  # 1,000 seats in five workers' status rows
        for w in range(5):
            body = {"seats": [{"extension": f"{7000 + w * 200 + i}", "name": f"坐席{i}", "queue": f"q{w}",
                               "role": "agent", "state": rng.choice(["ready", "talking", "wrap", "busy"]),
                               "reason": "", "since": (now - dt.timedelta(seconds=rng.randint(0, 900))).isoformat()}
                              for i in range(seats // 5)],
                    "queues": {f"q{w}": {"calls": 50, "waiting": 1, "level": 1.4}}, "campaigns": ["bench"],
                    "calls": 50, "may_dial": True, "outbox": 0}
            conn.execute(text("INSERT INTO worker_status (worker_id, host, pid, started_at, at, stopped, body) "
                              "VALUES (:w, 'bench', 1, :t, :t, false, :b)"),
                         {"w": f"w{w}", "t": now if pg else _ts(now), "b": json.dumps(body)})
        if not pg:
            conn.execute(text("ANALYZE"))
    if pg:  # what autovacuum does to a database in service: statistics, and the visibility map
        # that lets the reports read their indexes alone (a table just loaded has none)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("attempts", "contacts", "seat_events"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))
    engine.dispose()
    return {"attempts": len(rows_a), "contacts": len(rows_c), "seat_events": len(rows_e), "seats": seats}


def _load(engine, table: str, columns: list[str], rows: list[tuple]) -> None:
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
            raw.commit()
        finally:
            raw.close()
        return
    raw = engine.raw_connection()
    try:
        conv = [tuple(_ts(v) if isinstance(v, dt.datetime) else v for v in r) for r in rows]
        raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", conv)
        raw.commit()
    finally:
        raw.close()


def measure(url: str, cmd: list[str], runs: int) -> dict[str, float]:
    """Run `dialer --db URL CMD --format …` `runs` times; wall seconds and peak RSS (MB)."""
    walls, peaks = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", "import sys; from dialer.cli import run; sys.exit(run())",
                               "--db", url, *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        walls.append(time.perf_counter() - t0)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode()[-500:]}")
        peaks.append(_child_peak())
    return {"median_s": statistics.median(walls), "max_s": max(walls), "peak_rss_mb": max(peaks),
            "bytes": len(proc.stdout)}


def wallboard(url: str, runs: int) -> list[dict]:
    """The wallboard's read and its rendering, in process (as the console runs them), `runs`
    times after one warm-up; the workers' status rows made current first (alive, lease held)."""
    from dialer.store.engine import make_engine
    from dialer.web.app import HERE
    from dialer.web.deps import templates
    from dialer.web.views import Wallboard
    from dialer.web.views import wallboard as read

    engine = make_engine(url)
    now = dt.datetime.now(dt.timezone.utc)
    pg = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        conn.execute(text("UPDATE worker_status SET at = :t"), {"t": now if pg else _ts(now)})
        conn.execute(text("DELETE FROM workers"))
        for w in range(5):
            conn.execute(text("INSERT INTO workers (id, host, pid, started_at, last_seen, token, lease_until) "
                              "VALUES (:w, 'bench', 1, :t, :t, 1, :u)"),
                         {"w": f"w{w}", "t": now if pg else _ts(now),
                          "u": (now + dt.timedelta(hours=1)) if pg else _ts(now + dt.timedelta(hours=1))})
    board = templates(str(HERE / "templates")).get_template("_board.html")
    reads, renders, ticks, seats = [], [], [], 0
    for i in range(runs + 1):
        t0 = time.perf_counter()
        snap = read(engine, dt.datetime.now(dt.timezone.utc))  # in full: `dialer status`'s read
        t1 = time.perf_counter()
        html = board.render(board=snap)
        t2 = time.perf_counter()
        if i:
            reads.append(t1 - t0)
            renders.append(t2 - t1)
        seats = sum(len(q["seats"]) for q in snap["queues"])
    reader = Wallboard()
    read(engine, dt.datetime.now(dt.timezone.utc), reader)  # (its caches filled: the first tick is a full read)
    for i in range(runs):
        t0 = time.perf_counter()
        read(engine, dt.datetime.now(dt.timezone.utc), reader)
        ticks.append(time.perf_counter() - t0)
    engine.dispose()
    assert seats > 0, "no seat on the board: the status rows are not current"

    def row(what: str, times: list[float], size: int = 0) -> dict:
        return {"command": what, "median_s": round(statistics.median(times), 4), "max_s": round(max(times), 4),
                "peak_rss_mb": 0.0, "output_bytes": size}

    return [row(f"wallboard read in full ({seats} seats, in process)", reads),
            row("wallboard read each tick (the console's caches)", ticks),
            row(f"wallboard render ({len(html) // 1024} KB of HTML)", renders, len(html))]


def _child_peak() -> float:
    """The peak RSS of the last child (ru_maxrss of children is the largest so far: each
    measurement runs in a fresh helper process, see main)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="a PostgreSQL URL (its server hosts the bench database) [SQLite file]")
    ap.add_argument("--attempts", type=int, default=1_000_000)
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--seats", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the database (its URL is printed)")
    ap.add_argument("--reuse", help="measure this database (made by --keep) instead of generating one")
    ap.add_argument("--only", choices=["all", "commands", "wallboard"], default="all")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--one", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # a single measurement in a process of its own (peak RSS of its own children)
        print(json.dumps(measure(args.one[0], args.one[1:], 1)))
        return
    tmp = None
    made: dict[str, int] = {}
    if args.reuse:
        url = args.reuse
    elif args.db:
        base = make_url(args.db)
        name = f"{base.database}_report_bench"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
    else:
        tmp = tempfile.mkdtemp(prefix="report_bench_")
        url = f"sqlite:///{tmp}/bench.db"
    try:
        if not args.reuse:
            t0 = time.perf_counter()
            made = generate(url, args.attempts, args.agents, args.days, args.seats, args.seed)
            made["generate_s"] = round(time.perf_counter() - t0, 1)
        local = dt.datetime.now(dt.timezone.utc) + TZ_OFFSET
        fill = {"last_week": (local - dt.timedelta(days=7)).date().isoformat(),
                "yesterday": (local - dt.timedelta(days=1)).date().isoformat()}
        results = []
        for cmd in [*COMMANDS, ["report", "attempts", "--format", "csv"]] if args.only != "wallboard" else []:
            cmd = [c.format(**fill) for c in cmd]
            if "--format" not in cmd:
                cmd += ["--format", "json"]
            runs = 1 if "attempts" in cmd else args.runs
            walls, peak, size = [], 0.0, 0
            for _ in range(runs):
                out = subprocess.run([sys.executable, __file__, "--one", url, *cmd], check=True,
                                     capture_output=True, text=True)
                r = json.loads(out.stdout)
                walls.append(r["median_s"])
                peak, size = max(peak, r["peak_rss_mb"]), r["bytes"]
            results.append({"command": " ".join(cmd), "median_s": round(statistics.median(walls), 3),
                            "max_s": round(max(walls), 3), "peak_rss_mb": round(peak, 1), "output_bytes": size})
        if args.only != "commands":
            results += wallboard(url, max(20, args.runs))
        if args.json:
            print(json.dumps({"db": make_url(url).get_backend_name(), "made": made, "results": results}, indent=2))
        else:
            print(f"database: {make_url(url).get_backend_name()}  {made}")
            print(f"{'command':<58} {'median s':>9} {'worst s':>8} {'peak MB':>8}")
            for r in results:
                print(f"{r['command']:<58} {r['median_s']:>9.3f} {r['max_s']:>8.3f} {r['peak_rss_mb']:>8.1f}")
        if args.keep:
            print(f"kept: {url}", file=sys.stderr)
    finally:
        if not args.keep and not args.reuse:
            if args.db:
                admin = create_engine(make_url(args.db), isolation_level="AUTOCOMMIT")
                with admin.connect() as c:
                    c.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}"'))
            elif tmp:
                for p in Path(tmp).iterdir():
                    p.unlink()
                os.rmdir(tmp)


if __name__ == "__main__":
    main()
