"""The declarative base with a constraint naming convention, and engine/session builders.

Engines are built from Settings by whoever owns the process (worker middleware, API app, relay),
never at import time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy import Engine, MetaData, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from shared.config import Settings

#: A statement's parameters: psycopg's `%(name)s` (a mapping) or `%s` (a sequence) placeholders.
Params = Mapping[str, Any] | Sequence[Any] | None

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Every table of every domain; Alembic revisions are written against this metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def build_engine(settings: Settings, *, pool_size: int | None = None) -> Engine:
    """A pooled engine tuned for one short transaction per message.

    No pre-ping and no rollback on return: each would add a round trip to every message (the
    unit of work always ends its transaction itself). A connection broken by a database restart
    fails its message once, the broker retries it, and the pool drops the connection
    (`pool_recycle` also renews long-lived ones).
    """
    return create_engine(
        settings.database_url,
        pool_size=pool_size or settings.database_pool_size,
        max_overflow=4,
        pool_reset_on_return=None,
        pool_recycle=1800,
        connect_args=connect_options(settings),
    )


def connect_options(settings: Settings) -> dict[str, Any]:
    """psycopg connection options every connection of the application gets.

    With prepared statements off (behind PgBouncer < 1.21 in transaction pooling), psycopg never
    prepares: a statement prepared on one server connection would be missing on the next.
    """
    return {} if settings.database_prepared_statements else {"prepare_threshold": None}


def build_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (handlers read them back)."""
    return sessionmaker(engine, expire_on_commit=False)


def database_name(settings: Settings) -> str:
    """The database named in the URL, which `circulate setup` creates when it is missing."""
    name = make_url(settings.database_url).database
    if not name:
        raise ValueError("CIRCULATE_DATABASE_URL names no database")
    return name


def libpq_url(settings: Settings) -> str:
    """The database URL without SQLAlchemy's driver suffix, for plain (async) psycopg connections."""
    return make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def driver_connection(session: Session) -> Any:
    """The psycopg connection under the session's current transaction.

    The handler core's own statements (inbox claim, outbox rows) run on it directly: the same
    transaction, without SQLAlchemy's per-statement overhead, which on the hot path costs more
    CPU than the statement itself.
    """
    return session.connection().connection.driver_connection


def send_together(connection: psycopg.Connection[Any], statements: Sequence[tuple[str, Params]]) -> None:
    """Run `statements` in order as one query string: one write to the socket, one round trip.

    Their parameters are bound here (psycopg's client-side binding, `ClientCursor.mogrify`, which
    quotes for this connection) and the string goes by the simple query protocol, which runs
    every statement in turn and skips the rest after the first error (raised here). psycopg's
    pipeline mode also makes one round trip of several statements, but it writes each one to the
    socket as it is queued and parses each in Python on the way: about 40 us of CPU a statement
    against 20 bound here, and PostgreSQL reads one packet instead of one per statement.

    For writes whose results nobody reads; the statements are not prepared (each is parsed by
    PostgreSQL every time), which for small writes still costs it less than a packet each.
    """
    cursor = psycopg.ClientCursor(connection)
    cursor.execute(";\n".join(cursor.mogrify(statement, params) for statement, params in statements))
