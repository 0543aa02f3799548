"""`dialer demo`, `dialer report` and `dialer worker` from the command line."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import sys

from click.testing import CliRunner

from dialer.cli import main
from dialer.sim import Simulator
from dialer.sim.scenario import parse_scenario

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_packaged_example_list_is_the_top_level_one() -> None:
    assert (ROOT / "dialer" / "data" / "campaigns.example.csv").read_bytes() == \
        (ROOT / "campaigns.example.csv").read_bytes()


def test_demo_as_the_readme_gives_it() -> None:
    """`dialer demo` with no options: the mode's own time scale, named in the table output (it
    failed there once, formatting the option's None)."""
    result = CliRunner().invoke(main, ["demo", "--contacts", "8"])
    assert result.exit_code == 0, result.output
    assert "progressive, time scale 0.01; worked out in" in result.output
    assert "answer_rate" in result.output and "outcome" in result.output
    as_json = CliRunner().invoke(main, ["demo", "--contacts", "8", "--mode", "predictive", "--minutes", "1", "--json"])
    assert json.loads(as_json.output.strip().splitlines()[-1])["time_scale"] == 0.05


def test_demo_json_and_reports(tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["demo", "--agents", "6", "--time-scale", "0.004", "--json", "--keep", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["contacts"] == summary["imported"] == 46 and summary["refused_rows"] == 6
    assert summary["pending"] == 0 and summary["done"] + summary["exhausted"] == 46
    assert summary["answered"] == summary["done"] == summary["outcomes"]["answered"]
    assert sum(summary["outcomes"].values()) == summary["attempts"]
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    rows = list(csv.DictReader(io.StringIO(runner.invoke(main, ["--db", db, "report", "attempts", "--format", "csv"]).output)))
    assert len(rows) == summary["attempts"]
    assert {"id", "campaign", "phone", "attempt", "seat", "dial_string", "callid", "started_at", "ringing_at",
            "answered_at", "ended_at", "outcome", "talk_seconds"} <= set(rows[0])
    assert all(r["dial_string"].isdigit() and r["dial_string"].startswith("9") for r in rows)
    assert rows[0]["started_at"].endswith("+08:00")  # in the campaign's timezone
    report = json.loads(runner.invoke(main, ["--db", db, "report", "summary", "--format", "json"]).output)
    assert report[0]["attempts"] == summary["attempts"]
    agents = json.loads(runner.invoke(main, ["--db", db, "report", "agents", "--format", "json"]).output)
    assert sum(a["calls"] for a in agents) == summary["answered"] and len(agents) == 6
    assert all(0 < a["occupancy"] < 1 and a["logged_in_seconds"] > 0 for a in agents)
    hourly = json.loads(runner.invoke(main, ["--db", db, "report", "hourly", "--format", "json"]).output)
    assert sum(h["dials"] for h in hourly) == summary["attempts"] and hourly[0]["interval"].endswith("+08:00")
    assert all(h["agents_logged_in"] == 6 for h in hourly)
    outcomes = json.loads(runner.invoke(main, ["--db", db, "report", "outcomes", "--format", "json"]).output)
    assert {o["outcome"]: o["attempts"] for o in outcomes if o["pass"] == "all"} == summary["outcomes"]
    days = json.loads(runner.invoke(main, ["--db", db, "report", "compliance", "--format", "json"]).output)
    assert sum(d["live_answers"] for d in days) == summary["live_answers"]
    status = json.loads(runner.invoke(main, ["--db", db, "status", "--format", "json"]).output)
    assert status["alive"] == 0 and status["workers"][0]["worker"] == "demo" and not status["workers"][0]["alive"]
    table = runner.invoke(main, ["--db", db, "report", "summary"]).output
    assert table.splitlines()[0].split()[:3] == ["campaign", "status", "contacts"]
    bad = runner.invoke(main, ["--db", db, "report", "summary", "--campaign", "nope"])
    assert bad.exit_code == 2 and "no campaign named" in bad.output
    since = runner.invoke(main, ["--db", db, "report", "attempts", "--since", "yesterday"])
    assert since.exit_code == 2 and "--since" in since.output


async def test_worker_process_stops_gracefully_on_sigterm(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    runner = CliRunner()
    for args in (["db", "upgrade"], ["campaign", "create", "c", "--queue", "kefu", "--window", "00:00-24:00",
                                      "--days", "all"],
                 ["agents", "add", "1001", "601", "--queue", "kefu"], ["campaign", "resume", "c"]):
        assert runner.invoke(main, ["--db", db, *args]).exit_code == 0
    listing = tmp_path / "l.csv"
    listing.write_text("phone\n13800138000\n13912345678\n", encoding="utf-8")
    assert runner.invoke(main, ["--db", db, "import", "c", str(listing)]).exit_code == 0
    sim = Simulator(parse_scenario({"time_scale": 0.01, "customers": [
        {"number": "13800138000", "outcome": "answer", "ring": 1, "talk": 3000}]}))
    await sim.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dialer", "--db", db, "worker", "--cti", sim.url, "--time-scale", "0.01",
            "--drain-timeout", "0.3", stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        for _ in range(500):
            if any(s.call is not None and s.call.phase == "talking" for s in sim.by_ext.values()):
                break
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        await sim.stop()
    assert proc.returncode == 0, err.decode()
    assert "worker" in err.decode() and "stopped" in err.decode()
    rows = json.loads(runner.invoke(main, ["--db", db, "report", "attempts", "--format", "json"]).output)
    assert [r["outcome"] for r in rows] == ["answered"]  # hung up at the drain timeout, recorded
    assert sim.call_log[-1].end == "agent_hangup" and "601" not in sim.by_ext  # hung up, logged out


def test_worker_refuses_to_start_without_work(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    runner = CliRunner()
    runner.invoke(main, ["--db", db, "db", "upgrade"])
    result = runner.invoke(main, ["--db", db, "worker", "--cti", "ws://127.0.0.1:9/spcc/cti"])
    assert result.exit_code == 1 and "nothing to work" in result.output
    behind = runner.invoke(main, ["--db", f"sqlite:///{tmp_path / 'empty.db'}", "worker"])
    assert behind.exit_code == 1 and "run: dialer db upgrade" in behind.output


def test_demo_predictive() -> None:
    """`dialer demo --mode predictive`: ports and the pacer for a while of simulated time; the
    summary says how many answered calls were abandoned."""
    runner = CliRunner()
    result = runner.invoke(main, ["demo", "--mode", "predictive", "--agents", "6", "--minutes", "15",
                                  "--time-scale", "0.004", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["contacts"] == 6 * 15 * 2 + 50 - 6  # generated to last the time, minus the refused rows
    assert summary["answered"] > 10 and summary["pending"] > 0  # not worked out: it ran for a time
    assert summary["abandoned"] == summary["outcomes"].get("abandoned", 0) + summary["outcomes"].get("answered_late", 0)
    assert sum(summary["outcomes"].values()) == summary["attempts"]
    text = runner.invoke(main, ["demo", "--mode", "predictive", "--agents", "2", "--minutes", "2",
                                "--time-scale", "0.004"]).output
    assert "predictive" in text and "abandon_rate" in text
