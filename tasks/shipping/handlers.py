"""Shipping's domain functions: buy an order's one label, and void it when the order is cancelled.

A carrier call cannot join our transaction, so the purchase is made safe to repeat instead: the
carrier's idempotency key is derived from the order (`label:<order_id>`), not from the message.
A broker retry, a redelivery after the worker died between purchase and commit, or a second
`BuyLabel` for the same order all get the first label back from the carrier; nothing buys two.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from uuid import UUID

from shared.errors import PermanentError
from shared.uow import UnitOfWork
from tasks.fulfilment.messages import RecordLabel, RecordLabelRejection
from tasks.shipping import carrier
from tasks.shipping.messages import BuyLabel, Contact, VoidLabel
from tasks.shipping.models import PURCHASED, VOIDED


class LabelAlreadyVoided(PermanentError):
    """The order's one label was voided; its idempotency key would only return that void label."""


def buy_label(uow: UnitOfWork, msg: BuyLabel) -> None:
    """Make sure the order has a label and tell fulfilment, or tell it why the carrier said no.

    An address the carrier refuses is an answer, not a failure: fulfilment gets a
    `RecordLabelRejection` (a human fixes the address) and the message is not retried.
    """
    label = _locked_label(uow, msg.order_id)
    if label is None:
        try:
            purchased = _purchase(uow.runtime.adapter("carrier", carrier.CarrierClient), msg)
        except carrier.AddressRejected as refused:
            uow.outbox.add(
                RecordLabelRejection(order_id=msg.order_id, reason=_rejection_reason(refused, msg))
            )
            return
        label = _store(uow, msg.order_id, purchased)
    if label.status == VOIDED:
        raise LabelAlreadyVoided(f"the label of order {msg.order_id} was voided; it cannot be bought again")
    uow.outbox.add(_recorded(label))


def void_label(uow: UnitOfWork, msg: VoidLabel) -> None:
    """Void the order's label so the carrier refunds it; with no label (or one already void), do nothing.

    A label whose parcel already moved cannot be voided: the carrier's 409 is a `CarrierRejected`
    and the message is dead-lettered for a human, who must get the parcel back instead.
    """
    label = _locked_label(uow, msg.order_id)
    if label is None or label.status != PURCHASED:
        return
    uow.runtime.adapter("carrier", carrier.CarrierClient).void_label(label.label_id)
    uow.execute(_VOID, {"order_id": msg.order_id, "voided_at": datetime.now(UTC), "reason": msg.reason})


def _purchase(client: carrier.CarrierClient, msg: BuyLabel) -> carrier.PurchasedLabel:
    return client.buy_label(
        idempotency_key=f"label:{msg.order_id}",
        reference=str(msg.order_id),
        ship_from=_address(msg.ship_from),
        ship_to=_address(msg.ship_to),
        weight_grams=msg.weight_grams,
    )


@dataclass(frozen=True)
class StoredLabel:
    """The order's label as stored (`models.Label`'s row), read under its row lock."""

    order_id: UUID
    label_id: str
    tracking_number: str
    label_url: str
    carrier: str
    cost_minor: int
    currency: str
    status: str


_COLUMNS = "order_id, label_id, tracking_number, label_url, carrier, cost_minor, currency, status"
# Row lock: a buy and a void of the same order take turns instead of racing on the status.
_LOCK = f"SELECT {_COLUMNS} FROM labels WHERE order_id = %(order_id)s FOR UPDATE"
# ON CONFLICT: a concurrent BuyLabel for the same order (another message key) got the same label
# from the carrier and stored it first; this one then reads that row back under the lock.
_STORE = (
    "INSERT INTO labels (order_id, label_id, tracking_number, label_url, carrier, cost_minor, currency, "
    "status) VALUES (%(order_id)s, %(label_id)s, %(tracking_number)s, %(label_url)s, %(carrier)s, "
    f"%(cost_minor)s, %(currency)s, '{PURCHASED}') ON CONFLICT (order_id) DO NOTHING RETURNING {_COLUMNS}"
)
_VOID = (
    f"UPDATE labels SET status = '{VOIDED}', voided_at = %(voided_at)s, void_reason = %(reason)s "
    "WHERE order_id = %(order_id)s"
)


def _locked_label(uow: UnitOfWork, order_id: UUID) -> StoredLabel | None:
    row = uow.execute(_LOCK, {"order_id": order_id}).fetchone()
    return StoredLabel(*row) if row is not None else None


def _store(uow: UnitOfWork, order_id: UUID, purchased: carrier.PurchasedLabel) -> StoredLabel:
    row = uow.execute(_STORE, {"order_id": order_id, **asdict(purchased)}).fetchone()
    label = StoredLabel(*row) if row is not None else _locked_label(uow, order_id)
    assert label is not None, "the label row was just inserted or already existed"
    return label


def _address(contact: Contact) -> carrier.Address:
    return carrier.Address(name=contact.name, **contact.address.model_dump())


def _recorded(label: StoredLabel) -> RecordLabel:
    return RecordLabel(
        order_id=label.order_id,
        label_id=label.label_id,
        tracking_number=label.tracking_number,
        label_url=label.label_url,
        carrier=label.carrier,
        cost_minor=label.cost_minor,
        currency=label.currency,
    )


def _rejection_reason(refused: carrier.AddressRejected, msg: BuyLabel) -> str:
    """Which field the carrier refused and why, with any part of either address it echoed removed.

    The reason travels in messages, logs and dashboards; a street or postcode has no place there.
    """
    message = refused.message
    for contact in (msg.ship_from, msg.ship_to):
        for value in (contact.name, contact.address.line1, contact.address.city, contact.address.postcode):
            message = re.sub(re.escape(value), "[redacted]", message, flags=re.IGNORECASE)
    return f"carrier refused the address ({refused.field}): {message}"[:500]
