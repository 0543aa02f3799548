"""`dialer report NAME` and `dialer status`."""

from __future__ import annotations

import sys
from typing import Any

import click

from dialer.cli.app import main
from dialer.cli.common import InputError, emit, guard, store_of
from dialer.reports.fields import REPORTS

def _when(value: str | None, option: str) -> Any:
    from dialer.reports.period import PeriodError, parse_when

    try:
        return parse_when(value, option)
    except PeriodError as exc:
        raise InputError(str(exc)) from None


@main.command("report")
@click.argument("name", type=click.Choice([*REPORTS, "html"]))
@click.argument("target", metavar="[CAMPAIGN]", required=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="html: the file to write (the campaign page as one self-contained file).")
@click.option("--campaign", "campaign_names", multiple=True, help="Only this campaign (repeat for more) [all].")
@click.option("--since", help="From this date or time: YYYY-MM-DD, YYYY-MM-DDTHH:MM (in each campaign's "
              "timezone) or with an offset (+08:00).")
@click.option("--until", help="Up to this time (a date: to the end of that day).")
@click.option("--minutes", type=click.Choice(["15", "30", "60"]), default="60", show_default=True,
              help="interval: the length of an interval.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.pass_context
@guard
def report_cmd(ctx: click.Context, name: str, target: str | None, output: str | None, campaign_names: tuple[str, ...],
               since: str | None, until: str | None, minutes: str, fmt: str) -> None:
    """Reports: summary, outcomes, daily, compliance, agents, interval, hourly, attempts
    (docs/reports.md); `dialer report html CAMPAIGN -o FILE`: the campaign's page as one HTML
    file that opens without a network (docs/web.md)."""
    from dialer.reports import COLUMNS, PeriodError, UnknownCampaign, report, stream_attempts

    engine = store_of(ctx).engine()
    if name == "html":
        _html(engine, target or (campaign_names[0] if len(campaign_names) == 1 else None), output)
        return
    if target is not None:
        raise InputError(f"unexpected argument {target!r}: give campaigns with --campaign")
    t0, t1 = _when(since, "--since"), _when(until, "--until")
    try:
        if name == "attempts":
            _stream(stream_attempts(engine, campaign=campaign_names, since=t0, until=t1), fmt, COLUMNS[name])
            return
        rows = report(engine, name, campaign=campaign_names, since=t0, until=t1, minutes=int(minutes))
    except (UnknownCampaign, PeriodError) as exc:
        raise InputError(str(exc)) from None
    emit(rows, fmt, COLUMNS[name])


def _html(engine: Any, campaign: str | None, output: str | None) -> None:
    import datetime as dt

    from dialer.store.repo import NotFound
    from dialer.web.report import write_report

    if not campaign:
        raise InputError("report html: name the campaign: dialer report html CAMPAIGN -o FILE")
    if not output:
        raise InputError("report html: give the file to write with -o FILE")
    try:
        size = write_report(engine, campaign, output, dt.datetime.now(dt.timezone.utc))
    except NotFound as exc:
        raise InputError(str(exc)) from None
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror}") from None
    click.echo(f"{output}: the report of {campaign!r} ({size // 1024} KB, opens without a network)")


def _stream(rows: Any, fmt: str, columns: list[str]) -> None:
    """Write records as they come: CSV and JSON without holding them; a table aligned by
    pages of 500 rows."""
    import json

    out = sys.stdout
    if fmt == "csv":
        from dialer.csvio import CsvWriter

        writer = CsvWriter(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow("" if row.get(c) is None else row.get(c) for c in columns)
    elif fmt == "json":
        first = True
        out.write("[")
        for row in rows:
            out.write(("\n  " if first else ",\n  ") + json.dumps(row, ensure_ascii=False, default=str))
            first = False
        out.write("\n]\n" if not first else "]\n")
    else:
        from dialer.cli.common import table

        page: list[dict[str, Any]] = []
        printed = False
        for row in rows:
            page.append(row)
            if len(page) == 500:
                out.write(table(page, columns) + "\n")
                page, printed = [], True
        if page or not printed:
            out.write(table(page, columns) + "\n")
    out.flush()


@main.command("status")
@click.option("--watch", is_flag=True, help="Redraw every --every seconds until Ctrl-C.")
@click.option("--every", type=click.FloatRange(min=0.5), default=2.0, show_default=True, help="Seconds between redraws.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
@guard
def status_cmd(ctx: click.Context, watch: bool, every: float, fmt: str) -> None:
    """What the workers are doing now: workers, agents by state, calls, campaigns."""
    import datetime as dt
    import json
    import time

    from dialer.reports.status import status

    engine = store_of(ctx).engine()

    def read() -> dict[str, Any]:
        with engine.connect() as conn:
            return status(conn, dt.datetime.now(dt.timezone.utc))

    if not watch:
        snapshot = read()
        if fmt == "json":
            click.echo(json.dumps(snapshot, ensure_ascii=False, indent=2))
        else:
            from rich.console import Console

            from dialer.cli.statusview import render

            Console(highlight=False).print(render(snapshot))
        return
    from rich.console import Console
    from rich.live import Live

    from dialer.cli.statusview import render

    console = Console(highlight=False)
    try:
        with Live(render(read()), console=console, refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(every)
                live.update(render(read()) if fmt == "table" else json.dumps(read(), ensure_ascii=False))
    except KeyboardInterrupt:
        pass
