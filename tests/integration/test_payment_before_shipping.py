"""No order ships without its payment booked: an order the ledger cannot book needs attention instead.

Before, fulfilment asked for the capture and the label side by side, so an order priced in a
currency its market does not use had its label bought while the capture was dead-lettered, and
it shipped with no payment booked.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select

from shared.outbox import OutboxRow
from shared.runtime import Runtime
from tasks.fulfilment.models import ListingReservation, Order, OrderTransition
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.services import wait_until


def _place(broker: Any, **overrides: Any) -> uuid.UUID:
    # Straight to the broker, as a producer other than the API (which refuses these) could.
    payload = place_order(**overrides)
    actor = broker.get_actor("fulfilment.place_order")
    actor.send_with_options(kwargs=message_kwargs(payload, envelope_for(payload)))
    return payload.order_id


def _settled_state(runtime: Runtime, order_id: uuid.UUID) -> str | None:
    with runtime.sessions() as session:
        order = session.get(Order, order_id)
        return order.state if order is not None and order.state != "placed" else None


def _asked(runtime: Runtime, order_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    with runtime.sessions() as session:
        rows = session.scalars(select(OutboxRow).order_by(OutboxRow.id)).all()
    asked = [(row.actor_name, json.loads(row.body)["kwargs"]["payload"]) for row in rows]
    return [(kind, payload) for kind, payload in asked if payload.get("order_id") == str(order_id)]


def test_an_order_priced_in_another_currency_needs_attention_and_no_label_is_bought(broker, worker, runtime):
    order_id = _place(broker, market="GB", currency="USD")

    assert wait_until(lambda: _settled_state(runtime, order_id)) == "needs_attention"
    kinds = [kind for kind, _ in _asked(runtime, order_id)]
    assert "shipping.buy_label" not in kinds
    assert "ledger.capture_payment" not in kinds  # the ledger would only dead-letter it
    told = [p for kind, p in _asked(runtime, order_id) if kind == "notifications.send"]
    assert [(p["template"], p["recipient_role"]) for p in told] == [("needs_attention", "seller")]
    with runtime.sessions() as session:
        history = session.scalars(select(OrderTransition).where(OrderTransition.order_id == order_id)).all()
        assert [t.event for t in history] == ["order_placed", "payment_refused"]
        assert "GBP" in history[-1].cause
        assert session.scalars(select(ListingReservation)).all() == []  # the item stays on sale


def test_an_order_in_an_unknown_market_needs_attention_rather_than_a_dead_letter(broker, worker, runtime):
    order_id = _place(broker, market="ZZ", currency="GBP")

    assert wait_until(lambda: _settled_state(runtime, order_id)) == "needs_attention"
    assert "shipping.buy_label" not in [kind for kind, _ in _asked(runtime, order_id)]


def test_an_order_the_ledger_can_book_is_confirmed_and_asks_for_capture_and_label(broker, worker, runtime):
    order_id = _place(broker, market="FR", currency="EUR")

    assert wait_until(lambda: _settled_state(runtime, order_id)) == "confirmed"
    kinds = [kind for kind, _ in _asked(runtime, order_id)]
    assert kinds[:2] == ["ledger.capture_payment", "shipping.buy_label"]
