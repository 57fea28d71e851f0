"""The outbox and its relay, against real Postgres and RabbitMQ."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from sqlalchemy import func, select

from shared import schedule
from shared.config import Settings
from shared.enqueue import enqueue
from shared.outbox import OutboxRow
from shared.runtime import Runtime
from tests.factories import place_order
from tests.fixtures.services import drain, queue_depth
from workers.relay import run_relay


def _enqueue_orders(runtime: Runtime, count: int) -> set[str]:
    keys = set()
    with runtime.sessions.begin() as session:
        for _ in range(count):
            payload = place_order()
            key = f"order-placed:{payload.order_id}"
            enqueue(session, payload, idempotency_key=key)
            keys.add(key)
    return keys


def _relay_until_empty(
    settings: Settings, runtime: Runtime, relays: int, *, done: Callable[[], bool] | None = None
) -> None:
    """Run relays until no due row is left unpublished (or until `done`)."""
    finished = done or (lambda: not _unpublished_due(runtime))

    async def main() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(run_relay(settings, stop)) for _ in range(relays)]
        while not finished():
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)

    asyncio.run(asyncio.wait_for(main(), timeout=60))


def _unpublished_due(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.published_at.is_(None), OutboxRow.available_at <= func.now())
            )
            or 0
        )


def test_two_relays_publish_every_outbox_row_exactly_once(settings, broker, runtime):
    # Given 1500 jobs in the outbox (three batches' worth)
    keys = _enqueue_orders(runtime, 1_500)
    # When two relays run at once until the outbox is empty
    _relay_until_empty(settings, runtime, relays=2)
    # Then the queue holds each message once
    bodies = drain(settings, "fulfilment")
    published = [json.loads(body)["kwargs"]["envelope"]["idempotency_key"] for body in bodies]
    assert len(published) == 1_500
    assert set(published) == keys


def test_a_job_enqueued_in_a_transaction_that_rolls_back_is_never_published(settings, broker, runtime):
    with runtime.sessions() as session:
        session.begin()
        enqueue(session, place_order(), idempotency_key="rolled-back")
        session.rollback()
    kept = _enqueue_orders(runtime, 1)

    _relay_until_empty(settings, runtime, relays=1)

    bodies = drain(settings, "fulfilment")
    assert [json.loads(b)["kwargs"]["envelope"]["idempotency_key"] for b in bodies] == list(kept)


def test_a_delayed_job_waits_in_the_outbox_and_is_published_when_due(settings, broker, runtime):
    with runtime.sessions.begin() as session:
        enqueue(session, place_order(), idempotency_key="later", delay_ms=60_000)
        enqueue(session, place_order(), idempotency_key="soon", delay_ms=300)

    _relay_until_empty(settings, runtime, relays=1, done=lambda: queue_depth(settings, "fulfilment") == 1)

    assert queue_depth(settings, "fulfilment.DQ") == 0
    (body,) = drain(settings, "fulfilment")
    message = json.loads(body)
    assert message["kwargs"]["envelope"]["idempotency_key"] == "soon"
    assert message["options"] == {}
    with runtime.sessions() as session:
        (kind,) = schedule.summary(session)
    assert (kind.kind, kind.count) == ("fulfilment.place_order", 1)


def test_a_relay_waiting_for_its_next_poll_is_woken_by_the_commit_of_a_due_job(settings, broker, runtime):
    # Given a relay whose poll would not come for a minute, idle after publishing a first job
    patient = settings.model_copy(update={"relay_poll_interval_ms": 60_000})
    _enqueue_orders(runtime, 1)

    async def main() -> None:
        stop = asyncio.Event()
        relay = asyncio.create_task(run_relay(patient, stop))
        while queue_depth(settings, "fulfilment") < 1:
            await asyncio.sleep(0.05)
        # When a second job commits
        _enqueue_orders(runtime, 1)
        # Then the relay publishes it long before its poll (the wait fails the test after 20 s)
        while queue_depth(settings, "fulfilment") < 2:
            await asyncio.sleep(0.05)
        stop.set()
        await relay

    asyncio.run(asyncio.wait_for(main(), timeout=20))


def test_a_relay_that_cannot_listen_polls_instead(settings, broker, runtime, caplog):
    # Given a direct URL the relay cannot reach (a pooler-only deployment misconfigured)
    unreachable = settings.model_copy(
        update={"database_direct_url": "postgresql+psycopg://postgres@127.0.0.1:9/nowhere"}
    )
    keys = _enqueue_orders(runtime, 3)

    _relay_until_empty(unreachable, runtime, relays=1)

    bodies = drain(settings, "fulfilment")
    assert {json.loads(body)["kwargs"]["envelope"]["idempotency_key"] for body in bodies} == keys
    assert "polling only" in caplog.text
