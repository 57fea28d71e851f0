"""Accepted cancellations: the content hash of the cancellation the API accepted for an order.

A cancellation's message key is per order, so a second one with another reason would be
dead-lettered downstream as a conflicting replay; with the hash kept, the API answers 409 instead.

Revision ID: 0021_accepted_cancellations
Revises: 0020_accepted_orders
Create Date: 2026-11-28 10:45
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_accepted_cancellations"
down_revision = "0020_accepted_orders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accepted_orders", sa.Column("cancel_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("accepted_orders", "cancel_hash")
