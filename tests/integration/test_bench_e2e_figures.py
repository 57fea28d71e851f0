"""The end-to-end section reads its latencies and hops from the rows the pipeline writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from shared.db import libpq_url
from shared.outbox import OutboxRow
from tasks.fulfilment.models import OrderTransition
from tests.factories import order_row, place_order
from workers.harness.bench import e2e_hops
from workers.harness.bench.e2e import entered_at

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def test_an_order_is_confirmed_when_it_moved_in_not_when_a_later_event_was_recorded(settings, clean_db):
    # Given an order confirmed at +100 ms, whose payment and label were recorded in that state later
    order = order_row(place_order())
    with clean_db.sessions.begin() as session:
        session.add(order)
        session.flush()
        for from_state, to_state, event, ms in (
            (None, "placed", "order_placed", 0),
            ("placed", "confirmed", "item_reserved", 100),
            ("confirmed", "confirmed", "payment_booked", 900),
            ("confirmed", "label_purchased", "label_purchased", 1200),
        ):
            session.add(OrderTransition(order_id=order.id, from_state=from_state, to_state=to_state,
                                        event=event, cause="test", at=_at(ms)))  # fmt: skip
    # When the section reads when it entered each state
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        found = entered_at(conn, [str(order.id)])
    # Then `confirmed` is the move at +100 ms, not the payment booked at +900 ms
    assert found == {
        (str(order.id), "confirmed"): _at(100).timestamp(),
        (str(order.id), "label_purchased"): _at(1200).timestamp(),
    }


def test_a_hop_splits_into_the_outbox_wait_and_the_queue_wait(settings, clean_db):
    # Given a place_order row written at 0, published at +30 ms and taken by a worker at +80 ms,
    # and a notification of another order (not on the path, not counted)
    order = place_order()
    message_id = uuid.uuid4()
    body = f'{{"kwargs":{{"payload":{{"order_id":"{order.order_id}"}}}}}}'.encode()
    with clean_db.sessions.begin() as session:
        row = OutboxRow(message_id=message_id, queue_name="fulfilment", actor_name=order.kind, body=body)
        row.created_at, row.available_at, row.published_at = _at(0), _at(0), _at(30)
        session.add(row)
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO processed_messages (idempotency_key, kind, message_id, content_hash, processed_at) "
            "VALUES ('k', %s, %s, 'h', %s)",
            (order.kind, message_id, _at(80)),
        )
        # When the hops are read, with place_order's handling 12 s over 1,000 attempts
        found = e2e_hops.hops(conn, [str(order.order_id)], {order.kind: (12.0, 1000.0)})
    # Then the one hop shows each wait and the mean handling time
    assert [
        (h.kind, h.messages, h.outbox_ms["p50_ms"], h.queue_ms["p50_ms"], h.handling_mean_ms) for h in found
    ] == [("fulfilment.place_order", 1, 30.0, 50.0, 12.0)]


def test_the_handling_window_is_the_difference_of_two_scrapes():
    before = {"fulfilment.place_order": (1.0, 10.0)}
    after = {"fulfilment.place_order": (3.0, 30.0), "shipping.buy_label": (0.5, 5.0)}
    assert e2e_hops.window(before, after) == {
        "fulfilment.place_order": (2.0, 20.0),
        "shipping.buy_label": (0.5, 5.0),
    }
