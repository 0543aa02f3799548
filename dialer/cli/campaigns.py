"""`dialer db` and `dialer campaign`."""

from __future__ import annotations

from typing import Any

import click

from dialer.cli.common import emit, guard, store_of
from dialer.cli.app import main


# -- dialer db ---------------------------------------------------------------------------------------

@main.group()
def db() -> None:
    """Database schema: upgrade, current, check."""


@db.command("upgrade")
@click.pass_context
@guard
def db_upgrade(ctx: click.Context) -> None:
    """Create or upgrade the schema to this dialer's version."""
    from dialer.store.migrate import current, head, upgrade

    engine = store_of(ctx).engine(check_schema=False)
    before = current(engine)
    upgrade(engine)
    click.echo(f"database at {head()}" + (" (was empty)" if before is None else f" (was {before})" if before != head() else " (already)"))


@db.command("current")
@click.pass_context
@guard
def db_current(ctx: click.Context) -> None:
    """Print the schema revision of the database."""
    from dialer.store.migrate import current, head

    at = current(store_of(ctx).engine(check_schema=False))
    click.echo(f"{at or 'none'} (head {head()})")


@db.command("check")
@click.pass_context
@guard
def db_check(ctx: click.Context) -> None:
    """Exit 1 when the schema is not at this dialer's version."""
    from dialer.store.migrate import UPGRADE_HINT, current, head

    at = current(store_of(ctx).engine(check_schema=False))
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
@guard
def campaign_create(ctx: click.Context, name: str, **opts: Any) -> None:
    """Create campaign NAME (status draft; `resume` starts it)."""
    from dialer.store.repo import create_campaign

    with store_of(ctx).session() as s, s.begin():
        c = create_campaign(s, name, **opts)
        click.echo(f"created campaign {c.name!r} ({c.status}, {c.mode}, area code {c.area_code})")
        _window_note(c)


@campaign.command("update")
@click.argument("name")
@_campaign_options
@click.pass_context
@guard
def campaign_update(ctx: click.Context, name: str, **opts: Any) -> None:
    """Change settings of campaign NAME."""
    from dialer.store.repo import update_campaign

    with store_of(ctx).session() as s, s.begin():
        c = update_campaign(s, name, **opts)
        click.echo(f"updated campaign {name!r}")
        if opts.get("window"):
            _window_note(c)


def _window_note(c: Any) -> None:
    """Say it when the calling window crosses midnight: it is supported, and rarely meant."""
    if c.window_end != "24:00" and c.window_end <= c.window_start:
        click.echo(f"note: the calling window {c.window_start}-{c.window_end} crosses midnight: it opens at "
                   f"{c.window_start} on each calling day ({c.days}) and closes at {c.window_end} the next "
                   f"morning, {c.timezone} time")


@campaign.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
@guard
def campaign_list(ctx: click.Context, fmt: str) -> None:
    """List campaigns."""
    from dialer.store.repo import campaign_record, list_campaigns

    with store_of(ctx).session() as s:
        emit([campaign_record(c) for c in list_campaigns(s)], fmt, _CAMPAIGN_COLUMNS)


@campaign.command("show")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
@guard
def campaign_show(ctx: click.Context, name: str, fmt: str) -> None:
    """Show every setting of campaign NAME and its contacts by status."""
    import json as _json

    from sqlalchemy import func, select

    from dialer.store.models import Contact
    from dialer.store.repo import campaign_record, get_campaign

    with store_of(ctx).session() as s:
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
    @guard
    def command(ctx: click.Context, name: str) -> None:
        from dialer.store.repo import set_campaign_status
        from dialer.store.users import audit, cli_actor

        with store_of(ctx).session() as s, s.begin():
            c = set_campaign_status(s, name, action, check_ready=True)
            audit(s, cli_actor(), "cli", action, name, status=c.status)
        click.echo(f"campaign {name!r} is {c.status}")


_status_command("pause", "Stop dialling campaign NAME (calls in progress finish).")
_status_command("resume", "Start campaign NAME, or resume it after a pause.")
_status_command("archive", "Archive campaign NAME: it is never dialled again.")
