"""The migrated database is what the models describe, and databases from before upgrade cleanly.

"No pending autogenerate diff": what `circulate db check` asks of a development database, asked
here of the test database (migrated from scratch by the `settings` fixture) and of databases left
at the heads of earlier releases, then upgraded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, text

from shared.config import Settings
from shared.migrate import alembic_config, create_database_if_missing, migrate
from tests.fixtures.services import _drop_database, make_settings
from workers.models_registry import metadata

#: The heads a deployed database can be at: the release of 2026-11-25 (one branch per domain)...
HEADS_OF_2026_11_25 = (
    "0003_ledger",
    "0004_shipping_notifications",
    "0005_dead_letter_archive",
    "0006_listing_reservations",
)
#: ...and everything added on 2026-11-28 before the branches met (revision aa2726786112).
HEADS_BEFORE_ONE_HISTORY = (
    "0003_ledger",
    "0004_shipping_notifications",
    "0006_listing_reservations",
    "0007_outbox_schedule",
    "0010_console_sessions",
    "0011_token_scopes",
    "0021_accepted_cancellations",
)


def _differences(connection: Connection) -> list[object]:
    options = {"compare_type": True, "compare_server_default": True}
    context = MigrationContext.configure(connection, opts=options)
    return list(compare_metadata(context, metadata()))


def test_the_migrated_database_matches_the_models(runtime):
    with runtime.engine.connect() as connection:
        assert _differences(connection) == []


@pytest.fixture
def scratch(settings: Settings) -> Iterator[Settings]:
    """An empty database of its own, next to the session's, dropped afterwards."""
    scratch = make_settings(database_url=f"{settings.database_url}_upgrade")
    _drop_database(scratch)
    create_database_if_missing(scratch)
    yield scratch
    _drop_database(scratch)


@pytest.mark.parametrize("old_heads", [HEADS_OF_2026_11_25, HEADS_BEFORE_ONE_HISTORY], ids=["11-25", "11-28"])
def test_a_database_at_earlier_heads_upgrades_to_the_one_head_with_its_rows(scratch, old_heads):
    # Given a database at the heads an earlier release left, with an order and its transition
    for head in old_heads:
        migrate(scratch, head)
    order_id = uuid.uuid4()
    engine = create_engine(scratch.database_url)
    try:
        with engine.begin() as connection:
            assert set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars()) == set(
                old_heads
            )
            connection.execute(
                text(
                    "INSERT INTO orders (id, listing_id, buyer_id, seller_id, buyer, seller, market,"
                    " currency, item_price_minor, shipping_price_minor, state, placed_at) VALUES (:id,"
                    " :listing, 'b-1', 's-1', '{}', '{}', 'DE', 'EUR', 1000, 100, 'placed', now())"
                ),
                {"id": order_id, "listing": uuid.uuid4()},
            )
            connection.execute(
                text(
                    "INSERT INTO order_transitions (order_id, from_state, to_state, event, cause)"
                    " VALUES (:id, NULL, 'placed', 'OrderPlaced', 'test')"
                ),
                {"id": order_id},
            )

        # When it is upgraded as `circulate migrate` does
        migrate(scratch)

        # Then it records the one head, matches the models and kept its rows
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
            assert list(versions) == [head]
            assert _differences(connection) == []
            transitions = connection.execute(
                text("SELECT count(*) FROM order_transitions WHERE order_id = :id"), {"id": order_id}
            ).scalar_one()
            accepted = connection.execute(
                text("SELECT service FROM accepted_orders WHERE order_id = :id"), {"id": order_id}
            ).scalar_one_or_none()
        assert transitions == 1
        # 0020 backfills the orders it finds; at the 11-28 heads it ran before this order was written.
        assert accepted == (None if "0021_accepted_cancellations" in old_heads else "before-0020")
    finally:
        engine.dispose()
