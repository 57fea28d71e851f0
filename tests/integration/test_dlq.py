"""The dead-letter archive end to end: worker → .XQ → sweeper → archive → `circulate dlq` → queue."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pika
from click.testing import CliRunner, Result
from sqlalchemy import text

from shared.broker import undecodable_message
from shared.config import Settings
from shared.dead_letters import archive
from shared.dead_letters.filter import Filter
from shared.dead_letters.models import DeadLetter
from shared.dead_letters.record import record
from shared.runtime import Runtime
from tasks.fulfilment.models import Order
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.services import publish_raw, queue_depth, wait_until
from workers.dlq.cli import dlq

XQ = "fulfilment.XQ"


def run(settings: Settings, *args: str, input: str | None = None, user: str = "alice") -> Result:
    """`circulate dlq ARGS` in-process, configured through the environment like the real CLI."""
    env = {
        "CIRCULATE_DATABASE_URL": settings.database_url,
        "CIRCULATE_AMQP_URL": settings.amqp_url,
        "LOGNAME": user,
    }
    result = CliRunner().invoke(dlq, list(args), env=env, input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def dramatiq_body(kwargs: dict[str, Any], *, actor: str = "fulfilment.place_order") -> tuple[str, bytes]:
    message_id = str(uuid.uuid4())
    message = {
        "queue_name": "fulfilment",
        "actor_name": actor,
        "args": [],
        "kwargs": kwargs,
        "options": {},
        "message_id": message_id,
        "message_timestamp": int(time.time() * 1000),
    }
    return message_id, json.dumps(message).encode()


def invalid_order(settings: Settings, queue: str = "fulfilment") -> tuple[str, dict[str, Any]]:
    """Publish an order whose price is text; returns the message id and the correct payload."""
    payload = place_order()
    kwargs = message_kwargs(payload, envelope_for(payload))
    kwargs["payload"]["item_price_minor"] = "twelve pounds"
    message_id, body = dramatiq_body(kwargs)
    publish_raw(settings, queue, body)
    return message_id, payload.model_dump(mode="json")


def archived(runtime: Runtime, message_id: str) -> DeadLetter | None:
    with runtime.sessions() as session:
        return archive.message(session, message_id)


def columns(row: DeadLetter | None) -> dict[str, Any] | None:
    """Every column of an archive row, to compare two reads of it."""
    return (
        None
        if row is None
        else {column.key: getattr(row, column.key) for column in DeadLetter.__table__.columns}
    )


def event_kinds(runtime: Runtime, message_id: str) -> list[str]:
    with runtime.sessions() as session:
        return [event.kind for event in archive.events(session, message_id)]


def dead_lettered(settings: Settings, runtime: Runtime, message_id: str) -> DeadLetter:
    """Wait until the worker has recorded the message and its copy sits in the .XQ, then sweep."""
    wait_until(lambda: archived(runtime, message_id) and queue_depth(settings, XQ) > 0)
    run(settings, "sweep")
    found = archived(runtime, message_id)
    assert found is not None
    return found


def test_the_sweeper_archives_what_the_worker_dead_lettered_and_what_only_sat_in_the_xq(
    settings, broker, worker, runtime
):
    # Given a message the worker dead-lettered, one that only sits in the .XQ, and raw garbage
    recorded, _ = invalid_order(settings)
    wait_until(lambda: archived(runtime, recorded) and queue_depth(settings, XQ) == 1)
    payload = place_order()
    orphan, body = dramatiq_body(message_kwargs(payload, envelope_for(payload)))
    publish_raw(settings, XQ, body)
    publish_raw(settings, XQ, b"\xff not a message")

    result = run(settings, "sweep")

    assert "swept 3 message(s): 1 recorded by the worker, 2 recorded now" in result.output
    assert queue_depth(settings, XQ) == 0
    kept = archived(runtime, recorded)
    assert kept.recorded_by == "worker" and kept.archived_at is not None
    assert kept.exception_type == "InvalidMessage" and "Traceback" in (kept.traceback or "")
    assert event_kinds(runtime, recorded) == ["failed", "archived"]
    found = archived(runtime, orphan)
    assert found.recorded_by == "sweeper" and found.exception_type == "Unknown"
    assert "found in fulfilment.XQ" in found.reason and found.queue_name == "fulfilment"
    garbage_id = undecodable_message(b"\xff not a message", "")["message_id"]
    garbage = archived(runtime, garbage_id)
    assert garbage.raw_body == b"\xff not a message" and "not JSON" in garbage.reason


def test_a_message_rabbitmq_dead_lettered_after_too_many_deliveries_is_archived_with_that_reason(
    settings, broker, runtime
):
    # Given a message whose consumers kept dying: RabbitMQ requeues it until the delivery limit
    payload = place_order()
    message_id, body = dramatiq_body(message_kwargs(payload, envelope_for(payload)))
    publish_raw(settings, "fulfilment", body)
    connection = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    channel = connection.channel()
    for _ in range(settings.delivery_limit + 1):
        method, _, _ = channel.basic_get("fulfilment", auto_ack=False)
        channel.basic_nack(method.delivery_tag, requeue=True)
    connection.close()
    wait_until(lambda: queue_depth(settings, XQ) == 1)

    run(settings, "sweep")

    found = archived(runtime, message_id)
    assert found.exception_type == "DeliveryLimitExceeded"
    assert "delivery limit exceeded" in found.reason
    assert found.attempts > settings.delivery_limit


def test_sweeping_again_or_sweeping_a_copy_twice_changes_nothing(settings, broker, runtime):
    payload = place_order()
    message_id, body = dramatiq_body(message_kwargs(payload, envelope_for(payload)))
    publish_raw(settings, XQ, body)
    run(settings, "sweep")
    before = archived(runtime, message_id)

    assert "swept 0 message(s)" in run(settings, "sweep").output
    # A sweeper killed after its commit and before its ack sees the same copy again.
    publish_raw(settings, XQ, body)
    assert "1 already archived" in run(settings, "sweep").output

    assert columns(archived(runtime, message_id)) == columns(before)
    assert event_kinds(runtime, message_id) == ["failed", "archived"]
    assert queue_depth(settings, XQ) == 0


def test_failures_that_differ_only_in_ids_and_numbers_form_one_group(settings, clean_db):
    def fail(reason: str, actor: str = "fulfilment.record_label") -> None:
        with clean_db.sessions.begin() as session:
            record(
                session, message_id=str(uuid.uuid4()), queue_name="fulfilment", actor_name=actor,
                message=json.dumps({"kwargs": {}}), exception_type="OrderNotYetKnown", reason=reason,
                traceback=None, attempts=3, host="w1",
            )  # fmt: skip

    fail(f"order {uuid.uuid4()} is not known yet (attempt 3)")
    fail(f"order {uuid.uuid4()} is not known yet (attempt 12)")
    fail("the carrier refused the label")

    groups = json.loads(run(settings, "groups", "--json").output)

    assert [(group["count"], group["dead"]) for group in groups] == [(2, 2), (1, 1)]
    assert groups[0]["normalised_reason"] == "order <uuid> is not known yet (attempt <n>)"
    assert groups[0]["first_seen"] <= groups[0]["last_seen"]
    listed = json.loads(run(settings, "list", "--group", groups[0]["group_key"], "--json").output)
    assert len(listed) == 2
    found = json.loads(run(settings, "list", "--text", "(attempt 12)", "--since", "1h", "--json").output)
    assert [row["reason"][-12:] for row in found] == ["(attempt 12)"]


def test_an_invalid_order_fixed_with_edit_and_redriven_is_created_exactly_once(
    settings, broker, worker, runtime, tmp_path: Path
):
    # Given an order that died because a producer sent its price as text
    message_id, correct = invalid_order(settings)
    group = dead_lettered(settings, runtime, message_id).group_key
    fixed = tmp_path / "payload.json"
    fixed.write_text(json.dumps(correct))

    # When an operator fixes the payload and re-drives the message
    run(settings, "edit", message_id, "--payload-file", str(fixed))
    run(settings, "redrive", message_id, "--yes")

    # Then the order exists, once, and the message keeps its id and idempotency key
    order_id = uuid.UUID(correct["order_id"])
    wait_until(lambda: _order_count(runtime, order_id) == 1)
    row = archived(runtime, message_id)
    assert row.status == "redriven" and row.redrive_count == 1
    assert row.original_message["kwargs"]["payload"]["item_price_minor"] == "twelve pounds"
    assert event_kinds(runtime, message_id) == ["failed", "archived", "edited", "redriven"]
    # Re-driving the same group again finds nothing left to do.
    assert "nothing to re-drive" in run(settings, "redrive", "--group", group, "--yes").output
    assert _order_count(runtime, order_id) == 1


def _order_count(runtime: Runtime, order_id: uuid.UUID) -> int:
    with runtime.sessions() as session:
        return 1 if session.get(Order, order_id) is not None else 0


def test_an_edit_that_breaks_the_schema_is_refused(settings, broker, worker, runtime, tmp_path: Path):
    message_id, correct = invalid_order(settings)
    dead_lettered(settings, runtime, message_id)
    broken = tmp_path / "payload.json"
    broken.write_text(json.dumps(correct | {"currency": "pounds"}))

    result = CliRunner().invoke(
        dlq,
        ["edit", message_id, "--payload-file", str(broken)],
        env={"CIRCULATE_DATABASE_URL": settings.database_url},
    )

    assert result.exit_code == 1 and "currency" in result.output
    assert archived(runtime, message_id).edited_at is None


def test_a_redriven_message_that_fails_again_returns_to_its_archive_row_with_its_history(
    settings, broker, worker, runtime
):
    message_id, _ = invalid_order(settings)
    dead_lettered(settings, runtime, message_id)

    run(settings, "redrive", message_id, "--yes", "--rate", "50")
    wait_until(lambda: archived(runtime, message_id).status == "dead" and queue_depth(settings, XQ) == 1)
    run(settings, "sweep")

    row = archived(runtime, message_id)
    assert row.attempts == 2 and row.redrive_count == 1
    assert event_kinds(runtime, message_id) == ["failed", "archived", "redriven", "failed", "archived"]


def test_a_dry_run_changes_nothing(settings, broker, worker, runtime):
    message_id, _ = invalid_order(settings)
    before = dead_lettered(settings, runtime, message_id)

    result = run(settings, "redrive", "--queue", "fulfilment", "--dry-run")

    assert f"would re-drive 1 message(s):\n  {message_id}" in result.output
    assert columns(archived(runtime, message_id)) == columns(before)
    assert queue_depth(settings, "fulfilment") == 0
    assert event_kinds(runtime, message_id) == ["failed", "archived"]


def test_purged_messages_leave_the_lists_and_come_back_with_restore(settings, broker, runtime):
    payload = place_order()
    message_id, body = dramatiq_body(message_kwargs(payload, envelope_for(payload)))
    publish_raw(settings, XQ, body)
    run(settings, "sweep")

    run(settings, "purge", message_id, "--yes")
    assert json.loads(run(settings, "list", "--json").output) == []
    assert archived(runtime, message_id).purged_by == "alice"

    run(settings, "restore", message_id)
    row = archived(runtime, message_id)
    assert row.status == "dead" and row.purged_at is None
    assert event_kinds(runtime, message_id)[-2:] == ["purged", "restored"]


def test_purged_messages_past_the_retention_are_deleted_for_good_by_the_sweeper(settings, broker, runtime):
    kept_id, kept = dramatiq_body(message_kwargs(*_order_and_envelope()))
    old_id, old = dramatiq_body(message_kwargs(*_order_and_envelope()))
    for body in (kept, old):
        publish_raw(settings, XQ, body)
    run(settings, "sweep")
    run(settings, "purge", kept_id, "--yes")
    run(settings, "purge", old_id, "--yes")
    with runtime.sessions.begin() as session:  # the second purge happened 31 days ago
        session.execute(
            text("UPDATE dead_letters SET purged_at = now() - interval '31 days' WHERE message_id = :id"),
            {"id": old_id},
        )

    output = run(settings, "sweep").output

    assert "1 purged message(s) past retention deleted" in output
    assert archived(runtime, old_id) is None
    assert archived(runtime, kept_id).status == "purged"  # still restorable


def _order_and_envelope():
    payload = place_order()
    return payload, envelope_for(payload)


def test_purge_and_redrive_refuse_an_empty_filter(settings, clean_db):
    env = {"CIRCULATE_DATABASE_URL": settings.database_url}
    for command in ("purge", "redrive"):
        result = CliRunner().invoke(dlq, [command, "--yes", "--status", "dead"], env=env)
        assert result.exit_code == 2 and "--all" in result.output


def test_an_export_imported_into_an_empty_archive_restores_messages_and_history(
    settings, broker, runtime, tmp_path: Path
):
    for _ in range(2):
        _, body = dramatiq_body(message_kwargs(place_order(), envelope_for(place_order())))
        publish_raw(settings, XQ, body)
    publish_raw(settings, XQ, b"\x00 binary junk")
    run(settings, "sweep")
    exported = tmp_path / "dead.jsonl"
    run(settings, "export", "--status", "all", "--output", str(exported))

    with runtime.engine.begin() as connection:
        connection.execute(text("DELETE FROM dead_letters"))
    assert "imported 3 message(s), 0 already present" in run(settings, "import", str(exported)).output
    assert "imported 0 message(s), 3 already present" in run(settings, "import", str(exported)).output

    again = tmp_path / "again.jsonl"
    run(settings, "export", "--status", "all", "--output", str(again))
    assert again.read_text() == exported.read_text()


def test_every_action_is_audited_with_its_operator_filter_and_outcome(settings, broker, runtime, tmp_path):
    payload = place_order()
    message_id, body = dramatiq_body(message_kwargs(payload, envelope_for(payload)))
    publish_raw(settings, XQ, body)
    run(settings, "sweep")

    run(settings, "redrive", message_id, "--yes", user="bob")
    run(settings, "purge", "--queue", "fulfilment", "--yes", "--operator", "carol")
    run(settings, "restore", "--queue", "fulfilment")
    run(settings, "export", "--output", str(tmp_path / "out.jsonl"))
    run(settings, "user", "add", "dana", "--role", "viewer", input="a long password\na long password\n")

    with runtime.sessions() as session:
        log = list(reversed(archive.audit_log(session)))
    assert [(e.action, e.operator, e.via, e.count) for e in log] == [
        ("sweep", "sweeper", "sweeper", 1),
        ("redrive", "bob", "cli", 1),
        ("purge", "carol", "cli", 1),
        ("restore", "alice", "cli", 1),
        ("export", "alice", "cli", 1),
        ("user-add", "alice", "cli", 1),
    ]
    assert log[1].filter["message_id"] == message_id
    assert log[2].filter == {"queue": "fulfilment"}
    assert "re-drove 1 of 1" in log[1].outcome
    assert archived(runtime, message_id).status == "redriven"
    assert Filter(queue="fulfilment").describe() == log[2].filter
