"""Writes held for the commit (`UnitOfWork.write_at_commit`): sent with the COMMIT, in one round
trip with the held outbox rows, seen by nobody before the commit, and all or nothing."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import psycopg
import pytest
from sqlalchemy import text

from shared.db_errors import classify
from shared.messages import Envelope, Payload
from shared.runtime import Runtime
from shared.uow import UnitOfWork

_CREATE = "CREATE TABLE IF NOT EXISTS held_writes (n integer PRIMARY KEY)"
_INSERT = "INSERT INTO held_writes (n) VALUES (%(n)s)"


class Ping(Payload):
    kind: ClassVar[str] = "test.ping"
    queue: ClassVar[str] = "notifications"

    n: int


@pytest.fixture
def db(clean_db: Runtime) -> Iterator[Runtime]:
    with clean_db.engine.begin() as connection:
        connection.execute(text(_CREATE))
        connection.execute(text("TRUNCATE held_writes"))
    yield clean_db


def _uow(runtime: Runtime) -> UnitOfWork:
    envelope = Envelope(idempotency_key=f"test:{uuid.uuid4()}", kind="test.parent", correlation_id="c")
    return UnitOfWork(runtime.sessions, envelope=envelope, runtime=runtime)


def _count(runtime: Runtime, table: str) -> int:
    with runtime.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


@contextmanager
def _syncs(uow: UnitOfWork) -> Iterator[list[int]]:
    """How many times the client waited for the server while the block ran: the Sync and simple
    Query messages it sent (libpq's protocol trace), one per round trip."""
    connection = uow._driver()
    counted: list[int] = []
    with tempfile.TemporaryFile("w+") as trace:
        connection.pgconn.trace(trace.fileno())
        try:
            yield counted
        finally:
            connection.pgconn.untrace()
            trace.seek(0)
            lines = trace.read().splitlines()
    counted.append(sum(1 for line in lines if "\tF\t" in line and ("\tSync" in line or "\tQuery\t" in line)))
    assert lines, "libpq wrote no protocol trace"


def test_held_writes_and_outbox_rows_go_with_the_commit_in_one_round_trip(db: Runtime) -> None:
    with _uow(db) as uow:
        uow.execute("SELECT 1")  # the transaction has begun
        with _syncs(uow) as syncs:
            uow.write_at_commit(_INSERT, {"n": 1})
            uow.write_at_commit(_INSERT, {"n": 2})
            uow.outbox.add(Ping(n=1))
            uow.commit()
    assert syncs == [1]
    assert _count(db, "held_writes") == 2
    assert _count(db, "outbox") == 1


def test_a_held_write_is_not_seen_in_its_transaction_before_the_commit(db: Runtime) -> None:
    with _uow(db) as uow:
        uow.write_at_commit(_INSERT, {"n": 1})
        seen = uow.execute("SELECT count(*) FROM held_writes").fetchone()
        uow.commit()
    assert seen == (0,)
    assert _count(db, "held_writes") == 1


def test_a_failing_held_write_fails_the_commit_and_nothing_of_the_transaction_lands(db: Runtime) -> None:
    with db.engine.begin() as connection:
        connection.execute(text("INSERT INTO held_writes (n) VALUES (7)"))
    with pytest.raises(psycopg.IntegrityError) as raised, _uow(db) as uow:
        uow.execute(_INSERT, {"n": 1})
        uow.outbox.add(Ping(n=1))
        uow.write_at_commit(_INSERT, {"n": 7})  # taken
        uow.commit()
    # As permanent as the same refusal from `execute`: the message is dead-lettered at once.
    assert classify(raised.value) is not None
    assert _count(db, "held_writes") == 1  # only the row taken before
    assert _count(db, "outbox") == 0


def test_held_writes_without_a_commit_are_never_sent(db: Runtime) -> None:
    with _uow(db) as uow:
        uow.write_at_commit(_INSERT, {"n": 1})
    assert _count(db, "held_writes") == 0
    # The connection went back to the pool usable.
    with _uow(db) as uow:
        uow.write_at_commit(_INSERT, {"n": 2})
        uow.commit()
    assert _count(db, "held_writes") == 1
