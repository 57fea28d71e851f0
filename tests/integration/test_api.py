"""The HTTP enqueue API served by uvicorn on loopback, against the real database."""

from __future__ import annotations

import json

from sqlalchemy import select

from shared.outbox import OutboxRow
from tasks.fulfilment.models import Order, OrderTransition
from tests.factories import order_body
from tests.fixtures.live_api import outbox_count


def test_placing_an_order_queues_exactly_one_job(api, runtime):
    body = order_body()
    response = api.post("/v1/orders", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["order_id"] == body["order_id"]
    with runtime.sessions() as session:
        row = session.scalars(select(OutboxRow)).one()
    message = json.loads(row.body)
    assert message["actor_name"] == "fulfilment.place_order"
    assert message["kwargs"]["envelope"]["idempotency_key"] == f"order-placed:{body['order_id']}"


def test_requests_without_a_valid_token_are_refused(api):
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        response = api.post("/v1/orders", json=order_body(), headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthenticated"
    assert (
        api.get("/v1/orders/6f1c1e8e-0000-4000-8000-000000000000", headers={"Authorization": ""}).status_code
        == 401
    )


def test_a_bad_body_gets_a_422_naming_the_field(api, runtime):
    body = order_body()
    body["buyer"]["address"]["country"] = "United Kingdom"
    body["item_price_minor"] = 12.5
    response = api.post("/v1/orders", json=body)
    assert response.status_code == 422
    fields = {item["field"] for item in response.json()["fields"]}
    assert {"buyer.address.country", "item_price_minor"} <= fields
    assert outbox_count(runtime) == 0


def test_unknown_fields_are_refused(api):
    response = api.post("/v1/orders", json=order_body(coupon="FREE"))
    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "coupon"


def test_a_body_that_is_not_json_gets_a_4xx_json_error(api):
    response = api.post("/v1/orders", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"] == "validation_failed"


def test_the_same_idempotency_key_and_body_replay_the_first_response(api, runtime):
    body = order_body()
    first = api.post("/v1/orders", json=body, headers={"Idempotency-Key": "k-1"})
    second = api.post("/v1/orders", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert outbox_count(runtime) == 1


def test_the_same_idempotency_key_with_another_body_is_a_conflict(api, runtime):
    assert api.post("/v1/orders", json=order_body(), headers={"Idempotency-Key": "k-2"}).status_code == 202
    response = api.post("/v1/orders", json=order_body(), headers={"Idempotency-Key": "k-2"})
    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_key_reused"
    assert outbox_count(runtime) == 1


def test_a_body_over_the_size_limit_is_refused_before_it_is_read(api, settings, runtime):
    body = order_body()
    body["buyer"]["name"] = "x" * (settings.api_max_body_bytes + 1)
    response = api.post("/v1/orders", json=body)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert outbox_count(runtime) == 0


def test_an_order_reads_back_with_its_history_and_unknown_orders_are_404(api, runtime):
    body = order_body()
    with runtime.sessions.begin() as session:
        from tests.factories import order_row, place_order

        order = order_row(place_order(**body))
        session.add(order)
        session.flush()
        session.add(
            OrderTransition(
                order_id=order.id, from_state=None, to_state="placed", event="order_placed", cause="test"
            )
        )
    response = api.get(f"/v1/orders/{body['order_id']}")
    assert response.status_code == 200
    assert response.json()["state"] == "placed"
    assert response.json()["history"][0]["event"] == "order_placed"
    assert api.get("/v1/orders/6f1c1e8e-0000-4000-8000-000000000000").status_code == 404
    assert api.get("/v1/orders/not-a-uuid").status_code == 422
    with runtime.sessions() as session:
        assert session.get(Order, order.id) is not None


def test_an_order_with_a_label_reads_back_as_the_whole_documented_body(api, runtime):
    from tasks.shipping.models import Label
    from tests.factories import order_row, place_order

    # Given an order with two transitions and a bought label
    body = order_body()
    with runtime.sessions.begin() as session:
        order = order_row(place_order(**body))
        session.add(order)
        session.flush()
        for from_state, to_state in ((None, "placed"), ("placed", "confirmed")):
            session.add(
                OrderTransition(
                    order_id=order.id, from_state=from_state, to_state=to_state, event="e", cause="test"
                )
            )
        session.add(
            Label(
                order_id=order.id,
                carrier="sandbox",
                label_id="L-1",
                tracking_number="T-1",
                label_url="https://labels.test/L-1.pdf",
                cost_minor=450,
                currency="GBP",
            )
        )
    # When it is read
    response = api.get(f"/v1/orders/{body['order_id']}")
    # Then the body is exactly this (timestamps as isoformat writes them, "+00:00")
    with runtime.sessions() as session:
        stored = session.get(Order, order.id)
        assert stored is not None
        transitions = session.scalars(
            select(OrderTransition).where(OrderTransition.order_id == order.id).order_by(OrderTransition.id)
        ).all()
        placed_at = stored.placed_at.isoformat()
    assert response.status_code == 200
    assert response.json() == {
        "order_id": body["order_id"],
        "listing_id": body["listing_id"],
        "state": stored.state,
        "market": "GB",
        "currency": "GBP",
        "item_price_minor": 2500,
        "shipping_price_minor": 299,
        "placed_at": placed_at,
        "label": {
            "label_id": "L-1",
            "tracking_number": "T-1",
            "label_url": "https://labels.test/L-1.pdf",
            "status": "purchased",
        },
        "history": [
            {"from": t.from_state, "to": t.to_state, "event": "e", "cause": "test", "at": t.at.isoformat()}
            for t in transitions
        ],
    }
    assert list(response.json()) == [
        "order_id",
        "listing_id",
        "state",
        "market",
        "currency",
        "item_price_minor",
        "shipping_price_minor",
        "placed_at",
        "label",
        "history",
    ]


def test_cancel_queues_a_cancel_job(api, runtime):
    body = order_body()
    assert api.post("/v1/orders", json=body).status_code == 202
    response = api.post(f"/v1/orders/{body['order_id']}/cancel", json={"reason": "changed my mind"})
    assert response.status_code == 202
    with runtime.sessions() as session:
        rows = session.scalars(select(OutboxRow).order_by(OutboxRow.id)).all()
    assert [json.loads(row.body)["actor_name"] for row in rows] == [
        "fulfilment.place_order",
        "fulfilment.cancel_order",
    ]


def test_health_readiness_and_openapi_answer(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}
    paths = api.get("/openapi.json").json()["paths"]
    assert {
        "/v1/orders",
        "/v1/orders/{order_id}",
        "/v1/orders/{order_id}/cancel",
        "/v1/carrier/webhooks",
    } <= set(paths)


def test_the_callers_trace_context_travels_in_the_envelope(api, runtime):
    trace = "0af7651916cd43dd8448eb211c80319c"
    response = api.post(
        "/v1/orders", json=order_body(), headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01"}
    )
    assert response.status_code == 202
    with runtime.sessions() as session:
        row = session.scalars(select(OutboxRow)).one()
    envelope = json.loads(row.body)["kwargs"]["envelope"]
    assert envelope["traceparent"].startswith(f"00-{trace}-")
    assert envelope["traceparent"] != f"00-{trace}-b7ad6b7169203331-01"


def test_a_user_opts_out_of_a_channel_and_reads_it_back(api):
    assert api.get("/v1/users/u-7/notification-preferences").json()["channels"] == {
        "email": False,
        "push": False,
    }
    response = api.put("/v1/users/u-7/notification-preferences/push", json={"opted_out": True})
    assert response.status_code == 200
    assert response.json() == {"user_id": "u-7", "channel": "push", "opted_out": True}
    assert api.get("/v1/users/u-7/notification-preferences").json() == {
        "user_id": "u-7",
        "channels": {"email": False, "push": True},
    }
    assert api.put("/v1/users/u-7/notification-preferences/fax", json={"opted_out": True}).status_code == 422
    assert (
        api.put("/v1/users/u-7/notification-preferences/push", json={"opted_out": "maybe"}).status_code == 422
    )


def _webhook(api, settings, body: bytes, *, secret: str | None = None, timestamp: int | None = None):
    import time

    from tasks.shipping.webhooks import SIGNATURE_HEADER, sign

    key = secret or settings.carrier_webhook_secret.get_secret_value()
    signature = sign(key, body, timestamp or int(time.time()))
    return api.post(
        "/v1/carrier/webhooks", content=body, headers={SIGNATURE_HEADER: signature, "Authorization": ""}
    )


def test_a_signed_carrier_webhook_becomes_one_tracking_job_keyed_by_the_event(api, settings, runtime):
    event = {
        "event_id": "evt-1",
        "label_id": "L1",
        "tracking_number": "T1",
        "reference": order_body()["order_id"],
        "event": "shipped",
        "occurred_at": "2026-11-25T18:00:00Z",
    }
    body = json.dumps(event).encode()
    response = _webhook(api, settings, body)
    assert (response.status_code, response.json()) == (202, {"status": "accepted", "event_id": "evt-1"})
    with runtime.sessions() as session:
        row = session.scalars(select(OutboxRow)).one()
    message = json.loads(row.body)
    assert message["actor_name"] == "fulfilment.record_tracking"
    assert message["kwargs"]["envelope"]["idempotency_key"] == "carrier-event:evt-1"


def test_a_webhook_with_a_bad_or_stale_signature_is_refused(api, settings, runtime):
    body = json.dumps({"event_id": "evt-2"}).encode()
    assert _webhook(api, settings, body, secret="not-the-secret").status_code == 401
    assert _webhook(api, settings, body, timestamp=1_000_000).status_code == 401
    no_signature = api.post("/v1/carrier/webhooks", content=body)
    assert no_signature.status_code == 401
    assert outbox_count(runtime) == 0
    assert _webhook(api, settings, body).status_code == 422  # signed, but not a tracking event
