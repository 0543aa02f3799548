"""campaigns.handover: how a predictive call reaches an agent (agent | queue)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("handover", sa.String(16), server_default="agent", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("handover")
