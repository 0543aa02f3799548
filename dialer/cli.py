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
    ctx.obj = {"db": db}


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


def run() -> None:
    """Console-script entry point: DialerError never escapes as a traceback."""
    try:
        main(standalone_mode=True)
    except DialerError as exc:  # pragma: no cover - commands convert their own errors
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
