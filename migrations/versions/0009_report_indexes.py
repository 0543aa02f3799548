"""Indexes for the reports: the outcome in the campaign/time index, by outcome and pass (with
the ring and talk times), by campaign and contact, the contact's with the time, and the
15-minute slot (an index on SQLite, statistics on PostgreSQL: dialer/reports/period.py)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""
from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: the expressions `dialer.reports.period.slot` writes, character for character: an index on
#: SQLite (its GROUP BY reads the index in order); on PostgreSQL statistics, so that the planner
#: knows how few groups there are and aggregates in parallel
SLOT = "CAST(strftime('%s', created_at) AS INTEGER) / 900"
PG_SLOT = "CAST(floor(date_part('epoch', timezone('UTC', created_at)) / 900) AS BIGINT)"


def upgrade() -> None:
    op.drop_index("ix_attempts_campaign_created", "attempts")
    op.create_index("ix_attempts_campaign_created", "attempts", ["campaign_id", "created_at", "outcome"])
    op.create_index("ix_attempts_campaign_outcome", "attempts",
                    ["campaign_id", "outcome", "attempt_no", "ring_seconds", "talk_seconds"])
    op.create_index("ix_attempts_campaign_contact", "attempts", ["campaign_id", "contact_id", "outcome"])
    op.drop_index("ix_attempts_contact", "attempts")
    op.create_index("ix_attempts_contact", "attempts", ["contact_id", "created_at"])
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(f"CREATE INDEX ix_attempts_slot ON attempts (campaign_id, {SLOT}, outcome)")
    elif bind.dialect.name == "postgresql" and bind.dialect.server_version_info >= (14,):
        op.execute(f"CREATE STATISTICS st_attempts_slot (ndistinct) ON ({PG_SLOT}), outcome FROM attempts")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP INDEX ix_attempts_slot")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_attempts_slot")
    op.drop_index("ix_attempts_contact", "attempts")
    op.create_index("ix_attempts_contact", "attempts", ["contact_id"])
    op.drop_index("ix_attempts_campaign_contact", "attempts")
    op.drop_index("ix_attempts_campaign_outcome", "attempts")
    op.drop_index("ix_attempts_campaign_created", "attempts")
    op.create_index("ix_attempts_campaign_created", "attempts", ["campaign_id", "created_at"])
