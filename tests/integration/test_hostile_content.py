"""Hostile content neither freezes a worker nor costs a dead letter its reason.

The worker here logs through `configure_logging`, as a deployed worker does, so every line it
writes about a message (Dramatiq quotes the whole message when an actor fails) goes through the
redaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from shared.dead_letters.models import DeadLetter
from shared.logs import configure_logging
from shared.runtime import Runtime
from tasks.fulfilment.models import Order
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.logs import logging_restored
from tests.fixtures.services import publish_raw, queue_depth, wait_until


@pytest.fixture
def redacting_logs() -> Iterator[None]:
    """The worker's own logging set-up for the test, the process's put back afterwards."""
    with logging_restored():
        configure_logging(level="INFO", json=True)
        yield


def _body(kwargs: dict[str, Any], message_id: str) -> bytes:
    message = {
        "queue_name": "fulfilment",
        "actor_name": "fulfilment.place_order",
        "args": [],
        "kwargs": kwargs,
        "options": {},
        "message_id": message_id,
        "message_timestamp": int(time.time() * 1000),
    }
    return json.dumps(message).encode()


def _invalid_order(name: str) -> dict[str, Any]:
    """Kwargs of a place_order whose buyer is called `name` and whose price is not a number."""
    payload = place_order()
    kwargs = message_kwargs(payload, envelope_for(payload))
    kwargs["payload"]["buyer"]["name"] = name  # type: ignore[index]
    kwargs["payload"]["item_price_minor"] = "twelve pounds"  # type: ignore[index]
    return kwargs


def _dead(runtime: Runtime, message_id: str) -> DeadLetter | None:
    with runtime.sessions() as session:
        return session.scalar(select(DeadLetter).where(DeadLetter.message_id == message_id))


def _good_order_is_processed(runtime: Runtime, broker: Any) -> None:
    payload = place_order()
    broker.get_actor("fulfilment.place_order").send_with_options(
        kwargs=message_kwargs(payload, envelope_for(payload))
    )

    def exists() -> bool:
        with runtime.sessions() as session:
            return session.get(Order, payload.order_id) is not None

    wait_until(exists)


def test_a_multi_megabyte_single_word_payload_is_dead_lettered_promptly_and_the_worker_keeps_serving(
    settings, broker, worker, runtime, redacting_logs
):
    # Given a 5 MB name that is one word: a near-miss e-mail address, the old redaction's worst case
    word = "jane.doe" * 650_000
    message_id = "5e0c8f1a-2b7d-4c3e-9f10-aa00000000a1"

    # When a producer sends it
    publish_raw(settings, "fulfilment", _body(_invalid_order(word), message_id))

    # Then it is dead-lettered with its reason within the usual wait, and good orders still flow
    dead = wait_until(lambda: _dead(runtime, message_id), timeout=30)
    assert dead.exception_type == "InvalidMessage"
    assert "item_price_minor" in dead.reason
    wait_until(lambda: queue_depth(settings, "fulfilment.XQ") == 1)
    _good_order_is_processed(runtime, broker)


@pytest.mark.parametrize(
    ("name", "case"),
    [
        ("Jane \\u0000 Doe", "a backslash before u0000, as Postgres quotes a NUL"),
        ("Jane \\\\u0000 Doe", "an escaped backslash before u0000"),
        ("Jane \x00 Doe", "a real NUL"),
        ("Jane \ud800 Doe", "a lone surrogate"),
    ],
)
def test_a_dead_letter_keeps_its_reason_whatever_text_its_message_quotes(
    settings, broker, worker, runtime, name: str, case: str
):
    message_id = "5e0c8f1a-2b7d-4c3e-9f10-aa00000000b2"
    publish_raw(settings, "fulfilment", _body(_invalid_order(name), message_id))

    dead = wait_until(lambda: _dead(runtime, message_id))
    assert dead.recorded_by == "worker", case
    assert dead.exception_type == "InvalidMessage"
    assert "item_price_minor" in dead.reason
    stored = dead.message["kwargs"]["payload"]["buyer"]["name"]
    assert stored.startswith("Jane ") and stored.endswith(" Doe")
    assert "\x00" not in stored
    if "\\" in name:
        assert stored == name, "text that only looks like an escape is kept as it is"
    _good_order_is_processed(runtime, broker)
