"""The outbox and its relay, against real Postgres and RabbitMQ."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import func, select

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


def _relay_until_empty(settings: Settings, runtime: Runtime, relays: int) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(run_relay(settings, stop)) for _ in range(relays)]
        while _unpublished(runtime):
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)

    asyncio.run(asyncio.wait_for(main(), timeout=60))


def _unpublished(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(OutboxRow).where(OutboxRow.published_at.is_(None))
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


def test_a_delayed_job_goes_to_the_delay_queue_with_its_eta(settings, broker, runtime):
    with runtime.sessions.begin() as session:
        enqueue(session, place_order(), idempotency_key="later", delay_ms=60_000)

    _relay_until_empty(settings, runtime, relays=1)

    assert queue_depth(settings, "fulfilment") == 0
    (body,) = drain(settings, "fulfilment.DQ")
    assert json.loads(body)["options"]["eta"] > 0
