"""MessageLog on a real worker and broker: one JSON line per outcome, ids on the handler's own lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pytest
import structlog
from dramatiq.broker import MessageProxy

from shared.logs import build_formatter
from shared.middleware.message_log import MessageLog
from shared.tracing import new_traceparent, trace_id
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.services import wait_until

ACTOR, QUEUE = "fulfilment.place_order", "fulfilment"
FIELDS = {
    "message_id", "actor", "queue", "order_id", "correlation_id", "trace_id", "attempt", "outcome",
    "duration_ms",
}  # fmt: skip

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def lines() -> Iterator[Lines]:
    """Every line of `circulate.messages` and `tests.handler`, formatted as the workers format them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(build_formatter(json=True))
    loggers = [logging.getLogger("circulate.messages"), logging.getLogger("tests.handler")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


def outcome_lines(lines: Lines, message_id: str) -> list[dict[str, Any]]:
    return [line for line in lines() if line.get("message_id") == message_id and "outcome" in line]


def test_a_processed_message_writes_one_line_with_its_ids_and_nothing_of_its_payload(broker, worker, lines):
    payload = place_order()
    envelope = envelope_for(payload).model_copy(update={"traceparent": new_traceparent()})

    message = broker.get_actor(ACTOR).send_with_options(kwargs=message_kwargs(payload, envelope))

    [line] = wait_until(lambda: outcome_lines(lines, message.message_id))
    assert set(line) >= FIELDS
    assert line["event"] == "message succeeded" and line["level"] == "info"
    assert line["logger"] == "circulate.messages"
    assert (line["actor"], line["queue"], line["outcome"], line["attempt"]) == (ACTOR, QUEUE, "succeeded", 1)
    assert line["order_id"] == str(payload.order_id)
    assert line["correlation_id"] == envelope.correlation_id
    assert line["trace_id"] == trace_id(envelope.traceparent)
    assert line["duration_ms"] > 0
    assert payload.buyer.email not in json.dumps(line) and payload.buyer.address.line1 not in json.dumps(line)


def test_a_duplicate_writes_duplicate_skipped(broker, worker, lines):
    payload = place_order()
    kwargs = message_kwargs(payload, envelope_for(payload))
    actor = broker.get_actor(ACTOR)

    first = actor.send_with_options(kwargs=kwargs)
    wait_until(lambda: outcome_lines(lines, first.message_id))
    again = actor.send_with_options(kwargs=kwargs)

    [line] = wait_until(lambda: outcome_lines(lines, again.message_id))
    assert line["outcome"] == "duplicate_skipped" and line["level"] == "info"
    assert line["order_id"] == str(payload.order_id)
    assert [entry["outcome"] for entry in outcome_lines(lines, first.message_id)] == ["succeeded"]


def test_a_dead_lettered_message_is_an_error_line_naming_the_exception(broker, worker, lines):
    message = broker.get_actor(ACTOR).send_with_options(kwargs={"envelope": {"kind": ACTOR}, "payload": {}})

    [line] = wait_until(lambda: outcome_lines(lines, message.message_id))
    assert (line["outcome"], line["level"]) == ("dead_lettered", "error")
    assert line["error_type"] == "InvalidMessage"
    assert line["order_id"] is None and line["trace_id"] is None


def test_lines_a_handler_writes_carry_the_ids_of_its_own_message(broker, worker, lines):
    def chatty(**kwargs: Any) -> None:
        logging.getLogger("tests.handler").info("inside the handler")

    dramatiq.Actor(chatty, broker=broker, actor_name="tests.chatty", queue_name=QUEUE, priority=0, options={})
    traces = [new_traceparent(), new_traceparent()]

    # Two messages in turn on the same worker threads, each with its own trace
    for traceparent in traces:
        envelope = {"correlation_id": f"c-{traceparent[3:11]}", "traceparent": traceparent}
        sent = broker.get_actor("tests.chatty").send_with_options(kwargs={"envelope": envelope})
        wait_until(lambda sent=sent: outcome_lines(lines, sent.message_id))

    inside = [line for line in lines() if line["event"] == "inside the handler"]
    assert [line["trace_id"] for line in inside] == [trace_id(t) for t in traces]
    assert [line["correlation_id"] for line in inside] == [f"c-{t[3:11]}" for t in traces]
    assert {line["actor"] for line in inside} == {"tests.chatty"}


def test_the_ids_are_unbound_when_the_handler_returns(broker):
    traceparent = new_traceparent()
    body = dramatiq.Message(
        queue_name=QUEUE, actor_name=ACTOR, args=(), options={},
        kwargs={"envelope": {"correlation_id": "c-1", "traceparent": traceparent}, "payload": {}},
    )  # fmt: skip
    message, middleware = MessageProxy(body), MessageLog()

    middleware.before_process_message(broker, message)
    bound = structlog.contextvars.get_contextvars()
    middleware.after_process_message(broker, message)

    assert bound["trace_id"] == trace_id(traceparent) and bound["correlation_id"] == "c-1"
    assert structlog.contextvars.get_contextvars() == {}
