"""The outbox keeps delayed messages until due: `available_at` replaces `delay_ms`.

A delayed row used to be published at once to the queue's `.DQ` with an eta, where a worker held
it unacked until due (past RabbitMQ's consumer timeout, and every hand-back counted towards the
delivery limit). Rows still unpublished keep their delay: due at `created_at + delay_ms`.

Revision ID: 0007_outbox_schedule
Revises: 0002_duplicate_counts
Create Date: 2026-11-28 10:30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_outbox_schedule"
down_revision = "0002_duplicate_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "outbox",
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.execute(
        "UPDATE outbox SET available_at = created_at + delay_ms * interval '1 millisecond' "
        "WHERE published_at IS NULL AND delay_ms IS NOT NULL"
    )
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.create_index(
        "ix_outbox_due", "outbox", ["available_at", "id"], postgresql_where=sa.text("published_at IS NULL")
    )
    op.drop_column("outbox", "delay_ms")


def downgrade() -> None:
    op.add_column("outbox", sa.Column("delay_ms", sa.Integer))
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.create_index(
        "ix_outbox_unpublished", "outbox", ["id"], postgresql_where=sa.text("published_at IS NULL")
    )
    op.drop_column("outbox", "available_at")
