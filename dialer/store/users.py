"""The console's users, their API tokens, the audit log and the console's settings: the
store's side (passwords are hashed in dialer/passwords.py)."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dialer.passwords import check_password, dummy_hash, hash_password, new_token, token_digest, verify_password
from dialer.store.access_models import USER_ROLES, ApiToken, AuditEntry, User, WebSetting
from dialer.store.repo import InvalidInput, NotFound

_NAME = re.compile(r"^[\w.@-]{1,64}$")
#: a token's last use is written at most this often (not on every request)
TOKEN_TOUCH = dt.timedelta(minutes=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInput(f"user name {name[:80]!r}: 1–64 letters, digits, '.', '_', '-' or '@'")
    return name


def check_role(role: str) -> str:
    if role not in USER_ROLES:
        raise InvalidInput(f"role {role[:40]!r}: one of {', '.join(USER_ROLES)}")
    return role


def get_user(s: Session, name: str) -> User:
    user = s.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user named {name[:64]!r} (dialer users list)")
    return user


def add_user(s: Session, name: str, role: str, password: str) -> User:
    user = User(name=check_name(name), role=check_role(role), password_hash=hash_password(check_password(password)),
                created_at=_now(), generation=0)
    s.add(user)
    try:
        s.flush()
    except IntegrityError:
        raise InvalidInput(f"a user named {name!r} exists (dialer users passwd to change the password)") from None
    return user


def set_password(s: Session, name: str, password: str) -> User:
    user = get_user(s, name)
    user.password_hash = hash_password(check_password(password))
    user.generation += 1  # its sessions end
    s.flush()
    return user


def remove_user(s: Session, name: str) -> None:
    user = get_user(s, name)
    s.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    s.delete(user)
    s.flush()


def list_users(s: Session) -> list[dict[str, Any]]:
    tokens = dict(s.execute(select(ApiToken.user_id, func.count()).group_by(ApiToken.user_id)).all())
    used = dict(s.execute(select(ApiToken.user_id, func.max(ApiToken.last_used_at)).group_by(ApiToken.user_id)).all())
    return [{"name": u.name, "role": u.role, "created_at": u.created_at.isoformat(), "tokens": tokens.get(u.id, 0),
             "token_last_used": used[u.id].isoformat() if used.get(u.id) else None}
            for u in s.scalars(select(User).order_by(User.name))]


def authenticate(s: Session, name: str, password: str) -> User | None:
    """The user, if the password is theirs (an unknown name costs the same hash)."""
    user = s.scalar(select(User).where(User.name == name[:64]))
    if user is None:
        verify_password(password, dummy_hash())
        return None
    return user if verify_password(password[:1024], user.password_hash) else None


def create_token(s: Session, name: str) -> str:
    """A new API token for the user: returned once, stored as its digest."""
    user = get_user(s, name)
    token = new_token()
    s.add(ApiToken(user_id=user.id, digest=token_digest(token), prefix=token[:10], created_at=_now()))
    s.flush()
    return token


def revoke_tokens(s: Session, name: str) -> int:
    user = get_user(s, name)
    return s.execute(delete(ApiToken).where(ApiToken.user_id == user.id)).rowcount or 0


def user_for_token(s: Session, token: str, now: dt.datetime | None = None) -> User | None:
    if not token or len(token) > 200:
        return None
    row = s.scalar(select(ApiToken).where(ApiToken.digest == token_digest(token)))
    if row is None:
        return None
    now = now or _now()
    if row.last_used_at is None or now - row.last_used_at >= TOKEN_TOUCH:
        row.last_used_at = now
    return s.get(User, row.user_id)


def audit(s: Session, actor: str, via: str, action: str, target: str = "", **detail: Any) -> None:
    """A change, who made it and when: written in the change's own transaction."""
    s.add(AuditEntry(at=_now(), actor=actor[:80], via=via, action=action, target=target[:200], detail=detail))


def cli_actor() -> str:
    """Who makes a change on the command line: "cli:" and the operating system's user."""
    import getpass
    import os

    try:
        return "cli:" + getpass.getuser()
    except Exception:  # (no user name in a container)
        return f"cli:uid{os.getuid()}"


def audit_log(s: Session, limit: int = 200) -> list[dict[str, Any]]:
    rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
    return [{"at": r.at.isoformat(), "actor": r.actor, "via": r.via, "action": r.action, "target": r.target,
             "detail": r.detail} for r in rows]


def session_key(engine: Engine) -> str:
    """The key that signs the console's session cookies: made once, kept in the database, so
    that every console on the database (and a restarted one) honours the same sessions."""
    with Session(engine) as s:
        row = s.get(WebSetting, "session_key")
        if row is not None:
            return row.value
        s.add(WebSetting(name="session_key", value=secrets.token_urlsafe(48)))
        try:
            s.commit()
        except IntegrityError:  # another console made it first
            s.rollback()
        return s.get(WebSetting, "session_key").value  # type: ignore[union-attr]


__all__ = ["add_user", "set_password", "remove_user", "list_users", "authenticate", "create_token", "revoke_tokens",
           "user_for_token", "audit", "audit_log", "cli_actor", "session_key", "check_name", "check_role", "get_user"]
