"""List import: a generated N-row list (default 1,000,000) imported end to end, beside the floor.

The floor is a bare `sqlite3.executemany` of the same rows, already normalised, into the same
`contacts` table (same indexes), in one transaction: what the database alone costs. Each import
runs in its own process so that its peak memory (max RSS) is its own.

    python benchmarks/import_bench.py                       # 1,000,000 rows, SQLite
    python benchmarks/import_bench.py --rows 100000 --pg postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CITIES = ["010", "021", "020", "0755", "0571", "028", "027", "025"]
MOBILE = ["138", "139", "135", "136", "186", "150", "151", "158", "177", "188", "189", "133"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚"


def generate(path: Path, rows: int, seed: int) -> None:
    """A realistic list: 85 % mobiles in various spellings, 15 % landlines, Chinese names."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("客户编号,客户姓名,手机号,备注\r\n")
        for i in range(rows):
            if rng.random() < 0.85:
                n = rng.choice(MOBILE) + f"{rng.randrange(10**8):08d}"
                phone = n if i % 3 else f"+86 {n[:3]} {n[3:7]} {n[7:]}"
            else:
                phone = f"{rng.choice(CITIES)}-{rng.randrange(2, 9)}{rng.randrange(10**7):07d}"
            name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
            f.write(f"KH{i:07d},{name},{phone},第{i % 50}批\r\n")


def run_child(mode: str, url: str, csv_path: Path) -> dict:
    """Run one measurement in a fresh process; it prints a JSON record."""
    out = subprocess.run([sys.executable, __file__, "--child", mode, url, str(csv_path)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(mode: str, url: str, csv_path: str) -> None:
    from sqlalchemy.orm import Session

    from dialer.dialplan import DialPlan, NotDialable, parse_number
    from dialer.importer import import_file
    from dialer.store.engine import make_engine
    from dialer.store.migrate import upgrade
    from dialer.store.repo import create_campaign

    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as s, s.begin():
        create_campaign(s, "bench", area_code="010")
        campaign_id = s.execute(__import__("sqlalchemy").text("select id from campaigns")).scalar()
    result: dict = {"mode": mode}
    if mode == "import":
        t0 = time.perf_counter()
        summary = import_file(engine, "bench", csv_path)
        result.update(seconds=time.perf_counter() - t0, imported=summary.imported, rows=summary.rows,
                      rejected=summary.rejected + summary.duplicates + summary.dnc)
    else:  # the floor: normalise first (not timed), then a bare executemany
        plan = DialPlan("010")
        import csv

        rows = []
        with open(csv_path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            next(reader)
            seen = set()
            now = "2026-11-25 02:00:00.000000"
            for cust, name, phone, note in reader:
                try:
                    info = parse_number(phone, "010")
                    plan.decide(info)
                except NotDialable:
                    continue
                if info.e164 in seen:
                    continue
                seen.add(info.e164)
                rows.append((campaign_id, info.e164, phone, info.extension, info.kind.value, info.area_code,
                             info.province, info.city, info.isp, name, cust, json.dumps({"备注": note}),
                             0, "pending", 0, now, now))
        del seen
        engine.dispose()
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        t0 = time.perf_counter()
        with db:
            db.executemany(
                "INSERT INTO contacts (campaign_id, phone, raw_phone, extension, kind, area_code, province, city,"
                " isp, name, customer_id, extra, priority, status, attempts, next_attempt_at, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        result.update(seconds=time.perf_counter() - t0, imported=len(rows), rows=len(rows))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg", help="also import into this PostgreSQL server (a fresh database is made)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "list.csv"
        generate(csv_path, args.rows, args.seed)
        size_mb = csv_path.stat().st_size / 1e6
        results = [run_child("import", f"sqlite:///{tmp}/import.db", csv_path),
                   run_child("floor", f"sqlite:///{tmp}/floor.db", csv_path)]
        if args.pg:
            from dialer.store.engine import scratch_database

            with scratch_database(args.pg, "dialer_bench") as url:
                results.append(run_child("import", url, csv_path) | {"db": "postgresql"})
    for r in results:
        r.setdefault("db", "sqlite")
        r["rows_per_s"] = r["rows"] / r["seconds"]
    floor = results[1]["seconds"]
    record = {"rows": args.rows, "file_mb": size_mb, "cpus": os.cpu_count(), "results": results,
              "sqlite_import_vs_floor": results[0]["seconds"] / floor}
    if args.json:
        print(json.dumps(record, indent=2))
        return
    print(f"{args.rows:,} rows, {size_mb:.0f} MB of CSV")
    print(f"{'run':<28}{'seconds':>9}{'rows/s':>11}{'imported':>10}{'peak MB':>9}")
    labels = {"import": "dialer import", "floor": "floor: bare executemany"}
    for r in results:
        label = labels[r["mode"]] + f" ({r['db']})"
        print(f"{label:<28}{r['seconds']:>9.2f}{r['rows_per_s']:>11,.0f}{r['imported']:>10,}{r['peak_rss_mb']:>9.0f}")
    print(f"SQLite import / floor: {record['sqlite_import_vs_floor']:.2f}x")


if __name__ == "__main__":
    main()
