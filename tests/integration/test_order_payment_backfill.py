"""Revision 0030_order_payment_booked backfills what already happened to each order's payment.

Without it, a confirmed order whose capture was booked before the upgrade would wait for a
`fulfilment.record_payment` that the ledger had no reason to send, and its label would never reach
the seller.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from shared.config import Settings
from shared.migrate import create_database_if_missing, migrate
from tests.fixtures.services import _drop_database, make_settings

BEFORE = "647686cfe39e"


@pytest.fixture
def scratch(settings: Settings) -> Iterator[Settings]:
    """An empty database of its own, next to the session's, dropped afterwards."""
    scratch = make_settings(database_url=f"{settings.database_url}_payment_backfill")
    _drop_database(scratch)
    create_database_if_missing(scratch)
    yield scratch
    _drop_database(scratch)


_ORDER = text(
    "INSERT INTO orders (id, listing_id, buyer_id, seller_id, buyer, seller, market, currency,"
    " item_price_minor, shipping_price_minor, state, placed_at) VALUES (:id, :listing, 'b-1', 's-1',"
    " '{}', '{}', 'DE', 'EUR', 1000, 100, :state, now())"
)


def test_orders_from_before_learn_whether_their_payment_was_booked_or_refused(scratch):
    # Given, before the revision, a confirmed order with its capture in the journal, one whose
    # payment fulfilment refused, and one still waiting for the ledger
    migrate(scratch, BEFORE)
    booked, refused, pending = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    engine = create_engine(scratch.database_url)
    try:
        with engine.begin() as connection:
            for order_id, state in (
                (booked, "confirmed"),
                (refused, "needs_attention"),
                (pending, "confirmed"),
            ):
                connection.execute(_ORDER, {"id": order_id, "listing": uuid.uuid4(), "state": state})
            connection.execute(
                text(
                    "INSERT INTO journal_transactions (posting_key, kind, order_id, content_hash)"
                    " VALUES (:key, 'payment_captured', :id, :hash)"
                ),
                {"key": f"payment_captured:{booked}", "id": booked, "hash": "0" * 64},
            )
            connection.execute(
                text(
                    "INSERT INTO order_transitions (order_id, from_state, to_state, event, cause)"
                    " VALUES (:id, 'placed', 'needs_attention', 'payment_refused', 'test')"
                ),
                {"id": refused},
            )

        # When the database is upgraded
        migrate(scratch)

        # Then each order's payment state says what had happened, and no label is waiting
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT id, payment_state, label FROM orders")).all()
        assert {row.id: (row.payment_state, row.label) for row in rows} == {
            booked: ("booked", None),
            refused: ("refused", None),
            pending: ("pending", None),
        }
    finally:
        engine.dispose()
