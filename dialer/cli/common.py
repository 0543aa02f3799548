"""What every command shares: the database of the invocation, errors turned into exit codes,
and the output formats."""

from __future__ import annotations

from typing import Any

import click

from dialer.errors import DialerError
from dialer.redact import scrub


class FilePath(click.Path):
    """click.Path that refuses a NUL in the name (click's own raises ValueError on it)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and "\x00" in value:
            self.fail("a file name cannot hold a NUL character", param, ctx)
        return super().convert(value, param, ctx)


class InputError(click.ClickException):
    """Bad input from the user: exit code 2 (click's own usage errors use 2 as well)."""

    exit_code = 2




def input_errors() -> tuple[type[Exception], ...]:
    from dialer.importer import ImportFailed
    from dialer.store.repo import InvalidInput, NotFound
    from dialer.passwords import WeakPassword
    from dialer.window import WindowError

    return (InvalidInput, NotFound, ImportFailed, WindowError, WeakPassword)


class Store:
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
                raise InputError(scrub(str(exc))) from None
        if check_schema:
            try:
                require_current(self._engine)
            except StoreError as exc:
                raise click.ClickException(scrub(str(exc))) from None
        return self._engine

    def session(self) -> Any:
        from sqlalchemy.orm import Session

        return Session(self.engine(), expire_on_commit=False)


def store_of(ctx: click.Context) -> Store:
    return ctx.find_root().obj["store"]


def guard(fn: Any) -> Any:
    """Turn library errors into one-line messages: input errors exit 2, the rest 1."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sqlalchemy.exc import OperationalError, SQLAlchemyError

        try:
            return fn(*args, **kwargs)
        except input_errors() as exc:
            raise InputError(scrub(str(exc))) from None
        except DialerError as exc:
            raise click.ClickException(scrub(str(exc))) from None
        except OperationalError as exc:
            raise click.ClickException(scrub(f"database error: {str(exc.orig).strip().splitlines()[0]}")) from None
        except SQLAlchemyError as exc:
            raise click.ClickException(
                scrub(f"database error: {type(exc).__name__}: {str(exc).splitlines()[0]}")) from None

    return wrapper


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as aligned text columns, padded by display width (a Chinese character takes two
    cells of a terminal)."""
    from rich.cells import cell_len

    if not rows:
        return "(none)"
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(cell_len(c), *(cell_len(row[i]) for row in cells)) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(v + " " * (w - cell_len(v)) for v, w in zip(values, widths)).rstrip()

    return "\n".join([line(columns), *(line(row) for row in cells)])


def emit(rows: list[dict[str, Any]], fmt: str, columns: list[str]) -> None:
    """Print rows as JSON (raw values), CSV (formula cells escaped: dialer/csvio.py) or a table."""
    import json as _json

    from dialer.csvio import to_csv

    if fmt == "json":
        click.echo(_json.dumps(rows, ensure_ascii=False, indent=2, default=str))
    elif fmt == "csv":
        click.echo(to_csv(rows, columns), nl=False)
    else:
        click.echo(table(rows, columns))


def iso_time(value: str | None, option: str, *, whole_day: bool = False) -> Any:
    """An ISO 8601 date or time from an option, aware (China time if it has no offset). With
    `whole_day`, a bare date means the end of that day (``--until 2030-01-01``)."""
    import datetime as _dt

    if value is None:
        return None
    from zoneinfo import ZoneInfo

    try:
        parsed = _dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            if whole_day and len(value) <= 10:
                parsed = parsed + _dt.timedelta(days=1)
            parsed = parsed.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
        parsed.astimezone(_dt.timezone.utc)  # 9999-12-31 at the end of the day is out of range
    except (ValueError, OverflowError):
        raise InputError(f"{option}: not a date or time (YYYY-MM-DD[THH:MM[+08:00]]): {value!r}") from None
    return parsed
