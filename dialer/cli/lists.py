"""`dialer import`, `dialer contacts` and `dialer dialstring`."""

from __future__ import annotations

import sys
from typing import Any

import click

from dialer.cli.common import FilePath, InputError, emit, guard, store_of
from dialer.cli.app import main


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
@click.argument("file", type=FilePath(dir_okay=False))
@click.option("--encoding", default="auto", show_default=True, help="auto, utf-8, gbk, gb18030, …")
@click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD",
              help="Read COLUMN as FIELD (phone, name, customer_id, priority, timezone; - skips it).")
@click.option("--dry-run", is_flag=True, help="Check everything, store nothing.")
@click.option("--rejects", type=FilePath(dir_okay=False), help="Write refused rows to this CSV.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
@guard
def import_cmd(ctx: click.Context, campaign_name: str, file: str, encoding: str, maps: tuple[str, ...],
               dry_run: bool, rejects: str | None, as_json: bool) -> None:
    """Import a CSV contact list into CAMPAIGN, reporting every refused row."""
    import os as _os

    from dialer.importer import import_file, summary_json

    engine = store_of(ctx).engine()
    show_bar = sys.stderr.isatty() and not as_json
    total = _os.path.getsize(file) if _os.path.exists(file) else 0
    with click.progressbar(length=total, label="importing", file=sys.stderr, show_eta=True,
                           hidden=not show_bar) as bar:
        summary = import_file(engine, campaign_name, file, encoding=encoding, mapping=_parse_map(maps),
                              dry_run=dry_run, rejects=rejects, progress=bar.update)
    if not dry_run:
        from dialer.store.users import audit, cli_actor

        with store_of(ctx).session() as s, s.begin():
            audit(s, cli_actor(), "cli", "import", campaign_name, file=file[:200], batch=summary.batch,
                  rows=summary.rows, imported=summary.imported, rejected=summary.rows - summary.imported)
    if as_json:
        click.echo(summary_json(summary))
        return
    verb = "would import" if dry_run else "imported"
    click.echo(f"{summary.file}: {summary.rows} rows ({summary.encoding}, delimiter {summary.delimiter!r}): "
               f"{verb} {summary.imported}, duplicates {summary.duplicates}, do-not-call {summary.dnc}, "
               f"rejected {summary.rejected}" + (f"; batch {summary.batch}" if summary.batch else ""))
    if summary.other_encoding_rows:
        other = "GB18030" if summary.encoding.startswith("utf-8") else "UTF-8"
        click.echo(f"note: {summary.other_encoding_rows} rows were in {other}, not {summary.encoding} (a file "
                   "stitched from two exports); they were read as " + other)
    if summary.extra_cells_rows:
        click.echo(f"note: {summary.extra_cells_rows} rows have cells beyond the header's columns; they are kept "
                   "as extra data (column7, …) — check the file's header")
    if rejects and summary.rows - summary.imported:
        click.echo(f"refused rows written to {rejects}")


_CONTACT_COLUMNS = ["phone", "name", "customer_id", "status", "attempts", "last_outcome", "next_attempt_at",
                    "kind", "province", "city", "isp", "extension", "priority", "timezone", "raw_phone"]


@main.command("contacts")
@click.argument("campaign_name", metavar="CAMPAIGN")
@click.option("--status", help="Only contacts in this status (pending, done, exhausted, blocked, invalid).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "table"]), default="csv", show_default=True)
@click.pass_context
@guard
def contacts_cmd(ctx: click.Context, campaign_name: str, status: str | None, fmt: str) -> None:
    """List the contacts of CAMPAIGN."""
    from sqlalchemy import select

    from dialer.store.models import CONTACT_STATUSES, Contact
    from dialer.store.repo import InvalidInput, get_campaign

    if status is not None and status not in CONTACT_STATUSES:
        raise InvalidInput(f"--status must be one of {', '.join(CONTACT_STATUSES)}")
    with store_of(ctx).session() as s:
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
    emit(rows, fmt, _CONTACT_COLUMNS)


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
@guard
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
        with store_of(ctx).session() as s:
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
