from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import PermanentError
from tasks.fulfilment.states import (
    FINAL_STATES,
    IllegalTransition,
    OrderEvent,
    OrderState,
    PaymentState,
    allowed_events,
    is_final,
    label_handover_due,
    label_unwanted,
    transition,
)

S, E = OrderState, OrderEvent

# The lifecycle restated independently of the module's table, so a slip in either one fails here.
LEGAL = [
    (S.PLACED, E.ITEM_RESERVED, S.CONFIRMED),
    (S.PLACED, E.ITEM_ALREADY_SOLD, S.CANCELLED),
    (S.PLACED, E.PAYMENT_REFUSED, S.NEEDS_ATTENTION),
    (S.CONFIRMED, E.LABEL_PURCHASED, S.LABEL_PURCHASED),
    (S.CONFIRMED, E.ADDRESS_REJECTED, S.NEEDS_ATTENTION),
    (S.CONFIRMED, E.CARRIER_FAILED_PERMANENTLY, S.NEEDS_ATTENTION),
    (S.CONFIRMED, E.PAYMENT_REFUSED, S.NEEDS_ATTENTION),
    (S.LABEL_PURCHASED, E.SHIPPED, S.SHIPPED),
    (S.LABEL_PURCHASED, E.PAYMENT_REFUSED, S.NEEDS_ATTENTION),
    (S.SHIPPED, E.DELIVERED, S.DELIVERED),
    (S.DELIVERED, E.HOLD_ELAPSED, S.COMPLETED),
    (S.PLACED, E.BUYER_CANCELLED, S.CANCELLED),
    (S.CONFIRMED, E.BUYER_CANCELLED, S.CANCELLED),
    (S.LABEL_PURCHASED, E.BUYER_CANCELLED, S.CANCELLED),
    (S.NEEDS_ATTENTION, E.BUYER_CANCELLED, S.CANCELLED),
    (S.NEEDS_ATTENTION, E.RESOLVED_BY_SUPPORT, S.CONFIRMED),
]


@pytest.mark.parametrize(("state", "event", "after"), LEGAL)
def test_every_legal_transition_reaches_its_state(
    state: OrderState, event: OrderEvent, after: OrderState
) -> None:
    assert transition(state, event) is after


@pytest.mark.parametrize("state", list(OrderState))
def test_the_allowed_events_are_exactly_the_legal_ones(state: OrderState) -> None:
    assert allowed_events(state) == {event for before, event, _ in LEGAL if before is state}


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.SHIPPED, E.BUYER_CANCELLED),
        (S.DELIVERED, E.BUYER_CANCELLED),
        (S.PLACED, E.SHIPPED),
        (S.PLACED, E.LABEL_PURCHASED),
        (S.CONFIRMED, E.ITEM_RESERVED),
        (S.LABEL_PURCHASED, E.ADDRESS_REJECTED),
        (S.SHIPPED, E.HOLD_ELAPSED),
        (S.NEEDS_ATTENTION, E.LABEL_PURCHASED),
    ],
)
def test_an_event_that_does_not_apply_is_an_illegal_transition(state: OrderState, event: OrderEvent) -> None:
    with pytest.raises(IllegalTransition):
        transition(state, event)


def test_a_shipped_order_cannot_be_cancelled() -> None:
    with pytest.raises(IllegalTransition, match="'buyer_cancelled' is not allowed in order state 'shipped'"):
        transition(S.SHIPPED, E.BUYER_CANCELLED)


def test_an_illegal_transition_is_permanent_and_keeps_state_and_event() -> None:
    with pytest.raises(IllegalTransition) as raised:
        transition(S.DELIVERED, E.SHIPPED)

    assert isinstance(raised.value, PermanentError)
    assert (raised.value.state, raised.value.event) == (S.DELIVERED, E.SHIPPED)


@pytest.mark.parametrize("state", sorted(FINAL_STATES))
@pytest.mark.parametrize("event", list(OrderEvent))
def test_a_final_state_accepts_no_event(state: OrderState, event: OrderEvent) -> None:
    with pytest.raises(IllegalTransition, match="final state"):
        transition(state, event)


def test_only_completed_and_cancelled_are_final() -> None:
    assert {state for state in OrderState if is_final(state)} == {S.COMPLETED, S.CANCELLED}
    assert all(allowed_events(state) for state in OrderState if not is_final(state))


def test_a_state_read_back_as_plain_text_still_transitions() -> None:
    assert transition("placed", "item_reserved") is S.CONFIRMED  # type: ignore[arg-type]


@given(st.sampled_from(list(OrderState)), st.lists(st.sampled_from(list(OrderEvent)), max_size=30))
def test_random_events_never_leave_the_defined_states_nor_a_final_state(
    start: OrderState, events: list[OrderEvent]
) -> None:
    state = start
    for event in events:
        before = state
        try:
            state = transition(state, event)
        except IllegalTransition:
            assert event not in allowed_events(before)
            continue
        assert state in OrderState
        assert not is_final(before), f"left final state {before} on {event}"


@pytest.mark.parametrize("payment", list(PaymentState))
@pytest.mark.parametrize("label_recorded", [True, False])
def test_the_seller_gets_the_label_only_once_it_is_recorded_and_the_payment_booked(
    payment: PaymentState, label_recorded: bool
) -> None:
    due = label_handover_due(S.CONFIRMED, payment, label_recorded=label_recorded)
    assert due is (label_recorded and payment is PaymentState.BOOKED)


@pytest.mark.parametrize("state", [s for s in OrderState if s is not S.CONFIRMED])
def test_only_a_confirmed_order_has_its_label_handed_over(state: OrderState) -> None:
    assert not label_handover_due(state, PaymentState.BOOKED, label_recorded=True)


def test_a_label_is_unwanted_once_the_order_is_cancelled_or_its_payment_refused() -> None:
    assert label_unwanted(S.CANCELLED, PaymentState.BOOKED)
    assert label_unwanted(S.NEEDS_ATTENTION, PaymentState.REFUSED)
    assert not label_unwanted(S.CONFIRMED, PaymentState.PENDING)
    assert not label_unwanted(S.NEEDS_ATTENTION, PaymentState.PENDING)  # an address to fix, say
