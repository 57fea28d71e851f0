"""A backlog applied in batches (`shared.batch`): every guarantee of the one-message path holds."""

from __future__ import annotations

import uuid

import dramatiq
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text

from shared.dead_letters.models import DeadLetter
from shared.idempotency import ProcessedMessage
from shared.messages import Envelope
from shared.runtime import Runtime
from tasks.fulfilment.messages import CancelOrder
from tasks.fulfilment.models import Order
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.services import wait_until

ORDERS = 40


def _succeeded() -> float:
    labels = {"queue": "fulfilment", "actor": "fulfilment.place_order", "outcome": "succeeded"}
    return REGISTRY.get_sample_value("circulate_messages_total", labels) or 0.0


def _duplicates() -> float:
    labels = {"queue": "fulfilment", "actor": "fulfilment.place_order", "outcome": "duplicate_skipped"}
    return REGISTRY.get_sample_value("circulate_messages_total", labels) or 0.0


def _count(runtime: Runtime, model: type) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_backlog_is_applied_in_batches_with_every_outcome_as_if_one_by_one(broker, runtime):
    place = broker.get_actor("fulfilment.place_order")
    succeeded, duplicates = _succeeded(), _duplicates()
    # Given a backlog: 40 orders, one of them delivered twice, one key reused for other content,
    # and a cancellation whose handler fails (the order is unknown) among them
    payloads = [place_order() for _ in range(ORDERS)]
    envelopes = [envelope_for(p) for p in payloads]
    for index, (payload, envelope) in enumerate(zip(payloads, envelopes, strict=True)):
        place.send_with_options(kwargs=message_kwargs(payload, envelope))
        if index == 10:
            place.send_with_options(kwargs=message_kwargs(payload, envelope))
        if index == 20:
            reused = payloads[5].model_copy(update={"item_price_minor": 9999})
            place.send_with_options(kwargs=message_kwargs(reused, envelopes[5]))
        if index == 30:
            _send_cancel_of_an_unknown_order(broker, key_prefix="cancel")
    # When a worker starts on it
    dead = _drain(broker, runtime, dead_letters=2)
    # Then each order exists once, with its own content, and its key was claimed once
    assert _count(runtime, Order) == ORDERS
    assert _count(runtime, ProcessedMessage) == ORDERS
    with runtime.sessions() as session:
        assert session.get(Order, payloads[5].order_id).item_price_minor == payloads[5].item_price_minor  # type: ignore[union-attr]
        # several keys share a transaction (xmin): the backlog was applied in batches
        transactions = session.scalar(text("SELECT count(DISTINCT xmin::text) FROM processed_messages"))
    assert transactions is not None and transactions < ORDERS
    # and the failures end as they would alone: a conflict at once, the cancellation after its retries
    assert sorted((d.actor_name, d.exception_type, d.attempts) for d in dead) == [
        ("fulfilment.cancel_order", "OrderNotYetKnown", 3),
        ("fulfilment.place_order", "ConflictingReplay", 1),
    ]
    # and every outcome is counted once
    assert _succeeded() - succeeded == ORDERS
    assert _duplicates() - duplicates == 1


def _observed(metric: str) -> float:
    labels = {"queue": "fulfilment", "actor": "fulfilment.place_order"}
    return REGISTRY.get_sample_value(f"{metric}_count", labels) or 0.0


def test_messages_of_an_abandoned_batch_are_observed_once_each(broker, runtime):
    place = broker.get_actor("fulfilment.place_order")
    handling = _observed("circulate_message_handling_seconds")
    waits = _observed("circulate_message_queue_wait_seconds")
    # Given a backlog whose batches are abandoned: among 40 orders, a cancellation whose handler
    # fails (its order is unknown) after its batch-mates' handlers ran
    for index in range(40):
        payload = place_order()
        place.send_with_options(kwargs=message_kwargs(payload, envelope_for(payload)))
        if index in (10, 30):
            # its key sorts after the orders': it runs last in its batch, after their hooks (`apply_batch`)
            _send_cancel_of_an_unknown_order(broker, key_prefix="z-cancel")
    # When a worker drains it
    _drain(broker, runtime, dead_letters=2)
    # Then each order's delivery was timed and its queue wait observed once, batched or not
    assert _observed("circulate_message_handling_seconds") - handling == 40
    assert _observed("circulate_message_queue_wait_seconds") - waits == 40


def _send_cancel_of_an_unknown_order(broker: dramatiq.Broker, *, key_prefix: str) -> None:
    """A cancellation whose handler fails (`OrderNotYetKnown`) until it is dead-lettered."""
    cancel = CancelOrder(order_id=uuid.uuid4())
    envelope = Envelope(
        idempotency_key=f"{key_prefix}:{cancel.order_id}", kind=cancel.kind, correlation_id="t"
    )
    broker.get_actor("fulfilment.cancel_order").send_with_options(
        kwargs={"envelope": envelope.model_dump(mode="json"), "payload": cancel.model_dump(mode="json")}
    )


def _drain(broker: dramatiq.Broker, runtime: Runtime, *, dead_letters: int) -> list[DeadLetter]:
    """Run a worker until `dead_letters` messages are dead and the queue is empty; the dead."""
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        dead = wait_until(
            lambda: len(_dead_letters(runtime)) == dead_letters and _dead_letters(runtime), timeout=30
        )
        broker.join("fulfilment", timeout=20_000)
        worker.join()
    finally:
        worker.stop()
    return dead


def _dead_letters(runtime: Runtime) -> list[DeadLetter]:
    with runtime.sessions() as session:
        return list(session.scalars(select(DeadLetter)))
