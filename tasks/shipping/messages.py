"""Shipping's wire contract: the commands its actors take (kinds are stable dotted names).

What shipping sends back (`RecordLabel`, `RecordLabelRejection`) belongs to fulfilment, which
consumes it, so those payloads live in `tasks.fulfilment.messages`.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from shared.messages import Payload
from shared.personal import Personal
from shared.values import Address, PrintableLine


class Contact(BaseModel):
    """Who a parcel comes from or goes to: only what the label prints, no email or user id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Personal[PrintableLine] = Field(min_length=1, max_length=200)
    address: Personal[Address]


class BuyLabel(Payload):
    """Buy the one shipping label of an order (the seller prints it and drops the parcel off)."""

    kind: ClassVar[str] = "shipping.buy_label"
    queue: ClassVar[str] = "shipping"

    order_id: UUID
    ship_from: Contact
    ship_to: Contact
    weight_grams: StrictInt = Field(gt=0, description="parcel weight in grams, packaging included")


class VoidLabel(Payload):
    """Cancel an order's label so the carrier refunds it (the order was cancelled before shipping)."""

    kind: ClassVar[str] = "shipping.void_label"
    queue: ClassVar[str] = "shipping"

    order_id: UUID
    reason: PrintableLine = Field(min_length=1, max_length=200)
