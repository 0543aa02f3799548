"""`dialer web` (the console) and `dialer users …` (its users, roles and API tokens)."""

from __future__ import annotations

import sys
from typing import Any

import click

from dialer.cli.app import main
from dialer.cli.common import InputError, emit, guard, store_of
from dialer.store.access_models import USER_ROLES

ROLE = click.Choice(USER_ROLES)


@main.command("web")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (put TLS in front for anything but this machine: docs/operations.md).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--idle-timeout", type=click.FloatRange(min=1), default=30.0, show_default=True,
              help="Minutes a session may sit unused before it ends.")
@click.option("--max-upload", type=click.IntRange(min=1), default=200, show_default=True, help="Largest list upload (MB).")
@click.option("--max-api-body", type=click.IntRange(min=1), default=10, show_default=True,
              help="Largest body of an API request adding contacts (MB).")
@click.option("--secure-cookies", is_flag=True, help="Send the session cookie over HTTPS only (behind a TLS proxy).")
@click.option("--proxy-headers", is_flag=True,
              help="Behind a proxy on this machine: take the client's address from its X-Forwarded-For "
                   "(trusted from 127.0.0.1 only).")
@click.option("--board-every", type=click.FloatRange(min=0.2, max=2.0), default=1.0, show_default=True,
              help="Seconds between the wallboard's updates.")
@click.pass_context
@guard
def web_cmd(ctx: click.Context, host: str, port: int, idle_timeout: float, max_upload: int, max_api_body: int,
            secure_cookies: bool, proxy_headers: bool, board_every: float) -> None:
    """The web console: wallboard, campaign pages, list upload and the HTTP API (docs/web.md)."""
    import logging

    import uvicorn

    from dialer.web.app import WebOptions, create_app

    engine = store_of(ctx).engine()
    opt = WebOptions(idle_timeout=idle_timeout * 60, max_upload=max_upload * 2**20, max_api_body=max_api_body * 2**20,
                     secure_cookies=secure_cookies, board_every=board_every)
    app = create_app(engine, opt)
    if host not in ("127.0.0.1", "::1", "localhost"):
        logging.getLogger("dialer.web").warning(
            "listening on %s: passwords and session cookies cross the network in clear unless a TLS proxy is "
            "in front (docs/operations.md)", host)
    with _users_session(ctx) as s:
        from sqlalchemy import func, select

        from dialer.store.access_models import User

        if not s.scalar(select(func.count()).select_from(User)):
            click.echo("no user yet: add one with `dialer users add NAME --role admin`", err=True)
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # (inherited by each connection: without it a response's body waits ~40 ms on a keep-alive
    # connection for the ACK of its headers — Nagle against the browser's delayed ACK)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    click.echo(f"console on http://{shown}:{sock.getsockname()[1]}/ (Ctrl-C stops it)", err=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, proxy_headers=proxy_headers,
                            forwarded_allow_ips="127.0.0.1", timeout_graceful_shutdown=3)
    uvicorn.Server(config).run(sockets=[sock])


def _users_session(ctx: click.Context) -> Any:
    return store_of(ctx).session()


def _password(from_stdin: bool, confirm: bool = True) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise InputError("--password-stdin: nothing on standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InputError("no terminal to ask for the password on: use --password-stdin")
    return click.prompt("password", hide_input=True, confirmation_prompt=confirm)


@main.group("users")
def users() -> None:
    """The console's users, their roles and API tokens."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=ROLE, default="viewer", show_default=True,
              help="viewer reads; manager also pauses, resumes and imports; admin also reads the audit log.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.pass_context
@guard
def users_add(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Add user NAME (the password is asked for, or read with --password-stdin)."""
    from dialer.store.users import add_user, audit, check_name, cli_actor

    check_name(name)
    password = _password(password_stdin)
    with _users_session(ctx) as s, s.begin():
        add_user(s, name, role, password)
        audit(s, cli_actor(), "cli", "user_add", name, role=role)
    click.echo(f"user {name!r} added ({role})")


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.pass_context
@guard
def users_passwd(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Set user NAME's password (the user's sessions end)."""
    from dialer.store.users import audit, get_user, set_password, cli_actor

    with _users_session(ctx) as s:
        get_user(s, name)
    password = _password(password_stdin)
    with _users_session(ctx) as s, s.begin():
        set_password(s, name, password)
        audit(s, cli_actor(), "cli", "user_passwd", name)
    click.echo(f"password of {name!r} changed; their sessions have ended")


@users.command("remove")
@click.argument("name")
@click.pass_context
@guard
def users_remove(ctx: click.Context, name: str) -> None:
    """Remove user NAME, with their API tokens."""
    from dialer.store.users import audit, remove_user, cli_actor

    with _users_session(ctx) as s, s.begin():
        remove_user(s, name)
        audit(s, cli_actor(), "cli", "user_remove", name)
    click.echo(f"user {name!r} removed")


@users.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
@guard
def users_list(ctx: click.Context, fmt: str) -> None:
    """The users, their roles and how many API tokens each holds."""
    from dialer.store.users import list_users

    with _users_session(ctx) as s:
        rows = list_users(s)
    emit(rows, fmt, ["name", "role", "created_at", "tokens", "token_last_used"])


@users.command("token")
@click.argument("name")
@click.option("--revoke", is_flag=True, help="Revoke every API token of NAME instead.")
@click.pass_context
@guard
def users_token(ctx: click.Context, name: str, revoke: bool) -> None:
    """Make an API token for user NAME (it acts with NAME's role); printed once, stored hashed."""
    from dialer.store.users import audit, create_token, revoke_tokens, cli_actor

    with _users_session(ctx) as s, s.begin():
        if revoke:
            n = revoke_tokens(s, name)
            audit(s, cli_actor(), "cli", "token_revoke", name, tokens=n)
        else:
            token = create_token(s, name)
            audit(s, cli_actor(), "cli", "token_add", name, prefix=token[:10])
    if revoke:
        click.echo(f"{n} token(s) of {name!r} revoked")
    else:
        click.echo(token)
