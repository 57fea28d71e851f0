"""Core platform: inbox, outbox, dead-letter reasons, API tokens and idempotency, orders.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-25 18:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "processed_messages",
        sa.Column("idempotency_key", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("message_id", sa.Uuid, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("processed_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", name="pk_processed_messages"),
    )
    op.create_index("ix_processed_messages_processed_at", "processed_messages", ["processed_at"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("message_id", sa.Uuid, nullable=False),
        sa.Column("queue_name", sa.String(100), nullable=False),
        sa.Column("actor_name", sa.String(100), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("delay_ms", sa.Integer),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("published_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
    )
    op.create_index(
        "ix_outbox_unpublished", "outbox", ["id"], postgresql_where=sa.text("published_at IS NULL")
    )
    op.create_index(
        "ix_outbox_published_at",
        "outbox",
        ["published_at"],
        postgresql_where=sa.text("published_at IS NOT NULL"),
    )
    op.create_table(
        "dead_letters",
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("queue_name", sa.String(100), nullable=False),
        sa.Column("actor_name", sa.String(100), nullable=False),
        sa.Column("message", postgresql.JSONB, nullable=False),
        sa.Column("exception_type", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("traceback", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="dead"),
        sa.Column("first_failed_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("last_failed_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_dead_letters"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("revoked_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_table(
        "api_idempotency",
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response_body", postgresql.JSONB, nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("service", "idempotency_key", name="pk_api_idempotency"),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("listing_id", sa.Uuid, nullable=False),
        sa.Column("buyer_id", sa.String(100), nullable=False),
        sa.Column("seller_id", sa.String(100), nullable=False),
        sa.Column("buyer", postgresql.JSONB, nullable=False),
        sa.Column("seller", postgresql.JSONB, nullable=False),
        sa.Column("market", sa.String(2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("item_price_minor", sa.BigInteger, nullable=False),
        sa.Column("shipping_price_minor", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(30), nullable=False),
        sa.Column("placed_at", TZ, nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.CheckConstraint("item_price_minor >= 0", name="ck_orders_item_price_not_negative"),
        sa.CheckConstraint("shipping_price_minor >= 0", name="ck_orders_shipping_price_not_negative"),
    )
    op.create_index("ix_orders_listing_id", "orders", ["listing_id"])
    op.create_table(
        "order_transitions",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column(
            "order_id", sa.Uuid, sa.ForeignKey("orders.id", name="fk_order_transitions_order_id_orders")
        ),
        sa.Column("from_state", sa.String(30)),
        sa.Column("to_state", sa.String(30), nullable=False),
        sa.Column("event", sa.String(50), nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_order_transitions"),
    )
    op.create_index("ix_order_transitions_order_id", "order_transitions", ["order_id"])


def downgrade() -> None:
    for table in (
        "order_transitions",
        "orders",
        "api_idempotency",
        "api_tokens",
        "dead_letters",
        "outbox",
        "processed_messages",
    ):
        op.drop_table(table)
