"""`circulate dlq` answers odd input with one line and a non-zero exit code, never a traceback."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from shared.config import Settings
from shared.dead_letters.filter import Filter
from shared.dead_letters.models import DeadLetter
from shared.dead_letters.record import record
from shared.runtime import Runtime
from tests.factories import envelope_for, message_kwargs, place_order
from workers.dlq.cli import dlq


@pytest.fixture
def db(clean_db: Runtime) -> Runtime:
    """An empty archive: every test here counts what is in it."""
    return clean_db


def invoke(settings: Settings, *args: str) -> Result:
    env = {"CIRCULATE_DATABASE_URL": settings.database_url, "LOGNAME": "alice"}
    return CliRunner().invoke(dlq, list(args), env=env)


def assert_refused(result: Result, *words: str) -> None:
    """A click error: exit code 1 or 2, `Error: ...` naming the problem, no Python traceback."""
    assert result.exit_code in (1, 2), (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "Error:" in result.output
    for word in words:
        assert word in result.output, result.output


def dead_order(runtime: Runtime, *, reason: str = "invalid payload", **envelope: Any) -> str:
    """Archive a dead place_order message as the worker records it; returns its id."""
    payload = place_order()
    kwargs = message_kwargs(payload, envelope_for(payload))
    kwargs["envelope"] |= envelope
    message_id = str(uuid.uuid4())
    message = {
        "queue_name": "fulfilment", "actor_name": "fulfilment.place_order", "args": [], "kwargs": kwargs,
        "options": {}, "message_id": message_id, "message_timestamp": int(time.time() * 1000),
    }  # fmt: skip
    with runtime.sessions.begin() as session:
        record(
            session, message_id=message_id, queue_name="fulfilment", actor_name="fulfilment.place_order",
            message=json.dumps(message), exception_type="InvalidMessage", reason=reason,
            traceback=None, attempts=1, host="w1",
        )  # fmt: skip
    return message_id


def export_line(runtime: Runtime, **changes: Any) -> dict[str, Any]:
    """One line of a valid export (of a message that is then deleted), with `changes` applied."""
    message_id = dead_order(runtime)
    with runtime.sessions.begin() as session:
        row = session.scalar(select(DeadLetter).where(DeadLetter.message_id == message_id))
        assert row is not None
        line = {
            "message_id": message_id, "queue_name": row.queue_name, "actor_name": row.actor_name,
            "message": row.message, "exception_type": row.exception_type, "reason": row.reason,
            "host": row.host, "status": row.status, "attempts": 1, "events": [],
        }  # fmt: skip
        session.delete(row)
    return line | changes


def write_lines(path: Path, *lines: dict[str, Any]) -> str:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def test_list_refuses_a_limit_beyond_what_it_can_show(settings, db):
    assert_refused(invoke(settings, "list", "--limit", str(10**30)), "--limit")


@pytest.mark.parametrize(
    "command",
    [
        ["list", "--text"],
        ["list", "--queue"],
        ["show"],
        ["edit"],
        ["user", "remove"],
        ["purge", "--all", "--operator"],
    ],
)
def test_a_nul_in_an_argument_is_refused_with_one_line(settings, db, command):
    assert_refused(invoke(settings, *command, "a\x00b"), "NUL")


def test_the_text_filter_matches_percent_underscore_and_backslash_literally(settings, db):
    percent = dead_order(db, reason="a 100% discount is not allowed")
    backslash = dead_order(db, reason="path C:\\orders is not writable")
    dead_order(db, reason="anything else")

    def listed(text: str) -> list[str]:
        result = invoke(settings, "list", "--text", text, "--json")
        assert result.exit_code == 0, result.output
        return [row["message_id"] for row in json.loads(result.output)]

    assert listed("%") == [percent]
    assert listed("0% d") == [percent]
    assert listed("\\") == [backslash]
    assert listed("C:\\o") == [backslash]
    assert listed("1_0") == []


def test_edit_refuses_a_payload_file_that_is_not_utf8(settings, db, tmp_path: Path):
    message_id = dead_order(db)
    bad = tmp_path / "payload.json"
    bad.write_bytes(b'{"name": "\xff\xfe"}')

    assert_refused(invoke(settings, "edit", message_id, "--payload-file", str(bad)), "UTF-8")


def test_edit_refuses_a_payload_holding_a_nul(settings, db, tmp_path: Path):
    message_id = dead_order(db)
    payload = place_order().model_dump(mode="json")
    payload["buyer"]["name"] = "Jane\x00Doe"
    bad = tmp_path / "payload.json"
    bad.write_text(json.dumps(payload))

    assert_refused(invoke(settings, "edit", message_id, "--payload-file", str(bad)), "NUL")


def test_edit_refuses_a_payload_of_the_wrong_type(settings, db, tmp_path: Path):
    message_id = dead_order(db)
    bad = tmp_path / "payload.json"
    bad.write_text("[1, 2, 3]")

    assert_refused(invoke(settings, "edit", message_id, "--payload-file", str(bad)), "payload")


def test_edit_validates_the_envelope_too_not_only_the_payload(settings, db, tmp_path: Path):
    # Given a message that died because its envelope is wrong, not its payload
    message_id = dead_order(db, correlation_id="")
    fixed = tmp_path / "payload.json"
    fixed.write_text(json.dumps(place_order().model_dump(mode="json")))

    # When an operator replaces the payload, the message would still die: the edit is refused
    assert_refused(invoke(settings, "edit", message_id, "--payload-file", str(fixed)), "correlation_id")


def test_import_refuses_a_file_that_is_not_utf8(settings, db, tmp_path: Path):
    bad = tmp_path / "dead.jsonl"
    bad.write_bytes(b'{"message_id": "\xff"}\n')

    assert_refused(invoke(settings, "import", str(bad)), "UTF-8")


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"message_id": "not-a-uuid"}, ("line 1", "message_id")),
        ({"message_id": str(uuid.uuid4())}, ("line 1", "message_id")),
        ({"attempts": "many"}, ("line 1", "attempts")),
        ({"first_failed_at": "yesterday"}, ("line 1", "first_failed_at")),
        ({"raw_body": "***"}, ("line 1", "raw_body")),
        ({"message": ["not", "an", "object"]}, ("line 1", "message")),
        ({"reason": "bad\x00reason"}, ("line 1", "NUL")),
        ({"reason": 12}, ("line 1", "reason")),
        ({"events": [{"kind": "failed"}]}, ("line 1", "events")),
        ({"attempts": 10**30}, ("line 1", "attempts")),
    ],
)
def test_import_refuses_a_line_with_a_bad_field_and_imports_nothing(
    settings, db, tmp_path: Path, changes: dict[str, Any], words: tuple[str, ...]
):
    path = write_lines(tmp_path / "dead.jsonl", export_line(db, **changes))

    assert_refused(invoke(settings, "import", path), *words)
    with db.sessions() as session:
        assert session.scalar(select(DeadLetter.message_id)) is None


def test_import_still_takes_a_valid_export_line(settings, db, tmp_path: Path):
    line = export_line(db)
    path = write_lines(tmp_path / "dead.jsonl", line)

    result = invoke(settings, "import", path)

    assert result.exit_code == 0, result.output
    assert "imported 1 message(s)" in result.output


@pytest.mark.parametrize("age", ["99999999999d", "999999d"])
def test_list_refuses_an_age_beyond_the_calendar(settings, db, age):
    assert_refused(invoke(settings, "list", "--since", age), "--since")


def test_the_filter_refuses_a_nul_the_console_might_pass_on(settings, db):
    with pytest.raises(ValueError, match="NUL"):
        Filter(text="a\x00b")


@pytest.mark.parametrize("rate", ["nan", "inf"])
def test_redrive_refuses_a_rate_that_is_not_a_finite_number(settings, db, rate):
    message_id = dead_order(db)

    assert_refused(invoke(settings, "redrive", message_id, "--rate", rate, "--yes"), "--rate")
