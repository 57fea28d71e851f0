"""The models of the token and console tables agree with what the migrations create."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared.db import Base
from workers.api.tokens import ApiToken
from workers.dlq.console import login_throttle, sessions, users

TABLES = {"api_tokens", "console_users", "console_sessions", "console_login_failures"}


def _ours(obj, kind: str) -> bool:
    table = obj if kind == "table" else getattr(obj, "table", None)
    return table is None or table.name in TABLES


def test_the_models_of_tokens_console_users_sessions_and_login_failures_match_the_migrations(runtime):
    assert {ApiToken.__tablename__, users.ConsoleUserRecord.__tablename__} <= TABLES
    assert sessions.ConsoleSessionRecord.__tablename__ in TABLES
    assert login_throttle.LoginFailures.__tablename__ in TABLES
    with runtime.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_object": lambda obj, name, kind, reflected, compare_to: _ours(obj, kind),
            },
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
