"""Ledger: the append-only journal (transactions and their signed entries).

Revision ID: 0003_ledger
Revises: 0001_core
Create Date: 2026-11-25 19:00

Its own branch off the core (each domain branches off 0001_core; `migrate()` upgrades "heads").
Constraint names are spelled out with `op.f()` in the form the naming convention of
`shared.db.Base` gives, so autogenerate comparisons match and no name is converted twice.

The journal's rules are enforced by the database as well as by the code, because the journal is
the one table whose history must never change:
- row triggers refuse UPDATE and DELETE on both tables (a correction is a new posting);
- a deferred constraint trigger refuses, at commit, a transaction whose entries do not sum to zero
  per currency. Deferred, because entries are inserted one by one (or one statement after their
  transaction) and only the whole set has to balance. A transaction without entries balances: it
  records an event of zero amount (the release of a zero net), which the handlers' guards read.
TRUNCATE is not refused: it is not a correction but a reset, which the test fixtures rely on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_ledger"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

FUNCTIONS = {
    "ledger_refuse_change": """
        BEGIN
            RAISE EXCEPTION 'the journal is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'restrict_violation', HINT = 'post a correcting transaction instead';
        END
    """,
    "ledger_check_balanced": """
        DECLARE
            off record;
        BEGIN
            SELECT currency, sum(amount_minor) AS total INTO off
            FROM journal_entries WHERE transaction_id = NEW.transaction_id
            GROUP BY currency HAVING sum(amount_minor) <> 0 LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'journal transaction % does not balance: % entries sum to %',
                    NEW.transaction_id, off.currency, off.total USING ERRCODE = 'check_violation';
            END IF;
            RETURN NULL;
        END
    """,
}

TRIGGERS = [
    "CREATE TRIGGER journal_transactions_append_only BEFORE UPDATE OR DELETE ON journal_transactions "
    "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
    "CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries "
    "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
    "CREATE CONSTRAINT TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced()",
]


def upgrade() -> None:
    op.create_table(
        "journal_transactions",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("posting_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("order_id", sa.Uuid, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_transactions")),
        sa.UniqueConstraint("posting_key", name=op.f("uq_journal_transactions_posting_key")),
    )
    op.create_index(op.f("ix_journal_transactions_order_id"), "journal_transactions", ["order_id"])
    op.create_table(
        "journal_entries",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("transaction_id", sa.BigInteger, nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_entries")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["journal_transactions.id"],
            name=op.f("fk_journal_entries_transaction_id_journal_transactions"),
        ),
        sa.CheckConstraint("amount_minor <> 0", name=op.f("ck_journal_entries_amount_not_zero")),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_journal_entries_currency_is_iso")),
    )
    op.create_index(op.f("ix_journal_entries_transaction_id"), "journal_entries", ["transaction_id"])
    for name, body in FUNCTIONS.items():
        op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ {body} $$")
    for statement in TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("journal_entries")
    op.drop_table("journal_transactions")
    for name in FUNCTIONS:
        op.execute(f"DROP FUNCTION {name}()")
