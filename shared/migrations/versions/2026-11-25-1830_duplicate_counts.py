"""Count suppressed duplicates per idempotency key (reports and the demo read the sum).

Revision ID: 0002_duplicate_counts
Revises: 0001_core
Create Date: 2026-11-25 18:30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_duplicate_counts"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "processed_messages", sa.Column("duplicate_count", sa.Integer, nullable=False, server_default="0")
    )


def downgrade() -> None:
    op.drop_column("processed_messages", "duplicate_count")
