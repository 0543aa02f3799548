"""`dialer users …`, `dialer report html` and `dialer web` on the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.cli import main
from dialer.store.access_models import AuditEntry
from dialer.store.engine import make_engine
from dialer.store.migrate import upgrade
from dialer.store.users import authenticate, user_for_token
from tests.web_support import make_campaign, seed_history


@pytest.fixture
def url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def run(url: str, *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["--db", url, *args], input=input)


def test_users_add_list_passwd_token_remove(url) -> None:
    r = run(url, "users", "add", "李主管", "--role", "manager", "--password-stdin", input="first-password\n")
    assert r.exit_code == 0 and "added (manager)" in r.output
    r = run(url, "users", "add", "李主管", "--password-stdin", input="first-password\n")
    assert r.exit_code == 2 and "exists" in r.output
    r = run(url, "users", "add", "bob", "--password-stdin", input="short\n")
    assert r.exit_code == 2 and "at least 8" in r.output
    r = run(url, "users", "add", "bob", "--role", "root", "--password-stdin", input="long-enough\n")
    assert r.exit_code == 2
    r = run(url, "users", "add", "bob", input="")  # no terminal to ask on
    assert r.exit_code == 2 and "--password-stdin" in r.output
    r = run(url, "users", "add", "bad name!", "--password-stdin", input="long-enough\n")
    assert r.exit_code == 2 and "user name" in r.output
    r = run(url, "users", "token", "李主管")
    token = r.output.strip()
    assert r.exit_code == 0 and token.startswith("dlr_")
    rows = json.loads(run(url, "users", "list", "--format", "json").output)
    assert [(u["name"], u["role"], u["tokens"]) for u in rows] == [("李主管", "manager", 1)]
    assert "first-password" not in run(url, "users", "list").output
    r = run(url, "users", "passwd", "李主管", "--password-stdin", input="second-password\n")
    assert r.exit_code == 0
    engine = make_engine(url)
    with Session(engine) as s:
        assert authenticate(s, "李主管", "second-password") and not authenticate(s, "李主管", "first-password")
        assert user_for_token(s, token).name == "李主管"
    assert run(url, "users", "token", "李主管", "--revoke").output.startswith("1 token(s)")
    with Session(engine) as s:
        assert user_for_token(s, token) is None
    assert run(url, "users", "remove", "李主管").exit_code == 0
    assert run(url, "users", "remove", "李主管").exit_code == 2
    assert run(url, "users", "passwd", "nobody", "--password-stdin", input="whatever-123\n").exit_code == 2
    with Session(engine) as s:
        audit = [(a.action, a.target, a.via, a.actor.startswith("cli:")) for a in s.scalars(select(AuditEntry))]
    assert audit == [("user_add", "李主管", "cli", True), ("token_add", "李主管", "cli", True),
                     ("user_passwd", "李主管", "cli", True), ("token_revoke", "李主管", "cli", True),
                     ("user_remove", "李主管", "cli", True)]


def test_report_html_writes_one_file_and_refuses_what_it_cannot(url, tmp_path) -> None:
    engine = make_engine(url)
    make_campaign(engine, "春季回访")
    seed_history(engine, "春季回访", days=2, per_day=10)
    out = tmp_path / "r.html"
    r = run(url, "report", "html", "春季回访", "-o", str(out))
    assert r.exit_code == 0, r.output
    html = out.read_text(encoding="utf-8")
    assert html.count("<svg") == 4 and "<script" not in html and "春季回访" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "").replace("http://www.w3.org/1999/xlink", "") \
        .replace("http://pygal.org", "").replace("http://github.com/Kozea/pygal", "")
    assert not list(tmp_path.glob("*.part"))
    assert run(url, "report", "html", "nope", "-o", str(out)).exit_code == 2
    assert run(url, "report", "html", "春季回访").exit_code == 2
    assert run(url, "report", "html", "-o", str(out)).exit_code == 2
    assert run(url, "report", "html", "春季回访", "-o", str(tmp_path / "no" / "dir.html")).exit_code == 2
    assert run(url, "report", "summary", "春季回访").exit_code == 2  # (campaigns go with --campaign)


def test_dialer_web_serves_on_the_port_it_says(url, tmp_path) -> None:
    err = tmp_path / "web.err"
    proc = subprocess.Popen([sys.executable, "-m", "dialer", "--db", url, "web", "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=err.open("w"), env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 30
        while "console on" not in err.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.1)
        text = err.read_text()
        assert "dialer users add NAME --role admin" in text  # no user yet: it says how to add one
        base = text.split("console on ")[1].split("/ ")[0]
        assert base.startswith("http://127.0.0.1:")
        while True:
            try:
                r = httpx.get(base + "/healthz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert r.json() == {"status": "ok"}
        assert httpx.get(base + "/", follow_redirects=False).headers["location"].startswith("/login")
    finally:
        proc.terminate()
        proc.wait(15)


def test_changes_made_on_the_command_line_are_audited_too(url, tmp_path) -> None:
    engine = make_engine(url)
    make_campaign(engine, "c")
    csv = tmp_path / "l.csv"
    csv.write_text("phone\n13800138000\n12\n", encoding="utf-8")
    assert run(url, "campaign", "pause", "c").exit_code == 0
    assert run(url, "campaign", "resume", "c").exit_code == 0
    assert run(url, "import", "c", str(csv)).exit_code == 0
    assert run(url, "import", "c", str(csv), "--dry-run").exit_code == 0  # changes nothing: not audited
    with Session(engine) as s:
        rows = [(a.action, a.target, a.via, a.detail.get("imported")) for a in s.scalars(select(AuditEntry))]
    assert rows == [("pause", "c", "cli", None), ("resume", "c", "cli", None), ("import", "c", "cli", 1)]
