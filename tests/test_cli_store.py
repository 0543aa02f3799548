"""The database commands as a user runs them, on SQLite and PostgreSQL: output and exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run(db_url):
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(main, ["--db", db_url, *args])
        assert result.exit_code == code, (args, result.output, result.exception)
        if code:
            assert "Traceback" not in result.output
            assert len(result.output.strip().splitlines()) == 1, result.output  # one line
        return result.output

    return invoke


def test_schema_commands(tmp_path) -> None:
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'new.db'}"
    check = runner.invoke(main, ["--db", url, "db", "check"])
    assert check.exit_code == 1 and "run: dialer db upgrade" in check.output
    refused = runner.invoke(main, ["--db", url, "campaign", "create", "x"])
    assert refused.exit_code == 1 and "has no dialer schema; run: dialer db upgrade" in refused.output
    assert runner.invoke(main, ["--db", url, "db", "upgrade"]).output == "database at 0010 (was empty)\n"
    assert runner.invoke(main, ["--db", url, "db", "current"]).output == "0010 (head 0010)\n"
    assert runner.invoke(main, ["--db", url, "db", "check"]).exit_code == 0
    bad = runner.invoke(main, ["--db", "nonsense", "db", "current"])
    assert bad.exit_code == 2 and "not a database URL" in bad.output


def test_campaign_commands(run) -> None:
    assert run("campaign", "create", "回访", "--queue", "kefu", "--area-code", "0755", "--window", "09:00-21:00",
               "--days", "mon-sat", "--retry", "busy=600", "--max-attempts", "4") == \
        "created campaign '回访' (draft, progressive, area code 0755)\n"
    run("campaign", "create", "回访", code=2)
    assert "ring-timeout" in run("campaign", "create", "x", "--ring-timeout", "5", code=2)
    assert "unknown outcome" in run("campaign", "create", "x", "--retry", "answered=5", code=2)
    assert "no campaign named 'nope'" in run("campaign", "show", "nope", code=2)
    shown = json.loads(run("campaign", "show", "回访", "--format", "json"))
    assert (shown["window"], shown["days"], shown["retry"]["busy"], shown["max_attempts"], shown["status"]) == \
        ("09:00-21:00", "mon,tue,wed,thu,fri,sat", 600, 4, "draft")
    assert run("campaign", "resume", "回访") == "campaign '回访' is active\n"
    assert run("campaign", "pause", "回访") == "campaign '回访' is paused\n"
    assert "cannot pause" in run("campaign", "pause", "回访", code=2)
    run("campaign", "update", "回访", "--priority", "3", "--mode", "predictive")
    [row] = json.loads(run("campaign", "list", "--format", "json"))
    assert (row["name"], row["priority"], row["mode"]) == ("回访", 3, "predictive")
    assert run("campaign", "list").splitlines()[0].split()[:3] == ["name", "status", "mode"]
    assert run("campaign", "archive", "回访") == "campaign '回访' is archived\n"


def test_import_and_contacts(run, tmp_path) -> None:
    run("campaign", "create", "c")
    rejects = tmp_path / "rejects.csv"
    out = run("import", "c", str(ROOT / "campaigns.example.csv"), "--json", "--rejects", str(rejects))
    summary = json.loads(out)
    assert {k: summary[k] for k in ("rows", "imported", "duplicates", "dnc", "rejected")} == \
        {"rows": 52, "imported": 46, "duplicates": 1, "dnc": 0, "rejected": 5}
    assert set(summary) == {"file", "rows", "imported", "duplicates", "dnc", "rejected", "batch"}
    assert len(list(csv.reader(rejects.open(encoding="utf-8-sig")))) == 7
    text = run("import", "c", str(ROOT / "campaigns.example.csv"), "--dry-run")
    assert "would import 0, duplicates 47" in text
    contacts = list(csv.DictReader(io.StringIO(run("contacts", "c"))))
    assert len(contacts) == 46
    assert {"phone", "name", "customer_id", "status", "attempts", "last_outcome", "next_attempt_at", "kind",
            "province", "city", "isp"} <= set(contacts[0])
    assert contacts[0]["phone"] == "+8613381399869" and contacts[0]["status"] == "pending"
    as_json = json.loads(run("contacts", "c", "--format", "json", "--status", "pending"))
    assert as_json[0]["extra"] == {"城市": "北京市", "备注": "上次未接通"}
    assert json.loads(run("contacts", "c", "--format", "json", "--status", "done")) == []
    assert "--status must be one of" in run("contacts", "c", "--status", "weird", code=2)


def test_import_errors(run, tmp_path) -> None:
    run("campaign", "create", "c")
    nophone = tmp_path / "nophone.csv"
    nophone.write_text("a,b\n1,2\n", encoding="utf-8")
    assert "no phone column; found: a, b" in run("import", "c", str(nophone), code=2)
    assert run("import", "c", str(nophone), "--map", "a=phone", "--json")
    assert "cannot read" in run("import", "c", str(tmp_path / "missing.csv"), code=2)
    assert "no campaign named" in run("import", "nope", str(nophone), code=2)
    assert "COLUMN=FIELD" in run("import", "c", str(nophone), "--map", "phone", code=2)


def test_dialstring(run) -> None:
    run("campaign", "create", "sz", "--area-code", "0755")
    record = json.loads(run("dialstring", "139-1234-5678", "--campaign", "sz", "--json"))
    assert {k: record[k] for k in ("input", "e164", "kind", "city", "local", "dial_string", "rule")} == {
        "input": "139-1234-5678", "e164": "+8613912345678", "kind": "mobile", "city": "常州市", "local": False,
        "dial_string": "9013912345678", "rule": "long-distance-mobile"}
    text = run("dialstring", "0755-1234 5678", "--area-code", "0755")
    assert text.splitlines()[0] == "912345678" and "rule local-landline" in text
    assert "cannot be dialled: invalid number" in run("dialstring", "138001", "--area-code", "010", code=1)
    assert "exactly one of" in run("dialstring", "138", code=2)
    assert "must be digits" in run("dialstring", "138", "--area-code", "x", code=2)


def test_agents(run, tmp_path) -> None:
    roster = tmp_path / "agents.csv"
    roster.write_text("staffid,name,extension,queue,skill,role\n10601,张三,601,kefu,2,agent\n"
                      "90001,端口1,8001,kefu,1,port\n", encoding="utf-8")
    assert run("agents", "import", str(roster)) == f"{roster}: 2 agents added, 0 updated\n"
    assert run("agents", "import", str(roster)) == f"{roster}: 0 agents added, 2 updated\n"
    run("agents", "add", "10602", "602", "--name", "李四", "--queue", "kefu")
    rows = json.loads(run("agents", "list", "--format", "json"))
    assert [(r["staffid"], r["extension"], r["role"]) for r in rows] == [
        ("10601", "601", "agent"), ("10602", "602", "agent"), ("90001", "8001", "port")]
    assert "already belongs" in run("agents", "add", "10603", "601", code=2)
    run("agents", "remove", "602")
    assert "no agent" in run("agents", "remove", "602", code=2)
    bad = tmp_path / "bad.csv"
    bad.write_text("staffid,extension,role\n1,60x,agent\n", encoding="utf-8")
    assert f"{bad}, line 2: extension must be digits" in run("agents", "import", str(bad), code=2)


def test_dnc(run, tmp_path) -> None:
    assert run("dnc", "add", "138-0013-8000", "+86 139 1234 5678", "--reason", "投诉") == "2 added, 0 refreshed\n"
    # a block is never shortened by a later add unless asked
    assert run("dnc", "add", "13800138000", "--until", "2030-01-01") == \
        "0 added, 0 refreshed, 1 kept blocked until later (--replace to shorten)\n"
    run("dnc", "add", "13800138000", "--until", "2030-01-01", "--replace")
    rows = json.loads(run("dnc", "list", "--format", "json"))
    assert [(r["phone"], r["reason"]) for r in rows] == [("+8613800138000", "投诉"), ("+8613912345678", "投诉")]
    assert rows[0]["until"] == "2030-01-01T16:00:00+00:00"  # the end of 1 January in China
    assert "not a valid number" in run("dnc", "add", "12", code=2)
    assert "--until" in run("dnc", "add", "13800138000", "--until", "soon", code=2)
    listing = tmp_path / "dnc.csv"
    listing.write_text("手机号\n13700000000\nxyz\n13600000000\n", encoding="utf-8")
    assert run("dnc", "import", str(listing)).startswith(f"{listing}: 2 added, 0 already listed, 1 unreadable")
    assert run("dnc", "remove", "13700000000") == "1 removed\n"
    # a number on the list is refused at import
    run("campaign", "create", "c")
    numbers = tmp_path / "l.csv"
    numbers.write_text("phone\n13600000000\n13500000000\n", encoding="utf-8")
    assert json.loads(run("import", "c", str(numbers), "--json"))["dnc"] == 1
