"""Fulfilment's wire contract: the payloads its actors take (kinds are stable dotted names).

Text, amounts and instants use the shared value types (`shared.values`), so the API, which takes
`PlaceOrder` as its request body, refuses exactly what these actors would refuse.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, model_validator

from shared.messages import Payload
from shared.personal import Personal
from shared.values import (
    Address,
    CountryCode,
    CurrencyCode,
    Email,
    Instant,
    MinorAmount,
    PositiveMinorAmount,
    PrintableLine,
)


class Party(BaseModel):
    """A buyer or a seller as checkout knows them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: PrintableLine = Field(min_length=1, max_length=100)
    email: Personal[Email]
    name: Personal[PrintableLine] = Field(min_length=1, max_length=200)
    address: Personal[Address]


class PlaceOrder(Payload):
    """Checkout took the buyer's payment for one listing: fulfil the order."""

    kind: ClassVar[str] = "fulfilment.place_order"
    queue: ClassVar[str] = "fulfilment"

    order_id: UUID
    listing_id: UUID
    buyer: Party
    seller: Party
    market: CountryCode
    currency: CurrencyCode
    item_price_minor: PositiveMinorAmount = Field(description="item price in minor units (pence, cents)")
    shipping_price_minor: MinorAmount = Field(description="shipping price in minor units")
    placed_at: Instant

    @model_validator(mode="after")
    def _buyer_is_not_seller(self) -> PlaceOrder:
        if self.buyer.id == self.seller.id:
            raise ValueError("buyer and seller must be different people")
        return self


class CancelOrder(Payload):
    """The buyer (or support) asks to cancel an order before it ships."""

    kind: ClassVar[str] = "fulfilment.cancel_order"
    queue: ClassVar[str] = "fulfilment"

    order_id: UUID
    reason: PrintableLine = Field(default="buyer_request", min_length=1, max_length=200)
    requested_at: datetime | None = None


class RecordLabel(Payload):
    """Shipping bought the label for an order (event from the shipping domain)."""

    kind: ClassVar[str] = "fulfilment.record_label"
    queue: ClassVar[str] = "fulfilment"

    order_id: UUID
    label_id: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)
    label_url: str = Field(min_length=1, max_length=500)
    carrier: str = Field(min_length=1, max_length=100)
    cost_minor: StrictInt = Field(ge=0)
    currency: CurrencyCode


class RecordLabelRejection(Payload):
    """The carrier refused the label for good (an invalid address): a human must act."""

    kind: ClassVar[str] = "fulfilment.record_label_rejection"
    queue: ClassVar[str] = "fulfilment"

    order_id: UUID
    reason: str = Field(min_length=1, max_length=500)


class RecordPayment(Payload):
    """The ledger booked the order's payment (event from the ledger): the label may go to the seller."""

    kind: ClassVar[str] = "fulfilment.record_payment"
    queue: ClassVar[str] = "fulfilment"

    order_id: UUID
    buyer_total_minor: StrictInt = Field(ge=0, description="what the buyer paid, in minor units")
    seller_net_minor: StrictInt = Field(ge=0, description="what the seller will earn, in minor units")
    currency: CurrencyCode


class RecordPaymentRefusal(Payload):
    """The ledger will never book the order's payment (event from the ledger): a human must act."""

    kind: ClassVar[str] = "fulfilment.record_payment_refusal"
    queue: ClassVar[str] = "fulfilment"

    order_id: UUID
    reason: str = Field(min_length=1, max_length=500)


class RecordTracking(Payload):
    """A carrier tracking event received by the webhook (`shipped`, `delivered`, ...)."""

    kind: ClassVar[str] = "fulfilment.record_tracking"
    queue: ClassVar[str] = "fulfilment"

    order_id: UUID
    event: str = Field(pattern=r"^(in_transit|shipped|delivered|returned)$")
    event_id: str = Field(min_length=1, max_length=100)
    occurred_at: AwareDatetime
    tracking_number: str | None = Field(default=None, max_length=100)


class CompleteOrder(Payload):
    """The hold after delivery has elapsed: complete the order and release the seller's funds."""

    kind: ClassVar[str] = "fulfilment.complete_order"
    queue: ClassVar[str] = "fulfilment"

    order_id: UUID
