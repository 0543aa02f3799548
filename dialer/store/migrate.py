"""Alembic, driven from code: the migrations ship inside the package (`dialer._migrations`,
the top-level `migrations/` folder of the source tree), so `pip install .` then
`dialer db upgrade` works anywhere."""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import OperationalError

from dialer.store.engine import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

UPGRADE_HINT = "run: dialer db upgrade"
#: the newest migration; a test holds it equal to Alembic's head, so that every command can
#: check the schema without loading Alembic (a tenth of a second at each start)
HEAD = "0010"


def alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(files("dialer._migrations")))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
        cfg.attributes["engine"] = engine
    return cfg


def head() -> str:
    return HEAD


def alembic_head() -> str:
    """The head as Alembic reads it off the migration scripts (tests compare it with HEAD)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: no schema yet). Raises StoreError when unreachable."""
    try:
        with engine.connect() as conn:  # (what Alembic's MigrationContext reads, without Alembic)
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except OperationalError as exc:
        raise StoreError(f"cannot open the database: {_first_line(exc.orig)}") from exc


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    try:
        with engine.begin() as conn:
            cfg = alembic_config(engine)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except OperationalError as exc:
        raise StoreError(f"cannot upgrade the database: {exc.orig}") from exc


def require_current(engine: Engine) -> None:
    """Refuse to work on a schema that is behind (or absent); the message names the fix."""
    at = current(engine)
    if at != head():
        state = "has no dialer schema" if at is None else f"is at revision {at}, this dialer needs {head()}"
        raise StoreError(f"the database {state}; {UPGRADE_HINT}")


def _first_line(error: BaseException) -> str:
    """A driver's message on one line (psycopg adds hints on lines of their own)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
