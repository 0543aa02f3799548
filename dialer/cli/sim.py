"""`dialer sim`: the CTI server simulator."""

from __future__ import annotations

from typing import Any

import click

from dialer.errors import ScenarioError
from dialer.cli.common import FilePath, InputError
from dialer.cli.app import main


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8081, show_default=True, type=click.IntRange(0, 65535),
              help="Port to bind (0: any free port, printed).")
@click.option("--scenario", type=FilePath(dir_okay=False), help="Scenario TOML file (docs/simulator.md).")
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
    import asyncio
    import signal
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
