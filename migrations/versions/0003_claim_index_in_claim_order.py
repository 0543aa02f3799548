"""the claim's index in the claim's own order (priority DESC, next_attempt_at, id)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_contacts_claim", table_name="contacts")
    op.create_index("ix_contacts_claim_order", "contacts",
                    ["campaign_id", "status", sa.text("priority DESC"), "next_attempt_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_contacts_claim_order", table_name="contacts")
    op.create_index("ix_contacts_claim", "contacts", ["campaign_id", "status", "next_attempt_at"])
