"""One relay pass (`shared.relay.relay_once`) against real Postgres and RabbitMQ: what it marks."""

from __future__ import annotations

import asyncio
import tempfile
import uuid

import psycopg

from shared.broker_nodes import blocking_connection
from shared.config import Settings
from shared.db import connect_options, libpq_url
from shared.relay import PassResult, open_channel, relay_once
from tests.fixtures.services import drain


def _insert(settings: Settings, queue: str, body: bytes) -> uuid.UUID:
    message_id = uuid.uuid4()
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO outbox (message_id, queue_name, actor_name, body) VALUES (%s, %s, 'test', %s)",
            (message_id, queue, body),
        )
    return message_id


def _pass(settings: Settings) -> PassResult:
    async def main() -> PassResult:
        connection, channel = await open_channel(settings.amqp_urls)
        try:
            async with await psycopg.AsyncConnection.connect(
                libpq_url(settings), **connect_options(settings)
            ) as conn:
                return await relay_once(conn, channel, limit=10)
        finally:
            await connection.close()

    return asyncio.run(main())


def test_a_pass_marks_what_the_broker_confirmed_and_leaves_an_unroutable_row_for_later(settings, clean_db):
    # Given a row for a queue that exists and one for a queue that does not
    drain(settings, "fulfilment")
    routed = _insert(settings, "fulfilment", b'{"n":1}')
    unroutable = _insert(settings, "no-such-queue", b'{"n":2}')
    # When one pass runs
    result = _pass(settings)
    # Then both were claimed, only the routed one was confirmed and marked
    assert result == PassResult(claimed=2, published=1)
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        published = dict(conn.execute("SELECT message_id, published_at IS NOT NULL FROM outbox").fetchall())
    assert published == {routed: True, unroutable: False}
    # And the message is the row's body, persistent JSON under the row's message id
    connection = blocking_connection(settings)
    try:
        method, properties, body = connection.channel().basic_get("fulfilment", auto_ack=True)
    finally:
        connection.close()
    assert method is not None and body == b'{"n":1}'
    assert (properties.message_id, properties.delivery_mode, properties.content_type) == (
        str(routed),
        2,
        "application/json",
    )
    assert properties.timestamp > 0


def _traced_pass(settings: Settings) -> tuple[PassResult, list[str]]:
    """One pass: its result and the types of the messages its connection sent (libpq's trace)."""

    async def main() -> tuple[PassResult, list[str]]:
        connection, channel = await open_channel(settings.amqp_urls)
        try:
            async with await psycopg.AsyncConnection.connect(
                libpq_url(settings), **connect_options(settings)
            ) as conn:
                with tempfile.TemporaryFile("w+") as trace:
                    conn.pgconn.trace(trace.fileno())
                    result = await relay_once(conn, channel, limit=10)
                    conn.pgconn.untrace()
                    trace.seek(0)
                    sent = [line.split("\t")[3] for line in trace.read().splitlines() if "\tF\t" in line]
                return result, sent
        finally:
            await connection.close()

    return asyncio.run(main())


def test_a_pass_is_two_queries_begin_with_the_claim_and_the_mark_with_the_commit(settings, clean_db):
    """Not psycopg's pipeline: it wrote and parsed each statement on its own (BEGIN, the claim,
    the mark, COMMIT and two Syncs), a fifth of the relay's CPU at 50 orders/s."""
    drain(settings, "fulfilment")
    _insert(settings, "fulfilment", b'{"n":1}')
    result, sent = _traced_pass(settings)
    assert result == PassResult(claimed=1, published=1)
    assert sent == ["Query", "Query"], sent
