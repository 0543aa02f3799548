"""Bad input on the command line: one-line errors and exit codes 1 or 2, no traceback, no
password shown; formula cells escaped in every CSV; control characters refused at every entry
point; the configuration file's keys; campaign sanity (SQLite: the store's side is elsewhere)."""

from __future__ import annotations

import csv
import io
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.cli import main

SECRET = "s3cretPW"


@pytest.fixture
def db(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    assert CliRunner().invoke(main, ["--db", url, "db", "upgrade"]).exit_code == 0
    return url


def run(*args: str, code: int = 0, db: str | None = None) -> str:
    result = CliRunner().invoke(main, [*(["--db", db] if db else []), *args])
    out = result.output
    assert result.exit_code == code, (args, out, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if code:
        assert "Traceback" not in out
        assert len(out.strip().splitlines()) == 1, out
    return out


# -- no secret printed ------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    f"postgresql+psycopg//postgres:{SECRET}@127.0.0.1/x",  # no colon after the scheme: does not parse
    f"postgresql+psycopg://postgres:s3cret@PW@127.0.0.2/x",  # an unescaped @ in the password
    f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:notaport/x",
    f"mysql://root:{SECRET}@127.0.0.1/x",
])
def test_a_bad_database_url_never_shows_its_password(url) -> None:
    out = run("--db", url, "campaign", "list", code=2)
    assert "s3cret" not in out and "PW" not in out.replace("***", ""), out


def test_an_unreachable_database_never_shows_its_password() -> None:
    out = run("--db", f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:1/x", "campaign", "list", code=1)
    assert SECRET not in out


def test_log_lines_never_show_the_password(caplog) -> None:
    from dialer.logs import setup
    from dialer.redact import remember

    remember(f"postgresql://u:{SECRET}@h/db")
    stream = io.StringIO()
    handler = setup(20)
    handler.setStream(stream)
    import logging

    logging.getLogger("dialer.test").warning("connect to %s failed", f"u:{SECRET}@h")
    assert SECRET not in stream.getvalue() and "***" in stream.getvalue()


# -- the worker's own options ---------------------------------------------------------------------

@pytest.mark.parametrize("cti", ["notaurl", "http://127.0.0.1:8081/spcc/cti", "ws://", "ws://h:port/x"])
def test_a_cti_url_that_is_not_a_websocket_url_is_exit_2(db, cti) -> None:
    assert "--cti" in run("worker", "--cti", cti, code=2, db=db)


def test_a_metrics_port_in_use_is_one_line(db) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run("worker", "--cti", "ws://127.0.0.1:1/x", "--metrics-port", str(port), code=1, db=db)
    assert f"--metrics-port {port}: cannot listen on 127.0.0.1: " in out
    # an address not of this machine (TEST-NET-3): one line too
    out = run("worker", "--cti", "ws://127.0.0.1:1/x", "--metrics-port", "0", "--metrics-host", "203.0.113.7",
              code=1, db=db)
    assert "--metrics-port 0: cannot listen on 203.0.113.7: " in out


# -- the configuration file -----------------------------------------------------------------------

def test_config_keys_are_the_long_option_names(db, tmp_path) -> None:
    config = tmp_path / "dialer.toml"
    config.write_text(f'db = "{db}"\n[worker]\ncti = "http://not-a-websocket"\n', encoding="utf-8")
    assert "--cti: not a WebSocket URL" in run("--config", str(config), "worker", code=2)  # `cti` was read
    config.write_text('[worker]\ncti_url = "ws://x/y"\n', encoding="utf-8")
    assert "unknown key 'cti_url' in [worker]" in run("--config", str(config), "worker", code=2)
    config.write_text('[wrker]\ncti = "ws://x/y"\n', encoding="utf-8")
    assert "unknown section [wrker]" in run("--config", str(config), "worker", code=2)
    config.write_text('[campaign.create]\nqueue = "kefu"\narea-code = "021"\n', encoding="utf-8")
    run("--db", db, "--config", str(config), "campaign", "create", "c")
    assert "kefu" in run("campaign", "show", "c", db=db)


# -- control characters at every entry point ------------------------------------------------------

@pytest.mark.parametrize("ch", ["\t", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\ufeff"])
def test_control_characters_are_refused_at_every_entry_point(db, tmp_path, ch) -> None:
    assert "campaign name" in run("campaign", "create", f"a{ch}b", code=2, db=db)
    run("campaign", "create", "c", db=db)
    assert "queue" in run("campaign", "update", "c", "--queue", f"ke{ch}fu", code=2, db=db)
    assert "name" in run("agents", "add", "1001", "601", "--name", f"张{ch}三", code=2, db=db)
    roster = tmp_path / "roster.csv"
    roster.write_text(f"staffid,name,extension,queue\n1001,ok,601,kefu\n1002,张{ch}三,602,kefu\n", encoding="utf-8")
    assert "line 3" in run("agents", "import", str(roster), code=2, db=db)


# -- every CSV escapes formula cells ----------------------------------------------------------------

def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_every_csv_output_escapes_formula_cells(db, tmp_path) -> None:
    evil = "=cmd|' -C calc'!A0"  # (a campaign name holds no '/')
    run("campaign", "create", evil, "--queue", "kefu", db=db)
    run("campaign", "resume", evil, db=db)
    lst = tmp_path / "l.csv"
    lst.write_text("phone,name,customer_id\n13900000001,@SUM(1+1),=2+3\n", encoding="utf-8")
    run("import", evil, str(lst), db=db)
    contacts = _csv(run("contacts", evil, "--format", "csv", db=db))
    row = dict(zip(contacts[0], contacts[1]))
    assert (row["name"], row["customer_id"], row["phone"]) == ("'@SUM(1+1)", "'=2+3", "+8613900000001")
    run("agents", "add", "1001", "601", "--name", "=1+1", "--queue", "kefu", db=db)
    agents = _csv(run("agents", "list", "--format", "csv", db=db))
    assert "'=1+1" in agents[1]
    summary = _csv(run("report", "summary", "--format", "csv", db=db))
    assert summary[1][0] == "'" + evil
    run("dnc", "add", "13900000002", "--reason", "+cmd", db=db)
    assert "'+cmd" in _csv(run("dnc", "list", "--format", "csv", db=db))[1]
    # JSON keeps the raw value
    assert evil in run("campaign", "list", "--format", "json", db=db)


# -- campaign sanity ---------------------------------------------------------------------------------

def test_a_predictive_campaign_missing_what_it_needs_cannot_be_resumed(db) -> None:
    run("campaign", "create", "p", "--mode", "predictive", db=db)
    out = run("campaign", "resume", "p", code=2, db=db)
    assert "no queue" in out and "no abandon message" in out
    run("campaign", "update", "p", "--queue", "kefu", "--abandon-ivr", "9001", db=db)
    assert "no dialer ports" in run("campaign", "resume", "p", code=2, db=db)
    run("agents", "add", "9001", "801", "--role", "port", "--queue", "kefu", db=db)
    assert "active" in run("campaign", "resume", "p", db=db)


def test_an_overnight_window_is_said_to_cross_midnight(db) -> None:
    out = run("campaign", "create", "n", "--window", "20:00-09:00", db=db)
    assert "crosses midnight" in out


# -- the property: no traceback for any option value ---------------------------------------------

_VALUE = st.one_of(st.text(max_size=30), st.sampled_from(["", "-1", "0", "1e309", "nan", "99999999999", "24:00",
                                                          "25:61-09:00", "mon-xyz", "\x00", "=1+1", "ws://"]))
_COMMANDS = [
    ["campaign", "create", "{v}"], ["campaign", "create", "x", "--window", "{v}"],
    ["campaign", "create", "x", "--days", "{v}"], ["campaign", "create", "x", "--area-code", "{v}"],
    ["campaign", "create", "x", "--retry", "{v}"], ["campaign", "create", "x", "--max-attempts", "{v}"],
    ["campaign", "create", "x", "--timezone", "{v}"], ["campaign", "update", "{v}", "--queue", "{v}"],
    ["campaign", "resume", "{v}"], ["dialstring", "{v}"], ["dialstring", "13900000000", "--area-code", "{v}"],
    ["dnc", "add", "{v}"], ["dnc", "add", "13900000000", "--until", "{v}"], ["agents", "add", "{v}", "{v}"],
    ["report", "summary", "--since", "{v}"], ["contacts", "{v}"], ["import", "{v}", "{v}"],
    ["import", "x", "/nonexistent", "--encoding", "{v}"], ["import", "x", "/nonexistent", "--map", "{v}"],
    ["--db", "{v}", "campaign", "list"], ["worker", "--cti", "{v}"],
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(_COMMANDS), value=_VALUE)
def test_no_option_value_makes_a_traceback(db, command, value) -> None:
    if command[0] == "worker" and value.lower().startswith(("ws:", "wss:")):
        return  # a URL that may be valid would start a worker
    args = [a.replace("{v}", value) for a in command]
    if args[0] != "--db":
        args = ["--db", db, *args]
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
    assert result.exit_code in (0, 1, 2), (args, result.output)
    assert "Traceback" not in result.output
    if result.exit_code:
        assert result.output.strip(), args


def test_the_documented_example_config_has_no_unknown_key(tmp_path) -> None:
    import re

    text = (Path(__file__).resolve().parent.parent / "docs" / "operations.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", text, re.DOTALL).group(1)
    config = tmp_path / "dialer.toml"
    config.write_text(example.replace("postgresql+psycopg://dialer:s3cret@db.internal/dialer",
                                      f"sqlite:///{tmp_path / 'd.db'}"), encoding="utf-8")
    assert "database at" in run("--config", str(config), "db", "upgrade")


def test_tables_align_by_display_width() -> None:
    from rich.cells import cell_len

    from dialer.cli.common import table

    lines = table([{"name": "回访活动", "n": 1}, {"name": "abc", "n": 22}], ["name", "n"]).splitlines()
    # each value of the second column starts at the same terminal column
    starts = [cell_len(line[: line.rindex(" ") + 1]) for line in lines]
    assert len(set(starts)) == 1, lines


def test_a_negative_flag_in_the_config_means_what_it_says(db, tmp_path) -> None:
    from dialer.cli.app import _defaults
    from dialer.cli.app import main as group

    assert _defaults("f", group, {"no-mask-numbers": True}, "") == {"mask_numbers": False}
    assert _defaults("f", group, {"mask-numbers": False}, "") == {"mask_numbers": False}
    config = tmp_path / "c.toml"
    config.write_text("no-mask-numbers = 3\n", encoding="utf-8")
    assert "true or false" in run("--config", str(config), "db", "current", code=2)


def test_a_date_out_of_range_is_one_line(db) -> None:
    assert "--until" in run("dnc", "add", "13900000000", "--until", "9999-12-31", code=2, db=db)


def test_a_traceback_in_the_log_shows_neither_password_nor_number() -> None:
    import logging

    from dialer.logs import setup
    from dialer.redact import redact_url, remember

    remember(f"postgresql://u:{SECRET}@h/db")
    stream = io.StringIO()
    for fmt in ("text", "json"):
        handler = setup(logging.INFO, fmt=fmt)
        handler.setStream(stream)
        try:
            raise RuntimeError(f"cannot connect with {SECRET} for +8613912345678")
        except RuntimeError:
            logging.getLogger("dialer.t").exception("failed")
    out = stream.getvalue()
    assert SECRET not in out and "13912345678" not in out and "+86139****5678" in out
    assert redact_url(f"postgresql://h/db?password={SECRET}") == "postgresql://h/db?password=***"
