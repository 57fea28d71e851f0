"""API tokens carry scopes: `enqueue` (change state: orders, cancellations, preferences), `read`.

Tokens issued before this revision get both scopes: they could do everything until now, and
narrowing them here would break callers that poll orders the moment the release goes out.
Operators narrow a service by issuing a scoped token (`circulate token create SVC --scope read`)
and revoking the old one. The column default is dropped after the backfill, so every token
created from now on states its scopes.

Revision ID: 0011_token_scopes
Revises: 0001_core
Create Date: 2026-11-28 11:10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_token_scopes"
down_revision = "0001_core"  # created api_tokens
branch_labels = None
depends_on = None

SCOPES_KNOWN = "scopes <@ ARRAY['enqueue', 'read']::varchar[] AND cardinality(scopes) > 0"


def upgrade() -> None:
    op.add_column(
        "api_tokens",
        sa.Column(
            "scopes",
            postgresql.ARRAY(sa.String(20)),
            nullable=False,
            server_default=sa.text("ARRAY['enqueue', 'read']::varchar[]"),
        ),
    )
    op.alter_column("api_tokens", "scopes", server_default=None)
    op.create_check_constraint("ck_api_tokens_scopes_known", "api_tokens", SCOPES_KNOWN)


def downgrade() -> None:
    op.drop_constraint("ck_api_tokens_scopes_known", "api_tokens", type_="check")
    op.drop_column("api_tokens", "scopes")
