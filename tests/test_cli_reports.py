"""`dialer report` and `dialer status` as a user runs them: formats, periods, errors."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from dialer.cli import main
from dialer.reports import COLUMNS


@pytest.fixture
def db(history, db_url):  # the fixed history of tests/test_reports.py
    return db_url


from tests.test_reports import history  # noqa: E402,F401  (the fixture)


def run(db: str, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, ["--db", db, *args])
    assert result.exit_code == code, (args, result.output, result.exception)
    if code:
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    return result.output


@pytest.mark.parametrize("name", ["summary", "outcomes", "compliance", "agents", "interval", "hourly", "attempts"])
def test_every_report_in_every_format(db, name) -> None:
    rows = json.loads(run(db, "report", name, "--campaign", "c", "--format", "json"))
    assert rows and all(list(r) == COLUMNS[name] for r in rows)  # the contract's fields, in order
    table = run(db, "report", name, "--campaign", "c").splitlines()
    assert table[0].split() == COLUMNS[name] and len(table) == len(rows) + 1
    got = list(csv.reader(io.StringIO(run(db, "report", name, "--campaign", "c", "--format", "csv"))))
    assert got[0] == COLUMNS[name] and len(got) == len(rows) + 1


def test_periods_and_campaigns(db) -> None:
    day = json.loads(run(db, "report", "summary", "--campaign", "c", "--since", "2026-03-06", "--until", "2026-03-06",
                         "--format", "json"))
    assert day[0]["attempts"] == 2
    utc = json.loads(run(db, "report", "attempts", "--campaign", "c", "--since", "2026-03-07T01:00+00:00",
                         "--format", "json"))
    assert len(utc) == 5
    both = json.loads(run(db, "report", "summary", "--campaign", "ny", "--campaign", "c", "--format", "json"))
    assert [r["campaign"] for r in both] == ["ny", "c"]
    quarter = json.loads(run(db, "report", "interval", "--campaign", "c", "--minutes", "15", "--format", "json"))
    assert quarter[0]["interval"] == "2026-03-05T23:45:00+08:00"


@pytest.mark.parametrize("args, says", [
    (["report", "summary", "--since", "yesterday"], "--since"),
    (["report", "summary", "--until", "2026-13-01"], "--until"),
    (["report", "summary", "--until", "9999-12-31"], "out of range"),
    (["report", "summary", "--campaign", "nope"], "no campaign named nope"),
])
def test_bad_input_is_one_line(db, args, says) -> None:
    assert says in run(db, *args, code=2)


def test_minutes_are_a_choice(db) -> None:
    result = CliRunner().invoke(main, ["--db", db, "report", "interval", "--minutes", "20"])
    assert result.exit_code == 2 and "Invalid value for '--minutes'" in result.output


def test_attempts_csv_is_safe_for_spreadsheets(db, engine) -> None:
    from sqlalchemy import update
    from dialer.store.models import Attempt

    with engine.begin() as conn:
        conn.execute(update(Attempt).where(Attempt.id == 1).values(detail="=HYPERLINK(\"x\")"))
    rows = list(csv.DictReader(io.StringIO(run(db, "report", "attempts", "--format", "csv"))))
    assert rows[0]["detail"].startswith("'=") and rows[0]["phone"] == "+8613800000001"


def test_status_table_and_json(db) -> None:
    snap = json.loads(run(db, "status", "--format", "json"))
    assert snap["alive"] == 0 and {c["campaign"] for c in snap["campaigns"]} == {"c", "ny"}
    table = run(db, "status")
    assert "no worker is alive" in table and "campaigns" in table


def test_a_report_loads_only_what_it_needs(db) -> None:
    """Every command runs in a process of its own: a report must not pay for phonenumbers'
    geocoder, Alembic or the other commands' modules (a third of a second at each start)."""
    import subprocess
    import sys

    code = ("import sys\nfrom dialer.cli import run\nsys.argv = ['dialer', '--db', %r, 'report', 'summary']\n"
            "try:\n    run()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('phonenumbers.geocoder', 'alembic', 'dialer.cli.worker', 'dialer.importer',"
            " 'dialer.cti.protocol', 'rich.live') if m in sys.modules))") % db
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
