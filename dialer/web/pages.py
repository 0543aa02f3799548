"""The console's own pages: log in and out, the wallboard and its live events, the audit log
and the API's documentation."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dialer.store.users import audit_log, authenticate
from dialer.web.deps import form_checked, load_user, now, page_user, render, require
from dialer.web.live import stream
from dialer.web.security import Principal, start_session

router = APIRouter(include_in_schema=False)
#: password checks at once, at most (scrypt takes 32 MiB and a tenth of a second each)
HASHING = threading.BoundedSemaphore(2)
#: how often an open wallboard stream checks that its session still holds (seconds)
RECHECK = 30.0


def safe_next(value: Any) -> str:
    """Where to go after logging in: a path of this console only."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value[:500]
    return "/"


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> Any:
    return render(request, "login.html", None, next=safe_next(next))


@router.post("/login")
async def login(request: Request) -> Any:
    st = request.app.state
    form = await form_checked(request)
    name, password = str(form.get("username", ""))[:64], str(form.get("password", ""))[:1024]
    nxt = safe_next(form.get("next"))
    client = f"ip:{request.client.host if request.client else '-'}"
    keys = (client, f"user:{name.lower()}")
    wait = st.limiter.attempt(*keys)  # (counted before the check: guesses sent at once count too)
    if wait > 0:
        return _too_many(request, nxt, name, wait)

    def check() -> Any:
        with HASHING, Session(st.engine) as s:  # (each check holds 32 MiB: a few at a time)
            u = authenticate(s, name, password)
            return None if u is None else (u.id, u.generation)

    got = await run_in_threadpool(check)
    if got is None:
        return render(request, "login.html", None, status_code=401, next=nxt, username=name,
                      error="用户名或密码错误 Wrong user name or password")
    st.limiter.succeeded(keys[1], counted=(client,))
    start_session(request.session, got[0], got[1], now(request).timestamp())
    return RedirectResponse(nxt, status_code=303)


def _too_many(request: Request, nxt: str, name: str, wait: float) -> Any:
    resp = render(request, "login.html", None, status_code=429, next=nxt, username=name,
                  error=f"登录失败次数过多 Too many failed logins: try again in {math.ceil(wait)} s")
    resp.headers["Retry-After"] = str(math.ceil(wait))
    return resp


@router.post("/logout")
async def logout(request: Request) -> Any:
    await form_checked(request)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/", response_class=HTMLResponse)
async def wallboard(request: Request, user: Principal = Depends(page_user)) -> Any:
    board = await run_in_threadpool(request.app.state.render_board)
    return render(request, "wallboard.html", user, board=board, every=request.app.state.opt.board_every)


@router.get("/events")
async def events(request: Request, user: Principal = Depends(page_user)) -> Any:
    st = request.app.state
    board = st.board
    if board.full():
        return Response("too many wallboards open", status_code=503, headers={"Retry-After": "10"})
    uid, gen, login = request.session["uid"], int(request.session.get("gen", 0)), float(request.session["login"])
    checked = [time.monotonic()]

    async def gone() -> bool:
        """The browser left, or the session no longer holds (its user removed or given a new
        password, or its whole life spent): the stream ends, and the page asks again."""
        if await request.is_disconnected():
            return True
        if time.monotonic() - checked[0] < RECHECK:
            return False
        checked[0] = time.monotonic()
        if now(request).timestamp() - login > st.opt.max_session:
            return True
        return await run_in_threadpool(load_user, st.engine, uid, gen) is None

    return StreamingResponse(stream(board, gone), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/ping")
async def ping(request: Request, user: Principal = Depends(page_user)) -> Any:
    """An open wallboard says it is in use (its session's idle clock restarts)."""
    return Response(status_code=204)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, user: Principal = Depends(page_user)) -> Any:
    require(user, "admin")
    with Session(request.app.state.engine) as s:
        rows = audit_log(s, 500)
    return render(request, "audit.html", user, rows=rows)


@router.get("/api/docs", response_class=HTMLResponse)
def api_docs(request: Request, user: Principal = Depends(page_user)) -> Any:
    return render(request, "api_docs.html", user, spec=request.app.openapi())


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


__all__ = ["router", "safe_next"]
