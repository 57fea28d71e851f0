"""The messages fulfilment asks other domains for, built from an order.

Kept apart from the handlers so each handler reads as the business rule it is; every follow-up
goes through `uow.outbox`, so it is sent if and only if the handler's transaction commits.
"""

from __future__ import annotations

from shared.fees import FeeSchedule, MarketCurrencyMismatch, UnknownMarket, quote
from shared.money import Money
from shared.uow import UnitOfWork
from tasks.fulfilment.orders import OrderRecord as Order
from tasks.ledger.messages import CapturePayment, ReleaseFunds, ReversePayment
from tasks.notifications.messages import Recipient, SendNotification
from tasks.shipping.messages import BuyLabel, Contact, VoidLabel

#: Parcels of secondhand clothing; the carrier prices by weight band, so a typical one will do.
DEFAULT_PARCEL_GRAMS = 800

#: What the seller is told when the payment cannot be booked; the details stay in the history.
PAYMENT_REFUSED_REASON = "the buyer's payment could not be booked; support will contact you"


def _ledger_fields(order: Order) -> dict[str, object]:
    return {
        "order_id": order.id,
        "seller_id": order.seller_id,
        "market": order.market,
        "currency": order.currency,
        "item_price_minor": order.item_price_minor,
        "shipping_price_minor": order.shipping_price_minor,
    }


def capture_payment(order: Order) -> CapturePayment:
    return CapturePayment.model_validate(_ledger_fields(order))


def release_funds(order: Order) -> ReleaseFunds:
    return ReleaseFunds.model_validate(_ledger_fields(order))


def reverse_payment(order: Order) -> ReversePayment:
    return ReversePayment.model_validate(_ledger_fields(order))


def buy_label(order: Order) -> BuyLabel:
    seller, buyer = order.seller, order.buyer
    return BuyLabel(
        order_id=order.id,
        ship_from=Contact.model_validate({"name": seller["name"], "address": seller["address"]}),
        ship_to=Contact.model_validate({"name": buyer["name"], "address": buyer["address"]}),
        weight_grams=DEFAULT_PARCEL_GRAMS,
    )


def void_label(order: Order, reason: str) -> VoidLabel:
    return VoidLabel(order_id=order.id, reason=reason)


def payment_refusal(uow: UnitOfWork, order: Order) -> str | None:
    """Why the ledger could never book this order's payment, or None if it can.

    The ledger's own rule (`FeeSchedule.for_order`, the one the API answers 422 with), checked
    before the capture and the label are asked for side by side: a capture that can only be
    dead-lettered must not leave a label bought and a parcel shipped.
    """
    try:
        uow.runtime.adapter("fees", FeeSchedule).for_order(order.market, order.currency)
    except (UnknownMarket, MarketCurrencyMismatch) as refused:
        return f"payment cannot be booked: {refused}"
    return None


def amounts(uow: UnitOfWork, order: Order) -> dict[str, str]:
    """What the buyer paid and what the seller earns, formatted for messages."""
    fees = uow.runtime.adapter("fees", FeeSchedule)[order.market]
    q = quote(fees, order.item_price_minor, order.shipping_price_minor)
    return {
        "buyer": Money(q.buyer_total_minor, order.currency).format(),
        "seller": Money(q.seller_net_minor, order.currency).format(),
    }


def notify(uow: UnitOfWork, order: Order, template: str, role: str, **context: str | int) -> None:
    """Ask notifications to tell the buyer or seller; the role is part of the message's key."""
    party = order.buyer if role == "buyer" else order.seller
    message = SendNotification(
        order_id=order.id,
        template=template,
        recipient_role=role,
        recipient=Recipient(user_id=party["id"], email=party["email"], name=party["name"]),
        context={"order_id": str(order.id), "recipient_name": party["name"], **context},
    )
    uow.outbox.add(message, key_suffix=f"{template}:{role}")
