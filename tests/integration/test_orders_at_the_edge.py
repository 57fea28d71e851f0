"""POST /v1/orders refuses what a worker would refuse, and knows the orders it accepted.

Each case here got 202 Accepted before and then failed in a worker (or, for a placed_at in year
10000, broke every later read of the order with a 500).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.factories import order_body
from tests.fixtures.live_api import outbox_count


def _refused_fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_failed"
    return {item["field"] for item in body["fields"]}


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    body = order_body()
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize("amount", [2**63, 2**63 + 12345, 10**25])
def test_an_amount_beyond_int64_gets_a_422_naming_the_field_and_queues_nothing(api, runtime, amount):
    item = api.post("/v1/orders", json=order_body(item_price_minor=amount))
    assert "item_price_minor" in _refused_fields(item)
    assert "shipping_price_minor" in _refused_fields(
        api.post("/v1/orders", json=order_body(shipping_price_minor=amount))
    )
    assert outbox_count(runtime) == 0


def test_a_market_priced_in_another_currency_gets_a_422_naming_the_currency(api, runtime):
    response = api.post("/v1/orders", json=order_body(market="GB", currency="USD"))
    assert _refused_fields(response) == {"currency"}
    assert "GBP" in response.json()["message"]
    assert outbox_count(runtime) == 0


def test_an_unknown_market_gets_a_422_naming_the_market(api, runtime):
    assert _refused_fields(api.post("/v1/orders", json=order_body(market="ZZ", currency="GBP"))) == {"market"}
    assert outbox_count(runtime) == 0


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("buyer", "name"), "Ann\x00Smith"),
        (("buyer", "name"), "Ann Smith\r\nBcc: everyone@example.com"),
        (("seller", "id"), "seller\n42"),
        (("seller", "address", "line1"), "1 High St\x00"),
        (("buyer", "email"), "ann\x00@example.com"),
    ],
)
def test_nul_bytes_and_line_breaks_in_names_ids_and_addresses_get_a_422_naming_the_field(
    api, runtime, path, value
):
    assert ".".join(path) in _refused_fields(api.post("/v1/orders", json=_with(path, value)))
    assert outbox_count(runtime) == 0


@pytest.mark.parametrize(
    "placed_at",
    [
        "9999-12-31T23:00:00-05:00",  # year 10000 in UTC
        "1970-01-01T00:00:00Z",
        (datetime.now(UTC) + timedelta(days=2)).isoformat(),
        (datetime.now(UTC) - timedelta(days=400)).isoformat(),
    ],
)
def test_a_placed_at_outside_the_accepted_window_gets_a_422(api, runtime, placed_at):
    assert _refused_fields(api.post("/v1/orders", json=order_body(placed_at=placed_at))) == {"placed_at"}
    assert outbox_count(runtime) == 0


def test_a_cancel_reason_with_a_line_break_gets_a_422(api):
    body = order_body()
    assert api.post("/v1/orders", json=body).status_code == 202
    response = api.post(f"/v1/orders/{body['order_id']}/cancel", json={"reason": "changed\r\nmy mind"})
    assert "reason" in _refused_fields(response)


def test_the_same_order_with_another_body_and_no_idempotency_key_is_a_409(api, runtime):
    body = order_body()
    assert api.post("/v1/orders", json=body).status_code == 202
    response = api.post("/v1/orders", json={**body, "item_price_minor": body["item_price_minor"] + 1})
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "order_conflict"
    assert outbox_count(runtime) == 1


def test_the_same_order_with_the_same_body_under_another_key_is_accepted_again(api, runtime):
    body = order_body()
    assert api.post("/v1/orders", json=body, headers={"Idempotency-Key": "a"}).status_code == 202
    assert api.post("/v1/orders", json=body, headers={"Idempotency-Key": "b"}).status_code == 202
    assert api.post("/v1/orders", json=body).status_code == 202


def test_a_cancel_for_an_order_the_api_never_accepted_is_a_404(api, runtime):
    response = api.post(f"/v1/orders/{order_body()['order_id']}/cancel", json={"reason": "buyer_request"})
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"
    assert outbox_count(runtime) == 0


def test_a_cancel_for_an_accepted_order_is_queued(api, runtime):
    body = order_body()
    assert api.post("/v1/orders", json=body).status_code == 202
    cancel = api.post(f"/v1/orders/{body['order_id']}/cancel", json={"reason": "buyer_request"})
    assert cancel.status_code == 202
    assert outbox_count(runtime) == 2


def test_a_second_cancel_with_another_reason_is_a_409_and_the_same_one_is_accepted_again(api, runtime):
    # The cancel's message key is per order, so another reason would be dead-lettered downstream.
    body = order_body()
    assert api.post("/v1/orders", json=body).status_code == 202
    cancel = f"/v1/orders/{body['order_id']}/cancel"
    assert api.post(cancel, json={"reason": "changed my mind"}).status_code == 202
    conflict = api.post(cancel, json={"reason": "found it cheaper"})
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["error"] == "cancel_conflict"
    assert api.post(cancel, json={"reason": "changed my mind"}).status_code == 202
    assert outbox_count(runtime) == 3


def test_the_accepted_orders_model_matches_its_migrations(runtime):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from shared.db import Base
    from workers.api.accepted import AcceptedOrder

    def ours(obj, name, kind, reflected, compare_to) -> bool:
        table = obj if kind == "table" else getattr(obj, "table", None)
        return table is None or table.name == AcceptedOrder.__tablename__

    with runtime.engine.connect() as connection:
        options = {"compare_type": True, "include_object": ours}
        context = MigrationContext.configure(connection, opts=options)
        assert compare_metadata(context, Base.metadata) == []
