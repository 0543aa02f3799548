"""`dialer worker` and `dialer demo`."""

from __future__ import annotations

import sys

import click

from dialer.cli.common import FilePath, InputError, emit, guard, iso_time, store_of
from dialer.cli.app import main


# -- dialer worker, demo ---------------------------------------------------------------------

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
@click.option("--inbox", type=FilePath(file_okay=False), help="Import CSV files found in INBOX/<campaign>/.")
@click.option("--max-seats", type=click.IntRange(1), help="Take at most this many seats (split a roster "
              "between workers).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="Serve Prometheus metrics (/metrics) and "
              "the worker's health (/healthz: 200 while it holds its lease and the database answers, else 503) "
              "on this port.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="The address --metrics-port listens on (0.0.0.0: every interface).")
@click.option("--cti-heartbeat", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Real seconds between CTI heartbeats; three unanswered close the socket (0: none).")
@click.pass_context
@guard
def worker_cmd(ctx: click.Context, cti_url: str, campaigns: tuple[str, ...], worker_id: str | None,
               time_scale: float, clock_start: str | None, clock_epoch: float | None, until_done: bool,
               drain_timeout: float, lease: float, inbox: str | None, max_seats: int | None,
               metrics_port: int | None, metrics_host: str, cti_heartbeat: float) -> None:
    """Run the dialer: log the seats in, dial due contacts, record outcomes."""
    import asyncio
    import time as _time
    from pathlib import Path as _Path

    from dialer.clock import Clock
    from dialer.worker import Worker, WorkerOptions

    _check_ws_url(cti_url)
    engine = store_of(ctx).engine(worker=True)
    clock = Clock(scale=time_scale, epoch=clock_epoch or _time.time(),
                  origin=iso_time(clock_start, "--clock-start"))
    options = WorkerOptions(cti_url=cti_url, campaigns=campaigns, clock=clock, until_done=until_done,
                            drain_timeout=drain_timeout, lease=lease, inbox=_Path(inbox) if inbox else None,
                            max_seats=max_seats, worker_id=worker_id or "", cti_heartbeat=cti_heartbeat)

    async def main_loop() -> None:
        worker = Worker(engine, options)
        server = None
        if metrics_port is not None:
            from dialer.metrics import serve_metrics

            try:
                server = await serve_metrics(worker, metrics_port, metrics_host)
            except OSError as exc:
                raise click.ClickException(f"--metrics-port {metrics_port}: cannot listen on {metrics_host}: "
                                           f"{exc.strerror or exc}") from None
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


def _check_ws_url(url: str) -> None:
    """--cti must be a ws:// or wss:// URL with a host: anything else would be retried forever."""
    from urllib.parse import urlsplit

    from dialer.redact import redact_url

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a port that is not a number fails here)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise InputError(f"--cti: not a WebSocket URL (ws://HOST:PORT/PATH): {redact_url(url)!r}")


@main.command("demo")
@click.option("--agents", type=click.IntRange(1, 500), default=8, show_default=True)
@click.option("--contacts", type=click.IntRange(1, 100_000), help="Rows of the example list to use (topped "
              "up with generated numbers) [the whole list].")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True),
              help="Real seconds per simulated second [0.01; predictive 0.05, so that the 2 s rule is 100 ms "
                   "of real time, well above the worker's own delay on a busy machine].")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--keep", type=FilePath(file_okay=False), help="Keep the database in this folder.")
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
    columns = ["campaign", "contacts", "done", "exhausted", "pending", "attempts", "live_answers", "answer_rate"]
    if mode == "predictive":
        columns += ["abandoned", "abandon_rate"]
    emit([result.summary], "table", [*columns, "talk_seconds"])
    click.echo("")
    emit(result.outcomes, "table", ["outcome", "attempts", "share"])
    if keep:
        click.echo(f"\ndatabase kept: dialer --db {result.db} report attempts")
