"""Fulfilment's domain functions: the order's life from payment to completion.

Each takes a unit of work and a payload, holds the order under a row lock (`orders.locked`, which
saves what changed), moves it through the state machine and writes follow-ups to the outbox. None
commits, publishes or retries itself.

The capture and the label are asked for side by side, so neither waits for the other; the ledger
answers the capture (`record_payment` or `record_payment_refusal`), and the seller is handed the
label only once both the label and the booked payment are in (`states.label_handover_due`).
"""

from __future__ import annotations

from typing import Any

from shared.money import Money
from shared.uow import UnitOfWork
from tasks.fulfilment import followups as ask
from tasks.fulfilment.messages import (
    CancelOrder,
    CompleteOrder,
    PlaceOrder,
    RecordLabel,
    RecordLabelRejection,
    RecordPayment,
    RecordPaymentRefusal,
    RecordTracking,
)
from tasks.fulfilment.orders import (
    OrderRecord,
    insert,
    locked,
    move,
    placed,
    record,
    release_listing,
    reserve_listing,
    save,
)
from tasks.fulfilment.states import (
    OrderEvent,
    OrderState,
    PaymentState,
    allowed_events,
    label_handover_due,
    label_unwanted,
)


def place_order(uow: UnitOfWork, msg: PlaceOrder) -> None:
    """Record the paid order, then reserve its unique item: exactly one buyer gets it.

    An order whose payment the ledger could never book goes no further (no capture, no label):
    it needs attention, so that no order ships unpaid.
    """
    order = placed(msg)
    insert(uow, order)
    record(order, None, "order_placed", "checkout")
    _reserve_and_ask(uow, order)
    save(uow, order)


def _reserve_and_ask(uow: UnitOfWork, order: OrderRecord) -> None:
    if refusal := ask.payment_refusal(uow, order):
        order.payment_state = PaymentState.REFUSED.value
        move(order, OrderEvent.PAYMENT_REFUSED, refusal)
        ask.notify(uow, order, "needs_attention", "seller", reason=ask.PAYMENT_REFUSED_REASON)
        return
    amount = ask.amounts(uow, order)["buyer"]
    if reserve_listing(uow, order):
        move(order, OrderEvent.ITEM_RESERVED, f"listing {order.listing_id} reserved")
        uow.outbox.add(ask.capture_payment(order))
        uow.outbox.add(ask.buy_label(order))
        ask.notify(uow, order, "order_confirmed", "buyer", amount=amount)
    else:
        move(order, OrderEvent.ITEM_ALREADY_SOLD, f"listing {order.listing_id} already sold")
        uow.outbox.add(ask.reverse_payment(order))
        ask.notify(uow, order, "order_cancelled", "buyer", amount=amount, recipient_role="buyer")


def record_label(uow: UnitOfWork, msg: RecordLabel) -> None:
    """The label exists: the seller gets it once the payment is booked too, whichever comes last.
    A label for an order cancelled, or whose payment was refused, meanwhile is voided."""
    with locked(uow, msg.order_id) as order:
        state = OrderState(order.state)
        if label_unwanted(state, PaymentState(order.payment_state)):
            uow.outbox.add(ask.void_label(order, _why_unwanted(state)))
        elif state == OrderState.CONFIRMED:
            order.label = msg.model_dump(mode="json", include=_LABEL_FIELDS)
            if not _hand_over_label(uow, order):
                cause = f"label {msg.label_id} from {msg.carrier}; waiting for the payment to be booked"
                record(order, order.state, "label_recorded", cause)


def record_payment(uow: UnitOfWork, msg: RecordPayment) -> None:
    """The ledger booked the payment: a label already recorded now goes to the seller."""
    with locked(uow, msg.order_id) as order:
        if order.payment_state == PaymentState.BOOKED:
            return
        order.payment_state = PaymentState.BOOKED.value
        booked = Money(msg.buyer_total_minor, msg.currency).format()
        record(order, order.state, "payment_booked", f"{booked} booked by the ledger")
        _hand_over_label(uow, order)


def record_payment_refusal(uow: UnitOfWork, msg: RecordPaymentRefusal) -> None:
    """The ledger will never book the payment: the order stops before the seller has a label (one
    already bought is voided) and needs attention; nothing is reversed, since nothing was booked."""
    with locked(uow, msg.order_id) as order:
        previous = OrderState(order.state)
        booked = order.payment_state == PaymentState.BOOKED  # a capture once booked stays booked
        if booked or OrderEvent.PAYMENT_REFUSED not in allowed_events(previous):
            record(order, previous, "payment_refused", f"{msg.reason} (order left {previous})")
            return
        order.payment_state = PaymentState.REFUSED.value
        move(order, OrderEvent.PAYMENT_REFUSED, msg.reason)
        if order.label is not None or previous == OrderState.LABEL_PURCHASED:
            uow.outbox.add(ask.void_label(order, PAYMENT_NOT_BOOKED))
            order.label = None
        ask.notify(uow, order, "needs_attention", "seller", reason=ask.PAYMENT_REFUSED_REASON)


def record_label_rejection(uow: UnitOfWork, msg: RecordLabelRejection) -> None:
    """The carrier refused the label for good: a human must act, and the seller is told why."""
    with locked(uow, msg.order_id) as order:
        if order.state == OrderState.CONFIRMED:
            move(order, OrderEvent.ADDRESS_REJECTED, msg.reason)
            ask.notify(uow, order, "needs_attention", "seller", reason=msg.reason)


def record_tracking(uow: UnitOfWork, msg: RecordTracking) -> None:
    """Carrier events drive the order; a delivery seen before its shipment implies it."""
    with locked(uow, msg.order_id) as order:
        cause = f"carrier event {msg.event_id}"
        if msg.event in ("shipped", "delivered") and order.state == OrderState.LABEL_PURCHASED:
            move(order, OrderEvent.SHIPPED, cause)
            ask.notify(
                uow, order, "shipped", "buyer", tracking_number=msg.tracking_number or "see the carrier"
            )
        if msg.event == "delivered" and order.state == OrderState.SHIPPED:
            move(order, OrderEvent.DELIVERED, cause)
            ask.notify(uow, order, "delivered", "buyer")
            hold_ms = uow.runtime.settings.completion_hold_s * 1000
            uow.outbox.add(CompleteOrder(order_id=order.id), delay_ms=hold_ms or None)


def complete_order(uow: UnitOfWork, msg: CompleteOrder) -> None:
    """The hold after delivery is over: complete the order and release the seller's funds."""
    with locked(uow, msg.order_id) as order:
        if order.state == OrderState.DELIVERED:
            move(order, OrderEvent.HOLD_ELAPSED, "hold after delivery elapsed")
            uow.outbox.add(ask.release_funds(order))
            ask.notify(uow, order, "funds_released", "seller", amount=ask.amounts(uow, order)["seller"])


def cancel_order(uow: UnitOfWork, msg: CancelOrder) -> None:
    """Cancel before shipping: void the label, reverse the payment, tell both. Later: refused."""
    with locked(uow, msg.order_id) as order:
        previous = OrderState(order.state)
        if OrderEvent.BUYER_CANCELLED not in allowed_events(previous):
            record(order, previous, "cancel_refused", f"{msg.reason}: order already {previous}")
            return
        move(order, OrderEvent.BUYER_CANCELLED, msg.reason)
        release_listing(uow, order)
        if previous == OrderState.LABEL_PURCHASED or order.label is not None:
            uow.outbox.add(ask.void_label(order, msg.reason))
        if order.payment_state != PaymentState.REFUSED:  # a refused payment was never booked
            uow.outbox.add(ask.reverse_payment(order))
        amount = ask.amounts(uow, order)["buyer"]
        for role in ("buyer", "seller"):
            ask.notify(uow, order, "order_cancelled", role, amount=amount, recipient_role=role)


#: Why a label is voided when the payment was refused; shipping keeps it with the voided label.
PAYMENT_NOT_BOOKED = "the payment could not be booked"
_LABEL_FIELDS = {"label_id", "tracking_number", "label_url", "carrier"}


def _hand_over_label(uow: UnitOfWork, order: OrderRecord) -> bool:
    """Move the order on and give the seller the label, if both it and the booked payment are in."""
    label: dict[str, Any] | None = order.label
    state, payment = OrderState(order.state), PaymentState(order.payment_state)
    if label is None or not label_handover_due(state, payment, label_recorded=True):
        return False
    move(order, OrderEvent.LABEL_PURCHASED, f"label {label['label_id']} from {label['carrier']}")
    ask.notify(uow, order, "item_sold", "seller", amount=ask.amounts(uow, order)["seller"],
               label_url=label["label_url"], tracking_number=label["tracking_number"])  # fmt: skip
    return True


def _why_unwanted(state: OrderState) -> str:
    if state == OrderState.CANCELLED:
        return "order cancelled before the label arrived"
    return PAYMENT_NOT_BOOKED
