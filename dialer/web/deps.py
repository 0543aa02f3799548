"""What every route needs: the user a request acts for (a session for the pages, a token for
the API), permission and CSRF checks, the templates, and the clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import HTTPException, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dialer.store.access_models import User
from dialer.web.labels import label, outcome_label
from dialer.web.security import Principal, csrf_ok, csrf_token, session_user


class LoginRequired(Exception):
    """No live session: the page sends the browser to the login page."""


def templates(directory: str) -> Jinja2Templates:
    t = Jinja2Templates(directory=directory)
    configure(t.env)
    return t


def configure(env: Any) -> Any:
    """The words and filters every template uses (the pages' and the HTML report's)."""
    env.globals.update(t=label, outcome_label=outcome_label)
    env.filters.update(local=local_time, pct=pct, duration=duration)
    return env


def local_time(value: str | None) -> str:
    """An ISO time of the campaign's timezone as 'YYYY-MM-DD HH:MM:SS' (its zone is on the page)."""
    return "" if not value else value[:19].replace("T", " ")


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f} %"


def duration(seconds: float | int | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def now(request: Request) -> dt.datetime:
    return request.app.state.clock()


def load_user(engine: Any, uid: int, gen: int) -> Principal | None:
    """The user of a session, if it still exists with the same password generation."""
    with Session(engine) as s:
        u = s.get(User, uid)
        if u is None or u.generation != gen:
            return None
        return Principal(u.id, u.name, u.role, "web")


async def page_user(request: Request) -> Principal:
    """The signed-in user (idle sessions end); LoginRequired otherwise."""
    st = request.app.state
    got = session_user(request.session, now(request).timestamp(), st.opt.idle_timeout, st.opt.max_session)
    if got is None:
        raise LoginRequired()
    user = await run_in_threadpool(load_user, st.engine, *got)
    if user is None:  # removed, or its password changed since
        request.session.clear()
        raise LoginRequired()
    return user


def export_engine(request: Request) -> Any:
    """The engine a streamed download reads on; 503 when all of its connections are out."""
    st = request.app.state
    if st.exports.pool.checkedout() >= st.opt.max_exports:
        raise HTTPException(503, "太多下载正在进行 Too many downloads at once: try again in a minute",
                            headers={"Retry-After": "30"})
    return st.exports


def require(user: Principal, permission: str) -> None:
    if not user.may(permission):
        raise HTTPException(403, f"权限不足 Not allowed: {user.name} is a {user.role}")


async def form_checked(request: Request) -> Any:
    """The form, once its CSRF token is the session's (403 otherwise)."""
    form = await request.form()
    if not csrf_ok(request.session, form.get("csrf")):
        raise HTTPException(403, "表单已失效 The form's CSRF token is missing or wrong: reload the page and try again")
    return form


def flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session.setdefault("flash", []).append([kind, message[:300]])


def render(request: Request, template: str, user: Principal | None, status_code: int = 200, **context: Any) -> Any:
    st = request.app.state
    flashes = request.session.pop("flash", []) if "flash" in request.session else []
    return st.templates.TemplateResponse(
        request, template, {"user": user, "csrf": csrf_token(request.session), "flashes": flashes, **context},
        status_code=status_code)


__all__ = ["LoginRequired", "templates", "page_user", "require", "form_checked", "flash", "render", "now"]
