"""The database schema: campaigns, contacts, call attempts, agents, do-not-call, import batches,
workers. Times are stored as timezone-aware UTC (`UTCDateTime`), on SQLite too."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Text,
    TypeDecorator, UniqueConstraint, text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CAMPAIGN_STATUSES = ("draft", "active", "paused", "finished", "archived")
MODES = ("progressive", "predictive")
#: pending: may be dialled when due; done: answered (final); exhausted: out of attempts;
#: blocked: on the do-not-call list when it came due; invalid: the dial plan refused it.
CONTACT_STATUSES = ("pending", "done", "exhausted", "blocked", "invalid")
#: answered_late: the customer reached an agent, but more than 2 s after answering (predictive):
#: final for the contact, counted as abandoned for the abandonment rate (FCC/Ofcom).
OUTCOMES = ("answered", "no_answer", "busy", "failed", "agent_no_answer", "abandoned", "timeout",
            "interrupted", "answered_late")
#: predictive: how an answered call reaches an agent — `agent`: the worker picks a ready agent and
#: transfers to its extension; `queue`: transferQueue, the CTI queue picks.
HANDOVERS = ("agent", "queue")
KINDS = ("mobile", "landline", "service", "international")
ROLES = ("agent", "port")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one (UTC)")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    mode: Mapped[str] = mapped_column(String(16), default="progressive")
    queue: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    # the trunk's dial plan
    area_code: Mapped[str] = mapped_column(String(8), default="010")
    outside_prefix: Mapped[str] = mapped_column(String(8), default="9")
    ld_mobile_prefix: Mapped[str] = mapped_column(String(8), default="0")
    unknown_city_mobile: Mapped[str] = mapped_column(String(16), default="long_distance")
    allow_international: Mapped[bool] = mapped_column(Boolean, default=False)
    # the calling window, in the campaign's timezone
    window_start: Mapped[str] = mapped_column(String(5), default="09:00")
    window_end: Mapped[str] = mapped_column(String(5), default="20:00")
    days: Mapped[str] = mapped_column(String(32), default="mon,tue,wed,thu,fri")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    #: timezones of contacts that have their own (kept by the importer, read by the claim)
    contact_timezones: Mapped[list[str]] = mapped_column(JSON, default=list)
    # retries and timing
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    retry_delays: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    ring_timeout: Mapped[int] = mapped_column(Integer, default=30)
    wrap_up: Mapped[int] = mapped_column(Integer, default=20)
    # pacing (predictive)
    max_calls_per_agent: Mapped[float] = mapped_column(Float, default=3.0)
    abandon_target: Mapped[float] = mapped_column(Float, default=0.03)
    abandon_ivr: Mapped[str] = mapped_column(String(32), default="")
    handover: Mapped[str] = mapped_column(String(16), default="agent", server_default="agent")
    #: the queue the dialer ports log in to and are leased from ("": the campaign's queue)
    port_queue: Mapped[str] = mapped_column(String(64), default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone", name="uq_contacts_campaign_phone"),
        # the dispatcher's claim: due pending contacts of one campaign, by priority then time;
        # the index is in the claim's own order, so the claim reads K rows instead of sorting
        Index("ix_contacts_claim_order", "campaign_id", "status", text("priority DESC"), "next_attempt_at", "id"),
        Index("ix_contacts_claimed_by", "claimed_by"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(24))  # E.164
    raw_phone: Mapped[str] = mapped_column(String(64), default="")
    extension: Mapped[str] = mapped_column(String(16), default="")
    kind: Mapped[str] = mapped_column(String(16))
    area_code: Mapped[str] = mapped_column(String(8), default="")
    province: Mapped[str] = mapped_column(String(32), default="")
    city: Mapped[str] = mapped_column(String(32), default="")
    isp: Mapped[str] = mapped_column(String(32), default="")
    name: Mapped[str] = mapped_column(String(100), default="")
    customer_id: Mapped[str] = mapped_column(String(64), default="")
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: calls in a row that failed through no fault of the number (agent_no_answer, interrupted)
    free_misses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaign: Mapped[Campaign] = relationship()


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (
        # by campaign and time, with the outcome: the abandonment counts and the reports read
        # only the index
        Index("ix_attempts_campaign_created", "campaign_id", "created_at", "outcome"),
        # the reports' groupings, read in index order: by outcome and pass, and by contact
        Index("ix_attempts_campaign_outcome", "campaign_id", "outcome", "attempt_no", "ring_seconds", "talk_seconds"),
        Index("ix_attempts_campaign_contact", "campaign_id", "contact_id", "outcome"),
        # (on SQLite, migration 0009 also indexes the 15-minute slot: dialer/reports/period.py)
        Index("ix_attempts_contact", "contact_id", "created_at"),  # (created_at: the compliance report's redials)
        Index("ix_attempts_open", "worker_id", "ended_at"),
        Index("ix_attempts_open_seat", "seat", "ended_at"),
        # never two calls of one contact at once: at most one open attempt, whatever the leases say
        Index("uq_attempts_open_contact", "contact_id", unique=True, postgresql_where=text("ended_at IS NULL"),
              sqlite_where=text("ended_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    attempt_no: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str] = mapped_column(String(64), default="")
    seat: Mapped[str] = mapped_column(String(16), default="")  # the extension that dialled
    agent_extension: Mapped[str] = mapped_column(String(16), default="")  # who talked (predictive)
    dial_string: Mapped[str] = mapped_column(String(40), default="")
    callid: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    dialled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ringing_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    bridged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    ring_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    talk_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    province: Mapped[str] = mapped_column(String(32), default="")
    city: Mapped[str] = mapped_column(String(32), default="")
    isp: Mapped[str] = mapped_column(String(32), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    #: the fencing token of the worker lease it was made under: every later write must carry it
    lease_token: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


#: what a seat is doing, as the worker sees it (dialer/worker/seatlog.py writes a row per change)
SEAT_STATES = ("ready", "dialling", "talking", "wrap", "busy", "lost", "logged_out")
#: the states in which the seat is not logged in (a login session starts when it leaves them)
OUT_STATES = ("lost", "logged_out")


class SeatEvent(Base):
    """One change of a seat's state: the state it entered, at what time. A state lasts until
    the seat's next event (the agents report, dialer/reports/agents.py)."""

    __tablename__ = "seat_events"
    __table_args__ = (
        # each seat's events in order, with what the agents report reads: it runs over the index
        # alone (millions of rows, no sort, no look-ups in the table)
        Index("ix_seat_events_extension_at", "extension", "at", "id", "state", "role", "queue", "worker_id"),
        Index("ix_seat_events_at", "at"),
        # the login sessions' ends, for counting agents logged in by interval
        Index("ix_seat_events_sessions", "queue", "at", postgresql_where=text("session <> 0"),
              sqlite_where=text("session <> 0")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    worker_id: Mapped[str] = mapped_column(String(64), default="")
    extension: Mapped[str] = mapped_column(String(16))
    queue: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(8), default="agent")
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64), default="")
    #: 1: a login session starts here; -1: it ends here; 0: neither
    session: Mapped[int] = mapped_column(Integer, default=0)


class WorkerStatus(Base):
    """What a worker is doing now, written every few seconds (dialer status reads it)."""

    __tablename__ = "worker_status"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(128), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staffid: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    extension: Mapped[str] = mapped_column(String(16), unique=True)
    queue: Mapped[str] = mapped_column(String(64), default="")
    skill: Mapped[int] = mapped_column(Integer, default=1)
    sector: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(8), default="agent")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_token: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class DoNotCall(Base):
    __tablename__ = "dnc"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(24), unique=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImportBatch(Base):
    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    file: Mapped[str] = mapped_column(String(500))
    encoding: Mapped[str] = mapped_column(String(32), default="")
    rows: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    dnc: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RejectedRow(Base):
    __tablename__ = "rejected_rows"
    __table_args__ = (Index("ix_rejected_rows_batch", "batch_id", "line"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batches.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200))
    raw: Mapped[str] = mapped_column(Text, default="")


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(128), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: changes whenever the worker id's lease changes hands (a new life, a take-over)
    token: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


# the console's tables (users, API tokens, audit, settings) share the metadata
from dialer.store import access_models as _access_models  # noqa: E402,F401
