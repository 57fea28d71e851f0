"""Fulfilment's domain functions: short, given a unit of work, never committing or publishing."""

from __future__ import annotations

from shared.uow import UnitOfWork
from tasks.fulfilment.messages import PlaceOrder
from tasks.fulfilment.models import Order, OrderTransition


def place_order(uow: UnitOfWork, msg: PlaceOrder) -> None:
    """Record a paid order as `placed`, with the first line of its history."""
    uow.session.add(
        Order(
            id=msg.order_id,
            listing_id=msg.listing_id,
            buyer_id=msg.buyer.id,
            seller_id=msg.seller.id,
            buyer=msg.buyer.model_dump(mode="json"),
            seller=msg.seller.model_dump(mode="json"),
            market=msg.market,
            currency=msg.currency,
            item_price_minor=msg.item_price_minor,
            shipping_price_minor=msg.shipping_price_minor,
            state="placed",
            placed_at=msg.placed_at,
        )
    )
    uow.session.flush()
    uow.session.add(
        OrderTransition(
            order_id=msg.order_id, from_state=None, to_state="placed", event="order_placed", cause="checkout"
        )
    )
