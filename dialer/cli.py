"""The `dialer` command line (contract: shared/cli-contract.md).

Commands parse options, call the library and print. Library errors (`DialerError`) become a
one-line message on stderr and exit code 2 for bad input, 1 for runtime failures.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import tomllib
from pathlib import Path
from typing import Any

import click

from dialer import __version__
from dialer.errors import DialerError, ScenarioError


class InputError(click.ClickException):
    """Bad input from the user: exit code 2 (click's own usage errors use 2 as well)."""

    exit_code = 2


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """`--config FILE`: a TOML file whose sections (``[sim]``, ``[worker]``) mirror long options."""
    if not value:
        return value
    try:
        data = tomllib.loads(Path(value).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{value}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{value}: {exc}") from None
    defaults: dict[str, Any] = {}
    for section, options in data.items():
        if not isinstance(options, dict):
            raise InputError(f"{value}: top-level key {section!r} must be a [section]")
        defaults[section] = {k.replace("-", "_"): v for k, v in options.items()}
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "DIALER"})
@click.option("--db", envvar="DIALER_DB", default="sqlite:///dialer.db", show_default=True,
              help="Database URL (also $DIALER_DB).")
@click.option("--config", type=click.Path(dir_okay=False), callback=_load_config, is_eager=True,
              expose_value=True, help="TOML file whose sections mirror the long options.")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(__version__, prog_name="dialer")
@click.pass_context
def main(ctx: click.Context, db: str, config: str | None, verbose: int, quiet: bool) -> None:
    """Outbound campaign and predictive dialer for the 赛普智成 CTI softphone server."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = {"db": db, "store": _Store(db)}


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8081, show_default=True, type=click.IntRange(0, 65535),
              help="Port to bind (0: any free port, printed).")
@click.option("--scenario", type=click.Path(dir_okay=False), help="Scenario TOML file (docs/simulator.md).")
@click.option("--seed", type=int, help="Seed of the stochastic call model [scenario's, else 0].")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True),
              help="Multiply every simulated duration (0.01: a 2-minute talk lasts 1.2 s) [1].")
@click.option("--respond", type=click.Choice(["all", "documented"]),
              help="Answer every command, or only login/logout/getExtensionList [all].")
@click.option("--strict/--no-strict", default=None, help="Fail dial strings a real trunk fails [strict].")
@click.option("--home-area-code", help="The trunk's own area code, e.g. 010.")
def sim(host: str, port: int, scenario: str | None, seed: int | None, time_scale: float | None,
        respond: str | None, strict: bool | None, home_area_code: str | None) -> None:
    """Run the CTI server simulator until interrupted."""
    from dialer.sim import SimConfig, Simulator, load_scenario

    try:
        config = load_scenario(scenario) if scenario else SimConfig()
        changes: dict[str, Any] = {}
        if seed is not None:
            changes["seed"] = seed
        if time_scale is not None:
            changes["time_scale"] = time_scale
        if respond is not None:
            changes["respond"] = respond
        trunk_changes: dict[str, Any] = {}
        if strict is not None:
            trunk_changes["strict"] = strict
        if home_area_code is not None:
            if not (home_area_code.isascii() and home_area_code.isdigit()):
                raise InputError(f"--home-area-code must be digits, got {home_area_code!r}")
            trunk_changes["home_area_code"] = home_area_code
        if trunk_changes:
            import dataclasses
            changes["trunk"] = dataclasses.replace(config.trunk, **trunk_changes)
        config = config.replace(**changes)
    except ScenarioError as exc:
        raise InputError(str(exc)) from None

    async def run() -> None:
        simulator = Simulator(config)
        try:
            await simulator.start(host, port)
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        click.echo(f"CTI simulator listening on {simulator.url} "
                   f"(seed {config.seed}, time scale {config.time_scale:g}); Ctrl-C stops it")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await simulator.stop()
        click.echo(f"stopped after {simulator.frames_in} frames in, {simulator.frames_out} out, "
                   f"{len(simulator.call_log)} calls")

    asyncio.run(run())



# -- helpers for database commands ----------------------------------------------------------------

def _input_errors() -> tuple[type[Exception], ...]:
    from dialer.importer import ImportFailed
    from dialer.store.repo import InvalidInput, NotFound
    from dialer.window import WindowError

    return (InvalidInput, NotFound, ImportFailed, WindowError)


class _Store:
    """The database of this invocation, opened lazily, with errors turned into exit codes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Any = None

    def engine(self, *, check_schema: bool = True, worker: bool = False) -> Any:
        """The engine (`worker`: the daemon's, dialer.store.engine.worker_engine)."""
        from dialer.store.engine import StoreError, make_engine, worker_engine
        from dialer.store.migrate import require_current

        if self._engine is None:
            try:
                self._engine = worker_engine(self.url) if worker else make_engine(self.url)
            except StoreError as exc:
                raise InputError(str(exc)) from None
        if check_schema:
            try:
                require_current(self._engine)
            except StoreError as exc:
                raise click.ClickException(str(exc)) from None
        return self._engine

    def session(self) -> Any:
        from sqlalchemy.orm import Session

        return Session(self.engine(), expire_on_commit=False)


def _store(ctx: click.Context) -> _Store:
    return ctx.find_root().obj["store"]


def _guard(fn: Any) -> Any:
    """Turn library errors into one-line messages: input errors exit 2, the rest 1."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sqlalchemy.exc import OperationalError, SQLAlchemyError

        try:
            return fn(*args, **kwargs)
        except _input_errors() as exc:
            raise InputError(str(exc)) from None
        except DialerError as exc:
            raise click.ClickException(str(exc)) from None
        except OperationalError as exc:
            raise click.ClickException(f"database error: {str(exc.orig).strip().splitlines()[0]}") from None
        except SQLAlchemyError as exc:
            raise click.ClickException(f"database error: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None

    return wrapper


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _emit(rows: list[dict[str, Any]], fmt: str, columns: list[str]) -> None:
    import csv as _csv
    import io as _io
    import json as _json

    if fmt == "json":
        click.echo(_json.dumps(rows, ensure_ascii=False, indent=2, default=str))
    elif fmt == "csv":
        out = _io.StringIO()
        writer = _csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(out.getvalue(), nl=False)
    else:
        click.echo(_table(rows, columns))


# -- dialer db ---------------------------------------------------------------------------------------

@main.group()
def db() -> None:
    """Database schema: upgrade, current, check."""


@db.command("upgrade")
@click.pass_context
@_guard
def db_upgrade(ctx: click.Context) -> None:
    """Create or upgrade the schema to this dialer's version."""
    from dialer.store.migrate import current, head, upgrade

    engine = _store(ctx).engine(check_schema=False)
    before = current(engine)
    upgrade(engine)
    click.echo(f"database at {head()}" + (" (was empty)" if before is None else f" (was {before})" if before != head() else " (already)"))


@db.command("current")
@click.pass_context
@_guard
def db_current(ctx: click.Context) -> None:
    """Print the schema revision of the database."""
    from dialer.store.migrate import current, head

    at = current(_store(ctx).engine(check_schema=False))
    click.echo(f"{at or 'none'} (head {head()})")


@db.command("check")
@click.pass_context
@_guard
def db_check(ctx: click.Context) -> None:
    """Exit 1 when the schema is not at this dialer's version."""
    from dialer.store.migrate import UPGRADE_HINT, current, head

    at = current(_store(ctx).engine(check_schema=False))
    if at != head():
        raise click.ClickException(f"database at {at or 'none'}, head is {head()}; {UPGRADE_HINT}")
    click.echo(f"database at head ({at})")


# -- dialer campaign ---------------------------------------------------------------------------------

def _campaign_options(fn: Any) -> Any:
    options = [
        click.option("--queue", help="CTI queue (技能组) whose agents work the campaign."),
        click.option("--mode", type=click.Choice(["progressive", "predictive"])),
        click.option("--area-code", help="The trunk's home area code, e.g. 010 [010]."),
        click.option("--outside-prefix", help="Outside-line access code [9]."),
        click.option("--ld-mobile-prefix", help="Prefix before a long-distance mobile [0]."),
        click.option("--unknown-city-mobile", type=click.Choice(["long_distance", "local"]),
                     help="How to dial a mobile whose city is unknown [long_distance]."),
        click.option("--allow-international/--no-international", default=None, help="Dial numbers outside China."),
        click.option("--window", help="Daily calling window HH:MM-HH:MM [09:00-20:00]."),
        click.option("--days", help="Calling days, e.g. mon-fri or mon,wed,sat [mon-fri]."),
        click.option("--timezone", help="IANA timezone of the window [Asia/Shanghai]."),
        click.option("--max-attempts", type=int, help="Dials per contact at most [3]."),
        click.option("--retry", multiple=True, metavar="OUTCOME=SECONDS", help="Delay before a retry after OUTCOME."),
        click.option("--ring-timeout", type=int, help="Seconds a call may ring, at least 15 [30]."),
        click.option("--wrap-up", type=int, help="After-call seconds given to the agent [20]."),
        click.option("--abandon-target", type=float, help="Predictive abandonment cap [0.03]."),
        click.option("--abandon-ivr", help="IVR node (digits) playing the message to calls no agent can take."),
        click.option("--handover", type=click.Choice(["agent", "queue"]),
                     help="Predictive: transfer an answered call to a ready agent the worker picks, "
                          "or to the queue (transferQueue) [agent]."),
        click.option("--port-queue", metavar="QUEUE",
                     help="Predictive: the queue (技能组) the dialer ports are in and log in to; their own, "
                          "so that the agents' queue status never reaches them [the campaign's queue]."),
        click.option("--max-calls-per-agent", type=float, help="Predictive cap on calls per ready agent [3]."),
        click.option("--priority", type=int, help="Higher first when campaigns share agents [0]."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


_CAMPAIGN_COLUMNS = ["name", "status", "mode", "queue", "priority", "area_code", "window", "days",
                     "timezone", "max_attempts"]


@main.group()
def campaign() -> None:
    """Create, list, show, change, pause, resume and archive campaigns."""


@campaign.command("create")
@click.argument("name")
@_campaign_options
@click.pass_context
@_guard
def campaign_create(ctx: click.Context, name: str, **opts: Any) -> None:
    """Create campaign NAME (status draft; `resume` starts it)."""
    from dialer.store.repo import create_campaign

    with _store(ctx).session() as s, s.begin():
        c = create_campaign(s, name, **opts)
        click.echo(f"created campaign {c.name!r} ({c.status}, {c.mode}, area code {c.area_code})")


@campaign.command("update")
@click.argument("name")
@_campaign_options
@click.pass_context
@_guard
def campaign_update(ctx: click.Context, name: str, **opts: Any) -> None:
    """Change settings of campaign NAME."""
    from dialer.store.repo import update_campaign

    with _store(ctx).session() as s, s.begin():
        update_campaign(s, name, **opts)
    click.echo(f"updated campaign {name!r}")


@campaign.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
@_guard
def campaign_list(ctx: click.Context, fmt: str) -> None:
    """List campaigns."""
    from dialer.store.repo import campaign_record, list_campaigns

    with _store(ctx).session() as s:
        _emit([campaign_record(c) for c in list_campaigns(s)], fmt, _CAMPAIGN_COLUMNS)


@campaign.command("show")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
@_guard
def campaign_show(ctx: click.Context, name: str, fmt: str) -> None:
    """Show every setting of campaign NAME and its contacts by status."""
    import json as _json

    from sqlalchemy import func, select

    from dialer.store.models import Contact
    from dialer.store.repo import campaign_record, get_campaign

    with _store(ctx).session() as s:
        c = get_campaign(s, name)
        record = campaign_record(c)
        counts = dict(s.execute(select(Contact.status, func.count()).where(Contact.campaign_id == c.id)
                                .group_by(Contact.status)).all())
        record["contacts"] = {k: counts[k] for k in sorted(counts)}
    if fmt == "json":
        click.echo(_json.dumps(record, ensure_ascii=False, indent=2))
        return
    width = max(map(len, record))
    for key, value in record.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        click.echo(f"{key:<{width}}  {value}")


def _status_command(action: str, doc: str) -> None:
    @campaign.command(action, help=doc)
    @click.argument("name")
    @click.pass_context
    @_guard
    def command(ctx: click.Context, name: str) -> None:
        from dialer.store.repo import set_campaign_status

        with _store(ctx).session() as s, s.begin():
            c = set_campaign_status(s, name, action)
        click.echo(f"campaign {name!r} is {c.status}")


_status_command("pause", "Stop dialling campaign NAME (calls in progress finish).")
_status_command("resume", "Start campaign NAME, or resume it after a pause.")
_status_command("archive", "Archive campaign NAME: it is never dialled again.")


# -- dialer import and contacts ----------------------------------------------------------------------

def _parse_map(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        column, sep, target = item.rpartition("=")
        if not sep or not column:
            raise InputError(f"--map expects COLUMN=FIELD, got {item!r}")
        out[column] = target
    return out


@main.command("import")
@click.argument("campaign_name", metavar="CAMPAIGN")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--encoding", default="auto", show_default=True, help="auto, utf-8, gbk, gb18030, …")
@click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD",
              help="Read COLUMN as FIELD (phone, name, customer_id, priority, timezone; - skips it).")
@click.option("--dry-run", is_flag=True, help="Check everything, store nothing.")
@click.option("--rejects", type=click.Path(dir_okay=False), help="Write refused rows to this CSV.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
@_guard
def import_cmd(ctx: click.Context, campaign_name: str, file: str, encoding: str, maps: tuple[str, ...],
               dry_run: bool, rejects: str | None, as_json: bool) -> None:
    """Import a CSV contact list into CAMPAIGN, reporting every refused row."""
    import os as _os

    from dialer.importer import import_file, summary_json

    engine = _store(ctx).engine()
    show_bar = sys.stderr.isatty() and not as_json
    total = _os.path.getsize(file) if _os.path.exists(file) else 0
    with click.progressbar(length=total, label="importing", file=sys.stderr, show_eta=True,
                           hidden=not show_bar) as bar:
        summary = import_file(engine, campaign_name, file, encoding=encoding, mapping=_parse_map(maps),
                              dry_run=dry_run, rejects=rejects, progress=bar.update)
    if as_json:
        click.echo(summary_json(summary))
        return
    verb = "would import" if dry_run else "imported"
    click.echo(f"{summary.file}: {summary.rows} rows ({summary.encoding}, delimiter {summary.delimiter!r}): "
               f"{verb} {summary.imported}, duplicates {summary.duplicates}, do-not-call {summary.dnc}, "
               f"rejected {summary.rejected}" + (f"; batch {summary.batch}" if summary.batch else ""))
    if rejects and summary.rows - summary.imported:
        click.echo(f"refused rows written to {rejects}")


_CONTACT_COLUMNS = ["phone", "name", "customer_id", "status", "attempts", "last_outcome", "next_attempt_at",
                    "kind", "province", "city", "isp", "extension", "priority", "timezone", "raw_phone"]


@main.command("contacts")
@click.argument("campaign_name", metavar="CAMPAIGN")
@click.option("--status", help="Only contacts in this status (pending, done, exhausted, blocked, invalid).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "table"]), default="csv", show_default=True)
@click.pass_context
@_guard
def contacts_cmd(ctx: click.Context, campaign_name: str, status: str | None, fmt: str) -> None:
    """List the contacts of CAMPAIGN."""
    from sqlalchemy import select

    from dialer.store.models import CONTACT_STATUSES, Contact
    from dialer.store.repo import InvalidInput, get_campaign

    if status is not None and status not in CONTACT_STATUSES:
        raise InvalidInput(f"--status must be one of {', '.join(CONTACT_STATUSES)}")
    with _store(ctx).session() as s:
        c = get_campaign(s, campaign_name)
        q = select(Contact).where(Contact.campaign_id == c.id).order_by(Contact.id)
        if status:
            q = q.where(Contact.status == status)
        rows = []
        for ct in s.scalars(q.execution_options(yield_per=1000)):
            row = {k: getattr(ct, k) for k in _CONTACT_COLUMNS}
            row["next_attempt_at"] = ct.next_attempt_at.isoformat() if ct.next_attempt_at else None
            if fmt == "json" and ct.extra:
                row["extra"] = ct.extra
            rows.append(row)
    _emit(rows, fmt, _CONTACT_COLUMNS)


# -- dialer dialstring -------------------------------------------------------------------------------

@main.command("dialstring")
@click.argument("number")
@click.option("--campaign", "campaign_name", help="Use this campaign's dial plan.")
@click.option("--area-code", help="The trunk's home area code (instead of --campaign).")
@click.option("--outside-prefix", default="9", show_default=True)
@click.option("--ld-mobile-prefix", default="0", show_default=True)
@click.option("--unknown-city-mobile", type=click.Choice(["long_distance", "local"]), default="long_distance",
              show_default=True)
@click.option("--allow-international", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_guard
def dialstring_cmd(ctx: click.Context, number: str, campaign_name: str | None, area_code: str | None,
                   outside_prefix: str, ld_mobile_prefix: str, unknown_city_mobile: str,
                   allow_international: bool, as_json: bool) -> None:
    """Print the string that would be dialled for NUMBER, and why."""
    import json as _json

    from dialer.dialplan import DialPlan, NotDialable, parse_number
    from dialer.store.repo import InvalidInput, get_campaign, plan_of

    if bool(campaign_name) == bool(area_code):
        raise InvalidInput("give exactly one of --campaign NAME or --area-code CODE")
    if campaign_name:
        with _store(ctx).session() as s:
            plan = plan_of(get_campaign(s, campaign_name))
    else:
        try:
            plan = DialPlan(str(area_code), outside_prefix, ld_mobile_prefix, unknown_city_mobile,
                            allow_international)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    record: dict[str, Any] = {"input": number, "e164": None, "kind": None, "city": None, "local": None,
                              "dial_string": None, "rule": None}
    try:
        info = parse_number(number, plan.home_area_code)
        record.update(e164=info.e164, kind=info.kind.value, city=info.city or None,
                      province=info.province or None, isp=info.isp or None, area_code=info.area_code or None,
                      extension=info.extension or None)
        decision = plan.decide(info)
    except NotDialable as exc:
        record["error"] = str(exc)
        if as_json:
            click.echo(_json.dumps(record, ensure_ascii=False))
        raise click.ClickException(f"{number!r} cannot be dialled: {exc}") from None
    record.update(local=decision.local, dial_string=decision.dial_string, rule=decision.rule)
    if as_json:
        click.echo(_json.dumps(record, ensure_ascii=False))
        return
    where = " ".join(x for x in (info.province, info.city if info.city != info.province else "", info.isp) if x)
    click.echo(decision.dial_string)
    click.echo(f"  {info.kind.value} {info.e164}{' (' + where + ')' if where else ''}; "
               f"{'local' if decision.local else 'long-distance'} for area {plan.home_area_code}; "
               f"rule {decision.rule}" + (f"; extension {info.extension} not dialled" if info.extension else ""))


# -- dialer agents -----------------------------------------------------------------------------------

_AGENT_COLUMNS = ["staffid", "name", "extension", "queue", "skill", "role", "sector", "enabled"]


@main.group()
def agents() -> None:
    """The roster: agents' seats and dialer ports."""


@agents.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--encoding", default="auto", show_default=True)
@click.pass_context
@_guard
def agents_import(ctx: click.Context, file: str, encoding: str) -> None:
    """Add or update agents from a CSV with columns staffid,name,extension,queue,skill,role."""
    from dialer.roster import read_agents
    from dialer.store.repo import upsert_agents

    rows = read_agents(file, encoding)
    with _store(ctx).session() as s, s.begin():
        added, updated = upsert_agents(s, rows)
    click.echo(f"{file}: {added} agents added, {updated} updated")


@agents.command("add")
@click.argument("staffid")
@click.argument("extension")
@click.option("--name", default="")
@click.option("--queue", default="")
@click.option("--skill", type=int, default=1, show_default=True)
@click.option("--role", type=click.Choice(["agent", "port"]), default="agent", show_default=True)
@click.option("--sector", default="")
@click.pass_context
@_guard
def agents_add(ctx: click.Context, staffid: str, extension: str, name: str, queue: str, skill: int,
               role: str, sector: str) -> None:
    """Add (or update) one agent or dialer port."""
    from dialer.store.repo import AgentRow, upsert_agents

    with _store(ctx).session() as s, s.begin():
        added, _ = upsert_agents(s, [AgentRow(staffid, name, extension, queue, skill, role, sector)])
    click.echo(f"{'added' if added else 'updated'} {role} {staffid} on extension {extension}")


@agents.command("remove")
@click.argument("key", metavar="STAFFID_OR_EXTENSION")
@click.pass_context
@_guard
def agents_remove(ctx: click.Context, key: str) -> None:
    """Remove an agent by staffid or extension."""
    from dialer.store.repo import remove_agent

    with _store(ctx).session() as s, s.begin():
        remove_agent(s, key)
    click.echo(f"removed {key}")


@agents.command("list")
@click.option("--queue")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.pass_context
@_guard
def agents_list(ctx: click.Context, queue: str | None, fmt: str) -> None:
    """List the roster."""
    from dialer.store.repo import list_agents

    with _store(ctx).session() as s:
        rows = [{k: getattr(a, k) for k in _AGENT_COLUMNS} for a in list_agents(s, queue)]
    _emit(rows, fmt, _AGENT_COLUMNS)


# -- dialer dnc --------------------------------------------------------------------------------------

@main.group()
def dnc() -> None:
    """The do-not-call list (numbers never dialled, in any campaign)."""


def _until(value: str | None) -> Any:
    import datetime as _dt

    if value is None:
        return None
    try:
        parsed = _dt.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--until: not a date or time (YYYY-MM-DD[THH:MM[+08:00]]): {value!r}") from None
    if parsed.tzinfo is None:  # a bare date means the end of that day in China
        from zoneinfo import ZoneInfo

        if len(value) <= 10:
            parsed = parsed + _dt.timedelta(days=1)
        parsed = parsed.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    return parsed.astimezone(_dt.timezone.utc)


def _e164(numbers: Any) -> list[str]:
    from dialer.dialplan import Kind, NotDialable, parse_number

    out = []
    for n in numbers:
        try:
            info = parse_number(n)
        except NotDialable as exc:
            raise InputError(f"{n!r}: {exc}") from None
        if info.kind is Kind.INVALID:
            raise InputError(f"{n!r}: not a valid number")
        out.append(info.e164)
    return out


@dnc.command("add")
@click.argument("numbers", nargs=-1, required=True)
@click.option("--reason", default="")
@click.option("--until", help="Until this date (YYYY-MM-DD, China time) or ISO time; default forever.")
@click.pass_context
@_guard
def dnc_add(ctx: click.Context, numbers: tuple[str, ...], reason: str, until: str | None) -> None:
    """Put NUMBERS on the do-not-call list."""
    from dialer.store.repo import add_dnc

    phones = _e164(numbers)
    with _store(ctx).session() as s, s.begin():
        new = add_dnc(s, phones, reason, _until(until))
    click.echo(f"{new} added, {len(set(phones)) - new} refreshed")


@dnc.command("remove")
@click.argument("numbers", nargs=-1, required=True)
@click.pass_context
@_guard
def dnc_remove(ctx: click.Context, numbers: tuple[str, ...]) -> None:
    """Take NUMBERS off the do-not-call list."""
    from dialer.store.repo import remove_dnc

    with _store(ctx).session() as s, s.begin():
        gone = remove_dnc(s, _e164(numbers))
    click.echo(f"{gone} removed")


@dnc.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--reason", default="")
@click.option("--encoding", default="auto", show_default=True)
@click.pass_context
@_guard
def dnc_import(ctx: click.Context, file: str, reason: str, encoding: str) -> None:
    """Add every number of FILE (one a line, or a CSV with a phone column)."""
    from dialer.roster import read_dnc
    from dialer.store.repo import add_dnc

    phones, bad = read_dnc(file, encoding)
    with _store(ctx).session() as s, s.begin():
        new = add_dnc(s, phones, reason)
    click.echo(f"{file}: {new} added, {len(set(phones)) - new} already listed, {len(bad)} unreadable"
               + "".join(f"\n  line {line}: {why}" for line, why in bad[:20]))


@dnc.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.pass_context
@_guard
def dnc_list(ctx: click.Context, fmt: str) -> None:
    """List the do-not-call entries."""
    from dialer.store.repo import list_dnc

    with _store(ctx).session() as s:
        rows = [{"phone": d.phone, "reason": d.reason, "until": d.until.isoformat() if d.until else None,
                 "added": d.created_at.isoformat()} for d in list_dnc(s)]
    _emit(rows, fmt, ["phone", "reason", "until", "added"])


# -- dialer worker, demo, report ---------------------------------------------------------------------

def _iso_time(value: str | None, option: str) -> Any:
    import datetime as _dt

    if value is None:
        return None
    try:
        parsed = _dt.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option}: not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        from zoneinfo import ZoneInfo

        parsed = parsed.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    return parsed


@main.command("worker")
@click.option("--cti", "cti_url", default="ws://127.0.0.1:8081/spcc/cti", show_default=True,
              help="The CTI server's WebSocket URL.")
@click.option("--campaign", "campaigns", multiple=True, help="Work these campaigns [every active one].")
@click.option("--worker-id", help="This worker's name in the database [the host and a hash of --cti and "
              "--campaign: stable, so that a restarted worker takes its own seats and calls back at once].")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Run in simulated time, 1/F times faster (with `dialer sim --time-scale F`).")
@click.option("--clock-start", help="Simulated time at start, ISO 8601 (with --time-scale; default now).")
@click.option("--clock-epoch", type=float, help="Real Unix time the simulated clock starts from "
              "(workers sharing a simulated timeline give the same one).")
@click.option("--until-done", is_flag=True, help="Exit once nothing can be dialled and no call is up.")
@click.option("--drain-timeout", type=float, default=30.0, show_default=True,
              help="Seconds calls in flight may go on after SIGTERM before they are hung up.")
@click.option("--lease", type=float, default=60.0, show_default=True,
              help="Seconds a seat or contact lease lasts without renewal.")
@click.option("--inbox", type=click.Path(file_okay=False), help="Import CSV files found in INBOX/<campaign>/.")
@click.option("--max-seats", type=click.IntRange(1), help="Take at most this many seats (split a roster "
              "between workers).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="Serve Prometheus metrics on this port.")
@click.option("--cti-heartbeat", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Real seconds between CTI heartbeats; three unanswered close the socket (0: none).")
@click.pass_context
@_guard
def worker_cmd(ctx: click.Context, cti_url: str, campaigns: tuple[str, ...], worker_id: str | None,
               time_scale: float, clock_start: str | None, clock_epoch: float | None, until_done: bool,
               drain_timeout: float, lease: float, inbox: str | None, max_seats: int | None,
               metrics_port: int | None, cti_heartbeat: float) -> None:
    """Run the dialer: log the seats in, dial due contacts, record outcomes."""
    import time as _time
    from pathlib import Path as _Path

    from dialer.clock import Clock
    from dialer.worker import Worker, WorkerOptions

    engine = _store(ctx).engine(worker=True)
    clock = Clock(scale=time_scale, epoch=clock_epoch or _time.time(),
                  origin=_iso_time(clock_start, "--clock-start"))
    options = WorkerOptions(cti_url=cti_url, campaigns=campaigns, clock=clock, until_done=until_done,
                            drain_timeout=drain_timeout, lease=lease, inbox=_Path(inbox) if inbox else None,
                            max_seats=max_seats, worker_id=worker_id or "", cti_heartbeat=cti_heartbeat)

    async def main_loop() -> None:
        worker = Worker(engine, options)
        server = None
        if metrics_port is not None:
            from dialer.metrics import serve_metrics

            server = await serve_metrics(worker, metrics_port)
        try:
            code = await worker.run()
        finally:
            if server is not None:
                server.close()
        click.echo(f"worker {options.worker_id} stopped: {worker.stats.dials} dials, "
                   + ", ".join(f"{k} {v}" for k, v in sorted(worker.stats.outcomes.items())), err=True)
        return code

    if asyncio.run(main_loop()):
        raise SystemExit(1)


@main.command("demo")
@click.option("--agents", type=click.IntRange(1, 500), default=8, show_default=True)
@click.option("--contacts", type=click.IntRange(1, 100_000), help="Rows of the example list to use (topped "
              "up with generated numbers) [the whole list].")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True),
              help="Real seconds per simulated second [0.01; predictive 0.05, so that the 2 s rule is 100 ms "
                   "of real time, well above the worker's own delay on a busy machine].")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--keep", type=click.Path(file_okay=False), help="Keep the database in this folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--mode", type=click.Choice(["progressive", "predictive"]), default="progressive", show_default=True,
              help="predictive: dialler ports and the pacer, for --minutes of simulated time.")
@click.option("--minutes", type=click.FloatRange(min=1), default=30.0, show_default=True,
              help="Simulated minutes a predictive demo runs.")
def demo_cmd(agents: int, contacts: int | None, time_scale: float | None, seed: int, keep: str | None, as_json: bool,
             mode: str, minutes: float) -> None:
    """Everything embedded: SQLite, the simulator, the example list and the worker."""
    import json as _json
    from pathlib import Path as _Path

    from dialer.demo import demo

    result = demo(agents=agents, contacts=contacts, time_scale=time_scale, seed=seed, mode=mode, minutes=minutes,
                  workdir=_Path(keep) if keep else None,
                  progress=sys.stderr if sys.stderr.isatty() and not as_json else None)
    if as_json:
        click.echo(_json.dumps({**result.summary, "outcomes": {o["outcome"]: o["attempts"] for o in result.outcomes},
                                "seconds": round(result.seconds, 1), "imported": result.imported,
                                "refused_rows": result.rejected, "time_scale": result.time_scale},
                                ensure_ascii=False))
        return
    ended = f"{minutes:g} simulated minutes in" if mode == "predictive" else "worked out in"
    click.echo(f"demo: {result.imported} contacts imported ({result.rejected} rows refused), {agents} agents, "
               f"{mode}, time scale {result.time_scale:g}; {ended} {result.seconds:.1f}s")
    columns = ["campaign", "contacts", "done", "exhausted", "pending", "attempts", "answered", "answer_rate"]
    if mode == "predictive":
        columns += ["abandoned", "abandon_rate"]
    _emit([result.summary], "table", [*columns, "talk_minutes"])
    click.echo("")
    _emit(result.outcomes, "table", ["outcome", "attempts", "share"])
    if keep:
        click.echo(f"\ndatabase kept: dialer --db {result.db} report attempts")


@main.command("report")
@click.argument("name", type=click.Choice(["summary", "outcomes", "agents", "hourly", "attempts"]))
@click.option("--campaign", "campaign_name")
@click.option("--since", help="Attempts started at or after this ISO 8601 time (China time if no offset).")
@click.option("--until", help="Attempts started before this time.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.pass_context
@_guard
def report_cmd(ctx: click.Context, name: str, campaign_name: str | None, since: str | None, until: str | None,
               fmt: str) -> None:
    """Reports on call outcomes: summary, outcomes, agents, hourly, attempts."""
    from dialer.reports import COLUMNS, report
    from dialer.store.repo import get_campaign

    engine = _store(ctx).engine()
    if campaign_name:
        with _store(ctx).session() as s:
            get_campaign(s, campaign_name)
    rows = report(engine, name, campaign=campaign_name, since=_iso_time(since, "--since"),
                  until=_iso_time(until, "--until"))
    _emit(rows, fmt, COLUMNS[name])


def run() -> None:
    """Console-script entry point: DialerError never escapes as a traceback."""
    try:
        main(standalone_mode=True)
    except DialerError as exc:  # pragma: no cover - commands convert their own errors
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
