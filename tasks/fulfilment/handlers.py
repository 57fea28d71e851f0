"""Fulfilment's domain functions: the order's life from payment to completion.

Each takes a unit of work and a payload, loads the order under a row lock, moves it through the
state machine and writes follow-ups to the outbox. None commits, publishes or retries itself.
"""

from __future__ import annotations

from shared.uow import UnitOfWork
from tasks.fulfilment import followups as ask
from tasks.fulfilment.messages import (
    CancelOrder,
    CompleteOrder,
    PlaceOrder,
    RecordLabel,
    RecordLabelRejection,
    RecordTracking,
)
from tasks.fulfilment.models import Order
from tasks.fulfilment.orders import load_for_update, move, record, release_listing, reserve_listing
from tasks.fulfilment.states import OrderEvent, OrderState, allowed_events


def place_order(uow: UnitOfWork, msg: PlaceOrder) -> None:
    """Record the paid order, then reserve its unique item: exactly one buyer gets it.

    An order whose payment the ledger could never book goes no further (no capture, no label):
    it needs attention, so that no order ships unpaid.
    """
    order = _new_order(msg)
    uow.session.add(order)
    uow.session.flush()
    record(uow.session, order, None, "order_placed", "checkout")
    if refusal := ask.payment_refusal(uow, order):
        move(uow.session, order, OrderEvent.PAYMENT_REFUSED, refusal)
        ask.notify(uow, order, "needs_attention", "seller", reason=ask.PAYMENT_REFUSED_REASON)
        return
    amount = ask.amounts(uow, order)["buyer"]
    if reserve_listing(uow.session, order):
        move(uow.session, order, OrderEvent.ITEM_RESERVED, f"listing {order.listing_id} reserved")
        uow.outbox.add(ask.capture_payment(order))
        uow.outbox.add(ask.buy_label(order))
        ask.notify(uow, order, "order_confirmed", "buyer", amount=amount)
    else:
        move(uow.session, order, OrderEvent.ITEM_ALREADY_SOLD, f"listing {order.listing_id} already sold")
        uow.outbox.add(ask.reverse_payment(order))
        ask.notify(uow, order, "order_cancelled", "buyer", amount=amount, recipient_role="buyer")


def record_label(uow: UnitOfWork, msg: RecordLabel) -> None:
    """The label exists: the seller ships. A label for an order cancelled meanwhile is voided."""
    order = load_for_update(uow.session, msg.order_id)
    if order.state == OrderState.CANCELLED:
        uow.outbox.add(ask.void_label(order, "order cancelled before the label arrived"))
    elif order.state == OrderState.CONFIRMED:
        move(uow.session, order, OrderEvent.LABEL_PURCHASED, f"label {msg.label_id} from {msg.carrier}")
        ask.notify(uow, order, "item_sold", "seller", amount=ask.amounts(uow, order)["seller"],
                   label_url=msg.label_url, tracking_number=msg.tracking_number)  # fmt: skip


def record_label_rejection(uow: UnitOfWork, msg: RecordLabelRejection) -> None:
    """The carrier refused the label for good: a human must act, and the seller is told why."""
    order = load_for_update(uow.session, msg.order_id)
    if order.state == OrderState.CONFIRMED:
        move(uow.session, order, OrderEvent.ADDRESS_REJECTED, msg.reason)
        ask.notify(uow, order, "needs_attention", "seller", reason=msg.reason)


def record_tracking(uow: UnitOfWork, msg: RecordTracking) -> None:
    """Carrier events drive the order; a delivery seen before its shipment implies it."""
    order = load_for_update(uow.session, msg.order_id)
    cause = f"carrier event {msg.event_id}"
    if msg.event in ("shipped", "delivered") and order.state == OrderState.LABEL_PURCHASED:
        move(uow.session, order, OrderEvent.SHIPPED, cause)
        ask.notify(uow, order, "shipped", "buyer", tracking_number=msg.tracking_number or "see the carrier")
    if msg.event == "delivered" and order.state == OrderState.SHIPPED:
        move(uow.session, order, OrderEvent.DELIVERED, cause)
        ask.notify(uow, order, "delivered", "buyer")
        hold_ms = uow.runtime.settings.completion_hold_s * 1000
        uow.outbox.add(CompleteOrder(order_id=order.id), delay_ms=hold_ms or None)


def complete_order(uow: UnitOfWork, msg: CompleteOrder) -> None:
    """The hold after delivery is over: complete the order and release the seller's funds."""
    order = load_for_update(uow.session, msg.order_id)
    if order.state == OrderState.DELIVERED:
        move(uow.session, order, OrderEvent.HOLD_ELAPSED, "hold after delivery elapsed")
        uow.outbox.add(ask.release_funds(order))
        ask.notify(uow, order, "funds_released", "seller", amount=ask.amounts(uow, order)["seller"])


def cancel_order(uow: UnitOfWork, msg: CancelOrder) -> None:
    """Cancel before shipping: void the label, reverse the payment, tell both. Later: refused."""
    order = load_for_update(uow.session, msg.order_id)
    previous = OrderState(order.state)
    if OrderEvent.BUYER_CANCELLED not in allowed_events(previous):
        record(uow.session, order, previous, "cancel_refused", f"{msg.reason}: order already {previous}")
        return
    move(uow.session, order, OrderEvent.BUYER_CANCELLED, msg.reason)
    release_listing(uow.session, order)
    if previous == OrderState.LABEL_PURCHASED:
        uow.outbox.add(ask.void_label(order, msg.reason))
    uow.outbox.add(ask.reverse_payment(order))
    amount = ask.amounts(uow, order)["buyer"]
    for role in ("buyer", "seller"):
        ask.notify(uow, order, "order_cancelled", role, amount=amount, recipient_role=role)


def _new_order(msg: PlaceOrder) -> Order:
    return Order(
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
        state=OrderState.PLACED.value,
        placed_at=msg.placed_at,
    )
