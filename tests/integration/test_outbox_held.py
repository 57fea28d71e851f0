"""A unit of work's outbox rows are written together at its commit: all, in order, or none."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import psycopg
import pytest
from sqlalchemy import text

from shared import db
from shared import uow as uow_module
from shared.config import Settings
from shared.db import libpq_url
from shared.messages import Envelope, Payload
from shared.outbox import WAKE_CHANNEL
from shared.runtime import Runtime
from shared.uow import UnitOfWork


class Ping(Payload):
    kind: ClassVar[str] = "test.ping"
    queue: ClassVar[str] = "notifications"

    n: int


def _uow(runtime: Runtime) -> UnitOfWork:
    envelope = Envelope(idempotency_key=f"test:{uuid.uuid4()}", kind="test.parent", correlation_id="c")
    return UnitOfWork(runtime.sessions, envelope=envelope, runtime=runtime)


def _rows(runtime: Runtime) -> list[tuple[str, bool]]:
    """(the payload's n, whether due now) of every outbox row, in id order."""
    with runtime.sessions() as session:
        rows = session.execute(
            text(
                "SELECT convert_from(body, 'UTF8')::json->'kwargs'->'payload'->>'n', available_at <= now() "
                "FROM outbox ORDER BY id"
            )
        ).all()
    return [(str(n), bool(due)) for n, due in rows]


@pytest.fixture
def listener(settings: Settings) -> Iterator[psycopg.Connection]:
    direct = settings.model_copy(
        update={"database_url": settings.database_direct_url or settings.database_url}
    )
    with psycopg.connect(libpq_url(direct), autocommit=True) as conn:
        conn.execute(f"LISTEN {WAKE_CHANNEL}")
        yield conn


def test_rows_of_several_messages_in_one_transaction_land_in_order_and_wake_the_relay_once(
    clean_db: Runtime, listener: psycopg.Connection
) -> None:
    with _uow(clean_db) as uow:
        uow.outbox.add(Ping(n=1))
        uow.outbox.add(Ping(n=2), delay_ms=60_000)
        uow.handle(Envelope(idempotency_key=f"test:{uuid.uuid4()}", kind="test.parent", correlation_id="c"))
        uow.outbox.add(Ping(n=3))
        assert _rows(clean_db) == []  # held until the commit
        uow.commit()

    assert _rows(clean_db) == [("1", True), ("2", False), ("3", True)]
    assert len(list(listener.notifies(timeout=2))) == 1


def test_a_transaction_with_only_delayed_rows_does_not_wake_the_relay(
    clean_db: Runtime, listener: psycopg.Connection
) -> None:
    with _uow(clean_db) as uow:
        uow.outbox.add(Ping(n=1), delay_ms=60_000)
        uow.commit()

    assert _rows(clean_db) == [("1", False)]
    assert list(listener.notifies(timeout=1)) == []


def test_a_unit_of_work_left_without_its_commit_writes_no_row(clean_db: Runtime) -> None:
    with pytest.raises(RuntimeError), _uow(clean_db) as uow:
        uow.outbox.add(Ping(n=1))
        raise RuntimeError("the handler failed")

    assert _rows(clean_db) == []


def _recording(joined: list[str]) -> Callable[..., None]:
    """`send_together`, remembering the string each call sends."""

    def send_together(connection: psycopg.Connection, statements: list[tuple[str, Any]]) -> None:
        cursor = psycopg.ClientCursor(connection)
        joined.append(";\n".join(cursor.mogrify(statement, params) for statement, params in statements))
        db.send_together(connection, statements)

    return send_together


def _statements_sent(uow: UnitOfWork) -> list[str]:
    """The SQL of each statement the unit of work's commit sent, in order (libpq's protocol trace)."""
    connection = uow._driver()
    with tempfile.TemporaryFile("w+") as trace:
        connection.pgconn.trace(trace.fileno())
        try:
            uow.commit()
        finally:
            connection.pgconn.untrace()
        trace.seek(0)
        lines = trace.read().splitlines()
    return [line for line in lines if "\tF\t" in line and ("\tParse\t" in line or "\tQuery\t" in line)]


def test_the_relay_is_woken_by_a_transaction_of_its_own_after_the_commit(
    clean_db: Runtime, listener: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction that writes the rows sends no notification: PostgreSQL holds a lock shared
    by every notifying transaction from its commit until its WAL flush is over, and handlers'
    commits queued on it. The wake-up follows the COMMIT, committed without waiting for a flush."""
    with _uow(clean_db) as uow:
        uow.execute("SELECT 1")  # the transaction has begun
        uow.outbox.add(Ping(n=1))
        joined: list[str] = []
        monkeypatch.setattr(uow_module, "send_together", _recording(joined))
        sent = _statements_sent(uow)

    # libpq's trace shortens long messages: the statements are read as the commit joined them
    assert len(sent) == 1, sent
    statements = [line.strip() for line in joined[0].split(";\n")]
    commit = statements.index("COMMIT")
    notifying = [i for i, statement in enumerate(statements) if "pg_notify" in statement]
    assert notifying == [commit + 1], statements  # nothing before the COMMIT notifies
    assert "synchronous_commit" in statements[notifying[0]]
    assert len(list(listener.notifies(timeout=2))) == 1
    assert _rows(clean_db) == [("1", True)]


def test_the_commit_sends_its_writes_rows_and_wake_up_as_one_query(
    clean_db: Runtime, listener: psycopg.Connection
) -> None:
    """One message to PostgreSQL for the whole commit (`shared.db.send_together`): a pipeline
    wrote each statement to the socket on its own and parsed it in Python on the way."""
    with _uow(clean_db) as uow:
        uow.execute("SELECT 1")
        uow.write_at_commit("SELECT %(n)s::int", {"n": 7})
        uow.outbox.add(Ping(n=1))
        uow.outbox.add(Ping(n=2))
        sent = _statements_sent(uow)

    assert len(sent) == 1 and "\tQuery\t" in sent[0], sent
    assert len(list(listener.notifies(timeout=2))) == 1
    assert sorted(_rows(clean_db)) == [("1", True), ("2", True)]


def test_the_wake_up_leaves_the_connection_committing_durably(clean_db: Runtime) -> None:
    """`synchronous_commit` is off for the wake-up's own transaction only."""
    with _uow(clean_db) as uow:
        uow.outbox.add(Ping(n=1))
        uow.commit()
        connection = uow._driver()
        assert connection.execute("SHOW synchronous_commit").fetchone() == ("on",)


def test_a_commit_that_fails_wakes_nobody(clean_db: Runtime, listener: psycopg.Connection) -> None:
    with pytest.raises(psycopg.DataError), _uow(clean_db) as uow:
        uow.outbox.add(Ping(n=1))
        uow.write_at_commit("SELECT 1 / 0")  # fails with the commit, in the same pipeline
        uow.commit()

    assert _rows(clean_db) == []
    assert list(listener.notifies(timeout=1)) == []
