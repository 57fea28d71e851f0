"""Fulfilment's rules on the real database: one buyer per item, legal transitions, follow-ups."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text

from shared.actors import run_message
from shared.config import Settings
from shared.fees import DEFAULT_FEE_SCHEDULE_JSON, FeeSchedule
from shared.messages import Envelope, Payload
from shared.outbox import OutboxRow
from shared.runtime import Runtime
from shared.uow import UnitOfWork
from tasks.fulfilment import actors, handlers, orders
from tasks.fulfilment.messages import CancelOrder, CompleteOrder, RecordLabel, RecordPayment, RecordTracking
from tasks.fulfilment.models import Order, OrderTransition
from tasks.fulfilment.orders import OrderNotYetKnown
from tasks.fulfilment.states import OrderEvent
from tests.factories import place_order


@pytest.fixture
def rt(settings: Settings, clean_db: Runtime) -> Iterator[Runtime]:
    runtime = Runtime.from_settings(
        settings, adapters={"fees": lambda s: FeeSchedule.from_json(DEFAULT_FEE_SCHEDULE_JSON)}
    )
    yield runtime
    runtime.close()


def deliver(runtime: Runtime, spec: Any, payload: Payload, key: str | None = None) -> None:
    envelope = Envelope(idempotency_key=key or f"test:{uuid.uuid4()}", kind=payload.kind, correlation_id="t")
    run_message(
        spec,
        runtime,
        {"envelope": envelope.model_dump(mode="json"), "payload": payload.model_dump(mode="json")},
    )


def state(runtime: Runtime, order_id: uuid.UUID) -> str:
    with runtime.sessions() as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order.state


def outbox(runtime: Runtime) -> list[tuple[str, dict[str, Any]]]:
    with runtime.sessions() as session:
        rows = session.scalars(select(OutboxRow).order_by(OutboxRow.id)).all()
    return [(r.actor_name, json.loads(r.body)["kwargs"]["payload"]) for r in rows]


def label_for(order_id: uuid.UUID) -> RecordLabel:
    return RecordLabel(
        order_id=order_id, label_id="L1", tracking_number="T1", label_url="https://labels.test/L1",
        carrier="sandbox-post", cost_minor=299, currency="GBP",
    )  # fmt: skip


def tracking(order_id: uuid.UUID, event: str) -> RecordTracking:
    return RecordTracking(
        order_id=order_id, event=event, event_id=uuid.uuid4().hex, occurred_at=datetime.now(UTC)
    )


def confirmed_order(rt: Runtime) -> uuid.UUID:
    payload = place_order()
    deliver(rt, actors.place_order, payload)
    return payload.order_id


def paid_order(rt: Runtime) -> uuid.UUID:
    """A confirmed order whose capture the ledger has booked: its label goes to the seller on arrival."""
    order_id = confirmed_order(rt)
    booked = RecordPayment(order_id=order_id, buyer_total_minor=2994, seller_net_minor=2500, currency="GBP")
    deliver(rt, actors.record_payment, booked)
    return order_id


def test_a_paid_order_is_confirmed_and_asks_for_payment_capture_a_label_and_a_confirmation(rt):
    order_id = confirmed_order(rt)
    assert state(rt, order_id) == "confirmed"
    kinds = [kind for kind, _ in outbox(rt)]
    assert kinds == ["ledger.capture_payment", "shipping.buy_label", "notifications.send"]
    assert outbox(rt)[2][1]["template"] == "order_confirmed"


def test_two_buyers_paying_for_one_listing_at_once_get_exactly_one_confirmed_order(rt):
    listing = str(uuid.uuid4())
    first, second = place_order(listing_id=listing), place_order(listing_id=listing)
    start = threading.Barrier(2)

    def buy(payload: Payload) -> None:
        start.wait()
        deliver(rt, actors.place_order, payload)

    threads = [threading.Thread(target=buy, args=(p,)) for p in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted([state(rt, first.order_id), state(rt, second.order_id)]) == ["cancelled", "confirmed"]
    loser = first.order_id if state(rt, first.order_id) == "cancelled" else second.order_id
    refunds = [p for kind, p in outbox(rt) if kind == "ledger.reverse_payment"]
    assert [r["order_id"] for r in refunds] == [str(loser)]
    told = [
        p for kind, p in outbox(rt) if kind == "notifications.send" and p["template"] == "order_cancelled"
    ]
    assert [t["order_id"] for t in told] == [str(loser)]


def test_a_label_moves_the_order_on_and_tells_the_seller_to_ship(rt):
    order_id = paid_order(rt)
    deliver(rt, actors.record_label, label_for(order_id))
    assert state(rt, order_id) == "label_purchased"
    item_sold = [p for kind, p in outbox(rt) if kind == "notifications.send" and p["template"] == "item_sold"]
    assert item_sold[0]["recipient_role"] == "seller"
    assert item_sold[0]["context"]["label_url"] == "https://labels.test/L1"


def test_cancelling_after_the_label_voids_it_reverses_the_payment_tells_both_and_frees_the_listing(rt):
    order_id = paid_order(rt)
    deliver(rt, actors.record_label, label_for(order_id))
    deliver(rt, actors.cancel_order, CancelOrder(order_id=order_id, reason="buyer_request"))
    assert state(rt, order_id) == "cancelled"
    kinds = [kind for kind, _ in outbox(rt)]
    assert "shipping.void_label" in kinds and "ledger.reverse_payment" in kinds
    roles = {
        p["recipient_role"]
        for k, p in outbox(rt)
        if k == "notifications.send" and p["template"] == "order_cancelled"
    }
    assert roles == {"buyer", "seller"}
    with rt.sessions() as session:
        assert session.execute(text("SELECT count(*) FROM listing_reservations")).scalar() == 0


def test_a_label_that_arrives_after_a_cancellation_is_voided(rt):
    order_id = confirmed_order(rt)
    deliver(rt, actors.cancel_order, CancelOrder(order_id=order_id))
    deliver(rt, actors.record_label, label_for(order_id))
    assert state(rt, order_id) == "cancelled"
    assert [kind for kind, _ in outbox(rt)].count("shipping.void_label") == 1


def test_cancelling_an_order_whose_label_waits_for_the_payment_voids_the_label(rt):
    order_id = confirmed_order(rt)
    deliver(rt, actors.record_label, label_for(order_id))

    deliver(rt, actors.cancel_order, CancelOrder(order_id=order_id))

    assert state(rt, order_id) == "cancelled"
    kinds = [kind for kind, _ in outbox(rt)]
    assert kinds.count("shipping.void_label") == 1 and "ledger.reverse_payment" in kinds


def test_a_shipped_order_cannot_be_cancelled_and_the_refusal_is_recorded(rt):
    order_id = paid_order(rt)
    deliver(rt, actors.record_label, label_for(order_id))
    deliver(rt, actors.record_tracking, tracking(order_id, "shipped"))
    deliver(rt, actors.cancel_order, CancelOrder(order_id=order_id))
    assert state(rt, order_id) == "shipped"
    with rt.sessions() as session:
        events = list(
            session.scalars(select(OrderTransition.event).where(OrderTransition.order_id == order_id))
        )
    assert events[-1] == "cancel_refused"
    assert "ledger.reverse_payment" not in [kind for kind, _ in outbox(rt)]


def test_a_delivery_seen_before_its_shipment_implies_it_and_schedules_completion(rt):
    order_id = paid_order(rt)
    deliver(rt, actors.record_label, label_for(order_id))
    deliver(rt, actors.record_tracking, tracking(order_id, "delivered"))
    assert state(rt, order_id) == "delivered"
    with rt.sessions() as session:
        completion = session.scalars(
            select(OutboxRow).where(OutboxRow.actor_name == "fulfilment.complete_order")
        ).one()
    hold = (completion.available_at - completion.created_at).total_seconds()
    assert hold == pytest.approx(rt.settings.completion_hold_s, abs=0.001)


def test_completion_releases_the_sellers_funds(rt):
    order_id = paid_order(rt)
    deliver(rt, actors.record_label, label_for(order_id))
    deliver(rt, actors.record_tracking, tracking(order_id, "delivered"))
    deliver(rt, actors.complete_order, CompleteOrder(order_id=order_id))
    assert state(rt, order_id) == "completed"
    assert "ledger.release_funds" in [kind for kind, _ in outbox(rt)]


def test_a_cancellation_for_an_order_not_yet_known_is_retried_later(rt):
    with pytest.raises(OrderNotYetKnown):
        deliver(rt, actors.cancel_order, CancelOrder(order_id=uuid.uuid4()))


def test_follow_ups_stay_in_the_trace_and_correlation_of_the_message_that_caused_them(rt):
    payload = place_order()
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    envelope = Envelope(
        idempotency_key="k",
        kind=payload.kind,
        correlation_id="corr-1",
        traceparent=f"00-{trace}-00f067aa0ba902b7-01",
    )
    run_message(
        actors.place_order,
        rt,
        {"envelope": envelope.model_dump(mode="json"), "payload": payload.model_dump(mode="json")},
    )
    with rt.sessions() as session:
        envelopes = [json.loads(r.body)["kwargs"]["envelope"] for r in session.scalars(select(OutboxRow))]
    assert len(envelopes) == 3
    assert {e["correlation_id"] for e in envelopes} == {"corr-1"}
    assert all(e["traceparent"].startswith(f"00-{trace}-") for e in envelopes)


def test_the_label_and_the_payment_of_one_order_in_one_transaction_see_each_other(rt):
    """As in a batch (`shared.batch`): each handler's locked order is saved before the next loads it."""
    order_id = confirmed_order(rt)
    booked = RecordPayment(order_id=order_id, buyer_total_minor=2994, seller_net_minor=2500, currency="GBP")
    with UnitOfWork(rt.sessions, runtime=rt) as uow:
        uow.handle(Envelope(idempotency_key="t:label", kind=RecordLabel.kind, correlation_id="t"))
        handlers.record_label(uow, label_for(order_id))
        uow.handle(Envelope(idempotency_key="t:payment", kind=RecordPayment.kind, correlation_id="t"))
        handlers.record_payment(uow, booked)
        uow.commit()

    assert state(rt, order_id) == "label_purchased"
    assert history(rt, order_id) == [
        (None, "placed", "order_placed"),
        ("placed", "confirmed", "item_reserved"),
        ("confirmed", "confirmed", "label_recorded"),
        ("confirmed", "confirmed", "payment_booked"),
        ("confirmed", "label_purchased", "label_purchased"),
    ]


def test_a_locked_order_left_unchanged_is_not_written_and_one_left_by_an_error_is_not_saved(rt):
    order_id = confirmed_order(rt)
    with rt.sessions() as session:
        stamped = session.scalar(select(Order.updated_at).where(Order.id == order_id))
    with UnitOfWork(rt.sessions, runtime=rt) as uow:
        with orders.locked(uow, order_id):
            pass
        with pytest.raises(RuntimeError), orders.locked(uow, order_id) as order:
            orders.move(order, OrderEvent.BUYER_CANCELLED, "changed, then the handler failed")
            raise RuntimeError("the handler failed")
        uow.commit()

    with rt.sessions() as session:
        assert session.scalar(select(Order.updated_at).where(Order.id == order_id)) == stamped
    assert state(rt, order_id) == "confirmed"
    assert [event for _, _, event in history(rt, order_id)] == ["order_placed", "item_reserved"]


def history(runtime: Runtime, order_id: uuid.UUID) -> list[tuple[str | None, str, str]]:
    with runtime.sessions() as session:
        rows = session.execute(
            select(OrderTransition.from_state, OrderTransition.to_state, OrderTransition.event)
            .where(OrderTransition.order_id == order_id)
            .order_by(OrderTransition.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]
