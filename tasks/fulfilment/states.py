"""The order lifecycle as a pure transition table, so every handler agrees on what may happen next.

    placed ──item_reserved──▶ confirmed ──label_purchased──▶ label_purchased ──shipped──▶ shipped
      │  │                     │     ▲   (label recorded and     │                           │
      │  │                     │     │    payment booked)        │                       delivered
      │  │  address_rejected,  │     │ resolved_by_support       │ payment_refused           ▼
      │  │  carrier_failed_    ▼     │                           │ (handed over before   delivered
      │  │  permanently,     needs_attention ◀───────────────────┘  the payment gate)        │
      │  │  payment_refused    ▲                                                        hold_elapsed
      │  └──payment_refused────┘                                                             ▼
      │ item_already_sold                                                               [completed]
      ▼
    [cancelled] ◀──buyer_cancelled── from placed, confirmed, label_purchased or needs_attention

`label_purchased` means the seller has the label, and that needs two facts, which arrive in either
order: shipping recorded the label, and the ledger booked the payment (`PaymentState.BOOKED`). A
confirmed order with only one of them stays `confirmed`; `label_handover_due` is the rule. This is
the promise that no order ships unpaid: a capture that is dead-lettered leaves the order confirmed,
without its label, until the capture is re-driven and booked.

`payment_refused` is the ledger's answer that it will never book the payment (an unknown market, a
currency the market is not priced in). Fulfilment foresees some of these before asking for anything
(from `placed`: no listing reserved, no label asked for); the rest come back from the ledger while the
order is `confirmed`. From `label_purchased` it applies only to orders handed over before the
payment gate existed. The order then waits for a human.

`[completed]` and `[cancelled]` are final: no event leaves them. Cancellation stops at `shipped`
because once the parcel is with the carrier the buyer's route is a return, not a cancellation; the
ledger relies on this too, since a payment is only reversed while the seller's funds are still
pending, and funds are released only after delivery.

An event that does not apply raises `IllegalTransition`, a PermanentError: a stale or out-of-order
message cannot become legal by retrying, so it goes to the dead-letter queue with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from shared.errors import PermanentError


class OrderState(StrEnum):
    PLACED = "placed"
    CONFIRMED = "confirmed"
    LABEL_PURCHASED = "label_purchased"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NEEDS_ATTENTION = "needs_attention"


class OrderEvent(StrEnum):
    ITEM_RESERVED = "item_reserved"
    ITEM_ALREADY_SOLD = "item_already_sold"
    PAYMENT_REFUSED = "payment_refused"
    LABEL_PURCHASED = "label_purchased"
    ADDRESS_REJECTED = "address_rejected"
    CARRIER_FAILED_PERMANENTLY = "carrier_failed_permanently"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    HOLD_ELAPSED = "hold_elapsed"
    BUYER_CANCELLED = "buyer_cancelled"
    RESOLVED_BY_SUPPORT = "resolved_by_support"


class PaymentState(StrEnum):
    """What the ledger answered about the order's payment capture."""

    PENDING = "pending"  # asked for (or not yet): no answer so far
    BOOKED = "booked"
    REFUSED = "refused"


class IllegalTransition(PermanentError):
    """The event does not apply to the order's current state."""

    def __init__(self, state: OrderState, event: OrderEvent) -> None:
        final = " (a final state)" if is_final(state) else ""
        # str() rather than .value: a plain string read from storage must still produce a readable reason.
        super().__init__(f"event {str(event)!r} is not allowed in order state {str(state)!r}{final}")
        self.state = state
        self.event = event


FINAL_STATES = frozenset({OrderState.COMPLETED, OrderState.CANCELLED})

_S, _E = OrderState, OrderEvent

#: state -> {event -> next state}. Written out in full, cancellations included, so that this table is
#: the one place to read the lifecycle; a state or event missing here is illegal.
TRANSITIONS: Mapping[OrderState, Mapping[OrderEvent, OrderState]] = MappingProxyType(
    {
        _S.PLACED: MappingProxyType(
            {
                _E.ITEM_RESERVED: _S.CONFIRMED,
                _E.ITEM_ALREADY_SOLD: _S.CANCELLED,
                _E.PAYMENT_REFUSED: _S.NEEDS_ATTENTION,
                _E.BUYER_CANCELLED: _S.CANCELLED,
            }
        ),
        _S.CONFIRMED: MappingProxyType(
            {
                _E.LABEL_PURCHASED: _S.LABEL_PURCHASED,
                _E.ADDRESS_REJECTED: _S.NEEDS_ATTENTION,
                _E.CARRIER_FAILED_PERMANENTLY: _S.NEEDS_ATTENTION,
                _E.PAYMENT_REFUSED: _S.NEEDS_ATTENTION,
                _E.BUYER_CANCELLED: _S.CANCELLED,
            }
        ),
        _S.LABEL_PURCHASED: MappingProxyType(
            {
                _E.SHIPPED: _S.SHIPPED,
                _E.PAYMENT_REFUSED: _S.NEEDS_ATTENTION,
                _E.BUYER_CANCELLED: _S.CANCELLED,
            }
        ),
        _S.SHIPPED: MappingProxyType({_E.DELIVERED: _S.DELIVERED}),
        _S.DELIVERED: MappingProxyType({_E.HOLD_ELAPSED: _S.COMPLETED}),
        _S.NEEDS_ATTENTION: MappingProxyType(
            {_E.RESOLVED_BY_SUPPORT: _S.CONFIRMED, _E.BUYER_CANCELLED: _S.CANCELLED}
        ),
    }
)


def transition(state: OrderState, event: OrderEvent) -> OrderState:
    """The state after `event`; raises IllegalTransition rather than guessing."""
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition(state, event) from None


def allowed_events(state: OrderState) -> frozenset[OrderEvent]:
    """What may happen next, e.g. to show support staff which actions make sense."""
    return frozenset(TRANSITIONS.get(state, {}))


def is_final(state: OrderState) -> bool:
    """No event leaves a final state, so nothing further needs scheduling for the order."""
    return state in FINAL_STATES


def label_handover_due(state: OrderState, payment: PaymentState, *, label_recorded: bool) -> bool:
    """Whether the seller may have the label now (`confirmed -> label_purchased`): only when the
    label is recorded and the payment booked, whichever came last."""
    return state is OrderState.CONFIRMED and payment is PaymentState.BOOKED and label_recorded


def label_unwanted(state: OrderState, payment: PaymentState) -> bool:
    """A label for this order would never be used: it is cancelled, or its payment was refused."""
    return state is OrderState.CANCELLED or payment is PaymentState.REFUSED
