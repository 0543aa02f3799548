"""At most one open attempt per contact, enforced by the database (never two calls at once)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("uq_attempts_open_contact", "attempts", ["contact_id"], unique=True,
                    postgresql_where=sa.text("ended_at IS NULL"), sqlite_where=sa.text("ended_at IS NULL"))


def downgrade() -> None:
    op.drop_index("uq_attempts_open_contact", "attempts")
