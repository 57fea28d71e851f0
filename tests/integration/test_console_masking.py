"""The console shows no personal field of a dead message: not in its payload, reason or traceback."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from shared.config import Settings
from shared.dead_letters.record import record
from shared.runtime import Runtime
from tests.factories import envelope_for, message_kwargs, party, place_order
from tests.fixtures.live_api import PASSWORD, live_api, sign_in
from workers.dlq.console import users

NAME, LINE1, CITY = "Hermione Granger", "12 Grimmauld Place", "Ottery St Catchpole"


@pytest.fixture
def console(settings: Settings, clean_db: Runtime) -> Iterator[httpx.Client]:
    with clean_db.sessions.begin() as session:
        users.add_user(session, "olivia", PASSWORD, "viewer")
    with live_api(settings) as url, httpx.Client(base_url=url) as client:
        assert sign_in(client, "olivia").status_code == 303
        yield client


def _dead_order(runtime: Runtime) -> str:
    buyer = party("buyer-1") | {"name": NAME}
    buyer["address"] |= {"line1": LINE1, "city": CITY}
    order = place_order(buyer=buyer)
    message_id = str(uuid.uuid4())
    message = {
        "queue_name": "fulfilment", "actor_name": "fulfilment.place_order", "args": [],
        "kwargs": message_kwargs(order, envelope_for(order)), "options": {}, "message_id": message_id,
        "message_timestamp": int(time.time() * 1000),
    }  # fmt: skip
    traceback = (
        "Traceback (most recent call last):\n"
        f"psycopg.errors.DataError: value too long for {NAME!r} at {LINE1!r}, {CITY}\n"
    )
    with runtime.sessions.begin() as session:
        record(
            session, message_id=message_id, queue_name="fulfilment", actor_name="fulfilment.place_order",
            message=json.dumps(message), exception_type="DataError",
            reason=f"value too long for {NAME!r} at {LINE1!r}", traceback=traceback, attempts=1, host="w1",
        )  # fmt: skip
    return message_id


def test_a_dead_message_page_masks_names_and_addresses_everywhere(console, clean_db):
    message_id = _dead_order(clean_db)

    page = console.get(f"/console/messages/{message_id}")
    listing = console.get("/console/messages")

    assert page.status_code == 200 and listing.status_code == 200
    for shown in (page.text, listing.text):
        for personal in (NAME, LINE1, CITY, "buyer-1@example.com"):
            assert personal not in shown
    assert "psycopg.errors.DataError" in page.text and "buyer-1" in page.text


def test_the_failure_groups_page_masks_names_and_addresses_in_reasons(console, clean_db):
    _dead_order(clean_db)

    page = console.get("/console/groups")

    assert page.status_code == 200 and "value too long" in page.text
    for personal in (NAME, "Grimmauld Place"):
        assert personal not in page.text
