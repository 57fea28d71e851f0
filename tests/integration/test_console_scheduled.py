"""The console's Scheduled page: delayed work kept in PostgreSQL, by kind, with the next due time."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from shared.config import Settings
from shared.enqueue import enqueue
from shared.runtime import Runtime
from tests.factories import place_order
from tests.fixtures.live_api import PASSWORD, live_api, sign_in
from workers.dlq.console import users


@pytest.fixture
def server(settings: Settings, clean_db: Runtime) -> Iterator[str]:
    with clean_db.sessions.begin() as session:
        users.add_user(session, "victor", PASSWORD, "viewer")
    with live_api(settings) as url:
        yield url


def test_the_scheduled_page_shows_count_and_next_due_by_kind(server: str, clean_db: Runtime):
    with clean_db.sessions.begin() as session:
        enqueue(session, place_order(), idempotency_key="now")
        for number in range(2):
            enqueue(session, place_order(), idempotency_key=f"later-{number}", delay_ms=86_400_000)

    with httpx.Client(base_url=server) as client:
        assert sign_in(client, "victor").status_code == 303
        page = client.get("/console/scheduled")

    assert page.status_code == 200
    assert "2 message(s) wait in PostgreSQL" in page.text
    assert '<td>fulfilment.place_order</td><td class="n">2</td>' in page.text


def test_the_scheduled_page_needs_a_signed_in_user(server: str):
    page = httpx.get(f"{server}/console/scheduled")

    assert page.status_code == 303
    assert page.headers["location"].endswith("/console/login")
