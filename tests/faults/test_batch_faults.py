"""A worker applying a backlog in batches (`shared.batch`), killed with SIGKILL part way through."""

from __future__ import annotations

import signal

import dramatiq
import pytest
from sqlalchemy import select

from shared.dead_letters.models import DeadLetter
from shared.idempotency import ProcessedMessage
from tasks.fulfilment.models import Order
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.processes import count_rows, fulfilment_worker, kill_group
from tests.fixtures.services import queue_depth, wait_until

pytestmark = pytest.mark.timeout(180)

ORDERS = 200


def test_a_worker_killed_mid_backlog_loses_nothing_and_applies_each_order_once(
    settings, broker, runtime, tmp_path
):
    # Given a backlog of 200 orders, applied in batches by a worker with 4 threads
    actor: dramatiq.Actor = broker.get_actor("fulfilment.place_order")
    payloads = [place_order() for _ in range(ORDERS)]
    for payload in payloads:
        actor.send_with_options(kwargs=message_kwargs(payload, envelope_for(payload)))

    # When the worker is killed with SIGKILL part way through (batches committed, in flight, unacked)
    with fulfilment_worker(settings, log=tmp_path / "w1.log", threads=4) as first:
        wait_until(lambda: count_rows(runtime, Order) >= 30, timeout=60)
        kill_group(first, signal.SIGKILL)
    killed_at = count_rows(runtime, Order)

    # Then a second worker finishes: every order exists exactly once, every key is claimed once,
    # and the messages redelivered after committed batches were skipped as duplicates, not failed
    with fulfilment_worker(settings, log=tmp_path / "w2.log", threads=4):
        wait_until(lambda: count_rows(runtime, Order) == ORDERS, timeout=120)
        wait_until(lambda: queue_depth(settings, "fulfilment") == 0, timeout=60)
    assert killed_at < ORDERS
    with runtime.sessions() as session:
        assert set(session.scalars(select(Order.id))) == {p.order_id for p in payloads}
    assert count_rows(runtime, ProcessedMessage) == ORDERS
    assert count_rows(runtime, DeadLetter) == 0
