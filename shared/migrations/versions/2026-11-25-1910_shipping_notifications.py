"""Shipping labels, notifications sent, notification preferences.

Revision ID: 0004_shipping_notifications
Revises: 0001_core
Create Date: 2026-11-25 19:10

Its own branch off the core (each domain branches off 0001_core; `migrate()` upgrades "heads").
Constraint names are spelled out with `op.f()` in the form the naming convention of
`shared.db.Base` gives, so autogenerate comparisons match and no name is converted twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_shipping_notifications"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("order_id", sa.Uuid, nullable=False),
        sa.Column("carrier", sa.String(100), nullable=False),
        sa.Column("label_id", sa.String(100), nullable=False),
        sa.Column("tracking_number", sa.String(100), nullable=False),
        sa.Column("label_url", sa.String(500), nullable=False),
        sa.Column("cost_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("purchased_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("voided_at", TZ),
        sa.Column("void_reason", sa.String(200)),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_labels")),
        sa.UniqueConstraint("label_id", name=op.f("uq_labels_label_id")),
        sa.CheckConstraint("status IN ('purchased', 'voided')", name=op.f("ck_labels_status_valid")),
        sa.CheckConstraint("cost_minor >= 0", name=op.f("ck_labels_cost_not_negative")),
        sa.CheckConstraint(
            "(status = 'voided') = (voided_at IS NOT NULL)", name=op.f("ck_labels_voided_at_iff_voided")
        ),
    )
    op.create_table(
        "notifications",
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("order_id", sa.Uuid, nullable=False),
        sa.Column("template", sa.String(50), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message_id", sa.String(200)),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("sent_at", TZ),
        sa.PrimaryKeyConstraint("dedupe_key", name=op.f("pk_notifications")),
        sa.CheckConstraint("channel IN ('email', 'push')", name=op.f("ck_notifications_channel_valid")),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'skipped_opt_out', 'failed')",
            name=op.f("ck_notifications_status_valid"),
        ),
    )
    op.create_index(op.f("ix_notifications_order_id"), "notifications", ["order_id"])
    op.create_table(
        "notification_preferences",
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("opted_out", sa.Boolean, nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "channel", name=op.f("pk_notification_preferences")),
        sa.CheckConstraint(
            "channel IN ('email', 'push')", name=op.f("ck_notification_preferences_channel_valid")
        ),
    )


def downgrade() -> None:
    for table in ("notification_preferences", "notifications", "labels"):
        op.drop_table(table)
