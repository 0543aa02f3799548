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
from dialer.cli.common import FilePath, InputError, Store


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """`--config FILE`: a TOML file of long options — top-level keys for the global ones (``db``,
    ``log-format``), a ``[command]`` section per command (``[worker]``, ``[sim]``), a
    ``[group.command]`` one for a group's (``[campaign.create]``). A key is the option's long
    name (``metrics-port``; ``metrics_port`` is the same); an unknown key or section is refused."""
    if not value:
        return value
    try:
        data = tomllib.loads(Path(value).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{value}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:  # (both ValueErrors: caught first)
        raise InputError(f"{value}: {exc}") from None
    except ValueError:  # a NUL in the file name
        raise InputError(f"{value!r}: cannot read: not a file name") from None
    found = _defaults(value, ctx.command, data, "")
    # the group's own options are applied in main(): click's default map shares one namespace
    # between a group's options and its commands, and `--db` would collide with `dialer db`
    ctx.meta["config_globals"] = {k: v for k, v in found.items() if not isinstance(v, dict)}
    ctx.default_map = {**(ctx.default_map or {}), **{k: v for k, v in found.items() if isinstance(v, dict)}}
    return value


#: each command's module: loaded when the command runs (or help lists them), so that a command
#: starts without importing the others (`dialer status` must answer in half a second)
LAZY = {"agents": "agents", "dnc": "agents", "db": "campaigns", "campaign": "campaigns", "import": "lists",
        "contacts": "lists", "dialstring": "lists", "report": "reports", "status": "reports", "sim": "sim",
        "worker": "worker", "demo": "worker", "web": "web", "users": "web"}


class LazyGroup(click.Group):
    """The top-level group: its commands' modules are imported on first use (each registers its
    commands on `main` as it is imported)."""

    def list_commands(self, ctx: click.Context | None) -> list[str]:  # type: ignore[override]
        return sorted(set(self.commands) | set(LAZY))

    def get_command(self, ctx: click.Context | None, cmd_name: str) -> click.Command | None:  # type: ignore[override]
        if cmd_name not in self.commands and cmd_name in LAZY:
            import importlib

            importlib.import_module(f"dialer.cli.{LAZY[cmd_name]}")
        return self.commands.get(cmd_name)


def _defaults(file: str, command: click.Command, data: dict[str, Any], where: str) -> dict[str, Any]:
    """A click default map for `command` from a config table; InputError for an unknown name."""
    by_option: dict[str, tuple[str, bool]] = {}  # long name → (parameter, the --no- side of a flag)
    for p in command.params:
        if p.name in ("config", "help", "version"):
            continue
        for o in p.opts:
            if o.startswith("--"):
                by_option[o[2:]] = (p.name, False)
        for o in p.secondary_opts:
            if o.startswith("--"):
                by_option[o[2:]] = (p.name, True)
    out: dict[str, Any] = {}
    for key, val in data.items():
        name = key.replace("_", "-")
        if isinstance(val, dict):
            sub = command.get_command(None, key) if isinstance(command, click.Group) else None  # type: ignore[arg-type]
            if sub is None:
                known = ", ".join(command.list_commands(None)) if isinstance(command, click.Group) else "none"  # type: ignore[arg-type]
                raise InputError(f"{file}: unknown section [{where}{key}] (commands: {known})")
            out[key] = _defaults(file, sub, val, f"{where}{key}.")
        elif name in by_option:
            param, negated = by_option[name]
            if negated and not isinstance(val, bool):
                raise InputError(f"{file}: {key} must be true or false")
            out[param] = (not val) if negated else val
        else:
            section = f"[{where[:-1]}]" if where else "the top level"
            raise InputError(f"{file}: unknown key {key!r} in {section} (options: {', '.join(sorted(by_option))})")
    return out


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "DIALER"})
@click.option("--db", envvar="DIALER_DB", default="sqlite:///dialer.db", show_default=True,
              help="Database URL (also $DIALER_DB).")
@click.option("--config", type=FilePath(dir_okay=False), callback=_load_config, is_eager=True,
              expose_value=True, help="TOML file whose sections mirror the long options.")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Log lines as text or as one JSON object each.")
@click.option("--mask-numbers/--no-mask-numbers", default=True, show_default=True,
              help="Mask phone numbers in logs at INFO and above (139****5678).")
@click.version_option(__version__, prog_name="dialer")
@click.pass_context
def main(ctx: click.Context, db: str, config: str | None, verbose: int, quiet: bool, log_format: str,
         mask_numbers: bool) -> None:
    """Outbound campaign and predictive dialer for the 赛普智成 CTI softphone server."""
    from click.core import ParameterSource

    from dialer import logs
    from dialer.redact import remember

    params = {p.name: p for p in ctx.command.params}
    for name, val in ctx.meta.get("config_globals", {}).items():  # the config file's, unless given
        if ctx.get_parameter_source(name) == ParameterSource.DEFAULT:
            try:
                val = params[name].type_cast_value(ctx, val)
            except click.BadParameter as exc:
                raise InputError(f"--config: {name.replace('_', '-')}: {exc.message}") from None
            db = val if name == "db" else db
            verbose = val if name == "verbose" else verbose
            quiet = val if name == "quiet" else quiet
            log_format = val if name == "log_format" else log_format
            mask_numbers = val if name == "mask_numbers" else mask_numbers

    remember(db)  # its password is masked in every message from here on
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logs.setup(level, fmt=log_format, mask=mask_numbers)
    ctx.obj = {"db": db, "store": Store(db)}


def run() -> None:
    """Console-script entry point: DialerError never escapes as a traceback."""
    try:
        main(standalone_mode=True)
    except DialerError as exc:  # pragma: no cover - commands convert their own errors
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
