"""Who may do what in the console, as plain rules with an injectable clock: the roles'
permissions, the session's idle timeout, CSRF tokens, and the login rate limit.

Sessions are Starlette's signed cookies (itsdangerous; the key is kept in the database:
dialer.store.users.session_key). The session holds the user's id, the user's password
generation (a password change ends the sessions signed before it), the time of the login (a
session ends `max_session` after it, used or not), the time of the last request (the idle
timeout) and the CSRF token that every form carries back."""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from dialer.store.access_models import USER_ROLES as ROLES

#: what each role may do; each role may do what the one before it may (ROLES in order)
PERMISSIONS = {"read": "viewer", "change": "manager", "admin": "admin"}


def may(role: str, permission: str) -> bool:
    need = PERMISSIONS[permission]
    return role in ROLES and ROLES.index(role) >= ROLES.index(need)


@dataclass(frozen=True)
class Principal:
    """The user a request acts for."""

    id: int
    name: str
    role: str
    via: str  # web | api

    def may(self, permission: str) -> bool:
        return may(self.role, permission)


def start_session(session: MutableMapping[str, Any], user_id: int, generation: int, now: float) -> None:
    session.clear()
    session.update({"uid": user_id, "gen": generation, "seen": now, "login": now, "csrf": secrets.token_urlsafe(24)})


def session_user(session: MutableMapping[str, Any], now: float, idle: float,
                 longest: float = float("inf")) -> tuple[int, int] | None:
    """(user id, generation) of a live session, its idle clock restarted; None (and the session
    emptied) when there is none, it has been idle longer than `idle` seconds, or it began
    longer than `longest` seconds ago."""
    uid, seen, login = session.get("uid"), session.get("seen"), session.get("login")
    if not isinstance(uid, int) or not isinstance(seen, (int, float)) or not isinstance(login, (int, float)):
        return None
    if now - seen > idle or now - login > longest:
        session.clear()
        return None
    if now - seen >= 5:  # (rewriting the cookie on every request is needless)
        session["seen"] = now
    return uid, int(session.get("gen", 0))


def csrf_token(session: MutableMapping[str, Any]) -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(24)
    return token


def csrf_ok(session: MutableMapping[str, Any], sent: Any) -> bool:
    token = session.get("csrf")
    return isinstance(token, str) and isinstance(sent, str) and hmac.compare_digest(token, sent)


class LoginLimiter:
    """At most `attempts` failed logins per `window` seconds, by client address and by user
    name alike (guessing one password on many names, or many on one). Kept in the console's
    memory: a restart forgets it, and each console counts its own."""

    def __init__(self, attempts: int = 5, window: float = 300.0, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.attempts, self.window, self.clock, self.max_keys = attempts, window, clock, max_keys
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and now - q[0] >= self.window:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def wait(self, *keys: str) -> float:
        """Seconds until a login by these keys may be tried again (0: now)."""
        now = self.clock()
        waits = [self.window - (now - q[0]) for k in keys if len(q := self._recent(k, now)) >= self.attempts]
        return max(waits, default=0.0)

    def attempt(self, *keys: str) -> float:
        """Before a password is checked: the seconds to wait (0: go ahead, and the attempt is
        counted now as a failure — undone by `succeeded` — so that guesses sent at once are
        counted before any of them is answered)."""
        wait = self.wait(*keys)
        if wait <= 0:
            self.failed(*keys)
        return wait

    def failed(self, *keys: str) -> None:
        now = self.clock()
        if len(self._failures) >= self.max_keys:  # a flood of addresses: forget the oldest
            for k in list(self._failures)[: self.max_keys // 10]:
                del self._failures[k]
        for k in keys:
            self._failures.setdefault(k, deque(maxlen=self.attempts * 2)).append(now)

    def succeeded(self, *keys: str, counted: tuple[str, ...] = ()) -> None:
        """A login went through: `keys`' failures are forgotten; `counted`'s attempt (counted
        by `attempt`) is taken back."""
        for k in keys:
            self._failures.pop(k, None)
        for k in counted:
            q = self._failures.get(k)
            if q:
                q.pop()


__all__ = ["may", "Principal", "start_session", "session_user", "csrf_token", "csrf_ok", "LoginLimiter", "ROLES"]
