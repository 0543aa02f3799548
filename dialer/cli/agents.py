"""`dialer agents` and `dialer dnc`."""

from __future__ import annotations

from typing import Any

import click

from dialer.cli.common import FilePath, InputError, emit, guard, iso_time, store_of
from dialer.cli.app import main


# -- dialer agents -----------------------------------------------------------------------------------

_AGENT_COLUMNS = ["staffid", "name", "extension", "queue", "skill", "role", "sector", "enabled"]


@main.group()
def agents() -> None:
    """The roster: agents' seats and dialer ports."""


@agents.command("import")
@click.argument("file", type=FilePath(dir_okay=False))
@click.option("--encoding", default="auto", show_default=True)
@click.pass_context
@guard
def agents_import(ctx: click.Context, file: str, encoding: str) -> None:
    """Add or update agents from a CSV with columns staffid,name,extension,queue,skill,role."""
    from dialer.roster import read_agents
    from dialer.store.repo import upsert_agents

    rows = read_agents(file, encoding)
    with store_of(ctx).session() as s, s.begin():
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
@guard
def agents_add(ctx: click.Context, staffid: str, extension: str, name: str, queue: str, skill: int,
               role: str, sector: str) -> None:
    """Add (or update) one agent or dialer port."""
    from dialer.store.repo import AgentRow, upsert_agents

    with store_of(ctx).session() as s, s.begin():
        added, _ = upsert_agents(s, [AgentRow(staffid, name, extension, queue, skill, role, sector)])
    click.echo(f"{'added' if added else 'updated'} {role} {staffid} on extension {extension}")


@agents.command("remove")
@click.argument("key", metavar="STAFFID_OR_EXTENSION")
@click.pass_context
@guard
def agents_remove(ctx: click.Context, key: str) -> None:
    """Remove an agent by staffid or extension."""
    from dialer.store.repo import remove_agent

    with store_of(ctx).session() as s, s.begin():
        remove_agent(s, key)
    click.echo(f"removed {key}")


@agents.command("list")
@click.option("--queue")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.pass_context
@guard
def agents_list(ctx: click.Context, queue: str | None, fmt: str) -> None:
    """List the roster."""
    from dialer.store.repo import list_agents

    with store_of(ctx).session() as s:
        rows = [{k: getattr(a, k) for k in _AGENT_COLUMNS} for a in list_agents(s, queue)]
    emit(rows, fmt, _AGENT_COLUMNS)


# -- dialer dnc --------------------------------------------------------------------------------------

@main.group()
def dnc() -> None:
    """The do-not-call list (numbers never dialled, in any campaign)."""


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
@click.option("--replace", is_flag=True, help="Set the end as given even where it shortens an existing block.")
@click.pass_context
@guard
def dnc_add(ctx: click.Context, numbers: tuple[str, ...], reason: str, until: str | None, replace: bool) -> None:
    """Put NUMBERS on the do-not-call list (a block already there is never shortened unless
    --replace)."""
    from dialer.store.repo import add_dnc

    phones = _e164(numbers)
    with store_of(ctx).session() as s, s.begin():
        added = add_dnc(s, phones, reason, iso_time(until, "--until", whole_day=True), replace=replace)
    click.echo(f"{added.new} added, {added.refreshed} refreshed"
               + (f", {added.kept} kept blocked until later (--replace to shorten)" if added.kept else ""))


@dnc.command("remove")
@click.argument("numbers", nargs=-1, required=True)
@click.pass_context
@guard
def dnc_remove(ctx: click.Context, numbers: tuple[str, ...]) -> None:
    """Take NUMBERS off the do-not-call list."""
    from dialer.store.repo import remove_dnc

    with store_of(ctx).session() as s, s.begin():
        gone = remove_dnc(s, _e164(numbers))
    click.echo(f"{gone} removed")


@dnc.command("import")
@click.argument("file", type=FilePath(dir_okay=False))
@click.option("--reason", default="")
@click.option("--encoding", default="auto", show_default=True)
@click.pass_context
@guard
def dnc_import(ctx: click.Context, file: str, reason: str, encoding: str) -> None:
    """Add every number of FILE (one a line, or a CSV with a phone column)."""
    from dialer.roster import read_dnc
    from dialer.store.repo import add_dnc

    phones, bad = read_dnc(file, encoding)
    with store_of(ctx).session() as s, s.begin():
        new = add_dnc(s, phones, reason).new
    click.echo(f"{file}: {new} added, {len(set(phones)) - new} already listed, {len(bad)} unreadable"
               + "".join(f"\n  line {line}: {why}" for line, why in bad[:20]))


@dnc.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.pass_context
@guard
def dnc_list(ctx: click.Context, fmt: str) -> None:
    """List the do-not-call entries."""
    from dialer.store.repo import list_dnc

    with store_of(ctx).session() as s:
        rows = [{"phone": d.phone, "reason": d.reason, "until": d.until.isoformat() if d.until else None,
                 "added": d.created_at.isoformat()} for d in list_dnc(s)]
    emit(rows, fmt, ["phone", "reason", "until", "added"])
