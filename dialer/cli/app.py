"""The `dialer` group: global options, the configuration file, logging, the entry point."""

from __future__ import annotations

import logging
import sys
import tomllib
from pathlib import Path
from typing import Any

import click

from dialer import __version__
from dialer.errors import DialerError
from dialer.cli.common import InputError, Store


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
    ctx.obj = {"db": db, "store": Store(db)}


def run() -> None:
    """Console-script entry point: DialerError never escapes as a traceback."""
    try:
        main(standalone_mode=True)
    except DialerError as exc:  # pragma: no cover - commands convert their own errors
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
