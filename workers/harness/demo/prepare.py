"""Before a run: the database and vhost exist and are empty, and the demo has an API token.

The report audits whole tables and whole queues, so anything left by an earlier run (an order, a
dead letter, a message waiting in a delay queue) would be counted as this run's. Emptying them
is only safe because the demo owns its database and vhost (`circulate_demo` in `make demo`);
`prepare` refuses to run against the default development database.
"""

from __future__ import annotations

from collections.abc import Iterable

from dramatiq.common import dq_name, xq_name
from sqlalchemy import Engine, text

from shared.broker_nodes import blocking_connection
from shared.config import QUEUES, Settings
from shared.db import build_engine, build_sessionmaker, database_name
from shared.migrate import create_database_if_missing, migrate
from shared.topology import declare_queues, ensure_vhost
from workers.api.tokens import create_token

#: Tables that describe the schema, not a run.
KEPT_TABLES = frozenset({"alembic_version"})
#: The development defaults: a demo run would wipe someone's work there.
PROTECTED_DATABASES = frozenset({"circulate", "postgres"})


class UnsafeTarget(Exception):
    """The demo was pointed at a database it must not empty."""


def prepare(settings: Settings, *, opt_outs: Iterable[tuple[str, str]] = ()) -> str:
    """`circulate setup`, then an empty slate, then the scenario's opt-outs; returns an API token."""
    if database_name(settings) in PROTECTED_DATABASES:
        raise UnsafeTarget(
            f"refusing to empty database {database_name(settings)!r}; point CIRCULATE_DATABASE_URL "
            "at a database of its own (make demo uses circulate_demo)"
        )
    create_database_if_missing(settings)
    migrate(settings)
    ensure_vhost(settings)
    declare_queues(settings)
    purge_queues(settings)
    engine = build_engine(settings, pool_size=1)
    try:
        truncate_tables(engine)
        with build_sessionmaker(engine).begin() as session:
            for user_id, channel in opt_outs:
                session.execute(
                    text(
                        "INSERT INTO notification_preferences (user_id, channel, opted_out) "
                        "VALUES (:user_id, :channel, true)"
                    ),
                    {"user_id": user_id, "channel": channel},
                )
            return create_token(session, "demo")
    finally:
        engine.dispose()


def truncate_tables(engine: Engine) -> list[str]:
    """Empty every table of the public schema except the migration bookkeeping."""
    with engine.begin() as connection:
        names = connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        tables = sorted(name for name in names.scalars() if name not in KEPT_TABLES)
        if tables:
            quoted = ", ".join(f'"{name}"' for name in tables)
            connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    return tables


def purge_queues(settings: Settings) -> None:
    """Drop every message in the work, delay and dead-letter queues of the demo's vhost."""
    connection = blocking_connection(settings)
    try:
        channel = connection.channel()
        for queue in QUEUES:
            for name in (queue, dq_name(queue), xq_name(queue)):
                channel.queue_purge(name)
    finally:
        connection.close()
