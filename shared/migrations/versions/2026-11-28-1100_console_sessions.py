"""Console sessions kept server-side, and failed sign-in counts for throttling.

`console_sessions` holds one row per signed-in browser, keyed by the SHA-256 of the random id in
its cookie (a database leak gives nothing replayable). Signing out deletes the row, so a copied
cookie is dead at once; removing a user cascades. `console_login_failures` counts recent failed
sign-ins per key (`name:<name>` and `client:<address>`) and holds the lock's end.

Revision ID: 0010_console_sessions
Revises: 0005_dead_letter_archive
Create Date: 2026-11-28 11:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_console_sessions"
down_revision = "0005_dead_letter_archive"  # created console_users
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(100), nullable=False),
        sa.Column("client", sa.String(100)),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("last_seen_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_console_sessions"),
        sa.ForeignKeyConstraint(
            ["user_name"],
            ["console_users.name"],
            name="fk_console_sessions_user_name_console_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_console_sessions_user_name", "console_sessions", ["user_name"])
    op.create_table(
        "console_login_failures",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failed_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("locked_until", TZ),
        sa.PrimaryKeyConstraint("key", name="pk_console_login_failures"),
    )


def downgrade() -> None:
    op.drop_table("console_login_failures")
    op.drop_index("ix_console_sessions_user_name", "console_sessions")
    op.drop_table("console_sessions")
