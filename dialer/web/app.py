"""The console's ASGI application: its options, the middleware (signed session cookies,
security headers), the request body limits, and the routes of pages.py, campaign_pages.py and
api.py."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from urllib.parse import quote

from dialer import __version__
from dialer.store.engine import make_engine
from dialer.store.users import session_key
from dialer.web import api, campaign_pages, pages
from dialer.web.deps import LoginRequired, render, templates
from dialer.web.imports import Jobs
from dialer.web.live import Board
from dialer.web.security import LoginLimiter

HERE = Path(__file__).resolve().parent


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class WebOptions:
    #: a session unused this long ends (seconds)
    idle_timeout: float = 30 * 60
    #: a session ends this long after its login, used or not (the cookie's life)
    max_session: int = 12 * 3600
    #: the largest list the upload page takes (bytes)
    max_upload: int = 200 * 2**20
    #: the largest body of an API request adding contacts (bytes)
    max_api_body: int = 10 * 2**20
    #: any other request body (forms)
    max_form: int = 64 * 2**10
    #: seconds between the wallboard's reads
    board_every: float = 1.0
    #: wallboards open at once, at most
    max_watchers: int = 500
    #: downloads streamed at once (each holds a database connection of a pool of its own)
    max_exports: int = 4
    #: session cookies only over HTTPS (set behind a TLS proxy: docs/operations.md)
    secure_cookies: bool = False
    login_attempts: int = 5
    login_window: float = 300.0
    clock: Callable[[], dt.datetime] = field(default=_utcnow)


#: no script from elsewhere, no framing, forms post only here (the charts' SVG styles are inline)
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def create_app(engine: Engine, opt: WebOptions | None = None) -> FastAPI:
    opt = opt or WebOptions()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.board.stop()
        app.state.exports.dispose()

    # request bodies: FastAPI's limits (413 before the body is used; nothing is stored), the
    # forms' small one for the app, larger ones on the two routes that take files and lists
    app = FastAPI(title="dialer console API", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json", lifespan=lifespan, max_body_size=opt.max_form,
                  description="The dialer's HTTP API. Authenticate with `Authorization: Bearer <token>`; "
                  "make a token with `dialer users token NAME`. Viewers read; managers and admins change.")
    st = app.state
    st.engine, st.opt, st.clock = engine, opt, opt.clock
    st.templates = templates(str(HERE / "templates"))
    st.jobs = Jobs(engine)
    # the streamed downloads' own pool: however many are open, the pages and the wallboard
    # keep the main pool (deps.export_engine answers 503 when this one is full)
    st.exports = make_engine(engine.url.render_as_string(hide_password=False), pool_size=opt.max_exports,
                             max_overflow=0, pool_timeout=30)
    st.limiter = LoginLimiter(opt.login_attempts, opt.login_window)

    from dialer.web.views import Wallboard, wallboard

    reader = Wallboard()  # (its caches: used by the board's one reader thread at a time)

    def render_board() -> str:
        snap = wallboard(engine, opt.clock(), reader)
        return st.templates.get_template("_board.html").render(board=snap)

    st.render_board = render_board
    st.board = Board(render_board, opt.board_every, opt.max_watchers)

    app.include_router(pages.router)
    app.include_router(campaign_pages.router)
    app.include_router(api.router)
    app.add_api_route("/campaigns/{name}/import", campaign_pages.upload, methods=["POST"], include_in_schema=False,
                      max_body_size=opt.max_upload)
    app.add_api_route("/api/campaigns/{name}/contacts", api.api_contacts, methods=["POST"],
                      max_body_size=opt.max_api_body, **api.CONTACTS_ROUTE)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Any:
        if request.url.path == "/events":
            return JSONResponse({"detail": "log in first"}, status_code=401)
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(nxt, safe='')}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Any:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return render(request, "error.html", None, status_code=exc.status_code, message=exc.detail)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Any:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors())
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": problems[:500]}, status_code=422)
        return render(request, "error.html", None, status_code=422, message=problems[:500])

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("X-Frame-Options", "DENY")
        if not request.url.path.startswith("/static/"):
            h.setdefault("Cache-Control", "no-store")
        return response

    app.add_middleware(SessionMiddleware, secret_key=session_key(engine), session_cookie="dialer_session",
                       max_age=opt.max_session, same_site="lax", https_only=opt.secure_cookies)
    return app


__all__ = ["create_app", "WebOptions"]
