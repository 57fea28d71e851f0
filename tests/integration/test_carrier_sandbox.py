"""The carrier and push clients against the real sandbox over HTTP: retries, faults, idempotency."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import httpx
import pytest

from tasks.notifications.push import PushRejected, PushUnavailable
from tasks.shipping.carrier import (
    Address,
    AddressRejected,
    CarrierClient,
    CarrierRejected,
    CarrierUnavailable,
    PurchasedLabel,
)
from tasks.shipping.webhooks import SIGNATURE_HEADER, verify
from tests.fixtures import sandbox as fixtures
from tests.fixtures.sandbox import (
    WEBHOOK_SECRET,
    Sandbox,
    WebhookReceiver,
    carrier_for,
    push_client_for,
    running_sandbox,
)
from workers.harness.sandbox.state import FaultConfig, SandboxConfig

webhook_receiver = fixtures.webhook_receiver
sandbox = fixtures.sandbox
carrier = fixtures.carrier

SELLER = Address(name="Ada Seller", line1="1 Loom Street", city="Leeds", postcode="LS1 1AA", country="GB")
BUYER = Address(name="Bo Buyer", line1="22 Thread Road", city="Bristol", postcode="BS1 2BB", country="GB")


def buy(
    client: CarrierClient,
    *,
    key: str = "order-1:label",
    reference: str = "order-1",
    ship_to: Address = BUYER,
    weight_grams: int = 800,
) -> PurchasedLabel:
    return client.buy_label(
        idempotency_key=key, reference=reference, ship_from=SELLER, ship_to=ship_to, weight_grams=weight_grams
    )


def test_a_label_bought_twice_with_the_same_key_is_bought_once(
    sandbox: Sandbox, carrier: CarrierClient
) -> None:
    first = buy(carrier)
    second = buy(carrier)

    assert second == first
    assert first == PurchasedLabel(
        label_id=first.label_id,
        tracking_number=first.tracking_number,
        label_url=first.label_url,
        cost_minor=299,
        currency="GBP",
        carrier="sandbox-post",
    )
    assert sandbox.stats()["labels_purchased"] == 1
    assert sandbox.stats()["purchase_requests"] == 2


def test_a_key_reused_with_a_different_order_is_refused_as_a_conflict(carrier: CarrierClient) -> None:
    buy(carrier)

    with pytest.raises(CarrierRejected) as caught:
        buy(carrier, weight_grams=2500)

    assert (caught.value.status_code, caught.value.error) == (409, "idempotency_conflict")


def test_server_errors_are_retried_inside_the_client_until_the_purchase_succeeds(sandbox: Sandbox) -> None:
    statuses: list[int | None] = []
    sandbox.set_faults(fail_next=2, mode="5xx")

    with carrier_for(sandbox, on_response=lambda op, status, _s: statuses.append(status)) as client:
        label = buy(client)

    assert label.carrier == "sandbox-post"
    assert statuses == [503, 503, 201]
    assert sandbox.stats()["labels_purchased"] == 1


def test_a_short_retry_after_is_waited_out_before_retrying(sandbox: Sandbox) -> None:
    sent_at: list[float] = []
    sandbox.set_faults(fail_next=1, mode="429", retry_after_seconds=1)

    with carrier_for(
        sandbox, max_retry_wait_s=2.0, on_response=lambda *_: sent_at.append(time.monotonic())
    ) as c:
        buy(c)

    assert len(sent_at) == 2
    assert sent_at[1] - sent_at[0] >= 0.95  # the Retry-After, not the 0.1 s backoff


def test_a_retry_after_longer_than_the_cap_is_left_to_the_broker(sandbox: Sandbox) -> None:
    sandbox.set_faults(fail_next=1, mode="429", retry_after_seconds=30)

    with carrier_for(sandbox, max_retry_wait_s=2.0) as client, pytest.raises(CarrierUnavailable) as caught:
        buy(client)

    assert caught.value.delay_ms == 30_000
    assert sandbox.stats()["purchase_requests"] == 1


def test_a_carrier_that_stays_down_raises_carrier_unavailable(
    sandbox: Sandbox, carrier: CarrierClient
) -> None:
    sandbox.set_faults(fail_next=100, mode="5xx")

    with pytest.raises(CarrierUnavailable, match="gave up after attempt 3 of 3") as caught:
        buy(carrier)

    assert caught.value.delay_ms is None
    assert sandbox.stats()["purchase_requests"] == 3


def test_a_carrier_that_does_not_answer_in_time_raises_carrier_unavailable(sandbox: Sandbox) -> None:
    statuses: list[int | None] = []
    sandbox.set_faults(fail_next=1, mode="timeout", timeout_seconds=0.5)

    options = {
        "timeout_s": 0.1,
        "retry_attempts": 1,
        "on_response": lambda _o, status, _s: statuses.append(status),
    }
    with carrier_for(sandbox, **options) as client, pytest.raises(CarrierUnavailable, match="timed out"):
        buy(client)

    assert statuses == [None]


@pytest.mark.parametrize(
    ("ship_to", "field"),
    [
        (replace(BUYER, line1="invalid street 9"), "ship_to.line1"),
        (replace(BUYER, country="JP"), "ship_to.country"),
    ],
)
def test_an_undeliverable_address_is_rejected_without_retrying(
    sandbox: Sandbox, carrier: CarrierClient, ship_to: Address, field: str
) -> None:
    with pytest.raises(AddressRejected) as caught:
        buy(carrier, ship_to=ship_to)

    assert caught.value.field == field
    assert caught.value.message
    assert sandbox.stats()["purchase_requests"] == 1
    assert sandbox.stats()["labels_purchased"] == 0


def test_a_label_can_be_voided_twice(sandbox: Sandbox, carrier: CarrierClient) -> None:
    label = buy(carrier)

    carrier.void_label(label.label_id)
    carrier.void_label(label.label_id)

    assert sandbox.label(label.label_id)["status"] == "voided"
    assert sandbox.stats()["labels_voided"] == 1


def test_voiding_an_unknown_label_is_refused(carrier: CarrierClient) -> None:
    with pytest.raises(CarrierRejected) as caught:
        carrier.void_label("lbl_does_not_exist")

    assert caught.value.status_code == 404


def test_a_shipped_label_cannot_be_voided(sandbox: Sandbox, carrier: CarrierClient) -> None:
    label = buy(carrier)
    sandbox.send_event(label.label_id, "shipped")

    with pytest.raises(CarrierRejected) as caught:
        carrier.void_label(label.label_id)

    assert (caught.value.status_code, caught.value.error) == (409, "already_shipped")


def test_the_carrier_refuses_requests_without_the_right_api_key(sandbox: Sandbox) -> None:
    with carrier_for(sandbox, api_key="wrong") as client, pytest.raises(CarrierRejected) as caught:
        buy(client)
    anonymous = httpx.post(f"{sandbox.url}/v1/labels", json={}, headers={"Idempotency-Key": "k"})

    assert caught.value.status_code == 401
    assert anonymous.status_code == 401
    assert sandbox.stats()["labels_purchased"] == 0


def test_a_purchase_without_an_idempotency_key_is_refused(sandbox: Sandbox) -> None:
    response = sandbox.control.post("/v1/labels", json={"reference": "order-1"})

    assert response.status_code == 400
    assert response.json()["error"] == "missing_idempotency_key"


def test_a_reference_configured_to_fail_keeps_failing_until_faults_are_cleared() -> None:
    config = SandboxConfig(api_key="k", faults=FaultConfig(fail_references=("order-cursed",)))

    with running_sandbox(config) as running, carrier_for(running, retry_attempts=2) as client:
        with pytest.raises(CarrierUnavailable):
            buy(client, reference="order-cursed")
        buy(client, key="order-2:label", reference="order-2")
        running.clear_faults()
        buy(client, reference="order-cursed")

        assert running.stats()["labels_purchased"] == 2


def test_a_tracking_event_arrives_as_a_signed_webhook(
    sandbox: Sandbox, carrier: CarrierClient, webhook_receiver: WebhookReceiver
) -> None:
    label = buy(carrier)

    outcome = sandbox.send_event(label.label_id, "shipped")

    assert (outcome["delivered"], outcome["status_code"]) == (True, 204)
    [webhook] = webhook_receiver.received
    verify(WEBHOOK_SECRET, webhook.body, webhook.headers[SIGNATURE_HEADER], now=int(time.time()))
    payload = json.loads(webhook.body)
    assert payload["event_id"] == outcome["event_id"]
    assert (payload["label_id"], payload["reference"], payload["event"]) == (
        label.label_id,
        "order-1",
        "shipped",
    )
    assert payload["tracking_number"] == label.tracking_number
    assert sandbox.stats()["webhooks_sent"] == 1


def test_a_failed_webhook_is_delivered_again_with_the_same_event_id(
    sandbox: Sandbox, carrier: CarrierClient, webhook_receiver: WebhookReceiver
) -> None:
    label = buy(carrier)
    webhook_receiver.fail_next = 1

    outcome = sandbox.send_event(label.label_id, "delivered")

    assert (outcome["delivered"], outcome["attempts"]) == (True, 2)
    first, second = (json.loads(w.body) for w in webhook_receiver.received)
    assert first["event_id"] == second["event_id"] == outcome["event_id"]


def test_a_push_sent_twice_with_the_same_dedupe_key_is_stored_once(sandbox: Sandbox) -> None:
    with push_client_for(sandbox) as push:
        first = push.send(user_id="u-1", title="Sold!", body="Your jacket sold", dedupe_key="order-1:sold")
        second = push.send(user_id="u-1", title="Sold!", body="Your jacket sold", dedupe_key="order-1:sold")

    assert first == second
    assert [p["push_id"] for p in sandbox.pushes()] == [first]


def test_a_push_gateway_blip_is_retried_and_an_outage_raises_push_unavailable(sandbox: Sandbox) -> None:
    with push_client_for(sandbox, retry_attempts=2) as push:
        sandbox.set_faults(fail_next=1)
        push_id = push.send(user_id="u-1", title="Hi", body="", dedupe_key="a")
        sandbox.set_faults(fail_next=2)
        with pytest.raises(PushUnavailable):
            push.send(user_id="u-1", title="Hi", body="", dedupe_key="b")

    assert [p["push_id"] for p in sandbox.pushes()] == [push_id]


def test_a_push_refused_by_the_gateway_raises_push_rejected(sandbox: Sandbox) -> None:
    with push_client_for(sandbox, api_key="wrong") as push, pytest.raises(PushRejected) as caught:
        push.send(user_id="u-1", title="Hi", body="", dedupe_key="a")

    assert caught.value.status_code == 401
