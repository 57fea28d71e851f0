"""Workers killed with SIGKILL mid-transaction, and stopped with SIGTERM mid-stream."""

from __future__ import annotations

import signal

import dramatiq
import pytest
from sqlalchemy import select, text

from shared.idempotency import ProcessedMessage
from shared.runtime import Runtime
from tasks.fulfilment.models import Order
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.processes import count_rows, fulfilment_worker, kill_group
from tests.fixtures.services import queue_depth, wait_until

pytestmark = pytest.mark.timeout(120)


def _worker_waits_on_a_lock(runtime: Runtime) -> bool:
    with runtime.engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND query ILIKE '%orders%'"
            )
        ).scalar()
    return bool(waiting)


def test_a_worker_killed_mid_transaction_leaves_no_partial_write_and_the_message_is_redone(
    settings, broker, runtime, tmp_path
):
    # Given a message whose handler will block inside its transaction (the test holds a lock)
    payload = place_order()
    broker.get_actor("fulfilment.place_order").send_with_options(
        kwargs=message_kwargs(payload, envelope_for(payload))
    )
    with runtime.engine.connect() as blocker:
        blocker.execute(text("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"))
        with fulfilment_worker(settings, log=tmp_path / "w1.log", threads=2) as first:
            wait_until(lambda: _worker_waits_on_a_lock(runtime), timeout=30)
            # When the worker is killed with SIGKILL while its transaction has claimed the key
            kill_group(first, signal.SIGKILL)
        blocker.rollback()

    # Then nothing of that transaction was written
    assert count_rows(runtime, ProcessedMessage) == 0
    assert count_rows(runtime, Order) == 0
    # And a new worker redoes the message exactly once
    with fulfilment_worker(settings, log=tmp_path / "w2.log", threads=2):
        wait_until(lambda: count_rows(runtime, Order) == 1, timeout=30)
        wait_until(lambda: queue_depth(settings, "fulfilment") == 0, timeout=30)
    assert count_rows(runtime, ProcessedMessage) >= 1
    assert count_rows(runtime, Order) == 1


def test_sigterm_finishes_or_requeues_in_flight_messages_and_loses_none(settings, broker, runtime, tmp_path):
    # Given 300 orders queued
    actor: dramatiq.Actor = broker.get_actor("fulfilment.place_order")
    payloads = [place_order() for _ in range(300)]
    for payload in payloads:
        actor.send_with_options(kwargs=message_kwargs(payload, envelope_for(payload)))

    # When a worker is stopped with SIGTERM part way through
    with fulfilment_worker(settings, log=tmp_path / "w1.log", threads=4) as first:
        wait_until(lambda: count_rows(runtime, Order) >= 20, timeout=60)
        kill_group(first, signal.SIGTERM)
    stopped_at = count_rows(runtime, Order)

    # Then a second worker finishes the rest, and every order exists exactly once
    with fulfilment_worker(settings, log=tmp_path / "w2.log", threads=4):
        wait_until(lambda: count_rows(runtime, Order) == 300, timeout=90)
    assert stopped_at < 300 or count_rows(runtime, Order) == 300
    with runtime.sessions() as session:
        ids = set(session.scalars(select(Order.id)))
    assert ids == {p.order_id for p in payloads}
