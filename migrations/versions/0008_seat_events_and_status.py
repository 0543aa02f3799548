"""Seat state changes (the agents report) and each worker's status row (dialer status)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seat_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("extension", sa.String(16), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False, server_default=""),
        sa.Column("role", sa.String(8), nullable=False, server_default="agent"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False, server_default=""),
        sa.Column("session", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seat_events")),
    )
    op.create_index("ix_seat_events_extension_at", "seat_events",
                    ["extension", "at", "id", "state", "role", "queue", "worker_id"])
    op.create_index("ix_seat_events_at", "seat_events", ["at"])
    op.create_index("ix_seat_events_sessions", "seat_events", ["queue", "at"],
                    postgresql_where=sa.text("session <> 0"), sqlite_where=sa.text("session <> 0"))
    op.create_table(
        "worker_status",
        sa.Column("worker_id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(128), nullable=False, server_default=""),
        sa.Column("pid", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_worker_status")),
    )


def downgrade() -> None:
    op.drop_table("worker_status")
    op.drop_index("ix_seat_events_sessions", "seat_events")
    op.drop_index("ix_seat_events_at", "seat_events")
    op.drop_index("ix_seat_events_extension_at", "seat_events")
    op.drop_table("seat_events")
