"""Malformed messages and unknown actors are dead-lettered at once with their reason."""

from __future__ import annotations

import json
import time
import uuid

from sqlalchemy import select

from shared.dead_letters.models import DeadLetter
from shared.messages import Envelope
from shared.runtime import Runtime
from tasks.fulfilment.messages import CancelOrder
from tasks.fulfilment.models import Order
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.services import publish_raw, queue_depth, wait_until


def _dramatiq_body(actor: str, kwargs: dict[str, object], **extra: object) -> bytes:
    message = {
        "queue_name": "fulfilment",
        "actor_name": actor,
        "args": [],
        "kwargs": kwargs,
        "options": {},
        "message_id": "8f14e45f-ceea-467f-a0e6-7c8b0d3e0a11",
        "message_timestamp": int(time.time() * 1000),
    }
    message.update(extra)
    return json.dumps(message).encode()


def _reasons(runtime: Runtime) -> dict[str, DeadLetter]:
    with runtime.sessions() as session:
        return {row.actor_name: row for row in session.scalars(select(DeadLetter))}


def _good_order_is_processed(runtime: Runtime, broker) -> None:
    payload = place_order()
    broker.get_actor("fulfilment.place_order").send_with_options(
        kwargs=message_kwargs(payload, envelope_for(payload))
    )
    wait_until(lambda: _order_exists(runtime, payload.order_id))


def _order_exists(runtime: Runtime, order_id) -> bool:
    with runtime.sessions() as session:
        return session.get(Order, order_id) is not None


def test_a_body_that_is_not_json_is_dead_lettered_with_its_reason_and_the_worker_goes_on(
    settings, broker, worker, runtime
):
    publish_raw(settings, "fulfilment", b"\xff this is not json")

    dead = wait_until(lambda: _reasons(runtime).get("circulate.undecodable"))
    assert dead.exception_type == "InvalidMessage"
    assert "not JSON" in dead.reason
    wait_until(lambda: queue_depth(settings, "fulfilment.XQ") == 1)
    _good_order_is_processed(runtime, broker)


def test_a_payload_that_fails_validation_is_dead_lettered_without_retries(settings, broker, worker, runtime):
    payload = place_order()
    kwargs = message_kwargs(payload, envelope_for(payload))
    kwargs["payload"]["item_price_minor"] = "twelve pounds"  # type: ignore[index]
    publish_raw(settings, "fulfilment", _dramatiq_body("fulfilment.place_order", kwargs))

    dead = wait_until(lambda: _reasons(runtime).get("fulfilment.place_order"))
    assert dead.exception_type == "InvalidMessage"
    assert "item_price_minor" in dead.reason
    assert dead.attempts == 1
    wait_until(lambda: queue_depth(settings, "fulfilment.XQ") == 1)
    _good_order_is_processed(runtime, broker)


def test_a_message_for_an_unknown_actor_is_dead_lettered_with_its_reason(settings, broker, worker, runtime):
    publish_raw(settings, "fulfilment", _dramatiq_body("fulfilment.no_such_actor", {}))

    dead = wait_until(lambda: _reasons(runtime).get("fulfilment.no_such_actor"))
    assert dead.exception_type == "ActorNotFound"
    wait_until(lambda: queue_depth(settings, "fulfilment.XQ") == 1)
    _good_order_is_processed(runtime, broker)


def test_options_a_producer_sets_outside_the_allowlist_are_ignored(settings, broker, worker, runtime):
    # max_retries=1000 would keep a failing message alive for days; it must be dropped on decode.
    # A cancellation of an order never placed fails on every try (the order is not known yet).
    cancel = CancelOrder(order_id=uuid.uuid4())
    envelope = Envelope(
        idempotency_key=f"order-cancel:{cancel.order_id}", kind=cancel.kind, correlation_id="t"
    )
    body = _dramatiq_body(
        "fulfilment.cancel_order",
        {"envelope": envelope.model_dump(mode="json"), "payload": cancel.model_dump(mode="json")},
        options={"max_retries": 1000, "on_retry_exhausted": "fulfilment.place_order"},
    )
    publish_raw(settings, "fulfilment", body)

    dead = wait_until(lambda: _reasons(runtime).get("fulfilment.cancel_order"), timeout=30)
    assert dead.attempts == 3
    assert "max_retries" not in dead.message["options"]
