"""What docs/operations.md and contrib/ promise an operator: the shipped systemd unit runs the
worker and restarts it; the metrics list and the alerting rules name the metrics the worker
exports, all of them."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from dialer.cli import main
from dialer.metrics import render
from dialer.worker import Worker, WorkerOptions

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "contrib" / "systemd" / "dialer-worker.service"
OPERATIONS = ROOT / "docs" / "operations.md"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def test_the_unit_restarts_the_worker_as_a_user_with_its_environment_file() -> None:
    service = unit()["Service"]
    assert service["Restart"] == "always"
    assert service["User"] not in ("", "root", "0")
    assert service["EnvironmentFile"].lstrip("-").startswith("/")
    assert int(service["TimeoutStopSec"]) > 30  # the default drain timeout fits in it
    argv = shlex.split(service["ExecStart"])
    assert argv[0].startswith("/") and argv[0].endswith("/dialer")
    assert "worker" in argv and "--config" in argv[: argv.index("worker")]


def test_the_units_command_line_is_the_dialers(tmp_path) -> None:
    """ExecStart's arguments, with its configuration file replaced by the documented example,
    reach `dialer worker` (its --help, so that nothing runs)."""
    argv = shlex.split(unit()["Service"]["ExecStart"])[1:]
    example = re.search(r"```toml\n(.*?)```", OPERATIONS.read_text(encoding="utf-8"), re.DOTALL).group(1)
    config = tmp_path / "dialer.toml"
    config.write_text(example, encoding="utf-8")
    argv[argv.index("--config") + 1] = str(config)
    result = CliRunner().invoke(main, [*argv, "--help"])
    assert result.exit_code == 0, result.output
    assert "Run the dialer: log the seats in" in result.output


@pytest.fixture
async def exported() -> set[str]:
    """The metric families a worker exports (every one, with no samples for the empty ones)."""
    worker = Worker(None, WorkerOptions(worker_id="w-docs"), handle_signals=False)
    try:
        return {f.name for f in text_string_to_metric_families(render(worker))}
    finally:
        worker.lanes.shutdown(1.0)


def _sample_names(family: str) -> set[str]:
    family = family.removesuffix("_created")  # prometheus_client's start time of a histogram
    return {family, f"{family}_total", f"{family}_bucket", f"{family}_count", f"{family}_sum"}


async def test_the_metrics_list_names_every_metric_and_no_other(exported) -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text[text.index("## Metrics and health"):text.index("## Alerting rules")]
    listed = set(re.findall(r"^\| `(dialer_\w+)`", section, re.MULTILINE))
    ours = {name for name in exported if name.startswith("dialer_")}
    assert ours, exported
    for name in ours:
        assert _sample_names(name) & listed, f"{name} is not in docs/operations.md's list"
    known = set().union(*(_sample_names(n) for n in exported))
    assert listed <= known, listed - known
    processes = {n for n in exported if n.startswith("process_")}
    assert processes and all(n in section for n in processes)


async def test_the_alerting_rules_use_only_exported_metrics(exported) -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    rules = text[text.index("## Alerting rules"):text.index("## What the warnings and errors mean")]
    used = set(re.findall(r"\b(dialer_\w+)", rules))
    known = set().union(*(_sample_names(n) for n in exported))
    assert {"dialer_abandon_rate", "dialer_dials_total", "dialer_outbox_depth", "dialer_lease_held"} <= used
    assert used <= known, used - known
