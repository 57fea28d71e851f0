"""Dead-letter archive: grouping, re-drive and purge state, per-message history, audit, console users.

`dead_letters` becomes the archive (the sweeper empties every `.XQ` into it). Two triggers keep
the worker's plain upsert (`shared.dead_letters.record`) working unchanged:
- before a write, `group_key` is computed from actor, exception type and the reason with numbers,
  UUIDs and hex ids masked, so grouping lives in one place; a new failure (the upsert moves
  `last_failed_at`) makes a purged or re-driven row live again;
- after a write, every new failure is appended to `dead_letter_events`, which is why re-driven
  messages that die again keep their whole history on the same row.

Revision ID: 0005_dead_letter_archive
Revises: 0001_core
Create Date: 2026-11-25 19:20
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_dead_letter_archive"
down_revision = "0001_core"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

_NORMALISE = r"""
CREATE FUNCTION dead_letter_normalise(reason text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT regexp_replace(regexp_replace(regexp_replace(left(reason, 2000),
    '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'gi'),
    '\m(?=[0-9a-f]*[0-9])[0-9a-f]{8,}\M', '<hex>', 'gi'),
    '[0-9]+', '<n>', 'g')
$$
"""

_BEFORE_WRITE = """
CREATE FUNCTION dead_letters_before_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.normalised_reason := dead_letter_normalise(NEW.reason);
  NEW.group_key := left(encode(sha256(convert_to(
    concat_ws(chr(31), NEW.actor_name, NEW.exception_type, NEW.normalised_reason), 'UTF8')), 'hex'), 16);
  IF TG_OP = 'UPDATE' AND NEW.last_failed_at IS DISTINCT FROM OLD.last_failed_at THEN
    -- A new failure. When the sweeper archived this death first (it raced the worker's record),
    -- the worker's attempt count replaces the sweeper's estimate instead of adding to it.
    IF OLD.recorded_by = 'sweeper' AND OLD.status = 'dead' THEN
      NEW.attempts := NEW.attempts - OLD.attempts;
    END IF;
    NEW.recorded_by := 'worker';
    NEW.purged_at := NULL;
    NEW.purged_by := NULL;
    NEW.purged_from := NULL;
  END IF;
  RETURN NEW;
END
$$
"""

_AFTER_WRITE = """
CREATE FUNCTION dead_letters_after_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(current_setting('circulate.archive_import', true), '') = 'on' THEN
    RETURN NULL;  -- an import brings its own history
  END IF;
  IF TG_OP = 'INSERT' OR NEW.last_failed_at IS DISTINCT FROM OLD.last_failed_at THEN
    INSERT INTO dead_letter_events (message_id, kind, operator, detail)
    VALUES (NEW.message_id, 'failed',
            CASE WHEN NEW.recorded_by = 'worker' THEN 'worker@' || NEW.host ELSE NEW.host END,
            jsonb_build_object('exception_type', NEW.exception_type, 'reason', left(NEW.reason, 500),
                               'attempts', NEW.attempts, 'recorded_by', NEW.recorded_by));
  END IF;
  RETURN NULL;
END
$$
"""

_NEW_COLUMNS: list[sa.Column[Any]] = [
    sa.Column("normalised_reason", sa.Text),
    sa.Column("group_key", sa.String(16)),
    sa.Column("recorded_by", sa.String(20), nullable=False, server_default="worker"),
    sa.Column("archived_at", TZ),
    sa.Column("raw_body", sa.LargeBinary),
    sa.Column("redrive_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_redriven_at", TZ),
    sa.Column("purged_at", TZ),
    sa.Column("purged_by", sa.String(200)),
    sa.Column("purged_from", sa.String(20)),
    sa.Column("original_message", postgresql.JSONB),
    sa.Column("edited_at", TZ),
]


def upgrade() -> None:
    for column in _NEW_COLUMNS:
        op.add_column("dead_letters", column)
    op.create_check_constraint(
        "ck_dead_letters_status_known", "dead_letters", "status IN ('dead', 'redriven', 'purged')"
    )
    for name, columns in {
        "ix_dead_letters_group_key": ["group_key"],
        "ix_dead_letters_status": ["status"],
        "ix_dead_letters_queue_name": ["queue_name"],
        "ix_dead_letters_last_failed_at": ["last_failed_at"],
    }.items():
        op.create_index(name, "dead_letters", columns)
    op.create_table(
        "dead_letter_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("operator", sa.String(200), nullable=False),
        sa.Column("at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("detail", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letter_events"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["dead_letters.message_id"],
            name="fk_dead_letter_events_message_id_dead_letters",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_dead_letter_events_message_id", "dead_letter_events", ["message_id", "id"])
    op.create_table(
        "dlq_audit",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("operator", sa.String(200), nullable=False),
        sa.Column("via", sa.String(20), nullable=False),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("filter", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dlq_audit"),
    )
    op.create_index("ix_dlq_audit_at", "dlq_audit", ["at"])
    op.create_table(
        "console_users",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_console_users"),
        sa.CheckConstraint("role IN ('viewer', 'operator')", name="ck_console_users_role_known"),
    )
    op.execute(_NORMALISE)
    op.execute(_BEFORE_WRITE)
    op.execute(_AFTER_WRITE)
    op.execute(
        "CREATE TRIGGER dead_letters_before_write BEFORE INSERT OR UPDATE ON dead_letters "
        "FOR EACH ROW EXECUTE FUNCTION dead_letters_before_write()"
    )
    op.execute(
        "CREATE TRIGGER dead_letters_after_write AFTER INSERT OR UPDATE ON dead_letters "
        "FOR EACH ROW EXECUTE FUNCTION dead_letters_after_write()"
    )
    # Rows recorded before this revision get their group key now (the trigger fires on UPDATE)
    # and one `failed` event each, so every archived message has a history.
    op.execute("UPDATE dead_letters SET reason = reason")
    op.execute(
        "INSERT INTO dead_letter_events (message_id, kind, operator, at, detail) "
        "SELECT message_id, 'failed', 'worker@' || host, last_failed_at, "
        "jsonb_build_object('exception_type', exception_type, 'reason', left(reason, 500), "
        "'attempts', attempts, 'recorded_by', 'worker') FROM dead_letters"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS dead_letters_after_write ON dead_letters")
    op.execute("DROP TRIGGER IF EXISTS dead_letters_before_write ON dead_letters")
    op.execute("DROP FUNCTION IF EXISTS dead_letters_after_write()")
    op.execute("DROP FUNCTION IF EXISTS dead_letters_before_write()")
    op.execute("DROP FUNCTION IF EXISTS dead_letter_normalise(text)")
    for table in ("console_users", "dlq_audit", "dead_letter_events"):
        op.drop_table(table)
    op.drop_constraint("ck_dead_letters_status_known", "dead_letters", type_="check")
    for name in ("group_key", "status", "queue_name", "last_failed_at"):
        op.drop_index(f"ix_dead_letters_{name}", "dead_letters")
    for column in reversed(_NEW_COLUMNS):
        op.drop_column("dead_letters", column.name)
