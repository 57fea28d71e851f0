"""The models of the dead-letter archive's tables agree with what the migrations create."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared.db import Base
from shared.dead_letters.models import DeadLetter, DeadLetterAudit, DeadLetterEvent

TABLES = {DeadLetter.__tablename__, DeadLetterEvent.__tablename__, DeadLetterAudit.__tablename__}


def _ours(obj, kind: str) -> bool:
    table = obj if kind == "table" else getattr(obj, "table", None)
    return table is None or table.name in TABLES


def test_the_models_of_dead_letters_their_events_and_the_audit_log_match_the_migrations(runtime):
    assert {"dead_letters", "dead_letter_events", "dlq_audit"} == TABLES
    with runtime.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": lambda obj, name, kind, reflected, compare_to: _ours(obj, kind),
            },
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
