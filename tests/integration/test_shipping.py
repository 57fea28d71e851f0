"""Shipping through a real worker, RabbitMQ, Postgres and the carrier sandbox over HTTP."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from shared.dead_letters.models import DeadLetter
from shared.messages import Envelope, Payload
from shared.outbox import OutboxRow
from shared.runtime import Runtime
from tasks.shipping import carrier
from tasks.shipping.messages import BuyLabel, VoidLabel
from tasks.shipping.models import Label
from tests.fixtures import sandbox as sandbox_fixtures
from tests.fixtures.sandbox import Sandbox, carrier_for
from tests.fixtures.services import wait_until

webhook_receiver = sandbox_fixtures.webhook_receiver
sandbox = sandbox_fixtures.sandbox


@pytest.fixture
def worker_adapters(worker_adapters: dict[str, Any], sandbox: Sandbox) -> dict[str, Any]:
    """The default adapters plus a carrier client pointed at this test's sandbox."""
    return {**worker_adapters, "carrier": lambda settings: carrier_for(sandbox)}


def contact(name: str, *, line1: str = "1 Loom Street", country: str = "GB") -> dict[str, Any]:
    return {
        "name": name,
        "address": {"line1": line1, "city": "Leeds", "postcode": "LS1 1AA", "country": country},
    }


def buy_label(*, ship_to_line1: str = "22 Thread Road") -> BuyLabel:
    return BuyLabel(
        order_id=uuid.uuid4(),
        ship_from=contact("Ada Seller"),  # type: ignore[arg-type]
        ship_to=contact("Bo Buyer", line1=ship_to_line1),  # type: ignore[arg-type]
        weight_grams=800,
    )


def send(broker, payload: Payload, *, key: str | None = None) -> None:
    envelope = Envelope(
        idempotency_key=key or f"test:{payload.kind}:{uuid.uuid4()}", kind=payload.kind, correlation_id="test"
    )
    kwargs = {"envelope": envelope.model_dump(mode="json"), "payload": payload.model_dump(mode="json")}
    broker.get_actor(payload.kind).send_with_options(kwargs=kwargs)


def settle(broker, worker) -> None:
    """Wait until the queue is empty and the worker idle, retries included."""
    broker.join("shipping", timeout=10_000)
    worker.join()


def label_of(runtime: Runtime, order_id: uuid.UUID) -> Label | None:
    with runtime.sessions() as session:
        return session.get(Label, order_id)


def outbox_payloads(runtime: Runtime, kind: str) -> list[dict[str, Any]]:
    with runtime.sessions() as session:
        bodies = session.scalars(
            select(OutboxRow.body).where(OutboxRow.actor_name == kind).order_by(OutboxRow.id)
        )
        return [json.loads(body)["kwargs"]["payload"] for body in bodies]


def dead_letters(runtime: Runtime) -> list[DeadLetter]:
    with runtime.sessions() as session:
        return list(session.scalars(select(DeadLetter)))


def test_a_label_bought_through_the_worker_is_stored_and_announced_to_fulfilment(
    broker, worker, runtime, sandbox: Sandbox
):
    msg = buy_label()

    send(broker, msg)

    label = wait_until(lambda: label_of(runtime, msg.order_id))
    assert (label.status, label.carrier, label.cost_minor, label.currency) == (
        "purchased",
        "sandbox-post",
        299,
        "GBP",
    )
    assert sandbox.label(label.label_id)["reference"] == str(msg.order_id)
    [recorded] = outbox_payloads(runtime, "fulfilment.record_label")
    assert recorded["order_id"] == str(msg.order_id)
    assert recorded["label_id"] == label.label_id
    assert recorded["tracking_number"] == label.tracking_number


def test_the_same_buy_label_delivered_twice_buys_one_label(broker, worker, runtime, sandbox: Sandbox):
    msg = buy_label()

    send(broker, msg, key="order-1:buy-label")
    send(broker, msg, key="order-1:buy-label")
    wait_until(lambda: label_of(runtime, msg.order_id))
    settle(broker, worker)

    assert sandbox.stats()["labels_purchased"] == 1
    assert len(outbox_payloads(runtime, "fulfilment.record_label")) == 1


def test_a_buy_label_resent_under_another_key_announces_the_stored_label_without_buying_again(
    broker, worker, runtime, sandbox: Sandbox
):
    # Given a label already bought for the order
    msg = buy_label()
    send(broker, msg)
    label = wait_until(lambda: label_of(runtime, msg.order_id))
    # When a producer resends the command under a new idempotency key
    send(broker, msg)
    wait_until(lambda: len(outbox_payloads(runtime, "fulfilment.record_label")) == 2)
    settle(broker, worker)
    # Then the carrier was asked once and fulfilment hears about the same label again
    assert sandbox.stats()["purchase_requests"] == 1
    assert {p["label_id"] for p in outbox_payloads(runtime, "fulfilment.record_label")} == {label.label_id}


def test_a_burst_of_carrier_5xx_is_retried_until_the_label_is_bought(
    broker, worker, runtime, sandbox: Sandbox
):
    # Four failures: more than the client's three quick attempts, so the broker retries too.
    sandbox.set_faults(fail_next=4, mode="5xx")
    msg = buy_label()

    send(broker, msg)

    wait_until(lambda: label_of(runtime, msg.order_id))
    settle(broker, worker)
    stats = sandbox.stats()
    assert (stats["purchase_requests"], stats["labels_purchased"]) == (5, 1)
    assert dead_letters(runtime) == []


def test_a_carrier_that_stays_down_dead_letters_the_purchase_after_its_retries(
    broker, worker, runtime, sandbox: Sandbox
):
    sandbox.set_faults(fail_next=1_000, mode="5xx")
    msg = buy_label()

    send(broker, msg)

    [dead] = wait_until(lambda: dead_letters(runtime))
    assert dead.exception_type == "CarrierUnavailable"
    assert dead.attempts == 3  # the first try and two retries (max_retries=2 in tests)
    assert label_of(runtime, msg.order_id) is None
    assert outbox_payloads(runtime, "fulfilment.record_label") == []
    assert sandbox.stats()["labels_purchased"] == 0


def test_an_address_the_carrier_refuses_is_reported_to_fulfilment_once_and_never_retried(
    broker, worker, runtime, sandbox: Sandbox
):
    msg = buy_label(ship_to_line1="13 Invalid Avenue")

    send(broker, msg)

    [rejection] = wait_until(lambda: outbox_payloads(runtime, "fulfilment.record_label_rejection"))
    settle(broker, worker)
    assert rejection["order_id"] == str(msg.order_id)
    assert "ship_to.line1" in rejection["reason"]
    assert "invalid avenue" not in rejection["reason"].lower()  # the address itself never travels
    assert label_of(runtime, msg.order_id) is None
    assert sandbox.stats()["purchase_requests"] == 1
    assert dead_letters(runtime) == []


def test_voiding_a_label_voids_it_at_the_carrier_once(broker, worker, runtime, sandbox: Sandbox):
    # Given a bought label
    msg = buy_label()
    send(broker, msg)
    label = wait_until(lambda: label_of(runtime, msg.order_id))
    # When the order is cancelled, and the void is asked for twice
    send(broker, VoidLabel(order_id=msg.order_id, reason="buyer_request"))
    send(broker, VoidLabel(order_id=msg.order_id, reason="buyer_request"))
    wait_until(lambda: label_of(runtime, msg.order_id).status == "voided")  # type: ignore[union-attr]
    settle(broker, worker)
    # Then the carrier voided it once and the row says why
    voided = label_of(runtime, msg.order_id)
    assert voided is not None and voided.voided_at is not None and voided.void_reason == "buyer_request"
    assert sandbox.stats()["labels_voided"] == 1
    assert sandbox.label(label.label_id)["status"] == "voided"


def test_voiding_an_order_without_a_label_does_nothing(broker, worker, runtime, sandbox: Sandbox):
    order_id = uuid.uuid4()

    send(broker, VoidLabel(order_id=order_id, reason="buyer_request"))
    settle(broker, worker)

    assert label_of(runtime, order_id) is None
    assert sandbox.stats()["labels_voided"] == 0
    assert dead_letters(runtime) == []


def test_a_label_cannot_be_bought_again_once_it_was_voided(broker, worker, runtime, sandbox: Sandbox):
    msg = buy_label()
    send(broker, msg)
    wait_until(lambda: label_of(runtime, msg.order_id))
    send(broker, VoidLabel(order_id=msg.order_id, reason="buyer_request"))
    wait_until(lambda: label_of(runtime, msg.order_id).status == "voided")  # type: ignore[union-attr]

    send(broker, msg)

    [dead] = wait_until(lambda: dead_letters(runtime))
    assert dead.exception_type == "LabelAlreadyVoided"
    assert dead.attempts == 1
    assert len(outbox_payloads(runtime, "fulfilment.record_label")) == 1


def test_a_purchase_whose_commit_was_lost_is_not_bought_again_on_redelivery(
    broker, worker, runtime, sandbox: Sandbox
):
    # Given a worker that bought the label and died before its commit (no row, no outbox)
    msg = buy_label()
    with carrier_for(sandbox) as client:
        first = client.buy_label(
            idempotency_key=f"label:{msg.order_id}",
            reference=str(msg.order_id),
            ship_from=carrier.Address(name="Ada Seller", **msg.ship_from.address.model_dump()),
            ship_to=carrier.Address(name="Bo Buyer", **msg.ship_to.address.model_dump()),
            weight_grams=msg.weight_grams,
        )
    # When the message is delivered again
    send(broker, msg)
    label = wait_until(lambda: label_of(runtime, msg.order_id))
    # Then the carrier hands back the first label instead of selling a second
    assert label.label_id == first.label_id
    assert sandbox.stats()["labels_purchased"] == 1


def test_a_label_is_bought_once_the_refused_address_is_corrected(broker, worker, runtime, sandbox: Sandbox):
    # Given a purchase refused for its address
    refused = buy_label(ship_to_line1="13 Invalid Avenue")
    send(broker, refused)
    wait_until(lambda: outbox_payloads(runtime, "fulfilment.record_label_rejection"))
    # When fulfilment asks again with the corrected address
    corrected = refused.model_copy(update={"ship_to": buy_label().ship_to})
    send(broker, corrected)
    # Then the label is bought under the same order
    label = wait_until(lambda: label_of(runtime, refused.order_id))
    assert label.status == "purchased"
    assert sandbox.stats()["labels_purchased"] == 1
