"""Order persistence for the handlers: load under a row lock, move through the state machine.

Every state change goes through `move`, which applies `states.transition` (illegal moves raise
`IllegalTransition`) and appends the history row, so no handler can change state silently.
Handlers load orders `FOR UPDATE`, which serialises concurrent messages about one order.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from shared.errors import TransientError
from tasks.fulfilment.models import ListingReservation, Order, OrderTransition
from tasks.fulfilment.states import OrderEvent, OrderState, transition


class OrderNotYetKnown(TransientError):
    """A message about an order arrived before the order itself; retried until it exists."""


def load_for_update(session: Session, order_id: uuid.UUID) -> Order:
    order = session.get(Order, order_id, with_for_update=True)
    if order is None:
        raise OrderNotYetKnown(f"order {order_id} is not known yet")
    return order


def record(session: Session, order: Order, previous: str | None, event: str, cause: str) -> None:
    session.add(
        OrderTransition(
            order_id=order.id, from_state=previous, to_state=order.state, event=event, cause=cause
        )
    )


def move(session: Session, order: Order, event: OrderEvent, cause: str) -> OrderState:
    """Apply `event` to the order (or raise IllegalTransition) and record why."""
    previous = order.state
    order.state = transition(OrderState(previous), event)
    record(session, order, previous, event.value, cause)
    return OrderState(order.state)


_RESERVE = text(
    "INSERT INTO listing_reservations (listing_id, order_id) VALUES (:listing_id, :order_id) "
    "ON CONFLICT (listing_id) DO NOTHING RETURNING order_id"
)


def reserve_listing(session: Session, order: Order) -> bool:
    """Take the listing for this order. A concurrent buyer blocks on the key, then loses."""
    params = {"listing_id": order.listing_id, "order_id": order.id}
    return session.execute(_RESERVE, params).first() is not None


def release_listing(session: Session, order: Order) -> None:
    """A cancelled order gives its listing back, so the item can be sold again."""
    session.execute(
        delete(ListingReservation).where(
            ListingReservation.listing_id == order.listing_id, ListingReservation.order_id == order.id
        )
    )
