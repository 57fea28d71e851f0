"""The archive's pure logic: filters, what a dead copy tells, re-drive bodies, payload edits."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql

from shared.broker import undecodable_message
from shared.dead_letters.filter import Filter, from_mapping
from shared.errors import InvalidMessage
from tests.factories import envelope_for, message_kwargs, place_order
from workers.dlq import deaths, editing, redrive


def _message(**options: object) -> dict[str, object]:
    payload = place_order()
    return {
        "queue_name": "fulfilment", "actor_name": payload.kind, "args": [], "options": dict(options),
        "kwargs": message_kwargs(payload, envelope_for(payload)), "message_id": str(uuid.uuid4()),
        "message_timestamp": 1,
    }  # fmt: skip


def _compiled(where: Filter) -> tuple[str, dict[str, Any]]:
    compiled = where.where().compile(dialect=postgresql.dialect())
    return str(compiled), dict(compiled.params)


def test_a_filter_binds_every_value_as_a_parameter_and_escapes_like_patterns():
    condition, params = _compiled(Filter(queue="fulfilment", text="50%_off", status="dead"))

    assert condition.startswith("dead_letters.queue_name = %(queue_name_1)s")
    assert "dead_letters.reason ILIKE %(reason_1)s::VARCHAR ESCAPE '\\'" in condition
    assert condition.endswith("dead_letters.status = %(status_1)s::VARCHAR")
    assert "fulfilment" not in condition and "off" not in condition
    assert sorted(params.values()) == sorted(["fulfilment", "dead", *["%50\\%\\_off%"] * 3])


def test_an_empty_filter_hides_purged_messages_and_counts_as_empty():
    assert _compiled(Filter()) == ("dead_letters.status != %(status_1)s::VARCHAR", {"status_1": "purged"})
    assert Filter(status="dead").is_empty() and not Filter(group="g").is_empty()
    assert _compiled(Filter(status="all")) == ("true", {})


def test_a_filter_from_a_query_string_ignores_blanks_and_parses_dates():
    where = from_mapping({"queue": "", "group": "abc", "since": "2026-11-25T10:00:00+00:00", "page": "2"})

    assert where == Filter(group="abc", since=datetime(2026, 11, 25, 10, tzinfo=UTC))
    with pytest.raises(ValueError, match="unknown status"):
        from_mapping({"status": "gone"})


def test_a_delivery_limit_death_is_described_from_the_x_death_header():
    body = json.dumps(_message()).encode()
    headers = {"x-death": [{"reason": "delivery_limit", "queue": "fulfilment", "count": 1}]}

    swept = deaths.describe("fulfilment.XQ", body, headers, host="h", delivery_limit=20)

    assert (swept.exception_type, swept.attempts, swept.queue_name) == (
        "DeliveryLimitExceeded",
        21,
        "fulfilment",
    )
    assert "from fulfilment after 21 deliveries, none of them acknowledged" in swept.reason
    assert "x-death reason delivery_limit" in swept.reason and swept.raw_body is None


def test_a_delivery_limit_death_in_a_delay_queue_says_the_message_never_ran():
    body = json.dumps(_message()).encode()
    headers = {"x-death": [{"reason": "delivery_limit", "queue": "fulfilment.DQ", "count": 1}]}

    swept = deaths.describe("fulfilment.XQ", body, headers, host="h", delivery_limit=20)

    assert "from fulfilment.DQ" in swept.reason
    assert "waiting for its eta and never ran" in swept.reason
    assert "crashed or was killed while handling it" not in swept.reason


def test_a_copy_with_no_header_and_one_rejected_without_a_record_say_so():
    body = json.dumps(_message(retries=2)).encode()

    bare = deaths.describe("shipping.XQ", body, None, host="h", delivery_limit=20)
    rejected = deaths.describe(
        "shipping.XQ", body, {"x-first-death-reason": "rejected"}, host="h", delivery_limit=20
    )

    assert (bare.exception_type, bare.attempts, bare.queue_name) == ("Unknown", 3, "shipping")
    assert "found in shipping.XQ" in bare.reason
    assert rejected.exception_type == "Rejected" and "database" in rejected.reason


def test_an_undecodable_body_gets_the_workers_id_and_is_kept_raw_without_nul_characters():
    body = b"\x00\xff garbage"

    swept = deaths.describe("fulfilment.XQ", body, None, host="h", delivery_limit=20)

    assert swept.message_id == undecodable_message(body, "")["message_id"]
    assert swept.raw_body == body and swept.exception_type == "InvalidMessage"
    assert "\x00" not in json.dumps(swept.message, ensure_ascii=False) and "\x00" not in swept.reason


def test_a_redriven_body_keeps_id_and_envelope_and_resets_options_and_timestamp():
    message = _message(retries=5, traceback="old", eta=1)

    body = json.loads(redrive.prepare(message, "fulfilment", now_ms=42))

    assert body["message_id"] == message["message_id"] and body["kwargs"] == message["kwargs"]
    assert body["options"] == {} and body["message_timestamp"] == 42


def test_an_edit_replaces_only_the_payload_and_must_pass_the_actors_schema():
    message = _message()
    fixed = dict(message["kwargs"]["payload"], item_price_minor=999)  # type: ignore[index]

    edited = editing.edited_message("fulfilment.place_order", message, json.dumps(fixed))

    assert edited["kwargs"]["payload"]["item_price_minor"] == 999
    assert edited["kwargs"]["envelope"] == message["kwargs"]["envelope"]  # type: ignore[index]
    with pytest.raises(InvalidMessage, match="item_price_minor"):
        editing.edited_message(
            "fulfilment.place_order", message, json.dumps(fixed | {"item_price_minor": "x"})
        )
    with pytest.raises(InvalidMessage, match="not JSON"):
        editing.edited_message("fulfilment.place_order", message, "{")
    with pytest.raises(InvalidMessage, match="no payload schema"):
        editing.edited_message("nobody.knows", message, json.dumps(fixed))
