"""The console's guarantees, each where it is decided: roles, sessions (idle timeout, a
password change ends them), CSRF, the login rate limit, passwords and tokens; users in the
store (SQLite and PostgreSQL); and over HTTP: the headers, the redirect after login, the live
events and their fan-out."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.passwords import WeakPassword, check_password, hash_password, verify_password
from dialer.store.access_models import ApiToken
from dialer.store.repo import InvalidInput, NotFound
from dialer.store.users import (add_user, authenticate, create_token, list_users, remove_user, revoke_tokens,
                                session_key, set_password, user_for_token)
from dialer.web.live import Board, sse
from dialer.web.pages import safe_next
from dialer.web.security import LoginLimiter, csrf_ok, csrf_token, may, session_user, start_session
from tests.web_support import PASSWORD, add_users, console, make_campaign

# -- pure rules ---------------------------------------------------------------------------------


def test_each_role_may_what_the_ones_below_it_may() -> None:
    table = {(r, p): may(r, p) for r in ("viewer", "manager", "admin") for p in ("read", "change", "admin")}
    assert table == {("viewer", "read"): True, ("viewer", "change"): False, ("viewer", "admin"): False,
                     ("manager", "read"): True, ("manager", "change"): True, ("manager", "admin"): False,
                     ("admin", "read"): True, ("admin", "change"): True, ("admin", "admin"): True}
    assert not may("root", "read")


def test_a_session_ends_when_idle_longer_than_the_timeout() -> None:
    session: dict[str, Any] = {}
    assert session_user(session, 0.0, 60) is None
    start_session(session, 7, 2, 1000.0)
    assert session_user(session, 1059.0, 60) == (7, 2)  # used: its idle clock restarts
    assert session_user(session, 1118.0, 60) == (7, 2)
    assert session_user(session, 1178.5, 60) is None  # 60.5 s unused
    assert session == {}


def test_csrf_tokens_are_the_sessions_own() -> None:
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    ta, tb = csrf_token(a), csrf_token(b)
    assert ta != tb and csrf_token(a) == ta
    assert csrf_ok(a, ta) and not csrf_ok(a, tb) and not csrf_ok(a, None) and not csrf_ok(a, "") and not csrf_ok({}, ta)
    start_session(a, 1, 0, 0.0)  # a login makes a new one
    assert not csrf_ok(a, ta)


def test_the_login_limit_by_address_and_by_name() -> None:
    now = [0.0]
    limiter = LoginLimiter(attempts=5, window=300, clock=lambda: now[0])
    for i in range(4):
        limiter.failed("ip:a", "user:x")
        now[0] += 1
    assert limiter.wait("ip:a", "user:x") == 0
    limiter.failed("ip:a", "user:x")  # the fifth, at t = 4
    assert limiter.wait("ip:a", "user:y") == pytest.approx(296)  # the address is held, whatever the name
    assert limiter.wait("ip:b", "user:x") == pytest.approx(296)  # the name is held, from any address
    assert limiter.wait("ip:b", "user:y") == 0
    now[0] = 300.5  # the first failure left the window
    assert limiter.wait("ip:a") == 0
    limiter.failed("ip:a")
    assert limiter.wait("ip:a") > 0
    limiter.succeeded("ip:a")
    assert limiter.wait("ip:a") == 0


@pytest.mark.parametrize("value, expected", [("/campaigns/c?x=1", "/campaigns/c?x=1"), ("//evil.example/", "/"),
                                             ("https://evil.example/", "/"), ("/\\evil", "/"), (None, "/"), ("", "/")])
def test_after_login_only_a_path_of_the_console(value, expected) -> None:
    assert safe_next(value) == expected


def test_passwords_are_scrypt_hashes_and_tokens_are_stored_as_digests() -> None:
    h = hash_password("correct horse")
    assert h.startswith("scrypt$32768$8$1$") and "correct" not in h
    assert verify_password("correct horse", h) and not verify_password("correct hors", h)
    assert hash_password("correct horse") != h  # salted
    assert not verify_password("x", "md5$abc") and not verify_password("x", "garbage")
    for bad in ("short", "tab\there-ok-len", "x" * 1025):
        with pytest.raises(WeakPassword):
            check_password(bad)


# -- the store -----------------------------------------------------------------------------------


def test_users_tokens_and_the_session_key_in_the_store(engine) -> None:
    with Session(engine) as s, s.begin():
        add_user(s, "王经理", "manager", PASSWORD)
        with pytest.raises(InvalidInput):
            add_user(s, "bad name", "viewer", PASSWORD)
        with pytest.raises(InvalidInput):
            add_user(s, "x", "root", PASSWORD)
    with Session(engine) as s, s.begin():
        with pytest.raises(InvalidInput, match="exists"):
            add_user(s, "王经理", "viewer", PASSWORD)
    with Session(engine) as s, s.begin():
        assert authenticate(s, "王经理", PASSWORD).role == "manager"
        assert authenticate(s, "王经理", "wrong password") is None
        assert authenticate(s, "nobody", PASSWORD) is None
        token = create_token(s, "王经理")
    assert token.startswith("dlr_")
    t0 = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.timezone.utc)
    with Session(engine) as s, s.begin():
        assert user_for_token(s, token, t0).name == "王经理"
        assert user_for_token(s, token + "x", t0) is None and user_for_token(s, "", t0) is None
        row = s.scalar(select(ApiToken))
        assert row.digest != token and row.last_used_at == t0
        user_for_token(s, token, t0 + dt.timedelta(seconds=30))
        assert row.last_used_at == t0  # touched at most once a minute
        user_for_token(s, token, t0 + dt.timedelta(minutes=2))
        assert row.last_used_at == t0 + dt.timedelta(minutes=2)
    with Session(engine) as s, s.begin():
        gen = set_password(s, "王经理", "another-pass-1").generation
        assert gen == 1 and authenticate(s, "王经理", "another-pass-1")
        assert list_users(s)[0]["tokens"] == 1
        assert revoke_tokens(s, "王经理") == 1
        token = create_token(s, "王经理")
    with Session(engine) as s, s.begin():
        remove_user(s, "王经理")
        with pytest.raises(NotFound):
            remove_user(s, "王经理")
    with Session(engine) as s:
        assert user_for_token(s, token) is None and s.scalars(select(ApiToken)).all() == []
    assert session_key(engine) == session_key(engine) and len(session_key(engine)) > 40


# -- over HTTP --------------------------------------------------------------------------------------


def _csrf(text: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', text).group(1)


def _log_in(http: httpx.Client, user: str, password: str = PASSWORD) -> httpx.Response:
    csrf = _csrf(http.get("/login").text)
    return http.post("/login", data={"username": user, "password": password, "csrf": csrf, "next": "/campaigns"})


def test_login_is_rate_limited_and_answers_alike_for_unknown_names(engine) -> None:
    add_users(engine)
    with console(engine, login_attempts=3) as base, httpx.Client(base_url=base) as http:
        for name in ("manager", "nobody", "manager"):
            r = _log_in(http, name, "wrong")
            assert r.status_code == 401 and "用户名或密码错误" in r.text
        r = _log_in(http, "manager")  # the right password, but too soon
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert "#who" not in r.text and "登录失败次数过多" in r.text


def test_an_idle_session_ends_and_a_password_change_ends_the_others(engine) -> None:
    add_users(engine)
    now = [dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.timezone.utc)]
    with console(engine, clock=lambda: now[0], idle_timeout=600) as base, httpx.Client(base_url=base) as http:
        r = _log_in(http, "viewer")
        assert r.status_code == 303 and r.headers["location"] == "/campaigns"
        now[0] += dt.timedelta(seconds=590)
        assert http.get("/campaigns").status_code == 200
        now[0] += dt.timedelta(seconds=590)  # 590 s after the last use: still in
        assert http.get("/campaigns").status_code == 200
        now[0] += dt.timedelta(seconds=601)
        r = http.get("/campaigns")
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
        assert _log_in(http, "viewer").status_code == 303
        with Session(engine) as s, s.begin():
            set_password(s, "viewer", "a-new-password")
        r = http.get("/campaigns")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_pages_carry_the_security_headers_and_a_forged_cookie_is_no_session(engine) -> None:
    add_users(engine)
    make_campaign(engine)
    with console(engine) as base, httpx.Client(base_url=base) as http:
        r = http.get("/login")
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
        cookie = r.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
        http.cookies.set("dialer_session", "eyJ1aWQiOiAxfQ==.forged.sig")
        assert http.get("/campaigns").status_code == 303
        http.cookies.clear()
        assert _log_in(http, "viewer").status_code == 303
        for path in ("/", "/campaigns", "/campaigns/c", "/campaigns/c/import", "/api/docs"):
            assert http.get(path).status_code == 200, path
        assert http.get("/audit").status_code == 403  # admins only
        assert http.get("/campaigns/nope").status_code == 404


async def test_the_live_events_need_a_session_and_bring_the_board(engine) -> None:
    add_users(engine)
    make_campaign(engine)
    with console(engine, board_every=0.2) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/events")).status_code == 401
            csrf = _csrf((await http.get("/login")).text)
            await http.post("/login", data={"username": "viewer", "password": PASSWORD, "csrf": csrf})
            async with http.stream("GET", "/events") as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                frames, text = 0, ""
                async for chunk in r.aiter_text():
                    text += chunk
                    frames = text.count("event: board")
                    if frames >= 2:
                        break
    assert 'data: <div class="board"' in text and "没有正在运行的外呼进程" in text


async def test_one_read_a_tick_for_any_number_of_watchers_and_a_slow_one_skips_frames() -> None:
    reads = []

    def render() -> str:
        reads.append(1)
        return f"frame {len(reads)}\nline two"

    board = Board(render, every=0.05)
    got: dict[int, list[str]] = {i: [] for i in range(20)}

    async def watch(i: int, delay: float) -> None:
        async for frame in board.watch():
            got[i].append(frame)
            if len(got[i]) >= 5:
                return
            await asyncio.sleep(delay)

    await asyncio.gather(*(watch(i, 0.0 if i else 0.2) for i in range(20)))
    await board.stop()
    assert len(reads) < 30  # one read a tick, not one per watcher (20 watchers x 5 frames)
    fast = got[1]
    assert fast == sorted(fast, key=lambda f: int(f.split()[1].split("\n")[0]))
    slow = [int(f.split()[1].split("\n")[0]) for f in got[0]]
    assert slow[-1] - slow[0] > len(slow)  # it skipped stale frames
    assert sse("board", "a\nb") == "event: board\ndata: a\ndata: b\n\n"


def test_a_removed_users_session_does_not_pass_to_the_next_user_made(engine) -> None:
    """Sessions name their user by id: a removed user's id is never given to a new one."""
    from dialer.store.users import remove_user

    add_users(engine)
    with console(engine) as base, httpx.Client(base_url=base) as http:
        assert _log_in(http, "admin").status_code == 303
        assert http.get("/audit").status_code == 200
        with Session(engine) as s, s.begin():
            remove_user(s, "admin")
            add_user(s, "newcomer", "admin", PASSWORD)
        r = http.get("/audit")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_guesses_sent_at_once_are_counted_before_any_is_answered(engine) -> None:
    add_users(engine)
    with console(engine, login_attempts=5) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            csrf = _csrf((await http.get("/login")).text)
            form = {"username": "manager", "password": "a wrong guess", "csrf": csrf}
            answers = await asyncio.gather(*(http.post("/login", data=form) for _ in range(20)))
            codes = sorted(r.status_code for r in answers)
            assert codes.count(401) == 5 and codes.count(429) == 15, codes
            # the right password now waits too (the name is held)
            r = await http.post("/login", data={**form, "password": PASSWORD})
            assert r.status_code == 429


def test_a_session_ends_at_its_longest_life_however_busy(engine) -> None:
    add_users(engine)
    now = [dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.timezone.utc)]
    with console(engine, clock=lambda: now[0], idle_timeout=600, max_session=3600) as base, \
            httpx.Client(base_url=base) as http:
        assert _log_in(http, "viewer").status_code == 303
        for _ in range(11):  # used every 5 minutes for 55 minutes
            now[0] += dt.timedelta(minutes=5)
            assert http.get("/campaigns").status_code == 200
        now[0] += dt.timedelta(minutes=5, seconds=1)
        assert http.get("/campaigns").status_code == 303


async def test_an_open_wallboard_stream_ends_when_its_user_is_removed(engine, monkeypatch) -> None:
    from dialer.store.users import remove_user
    from dialer.web import pages

    monkeypatch.setattr(pages, "RECHECK", 0.2)
    add_users(engine)
    with console(engine, board_every=0.2) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            csrf = _csrf((await http.get("/login")).text)
            await http.post("/login", data={"username": "viewer", "password": PASSWORD, "csrf": csrf})
            assert (await http.get("/ping")).status_code == 204
            async with http.stream("GET", "/events") as r:
                frames = 0
                async for chunk in r.aiter_text():
                    frames += chunk.count("event: board")
                    if frames == 2:
                        with Session(engine) as s, s.begin():
                            remove_user(s, "viewer")
                    assert frames < 40, "the stream went on after its user was removed"
            assert (await http.get("/events")).status_code == 401


def test_campaign_names_cannot_hold_a_slash() -> None:
    from dialer.store.repo import create_campaign

    for name in ("销售/北京", "a\\b"):
        with pytest.raises(InvalidInput, match="cannot hold"):
            create_campaign(None, name)  # type: ignore[arg-type]
