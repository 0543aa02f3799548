"""`dialer sim` as a user runs it: a real process, real sockets, real signals."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from click.testing import CliRunner

from dialer.cli import main
from dialer.cti.client import Seat


def test_help_and_version() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0 and "sim" in result.output
    result = runner.invoke(main, ["sim", "--help"])
    assert result.exit_code == 0 and "--time-scale" in result.output and "--scenario" in result.output
    assert runner.invoke(main, ["--version"]).output.startswith("dialer, version ")


def test_bad_scenario_is_one_line_exit_2(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[customers]]\nnumber = 'abc'\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["sim", "--scenario", str(bad)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert f"Error: {bad}: customers #1: 'abc' is not a phone number" in result.output
    assert "Traceback" not in result.output


def test_bad_options_exit_2(tmp_path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["sim", "--time-scale", "0"]).exit_code == 2
    assert runner.invoke(main, ["sim", "--home-area-code", "abc"]).exit_code == 2
    missing = runner.invoke(main, ["--config", str(tmp_path / "nope.toml"), "sim"])
    assert missing.exit_code == 2 and "cannot read" in missing.output


async def test_sim_process_serves_and_stops_on_sigint(tmp_path) -> None:
    config = tmp_path / "dialer.toml"
    config.write_text("[sim]\nport = 0\ntime_scale = 0.01\nseed = 5\n", encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialer", "--config", str(config), "sim",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert "listening on ws://127.0.0.1:" in line and "seed 5" in line and "time scale 0.01" in line
        url = line.split("listening on ")[1].split()[0]
        seat = Seat(heartbeat_interval=0, reconnect=False)
        await seat.connect(url)
        await seat.login("张三", "601", "kefu", "10601")
        assert [r.exten for r in await seat.extension_list("agent")] == ["601"]
        await seat.close()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    assert "stopped after" in out.decode()
