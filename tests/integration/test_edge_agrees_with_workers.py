"""Property: whatever the API accepts, fulfilment stores and the API reads back; the rest is a 422."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from shared.actors import run_message
from shared.config import Settings
from shared.fees import DEFAULT_FEE_SCHEDULE_JSON, FeeSchedule
from shared.outbox import OutboxRow
from shared.runtime import Runtime
from tasks.fulfilment import actors
from tests.factories import order_body


@pytest.fixture
def rt(settings: Settings, clean_db: Runtime) -> Iterator[Runtime]:
    runtime = Runtime.from_settings(
        settings, adapters={"fees": lambda s: FeeSchedule.from_json(DEFAULT_FEE_SCHEDULE_JSON)}
    )
    yield runtime
    runtime.close()


def _handle_queued(runtime: Runtime, order_id: str) -> None:
    """Run the queued place_order message through the real actor core, as a worker would."""
    with runtime.sessions() as session:
        rows = session.scalars(select(OutboxRow).order_by(OutboxRow.id)).all()
    for row in rows:
        message = json.loads(row.body)
        if message["kwargs"]["payload"]["order_id"] == order_id:
            run_message(actors.place_order, runtime, message["kwargs"])
            return
    raise AssertionError(f"no queued message for order {order_id}")


_hostile_text = st.text(max_size=60) | st.sampled_from(["\x00", "a\r\nb", "\u202e", " ", "\ud800x"])
_amounts = st.integers(min_value=-5, max_value=2**64) | st.sampled_from([2**63, 10**10, 10**10 + 1])
_markets = st.sampled_from([("GB", "GBP"), ("GB", "USD"), ("ZZ", "GBP"), ("FR", "EUR"), ("US", "EUR")])
_placed = st.sampled_from(["9999-12-31T23:00:00-05:00", "1999-12-31T23:59:59Z", None])


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=_hostile_text, line1=_hostile_text, item=_amounts, market=_markets, placed_at=_placed)
def test_an_order_the_api_accepts_is_handled_by_fulfilment_and_reads_back(
    api: httpx.Client, rt: Runtime, name: str, line1: str, item: int, market: tuple[str, str], placed_at: Any
) -> None:
    body = order_body(item_price_minor=item, market=market[0], currency=market[1])
    if placed_at is not None:
        body["placed_at"] = placed_at
    body["buyer"]["name"] = name
    body["seller"]["address"]["line1"] = line1
    # A lone surrogate cannot be encoded as UTF-8 JSON; send it escaped, as a hostile client would.
    response = api.post(
        "/v1/orders", content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )

    assert response.status_code in (202, 422), response.text
    if response.status_code == 422:
        assert response.json()["fields"], response.text
        return
    _handle_queued(rt, body["order_id"])
    read = api.get(f"/v1/orders/{body['order_id']}")
    assert read.status_code == 200, read.text
    assert read.json()["state"] in {"confirmed", "cancelled"}
