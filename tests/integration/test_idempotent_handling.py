"""The idempotent handler core against real Postgres and RabbitMQ."""

from __future__ import annotations

import threading
import uuid

import dramatiq
from sqlalchemy import func, select

from shared import outcome
from shared.actors import run_message
from shared.dead_letters.models import DeadLetter
from shared.idempotency import ProcessedMessage
from shared.messages import Envelope
from shared.runtime import Runtime
from tasks.fulfilment.actors import place_order as place_order_spec
from tasks.fulfilment.messages import CancelOrder
from tasks.fulfilment.models import Order
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.services import wait_until


def _send(broker: dramatiq.Broker, kwargs: dict[str, object]) -> None:
    broker.get_actor("fulfilment.place_order").send_with_options(kwargs=kwargs)


def _count(runtime: Runtime, model: type) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_the_same_message_delivered_twice_has_exactly_one_effect(broker, worker, runtime):
    # Given one order message
    payload = place_order()
    kwargs = message_kwargs(payload, envelope_for(payload))
    # When it is delivered twice
    _send(broker, kwargs)
    _send(broker, kwargs)
    broker.join("fulfilment", timeout=10_000)
    worker.join()
    # Then exactly one order exists and the key was claimed once
    assert _count(runtime, Order) == 1
    assert _count(runtime, ProcessedMessage) == 1


def test_two_concurrent_deliveries_have_exactly_one_effect(clean_db):
    runtime = clean_db
    payload = place_order()
    kwargs = message_kwargs(payload, envelope_for(payload))
    start = threading.Barrier(2)
    outcomes: list[str | None] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        start.wait()
        try:
            run_message(place_order_spec, runtime, kwargs)
            outcomes.append(outcome.take())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(outcomes, key=str) == sorted([None, "duplicate_skipped"], key=str)
    assert _count(runtime, Order) == 1


def test_the_same_key_with_other_content_is_dead_lettered_as_a_conflict(broker, worker, runtime):
    payload = place_order()
    envelope = envelope_for(payload)
    _send(broker, message_kwargs(payload, envelope))
    broker.join("fulfilment", timeout=10_000)
    worker.join()

    changed = payload.model_copy(update={"item_price_minor": 9999})
    _send(broker, message_kwargs(changed, envelope))
    broker.join("fulfilment", timeout=10_000)
    worker.join()

    dead = wait_until(lambda: _dead_letters(runtime))
    assert dead[0].exception_type == "ConflictingReplay"
    with runtime.sessions() as session:
        assert session.get(Order, payload.order_id).item_price_minor == 2500  # type: ignore[union-attr]


def test_a_handler_that_fails_leaves_no_partial_write_and_is_retried_then_dead_lettered(
    broker, worker, runtime
):
    # A cancellation of an order not known yet fails (transiently) after its claim was written.
    payload = CancelOrder(order_id=uuid.uuid4())
    key = f"order-cancel:{payload.order_id}"
    envelope = Envelope(idempotency_key=key, kind=payload.kind, correlation_id="t")
    kwargs = {"envelope": envelope.model_dump(mode="json"), "payload": payload.model_dump(mode="json")}
    broker.get_actor("fulfilment.cancel_order").send_with_options(kwargs=kwargs)

    dead = wait_until(lambda: _dead_letters(runtime), timeout=30)
    assert dead[0].attempts == 3  # the first try and two retries (max_retries=2 in tests)
    assert "not known yet" in dead[0].reason
    assert dead[0].traceback and "Traceback" in dead[0].traceback
    assert _count(runtime, ProcessedMessage) == 0


def test_an_amount_beyond_bigint_is_dead_lettered_at_once_and_writes_nothing(broker, worker, runtime):
    # Before the shared amount cap, this passed validation and was retried as if Postgres were down.
    payload = place_order()
    kwargs = message_kwargs(payload, envelope_for(payload))
    kwargs["payload"]["item_price_minor"] = 2**70  # type: ignore[index]
    _send(broker, kwargs)

    dead = wait_until(lambda: _dead_letters(runtime))
    assert dead[0].attempts == 1
    assert dead[0].exception_type == "InvalidMessage"
    assert "item_price_minor" in dead[0].reason
    assert _count(runtime, Order) == 0
    assert _count(runtime, ProcessedMessage) == 0


def _dead_letters(runtime: Runtime) -> list[DeadLetter]:
    with runtime.sessions() as session:
        return list(session.scalars(select(DeadLetter)))
