"""`database_prepared_statements`: off, no connection the application opens ever prepares.

Behind PgBouncer < 1.21 in transaction pooling a statement prepared on one server connection is
missing (or another client's) on the next: `make pgbouncer` fails with DuplicatePreparedStatement
unless this is off. Here, without a pooler, the session's own `pg_prepared_statements` shows it.
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from sqlalchemy import text

from shared.config import Settings
from shared.db import build_engine, connect_options, libpq_url

REPEATS = 10  # psycopg prepares a statement from its 5th execution on a connection


def _prepared_after_repeats_on_an_engine(settings: Settings) -> int:
    engine = build_engine(settings, pool_size=1)
    try:
        with engine.connect() as connection:
            for _ in range(REPEATS):
                connection.execute(text("SELECT count(*) FROM outbox WHERE id > :id"), {"id": 0})
            return int(connection.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one())
    finally:
        engine.dispose()


def _prepared_after_repeats_on_an_async_connection(settings: Settings) -> int:
    async def main() -> int:
        options = connect_options(settings)
        async with await psycopg.AsyncConnection.connect(libpq_url(settings), **options) as conn:
            for _ in range(REPEATS):
                await conn.execute("SELECT count(*) FROM outbox WHERE id > %s", (0,))
            cursor = await conn.execute("SELECT count(*) FROM pg_prepared_statements")
            row = await cursor.fetchone()
            assert row is not None
            return int(row[0])

    return asyncio.run(main())


@pytest.mark.parametrize(
    "prepared_after_repeats",
    [_prepared_after_repeats_on_an_engine, _prepared_after_repeats_on_an_async_connection],
    ids=["engine", "async-connection"],
)
def test_with_prepared_statements_off_a_repeated_statement_is_never_prepared(
    settings, prepared_after_repeats
):
    assert prepared_after_repeats(settings.model_copy(update={"database_prepared_statements": False})) == 0


def test_with_prepared_statements_on_psycopg_prepares_a_repeated_statement(settings):
    # The other side of the switch: without this the test above could pass for the wrong reason.
    prepared = settings.model_copy(update={"database_prepared_statements": True})
    assert _prepared_after_repeats_on_an_engine(prepared) >= 1
