"""Accepted orders: the API's record of every order it answered 202 for, with its content hash.

Lets the API answer 409 to a different body for an order it already accepted (which every worker
would dead-letter as a conflicting replay) and 404 to a cancellation of an order it never accepted.
Orders already in the `orders` table are backfilled without a hash: the API treats them as
accepted and, not knowing their body, lets the workers judge a resend as before.

Revision ID: 0020_accepted_orders
Revises: 0001_core
Create Date: 2026-11-28 10:40
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_accepted_orders"
down_revision = "0001_core"  # created `orders`, which the backfill reads
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accepted_orders",
        sa.Column("order_id", sa.Uuid, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_accepted_orders"),
    )
    op.execute(
        "INSERT INTO accepted_orders (order_id, content_hash, service) "
        "SELECT id, NULL, 'before-0020' FROM orders ON CONFLICT DO NOTHING"
    )


def downgrade() -> None:
    op.drop_table("accepted_orders")
