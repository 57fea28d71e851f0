"""Factory functions for test data: realistic, valid by default, overridable per test."""

from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from shared.messages import Envelope
from tasks.fulfilment import orders
from tasks.fulfilment.messages import PlaceOrder
from tasks.fulfilment.models import Order


def party(person_id: str, *, country: str = "GB", line1: str = "1 High Street") -> dict[str, Any]:
    return {
        "id": person_id,
        "email": f"{person_id}@example.com",
        "name": person_id.title(),
        "address": {"line1": line1, "city": "London", "postcode": "N1 1AA", "country": country},
    }


def order_body(**overrides: Any) -> dict[str, Any]:
    """A JSON body for POST /v1/orders (and the PlaceOrder payload)."""
    body: dict[str, Any] = {
        "order_id": str(uuid.uuid4()),
        "listing_id": str(uuid.uuid4()),
        "buyer": party("buyer-" + uuid.uuid4().hex[:8]),
        "seller": party("seller-" + uuid.uuid4().hex[:8]),
        "market": "GB",
        "currency": "GBP",
        "item_price_minor": 2500,
        "shipping_price_minor": 299,
        "placed_at": datetime.now(UTC).isoformat(),
    }
    body.update(overrides)
    return body


def place_order(**overrides: Any) -> PlaceOrder:
    return PlaceOrder.model_validate(order_body(**overrides))


def envelope_for(payload: PlaceOrder, *, key: str | None = None) -> Envelope:
    return Envelope(
        idempotency_key=key or f"order-placed:{payload.order_id}",
        kind=payload.kind,
        correlation_id="test-" + uuid.uuid4().hex[:8],
    )


def message_kwargs(payload: PlaceOrder, envelope: Envelope) -> dict[str, Any]:
    return {"envelope": envelope.model_dump(mode="json"), "payload": payload.model_dump(mode="json")}


def order_row(payload: PlaceOrder) -> Order:
    """The `orders` row a placed order starts as, for tests that write one directly."""
    record = orders.placed(payload)
    return Order(**{f.name: getattr(record, f.name) for f in fields(record) if f.name in COLUMNS})


COLUMNS = {column.name for column in Order.__table__.columns}
