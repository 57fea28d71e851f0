"""Log lines are one JSON object each, and carry no email, address or credential."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from shared.logs import (
    REDACTED,
    apply_value_rules,
    build_formatter,
    configure_logging,
    is_sensitive_key,
    redact_text,
)


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, Callable[[], list[dict[str, Any]]]]]:
    """A logger of its own whose lines go through the JSON formatter into a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(build_formatter(json=True))
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.propagate = True


@pytest.fixture
def configured() -> Iterator[None]:
    """Run configure_logging, then put the process's logging back as it was for the next test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in ("pika", "httpx")}
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in noisy.items():
        logging.getLogger(name).setLevel(old)


def test_a_stdlib_record_is_one_json_object_with_the_fixed_fields_first(capture) -> None:
    logger, lines = capture
    logger.info("order %s placed", "o-1", extra={"order_id": "o-1", "attempt": 2})

    [line] = lines()
    assert list(line)[:4] == ["timestamp", "level", "logger", "event"]
    assert line["level"] == "info"
    assert line["logger"] == "tests.logs"
    assert line["event"] == "order o-1 placed"
    assert line["order_id"] == "o-1" and line["attempt"] == 2
    assert datetime.fromisoformat(line["timestamp"]).utcoffset().total_seconds() == 0
    assert isinstance(line["pid"], int) and line["thread"]


def test_an_exception_stays_on_its_one_line_with_its_traceback(capture) -> None:
    logger, lines = capture
    try:
        raise ValueError("the carrier said no")
    except ValueError:
        logger.exception("buying the label failed")

    [line] = lines()
    assert line["level"] == "error"
    assert "Traceback" in line["exception"] and "ValueError: the carrier said no" in line["exception"]


def test_structlog_calls_and_bound_context_come_out_in_the_same_shape(configured, capsys) -> None:
    configure_logging(level="INFO", json=True)
    structlog.contextvars.bind_contextvars(trace_id="4bf92f3577b34da6a3ce929d0e0e4736")

    structlog.get_logger("tests.structlog").info("label bought", order_id="o-2")
    logging.getLogger("tests.stdlib").warning("carrier slow")

    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["event"] == "label bought" and first["order_id"] == "o-2"
    assert first["logger"] == "tests.structlog" and first["level"] == "info"
    assert {first["trace_id"], second["trace_id"]} == {"4bf92f3577b34da6a3ce929d0e0e4736"}
    assert second["level"] == "warning"


def test_configure_logging_replaces_every_root_handler_and_quiets_noisy_libraries(configured) -> None:
    logging.basicConfig(format="[%(asctime)s] [PID %(process)d] %(message)s", force=True)  # as Dramatiq does

    configure_logging(level="INFO", json=True)
    configure_logging(level="INFO", json=True)  # each worker process calls it again after Dramatiq

    [handler] = logging.getLogger().handlers
    assert isinstance(handler.formatter, structlog.stdlib.ProcessorFormatter)
    assert logging.getLogger().level == logging.INFO
    assert logging.getLogger("pika").level == logging.WARNING
    configure_logging(level="DEBUG", json=False)
    assert logging.getLogger("pika").level == logging.NOTSET


def test_an_unknown_level_is_refused(configured) -> None:
    with pytest.raises(ValueError, match="loud"):
        configure_logging(level="loud")


@pytest.mark.parametrize(
    "key",
    ["email", "buyer_email", "emailAddress", "address", "ship_to", "line1", "postcode", "postCode",
     "city", "phone", "token", "access_token", "Authorization", "password", "client_secret",
     "api_key", "X-Api-Key", "apiKey", "cookie", "Carrier-Signature"],
)  # fmt: skip
def test_a_key_naming_personal_data_or_a_credential_loses_its_value(capture, key: str) -> None:
    logger, lines = capture
    if key == "ship_to":  # a container: its own keys are what gets redacted
        value: Any = {"line1": "12 Camden High St", "city": "London", "country": "GB"}
    else:
        value = "ada@example.com, 12 Camden High St, sk_live_abcdefgh"
    logger.info("fields", extra={key: value})

    [line] = lines()
    if key == "ship_to":
        assert line[key] == {"line1": REDACTED, "city": REDACTED, "country": "GB"}
    else:
        assert line[key] == REDACTED


@pytest.mark.parametrize(
    "key", ["message_id", "order_id", "correlation_id", "trace_id", "idempotency_key", "queue", "capacity"]
)
def test_ids_and_ordinary_keys_are_kept(key: str) -> None:
    assert not is_sensitive_key(key)


@pytest.mark.parametrize(
    ("text", "gone", "kept"),
    [
        ("could not send to ada.lovelace+shop@example.co.uk today", "ada.lovelace", "could not send to"),
        ("relay said 550 <bo@example.com>: unknown", "bo@example.com", "550"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJ", "Authorization"),
        ("token circ_Zx8fQ2mKpL0vT5sY9wE3rU7iO1aS4dF6gH", "circ_Zx8", "token"),
        ("login failed: password=hunter2&user=ops", "hunter2", "user=ops"),
        ("connecting to amqp://guest:s3cret@127.0.0.1:5672/circulate", "s3cret", "amqp://guest:"),
        ('carrier refused {"line1": "12 Camden High St", "city": "London"}', "Camden", "carrier refused"),
        ("{'address': {'postcode': 'NW1 0JH', 'country': 'GB'}}", "NW1 0JH", "'country': 'GB'"),
        ("shipping to 12 Camden High St, London NW1 0JH", "Camden", "shipping to"),
        ("label for 4 rue Victor Hugo, Lyon", "Victor Hugo", "label for"),
        ("label for Hauptstraße 5 in Berlin", "Hauptstraße", "in Berlin"),
        ("label for Via Roma 12 in Milano", "Roma", "in Milano"),
    ],
)
def test_free_text_is_masked_where_it_holds_an_email_an_address_or_a_credential(
    capture, text: str, gone: str, kept: str
) -> None:
    logger, lines = capture
    logger.warning(text)

    [line] = lines()
    assert gone not in line["event"]
    assert kept in line["event"]


def test_exception_text_is_redacted_too(capture) -> None:
    logger, lines = capture
    try:
        raise RuntimeError("SMTP 550 for ada@example.com at 12 Camden High St")
    except RuntimeError:
        logger.exception("delivery failed")

    [line] = lines()
    assert "ada@example.com" not in line["exception"] and "Camden" not in line["exception"]


def test_text_that_only_looks_busy_is_left_alone() -> None:
    text = (
        "message 8f14e45f-ceea-467f-a0e6-7c8b0d3e0a11 of order-placed:6f1c1e8e took 12 ms; "
        "capacity 250 items; HTTP 503 from /v1/labels; SHA256 ok"
    )
    assert redact_text(text) == text


def test_the_text_format_is_redacted_as_well(configured, capsys) -> None:
    configure_logging(level="INFO", json=False)

    logging.getLogger("tests.text").info("mail to ada@example.com", extra={"token": "abc"})

    output = capsys.readouterr().err
    assert "ada@example.com" not in output and "abc" not in output
    assert "mail to [email]" in output


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", max_size=60))
def test_text_that_skips_the_rules_is_text_no_rule_would_change(text: str) -> None:
    assert redact_text(text) == apply_value_rules(text)
    assert redact_text("circ_" + text + "abcdefgh") == apply_value_rules("circ_" + text + "abcdefgh")


@pytest.mark.parametrize(
    "text",
    ["circ_abcdefgh12345678", "2026-11-28T15:23:00.123456+00:00", "SW1A1AA", "eyJa.eyJb.c", "a@b.io"],
)
def test_the_shortcut_for_plain_text_masks_what_the_rules_mask(text: str) -> None:
    assert redact_text(text) == apply_value_rules(text)
