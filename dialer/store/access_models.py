"""The console's tables: users and their roles, API tokens, the audit record of every change,
and the console's own settings (the key that signs its session cookies). Kept apart from the
dialling tables (models.py), on the same metadata."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dialer.store.models import Base, UTCDateTime, utcnow

#: viewer: reads everything; manager: also pauses, resumes, archives and imports; admin: also users
USER_ROLES = ("viewer", "manager", "admin")


class User(Base):
    __tablename__ = "users"
    #: (SQLite) a removed user's id is never given to a new one: a session names the user by id
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    #: "scrypt$n$r$p$salt$hash" (dialer/web/passwords.py)
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: bumped by every password change: sessions signed before it end
    generation: Mapped[int] = mapped_column(Integer, default=0)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: the SHA-256 of the token (the token itself is shown once, never stored)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    #: the token's first characters, to tell tokens apart in `dialer users list`
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the user's name ("cli:<os user>" for a change made on the command line)
    actor: Mapped[str] = mapped_column(String(80))
    #: web | api | cli
    via: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WebSetting(Base):
    __tablename__ = "web_settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(512))
