"""The ledger's wire contract: the money events fulfilment asks it to book (kinds are stable names).

Each message carries the order's amounts, so the ledger quotes its fees without reading another
domain's tables; all three carry the same fields because any of them may be the first to arrive
(see `tasks.ledger.handlers`).
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import Field

from shared.messages import Payload
from shared.values import CountryCode, CurrencyCode, MinorAmount, PositiveMinorAmount, PrintableLine


class OrderAmounts(Payload):
    """The fields every ledger command shares: which order, whose, where, and for how much."""

    queue: ClassVar[str] = "ledger"

    order_id: UUID
    seller_id: PrintableLine = Field(min_length=1, max_length=100)
    market: CountryCode
    currency: CurrencyCode
    item_price_minor: PositiveMinorAmount = Field(description="item price in minor units (pence, cents)")
    shipping_price_minor: MinorAmount = Field(description="shipping price in minor units")


class CapturePayment(OrderAmounts):
    """Checkout took the buyer's payment: book it, holding the seller's net until delivery."""

    kind: ClassVar[str] = "ledger.capture_payment"


class ReleaseFunds(OrderAmounts):
    """The hold after delivery has elapsed: make the seller's net available for payout."""

    kind: ClassVar[str] = "ledger.release_funds"


class ReversePayment(OrderAmounts):
    """The order will not be fulfilled (cancelled, double-bought): owe the buyer their money back."""

    kind: ClassVar[str] = "ledger.reverse_payment"
