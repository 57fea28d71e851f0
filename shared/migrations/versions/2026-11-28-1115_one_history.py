"""One history: the seven heads meet here, and every later revision follows the one before.

Until here each domain's tables grew on a branch of its own, applied in no defined order by
`upgrade heads`. Nothing changes in the schema: a database at the old heads records this one
revision in `alembic_version` instead of seven. Revision ids before it are unchanged.

Revision ID: aa2726786112
Revises: 0003_ledger, 0004_shipping_notifications, 0006_listing_reservations, 0007_outbox_schedule,
    0010_console_sessions, 0011_token_scopes, 0021_accepted_cancellations
Create Date: 2026-11-28 10:55:09.563105+00:00
"""

from __future__ import annotations

revision = "aa2726786112"
down_revision = (
    "0003_ledger",
    "0004_shipping_notifications",
    "0006_listing_reservations",
    "0007_outbox_schedule",
    "0010_console_sessions",
    "0011_token_scopes",
    "0021_accepted_cancellations",
)
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
