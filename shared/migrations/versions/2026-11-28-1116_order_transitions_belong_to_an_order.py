"""Order transitions belong to an order: `order_transitions.order_id` is NOT NULL, as the model says.

The core migration left the column nullable; every transition is written with its order, so no
row holds a NULL. Were one to, this revision stops with PostgreSQL's error naming the column
rather than deleting a history row. SET NOT NULL reads the table once under an exclusive lock.

Revision ID: 647686cfe39e
Revises: aa2726786112
Create Date: 2026-11-28 10:55:57.826671+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "647686cfe39e"
down_revision = "aa2726786112"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("order_transitions", "order_id", existing_type=sa.Uuid(), nullable=False)


def downgrade() -> None:
    op.alter_column("order_transitions", "order_id", existing_type=sa.Uuid(), nullable=True)
