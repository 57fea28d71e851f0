"""Orders remember the ledger's answer about their payment and the label waiting for it.

`orders.payment_state` (pending, booked, refused) and `orders.label` (the label shipping recorded,
JSONB) let fulfilment hand the label to the seller only once the payment is booked
(`tasks.fulfilment.states.label_handover_due`). Orders from before this revision are backfilled
from what already happened: a capture in the journal is `booked`, a `payment_refused` in the
order's history is `refused`, so a confirmed order whose capture was booked earlier still gets its
label handed over when it arrives.

Revision ID: 0030_order_payment_booked
Revises: 647686cfe39e
Create Date: 2026-11-28 11:40
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0030_order_payment_booked"
down_revision = "647686cfe39e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "orders", sa.Column("payment_state", sa.String(20), server_default="pending", nullable=False)
    )
    op.add_column("orders", sa.Column("label", postgresql.JSONB(), nullable=True))
    op.execute(
        "UPDATE orders SET payment_state = 'booked' WHERE EXISTS (SELECT 1 FROM journal_transactions j "
        "WHERE j.posting_key = 'payment_captured:' || orders.id::text)"
    )
    op.execute(
        "UPDATE orders SET payment_state = 'refused' WHERE payment_state = 'pending' AND EXISTS "
        "(SELECT 1 FROM order_transitions t WHERE t.order_id = orders.id AND t.event = 'payment_refused')"
    )


def downgrade() -> None:
    op.drop_column("orders", "label")
    op.drop_column("orders", "payment_state")
