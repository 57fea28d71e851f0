"""No order ships without its payment booked: an order the ledger cannot book needs attention instead.

Before, fulfilment asked for the capture and the label side by side, so an order priced in a
currency its market does not use had its label bought while the capture was dead-lettered, and
it shipped with no payment booked. Fulfilment's pre-check stops the refusals it can foresee; for
the others the ledger answers the capture (`fulfilment.record_payment` or
`fulfilment.record_payment_refusal`), and the seller gets the label only once the payment is booked.

The later tests hand messages from the outbox to the next actor themselves, as the relay and a
worker would, so that the ledger can run with a fee schedule of its own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from shared.actors import run_message
from shared.config import Settings
from shared.fees import DEFAULT_FEE_SCHEDULE_JSON, FeeSchedule
from shared.outbox import OutboxRow
from shared.runtime import Runtime
from tasks.fulfilment.messages import CancelOrder, RecordLabel
from tasks.fulfilment.models import ListingReservation, Order, OrderTransition
from tasks.ledger.models import TransactionRecord
from tasks.registry import ACTORS
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.services import wait_until

SPECS = {spec.name: spec for spec in ACTORS}


def _place(broker: Any, **overrides: Any) -> uuid.UUID:
    # Straight to the broker, as a producer other than the API (which refuses these) could.
    payload = place_order(**overrides)
    actor = broker.get_actor("fulfilment.place_order")
    actor.send_with_options(kwargs=message_kwargs(payload, envelope_for(payload)))
    return payload.order_id


def _settled_state(runtime: Runtime, order_id: uuid.UUID) -> str | None:
    with runtime.sessions() as session:
        order = session.get(Order, order_id)
        return order.state if order is not None and order.state != "placed" else None


def _asked(runtime: Runtime, order_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    with runtime.sessions() as session:
        rows = session.scalars(select(OutboxRow).order_by(OutboxRow.id)).all()
    asked = [(row.actor_name, json.loads(row.body)["kwargs"]["payload"]) for row in rows]
    return [(kind, payload) for kind, payload in asked if payload.get("order_id") == str(order_id)]


def test_an_order_priced_in_another_currency_needs_attention_and_no_label_is_bought(broker, worker, runtime):
    order_id = _place(broker, market="GB", currency="USD")

    assert wait_until(lambda: _settled_state(runtime, order_id)) == "needs_attention"
    kinds = [kind for kind, _ in _asked(runtime, order_id)]
    assert "shipping.buy_label" not in kinds
    assert "ledger.capture_payment" not in kinds  # the ledger would only dead-letter it
    told = [p for kind, p in _asked(runtime, order_id) if kind == "notifications.send"]
    assert [(p["template"], p["recipient_role"]) for p in told] == [("needs_attention", "seller")]
    with runtime.sessions() as session:
        history = session.scalars(select(OrderTransition).where(OrderTransition.order_id == order_id)).all()
        assert [t.event for t in history] == ["order_placed", "payment_refused"]
        assert "GBP" in history[-1].cause
        assert session.scalars(select(ListingReservation)).all() == []  # the item stays on sale


def test_an_order_in_an_unknown_market_needs_attention_rather_than_a_dead_letter(broker, worker, runtime):
    order_id = _place(broker, market="ZZ", currency="GBP")

    assert wait_until(lambda: _settled_state(runtime, order_id)) == "needs_attention"
    assert "shipping.buy_label" not in [kind for kind, _ in _asked(runtime, order_id)]


def test_an_order_the_ledger_can_book_is_confirmed_and_asks_for_capture_and_label(broker, worker, runtime):
    order_id = _place(broker, market="FR", currency="EUR")

    assert wait_until(lambda: _settled_state(runtime, order_id)) == "confirmed"
    kinds = [kind for kind, _ in _asked(runtime, order_id)]
    assert kinds[:2] == ["ledger.capture_payment", "shipping.buy_label"]


# --- Refusals fulfilment could not foresee: the ledger answers, the label waits for the payment ---


def _runtime(settings: Settings, schedule: dict[str, Any]) -> Runtime:
    fees = FeeSchedule.from_json(json.dumps(schedule))
    return Runtime.from_settings(settings, adapters={"fees": lambda _: fees})


@pytest.fixture
def shop(settings: Settings, clean_db: Runtime) -> Iterator[Runtime]:
    """Fulfilment (and shipping's answers) with the launch fee schedule."""
    runtime = _runtime(settings, json.loads(DEFAULT_FEE_SCHEDULE_JSON))
    yield runtime
    runtime.close()


@pytest.fixture
def ledger(settings: Settings, clean_db: Runtime) -> Iterator[Runtime]:
    """The ledger with the same schedule as fulfilment."""
    runtime = _runtime(settings, json.loads(DEFAULT_FEE_SCHEDULE_JSON))
    yield runtime
    runtime.close()


@pytest.fixture
def ledger_without_fr(settings: Settings, clean_db: Runtime) -> Iterator[Runtime]:
    """A ledger worker whose schedule lacks FR while fulfilment's has it: a refusal no pre-check sees."""
    schedule = {m: f for m, f in json.loads(DEFAULT_FEE_SCHEDULE_JSON).items() if m != "FR"}
    runtime = _runtime(settings, schedule)
    yield runtime
    runtime.close()


def _deliver(runtime: Runtime, payload: Any) -> None:
    envelope = {"idempotency_key": f"test:{uuid.uuid4()}", "kind": payload.kind, "correlation_id": "t"}
    run_message(
        SPECS[payload.kind], runtime, {"envelope": envelope, "payload": payload.model_dump(mode="json")}
    )


def _hand_on(kind: str, order_id: uuid.UUID, *, to: Runtime) -> int:
    """Deliver the order's unpublished outbox messages of `kind` to their actor, as relay and worker would."""
    with to.sessions.begin() as session:
        rows = session.scalars(
            select(OutboxRow)
            .where(OutboxRow.actor_name == kind, OutboxRow.published_at.is_(None))
            .order_by(OutboxRow.id)
        ).all()
        messages = [json.loads(row.body)["kwargs"] for row in rows]
        mine = [
            (row, m)
            for row, m in zip(rows, messages, strict=True)
            if m["payload"]["order_id"] == str(order_id)
        ]
        for row, _ in mine:
            row.published_at = func.now()
    for _, kwargs in mine:
        run_message(SPECS[kind], to, kwargs)
    return len(mine)


def _placed(shop: Runtime, **overrides: Any) -> uuid.UUID:
    payload = place_order(**overrides)
    _deliver(shop, payload)
    return payload.order_id


def _label(order_id: uuid.UUID) -> RecordLabel:
    return RecordLabel(
        order_id=order_id, label_id="L1", tracking_number="T1", label_url="https://labels.test/L1",
        carrier="sandbox-post", cost_minor=299, currency="EUR",
    )  # fmt: skip


def _state(runtime: Runtime, order_id: uuid.UUID) -> str:
    with runtime.sessions() as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order.state


def _states_entered(runtime: Runtime, order_id: uuid.UUID) -> list[str]:
    with runtime.sessions() as session:
        rows = session.scalars(select(OrderTransition).where(OrderTransition.order_id == order_id)).all()
        return [t.to_state for t in rows]


def _told(runtime: Runtime, order_id: uuid.UUID) -> list[tuple[str, str]]:
    return [
        (p["template"], p["recipient_role"])
        for kind, p in _asked(runtime, order_id)
        if kind == "notifications.send"
    ]


def _journal(runtime: Runtime, order_id: uuid.UUID) -> list[str]:
    with runtime.sessions() as session:
        query = select(TransactionRecord.kind).where(TransactionRecord.order_id == order_id)
        return list(session.scalars(query))


def test_a_capture_the_ledger_refuses_after_the_label_was_bought_needs_attention_and_voids_the_label(
    shop, ledger_without_fr
):
    # Given an order fulfilment's pre-check passed, and its label bought before the capture is handled
    order_id = _placed(shop, market="FR", currency="EUR")
    _deliver(shop, _label(order_id))

    # When the ledger, whose schedule lacks the market, handles the capture and fulfilment its answer
    assert _hand_on("ledger.capture_payment", order_id, to=ledger_without_fr) == 1
    assert _hand_on("fulfilment.record_payment_refusal", order_id, to=shop) == 1

    # Then the order needs attention, the label never reached the seller and is voided, nothing is booked
    assert _state(shop, order_id) == "needs_attention"
    assert "label_purchased" not in _states_entered(shop, order_id)
    assert ("item_sold", "seller") not in _told(shop, order_id)
    assert ("needs_attention", "seller") in _told(shop, order_id)
    kinds = [kind for kind, _ in _asked(shop, order_id)]
    assert kinds.count("shipping.void_label") == 1
    assert "ledger.reverse_payment" not in kinds  # nothing was booked, so nothing is reversed
    assert _journal(shop, order_id) == []


def test_a_label_arriving_after_the_ledger_refused_the_capture_is_voided(shop, ledger_without_fr):
    order_id = _placed(shop, market="FR", currency="EUR")
    _hand_on("ledger.capture_payment", order_id, to=ledger_without_fr)
    _hand_on("fulfilment.record_payment_refusal", order_id, to=shop)

    _deliver(shop, _label(order_id))

    assert _state(shop, order_id) == "needs_attention"
    assert [kind for kind, _ in _asked(shop, order_id)].count("shipping.void_label") == 1
    assert ("item_sold", "seller") not in _told(shop, order_id)


def test_cancelling_an_order_whose_payment_was_refused_reverses_nothing(shop, ledger_without_fr):
    order_id = _placed(shop, market="FR", currency="EUR")
    _hand_on("ledger.capture_payment", order_id, to=ledger_without_fr)
    _hand_on("fulfilment.record_payment_refusal", order_id, to=shop)

    _deliver(shop, CancelOrder(order_id=order_id))

    assert _state(shop, order_id) == "cancelled"
    assert "ledger.reverse_payment" not in [kind for kind, _ in _asked(shop, order_id)]


def test_a_label_recorded_before_the_payment_is_booked_is_handed_over_only_when_the_payment_arrives(
    shop, ledger
):
    # Given a confirmed order whose capture has not been handled (slow, or dead-lettered and waiting)
    order_id = _placed(shop, market="FR", currency="EUR")

    # When its label is recorded, the seller does not get it yet
    _deliver(shop, _label(order_id))
    assert _state(shop, order_id) == "confirmed"
    assert ("item_sold", "seller") not in _told(shop, order_id)

    # Then once the ledger books the capture and fulfilment hears of it, the label is handed over
    assert _hand_on("ledger.capture_payment", order_id, to=ledger) == 1
    assert _journal(shop, order_id) == ["payment_captured"]
    assert _hand_on("fulfilment.record_payment", order_id, to=shop) == 1
    assert _state(shop, order_id) == "label_purchased"
    item_sold = [
        p for k, p in _asked(shop, order_id) if k == "notifications.send" and p["template"] == "item_sold"
    ]
    assert [p["context"]["label_url"] for p in item_sold] == ["https://labels.test/L1"]


def test_an_order_paid_before_its_label_arrives_reaches_label_purchased_once_the_label_does(shop, ledger):
    order_id = _placed(shop, market="FR", currency="EUR")
    _hand_on("ledger.capture_payment", order_id, to=ledger)
    assert _hand_on("fulfilment.record_payment", order_id, to=shop) == 1
    assert _state(shop, order_id) == "confirmed"  # paid, but no label yet

    _deliver(shop, _label(order_id))

    assert _state(shop, order_id) == "label_purchased"
    assert _told(shop, order_id).count(("item_sold", "seller")) == 1
