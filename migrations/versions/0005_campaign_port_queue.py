"""campaigns.port_queue: the queue (技能组) a predictive campaign's dialer ports log in to

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("port_queue", sa.String(64), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("port_queue")
