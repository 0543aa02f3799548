"""Fencing: a lease token on workers, seats and attempts; the worker's own lease deadline

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("token", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("lease_token", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("lease_token", sa.BigInteger(), nullable=True))
    op.create_index("ix_attempts_open_seat", "attempts", ["seat", "ended_at"])


def downgrade() -> None:
    op.drop_index("ix_attempts_open_seat", "attempts")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("lease_token")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("lease_token")
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("token")
