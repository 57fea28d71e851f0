"""The JSON formatter's direct path writes what the structlog chain writes, field for field.

Plain stdlib records (the per-message log line among them) skip structlog's processor objects;
these tests hold the shortcut to the chain it replaces: same keys, same order, same values, same
redaction. Only the timestamp, taken when each line is formatted, may differ.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from shared.logs import JSONLineFormatter, build_formatter

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@pytest.fixture(autouse=True)
def clean_context() -> Iterator[None]:
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()


def _record(level: int, msg: str, args: tuple[Any, ...] = (), **extra: Any) -> logging.LogRecord:
    return logging.getLogger("circulate.messages").makeRecord(
        "circulate.messages", level, __file__, 1, msg, args, None, extra=extra
    )


def _both(record: logging.LogRecord) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """(direct, chain) lines as ordered key-value lists, the timestamp checked and set aside."""
    formatter = build_formatter(json=True)
    assert isinstance(formatter, JSONLineFormatter)
    direct = json.loads(formatter.format(record))
    chain = json.loads(structlog.stdlib.ProcessorFormatter.format(formatter, record))
    for line in (direct, chain):
        assert ISO_UTC.fullmatch(line.pop("timestamp"))
    return list(direct.items()), list(chain.items())


def test_the_message_outcome_line_is_written_as_the_chain_writes_it() -> None:
    structlog.contextvars.bind_contextvars(request_id="r-1", message_id="bound")
    record = _record(
        logging.WARNING, "message %s", ("retried",),
        message_id="3f1c5a9e-0000-4000-8000-000000000001", actor="fulfilment.place_order",
        queue="fulfilment", order_id=None, correlation_id="order:42", trace_id=None, attempt=2,
        outcome="retried", duration_ms=12.5, error_type="CarrierUnavailable",
    )  # fmt: skip
    direct, chain = _both(record)
    assert direct == chain
    assert [key for key, _ in direct][:3] == ["level", "logger", "event"]


def test_sensitive_extras_and_free_text_are_redacted_on_the_direct_path_too() -> None:
    record = _record(
        logging.INFO, "sent to %s at 12 High Street", ("jane@example.com",),
        email="jane@example.com", detail="Bearer abcdefghijkl", pid="not the pid", logger="spoof",
    )  # fmt: skip
    direct, chain = _both(record)
    assert direct == chain
    text = json.dumps(direct)
    assert "jane@example.com" not in text and "High Street" not in text and "abcdefghijkl" not in text


def test_a_record_another_formatter_already_formatted_keeps_the_same_fields() -> None:
    record = _record(logging.ERROR, "plain")
    logging.Formatter("%(asctime)s %(message)s").format(record)  # adds `message` and `asctime`
    direct, chain = _both(record)
    assert direct == chain


def test_a_traceback_takes_the_chain_and_is_still_one_redacted_line() -> None:
    try:
        raise ValueError("token abcdefghijkl")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = __import__("sys").exc_info()
    line = json.loads(build_formatter(json=True).format(record))
    assert "ValueError" in line["exception"] and "abcdefghijkl" not in line["exception"]


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)


@given(message=text, value=text, key=st.from_regex(r"[a-z_]{1,12}", fullmatch=True))
def test_any_plain_record_comes_out_as_the_chain_would_write_it(message: str, value: str, key: str) -> None:
    if key in {"message", "asctime"} or key in logging.LogRecord("n", 0, "p", 0, "m", (), None).__dict__:
        key = "x_" + key
    direct, chain = _both(_record(logging.INFO, message.replace("%", "%%"), **{key: value}))
    assert direct == chain
