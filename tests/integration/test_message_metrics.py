"""Message metrics recorded by a real Dramatiq worker on the real broker."""

from __future__ import annotations

import dramatiq
import pytest
from prometheus_client import REGISTRY

from shared.middleware.metrics import MessageMetrics
from tests.factories import envelope_for, message_kwargs, place_order

ACTOR, QUEUE = "fulfilment.place_order", "fulfilment"


@pytest.fixture(autouse=True)
def metered(broker):
    """The worker broker with MessageMetrics, whether or not build_worker_broker adds it yet."""
    if not any(isinstance(middleware, MessageMetrics) for middleware in broker.middleware):
        broker.add_middleware(MessageMetrics())
    return broker


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"queue": QUEUE, "actor": ACTOR, **labels}) or 0.0


def snapshot() -> dict[str, float]:
    return {
        "succeeded": sample("circulate_messages_total", outcome="succeeded"),
        "duplicate_skipped": sample("circulate_messages_total", outcome="duplicate_skipped"),
        "dead_lettered": sample("circulate_messages_total", outcome="dead_lettered"),
        "handled": sample("circulate_message_handling_seconds_count"),
        "waited": sample("circulate_message_queue_wait_seconds_count"),
    }


def test_each_message_is_counted_once_by_outcome_and_none_stays_in_progress(broker, worker):
    before = snapshot()
    payload = place_order()
    kwargs = message_kwargs(payload, envelope_for(payload))
    actor = broker.get_actor(ACTOR)

    # When an order is delivered twice, and a message with a broken envelope once
    actor.send_with_options(kwargs=kwargs)
    actor.send_with_options(kwargs=kwargs)
    actor.send_with_options(kwargs={"envelope": {"kind": ACTOR}, "payload": {}})
    broker.join(QUEUE, timeout=15_000)
    worker.join()

    # Then one succeeded, one was skipped as a duplicate, one was dead-lettered
    after = snapshot()
    assert {key: after[key] - before[key] for key in after} == {
        "succeeded": 1,
        "duplicate_skipped": 1,
        "dead_lettered": 1,
        "handled": 3,
        "waited": 2,  # the broken envelope has no produced_at to measure from
    }
    assert sample("circulate_messages_in_progress") == 0


def test_a_message_that_fails_once_counts_one_retry_then_one_success(broker, worker):
    attempts = []

    def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("the carrier timed out")

    dramatiq.Actor(flaky, broker=broker, actor_name="tests.flaky", queue_name=QUEUE, priority=0, options={})
    labels = {"queue": QUEUE, "actor": "tests.flaky"}

    broker.get_actor("tests.flaky").send()
    broker.join(QUEUE, timeout=15_000)
    worker.join()

    counted = {
        outcome: REGISTRY.get_sample_value("circulate_messages_total", {**labels, "outcome": outcome})
        for outcome in ("retried", "succeeded", "failed", "dead_lettered")
    }
    assert counted == {"retried": 1, "succeeded": 1, "failed": None, "dead_lettered": None}
    assert REGISTRY.get_sample_value("circulate_messages_in_progress", labels) == 0
