"""`log_fields` writes the very line `logger.log(..., extra=...)` writes, without the record when
logging is as `configure_logging` left it, and through the record otherwise."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from shared.logs import configure_logging, lines_held, log_fields
from tests.fixtures.logs import logging_restored

FIELDS: dict[str, Any] = {
    "route": "/v1/orders",
    "method": "POST",
    "status": 202,
    "duration_ms": 3.2,
    "correlation_id": "corr-1",
    "trace_id": None,
    "note": "sent to ana@example.com, token circ_abcdefgh12345",  # redacted on both paths
}


@pytest.fixture
def configured() -> Iterator[None]:
    with logging_restored():
        configure_logging(level="INFO", json=True)
        structlog.contextvars.bind_contextvars(message_id="m-1", route="bound first")
        try:
            yield
        finally:
            structlog.contextvars.clear_contextvars()


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def _without_time(line: dict[str, Any]) -> dict[str, Any]:
    assert line.pop("timestamp")
    return line


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR])
def test_the_line_is_the_one_the_record_writes(
    configured: None, capsys: pytest.CaptureFixture[str], level: int
) -> None:
    logger = logging.getLogger("circulate.api")
    logger.log(level, "http request", extra=dict(FIELDS))
    log_fields(logger, level, "http request", FIELDS)
    lines = _lines(capsys)
    if level < logging.INFO:
        assert lines == []
        return
    through_the_record, written_directly = (_without_time(line) for line in lines)
    assert list(written_directly) == list(through_the_record)  # the same fields in the same order
    assert written_directly == through_the_record
    assert "ana@example.com" not in json.dumps(written_directly)


def test_another_handler_gets_the_record(configured: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="circulate.api"):
        log_fields(logging.getLogger("circulate.api"), logging.INFO, "http request", FIELDS)
    assert [(r.name, r.getMessage(), r.__dict__["status"]) for r in caplog.records] == [
        ("circulate.api", "http request", 202)
    ]


def test_a_batch_holds_the_line_like_any_other(configured: None, capsys: pytest.CaptureFixture[str]) -> None:
    with lines_held():
        log_fields(logging.getLogger("circulate.messages"), logging.INFO, "message succeeded", {"n": 1})
        assert _lines(capsys) == []
    assert [line["event"] for line in _lines(capsys)] == ["message succeeded"]


def test_the_thread_and_process_are_the_writers(configured: None, capsys: pytest.CaptureFixture[str]) -> None:
    def write() -> None:
        log_fields(logging.getLogger("circulate.messages"), logging.INFO, "message succeeded", {})

    thread = threading.Thread(target=write, name="worker-7")
    thread.start()
    thread.join()
    (line,) = _lines(capsys)
    assert line["thread"] == "worker-7"
    assert isinstance(line["pid"], int)
