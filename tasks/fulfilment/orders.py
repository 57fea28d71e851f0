"""Order persistence for the handlers: load under a row lock, move through the state machine, save.

Every state change goes through `move`, which applies `states.transition` (illegal moves raise
`IllegalTransition`) and appends the history row, so no handler can change state silently.
Handlers hold an order inside `locked` (`SELECT ... FOR UPDATE`, which serialises concurrent
messages about one order); when the block ends without an error, what changed is written in one
statement: the order's row and its new history rows together. A handler's statements go through
`uow.execute` (psycopg, the unit of work's transaction) rather than SQLAlchemy's ORM, whose
identity map and flush cost more CPU than the handler's own work (profiled, see the benchmarks
page); the tables keep their models in `models.py` for the API and the reports.

Messages of one batch (`shared.batch`) about the same order see each other's changes: each one's
`locked` block writes before the next one's `SELECT ... FOR UPDATE` reads, in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from shared.errors import TransientError
from shared.uow import UnitOfWork
from tasks.fulfilment.messages import PlaceOrder
from tasks.fulfilment.states import OrderEvent, OrderState, PaymentState, transition


class OrderNotYetKnown(TransientError):
    """A message about an order arrived before the order itself; retried until it exists."""


@dataclass
class Transition:
    """One history row to be written with the order: `order_transitions`."""

    from_state: str | None
    to_state: str
    event: str
    cause: str


@dataclass
class OrderRecord:
    """An order as a handler reads and changes it; `save` writes what changed since the load."""

    id: uuid.UUID
    listing_id: uuid.UUID
    buyer_id: str
    seller_id: str
    buyer: dict[str, Any]
    seller: dict[str, Any]
    market: str
    currency: str
    item_price_minor: int
    shipping_price_minor: int
    state: str
    payment_state: str
    label: dict[str, Any] | None
    placed_at: datetime
    transitions: list[Transition] = field(default_factory=list)
    stored: tuple[str, str, dict[str, Any] | None] | None = None

    def changed(self) -> bool:
        """Whether the row differs from what was loaded (or inserted)."""
        return self.stored != _snapshot(self)


def _snapshot(order: OrderRecord) -> tuple[str, str, dict[str, Any] | None]:
    """The fields handlers change, copied, so a change made in place is seen too."""
    return order.state, order.payment_state, dict(order.label) if order.label is not None else None


_COLUMNS = (
    "id, listing_id, buyer_id, seller_id, buyer, seller, market, currency, item_price_minor, "
    "shipping_price_minor, state, payment_state, label, placed_at"
)
_LOAD = f"SELECT {_COLUMNS} FROM orders WHERE id = %(id)s FOR UPDATE"
_INSERT = (
    f"INSERT INTO orders ({_COLUMNS}) VALUES (%(id)s, %(listing_id)s, %(buyer_id)s, %(seller_id)s, "
    "%(buyer)s, %(seller)s, %(market)s, %(currency)s, %(item_price_minor)s, %(shipping_price_minor)s, "
    "%(state)s, %(payment_state)s, %(label)s, %(placed_at)s)"
)
_HISTORY = (
    "INSERT INTO order_transitions (order_id, from_state, to_state, event, cause) "
    "SELECT %(id)s, * FROM unnest(%(from_states)s::text[], %(to_states)s::text[], "
    "%(events)s::text[], %(causes)s::text[])"
)
_UPDATE = (
    "UPDATE orders SET state = %(state)s, payment_state = %(payment_state)s, label = %(label)s, "
    "updated_at = now() WHERE id = %(id)s"
)
#: The row and its history in one round trip; the history's foreign key is checked at the end.
_UPDATE_AND_HISTORY = f"WITH moved AS ({_UPDATE}) {_HISTORY}"


def load_for_update(uow: UnitOfWork, order_id: uuid.UUID) -> OrderRecord:
    row = uow.execute(_LOAD, {"id": order_id}).fetchone()
    if row is None:
        raise OrderNotYetKnown(f"order {order_id} is not known yet")
    order = OrderRecord(*row)
    order.stored = _snapshot(order)
    return order


@contextmanager
def locked(uow: UnitOfWork, order_id: uuid.UUID) -> Iterator[OrderRecord]:
    """The order under a row lock; what the block changed is saved when it ends without an error."""
    order = load_for_update(uow, order_id)
    yield order
    save(uow, order)


def insert(uow: UnitOfWork, order: OrderRecord) -> None:
    """Store a new order as it stands; a second order with its id is refused (an IntegrityError)."""
    uow.execute(_INSERT, _row(order))
    order.stored = _snapshot(order)


def save(uow: UnitOfWork, order: OrderRecord) -> None:
    """Write the order's changed fields and its pending history rows, in one statement."""
    if not order.transitions and not order.changed():
        return
    params = _row(order) | _history(order)
    if not order.transitions:
        uow.execute(_UPDATE, params)
    else:
        uow.execute(_UPDATE_AND_HISTORY if order.changed() else _HISTORY, params)
    order.transitions.clear()
    order.stored = _snapshot(order)


def record(order: OrderRecord, previous: str | None, event: str, cause: str) -> None:
    order.transitions.append(Transition(previous, order.state, event, cause))


def move(order: OrderRecord, event: OrderEvent, cause: str) -> OrderState:
    """Apply `event` to the order (or raise IllegalTransition) and record why."""
    previous = order.state
    order.state = transition(OrderState(previous), event)
    record(order, previous, event.value, cause)
    return OrderState(order.state)


def placed(msg: PlaceOrder) -> OrderRecord:
    """The order a checkout placed, not yet stored, whose payment the ledger has not answered yet."""
    return OrderRecord(
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
        payment_state=PaymentState.PENDING.value,
        label=None,
        placed_at=msg.placed_at,
    )


_RESERVE = (
    "INSERT INTO listing_reservations (listing_id, order_id) VALUES (%(listing_id)s, %(order_id)s) "
    "ON CONFLICT (listing_id) DO NOTHING RETURNING order_id"
)
_RELEASE = "DELETE FROM listing_reservations WHERE listing_id = %(listing_id)s AND order_id = %(order_id)s"


def reserve_listing(uow: UnitOfWork, order: OrderRecord) -> bool:
    """Take the listing for this order. A concurrent buyer blocks on the key, then loses."""
    params = {"listing_id": order.listing_id, "order_id": order.id}
    return uow.execute(_RESERVE, params).fetchone() is not None


def release_listing(uow: UnitOfWork, order: OrderRecord) -> None:
    """A cancelled order gives its listing back, so the item can be sold again."""
    uow.execute(_RELEASE, {"listing_id": order.listing_id, "order_id": order.id})


def _row(order: OrderRecord) -> dict[str, Any]:
    return {
        "id": order.id,
        "listing_id": order.listing_id,
        "buyer_id": order.buyer_id,
        "seller_id": order.seller_id,
        "buyer": Jsonb(order.buyer),
        "seller": Jsonb(order.seller),
        "market": order.market,
        "currency": order.currency,
        "item_price_minor": order.item_price_minor,
        "shipping_price_minor": order.shipping_price_minor,
        "state": order.state,
        "payment_state": order.payment_state,
        "label": Jsonb(order.label) if order.label is not None else None,
        "placed_at": order.placed_at,
    }


def _history(order: OrderRecord) -> dict[str, Any]:
    rows = order.transitions
    return {
        "from_states": [t.from_state for t in rows],
        "to_states": [t.to_state for t in rows],
        "events": [t.event for t in rows],
        "causes": [t.cause for t in rows],
    }
