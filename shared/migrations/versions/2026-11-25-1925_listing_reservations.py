"""Listing reservations: a listing is a unique item, so at most one order may hold it.

Revision ID: 0006_listing_reservations
Revises: 0002_duplicate_counts
Create Date: 2026-11-25 18:40
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_listing_reservations"
down_revision = "0002_duplicate_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "listing_reservations",
        sa.Column("listing_id", sa.Uuid, nullable=False),
        sa.Column("order_id", sa.Uuid, nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("listing_id", name="pk_listing_reservations"),
        sa.UniqueConstraint("order_id", name="uq_listing_reservations_order_id"),
    )


def downgrade() -> None:
    op.drop_table("listing_reservations")
