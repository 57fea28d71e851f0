"""Producer-set options are values with a type and a range, and no middleware error acks a message away.

A probe actor on the `fulfilment` queue stands in for a handler, so each test controls exactly
how an attempt ends; the real worker, broker, middleware and dead-letter recorder run around it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import pytest
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import Middleware
from sqlalchemy import select

from shared.broker import CirculateBroker
from shared.dead_letters.models import DeadLetter
from shared.errors import PermanentError
from shared.outbox import OutboxRow
from shared.runtime import Runtime
from tests.fixtures.services import publish_raw, queue_depth, wait_until

PROBE = "test.probe"


@dataclass
class Probe:
    """What the probe actor does per message id, and what it saw."""

    plan: dict[str, list[str]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    succeeded: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, message_id: str) -> None:
        with self.lock:
            attempt = self.calls.get(message_id, 0)
            self.calls[message_id] = attempt + 1
            steps = self.plan.get(message_id, ["ok"])
            step = steps[min(attempt, len(steps) - 1)]
        if step == "transient":
            raise RuntimeError("probe: a transient failure")
        if step == "permanent":
            raise PermanentError("probe: a permanent failure")
        if step.startswith("retry-in:"):
            raise dramatiq.Retry("probe: try again later", delay=int(step.split(":")[1]))
        with self.lock:
            self.succeeded[message_id] = self.succeeded.get(message_id, 0) + 1


@pytest.fixture
def probe(broker: CirculateBroker) -> Probe:
    probe = Probe()

    def probe_actor(message_id: str) -> None:
        probe.run(message_id)

    dramatiq.Actor(
        probe_actor,
        broker=broker,
        actor_name=PROBE,
        queue_name="fulfilment",
        priority=0,
        options={"throws": (PermanentError,)},
    )
    return probe


def send(
    settings: Any,
    *,
    options: dict[str, Any] | None = None,
    timestamp_ms: int | None = None,
    probe: Probe | None = None,
    plan: list[str] | None = None,
) -> str:
    """Publish a probe message as a producer would (raw JSON, its own options); returns its id.

    The probe's plan for the message is set before it is published: a worker may take it at once.
    """
    message_id = str(uuid.uuid4())
    if probe is not None and plan is not None:
        probe.plan[message_id] = plan
    body = {
        "queue_name": "fulfilment",
        "actor_name": PROBE,
        "args": [],
        "kwargs": {"message_id": message_id},
        "options": options or {},
        "message_id": message_id,
        "message_timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
    }
    publish_raw(settings, "fulfilment", json.dumps(body).encode())
    return message_id


def dead_letter(runtime: Runtime, message_id: str) -> DeadLetter | None:
    with runtime.sessions() as session:
        return session.scalars(select(DeadLetter).where(DeadLetter.message_id == message_id)).first()


def scheduled_row(runtime: Runtime, message_id: str) -> OutboxRow | None:
    with runtime.sessions() as session:
        return session.scalars(select(OutboxRow).where(OutboxRow.message_id == uuid.UUID(message_id))).first()


def test_a_large_negative_retries_option_is_dead_lettered_with_its_reason_instead_of_looping(
    settings, broker, worker, runtime, probe
):
    message_id = send(settings, options={"retries": -1_000_000}, probe=probe, plan=["transient"])

    dead = wait_until(lambda: dead_letter(runtime, message_id))

    assert dead.exception_type == "InvalidMessage"
    assert "retries must be an integer from 0 to 2" in dead.reason
    assert probe.calls.get(message_id, 0) == 0
    wait_until(lambda: queue_depth(settings, "fulfilment.XQ") == 1)


def test_a_retries_option_that_is_not_an_integer_is_dead_lettered_not_acked_away(
    settings, broker, worker, runtime, probe
):
    message_id = send(settings, options={"retries": "three"}, probe=probe, plan=["transient"])

    dead = wait_until(lambda: dead_letter(runtime, message_id))

    assert "retries must be an integer" in dead.reason
    wait_until(lambda: queue_depth(settings, "fulfilment.XQ") == 1)


@pytest.mark.parametrize(
    "options",
    [
        {"eta": "tomorrow"},
        {"eta": True},
        {"requeue_timestamp": -5},
        {"redelivered": "yes"},
        {"traceback": ["not", "text"]},
        {"retries": 3},
    ],
    ids=[
        "eta-text",
        "eta-bool",
        "negative-requeue-timestamp",
        "redelivered-text",
        "traceback-list",
        "retries-3",
    ],
)
def test_every_kept_option_is_checked_for_type_and_range(settings, broker, worker, runtime, probe, options):
    message_id = send(settings, options=options)

    dead = wait_until(lambda: dead_letter(runtime, message_id))

    assert dead.reason.startswith("invalid message options: ")
    assert next(iter(options)) in dead.reason
    assert probe.calls.get(message_id, 0) == 0


def test_options_outside_the_allowlist_are_dropped_and_the_retry_budget_stays_the_workers(
    settings, broker, worker, runtime, probe
):
    message_id = send(
        settings, options={"max_retries": 1000, "on_retry_exhausted": PROBE}, probe=probe, plan=["transient"]
    )

    dead = wait_until(lambda: dead_letter(runtime, message_id))

    assert dead.attempts == 3
    assert probe.calls[message_id] == 3
    assert "max_retries" not in dead.message["options"]


def test_an_eta_far_ahead_on_a_work_queue_waits_in_the_schedule_while_good_messages_flow(
    settings, broker, worker, runtime, probe
):
    due_ms = int(time.time() * 1000) + 24 * 3600 * 1000
    # More far-ahead messages than the worker's prefetch: held in memory they would stall it.
    later = [send(settings, options={"eta": due_ms}) for _ in range(40)]
    now = [send(settings) for _ in range(5)]

    wait_until(lambda: all(probe.succeeded.get(message_id) == 1 for message_id in now))
    wait_until(lambda: all(scheduled_row(runtime, message_id) for message_id in later))
    rows = [scheduled_row(runtime, message_id) for message_id in later]

    assert all(abs(row.available_at.timestamp() * 1000 - due_ms) < 1_000 for row in rows)
    assert all(json.loads(row.body)["options"] == {} for row in rows)
    assert all(row.published_at is None for row in rows)
    assert not any(message_id in probe.calls for message_id in later)
    wait_until(lambda: queue_depth(settings, "fulfilment") == 0)


def test_an_eta_beyond_the_schedule_horizon_is_dead_lettered_with_its_reason(
    settings, broker, worker, runtime, probe
):
    too_far = int(time.time() * 1000) + settings.schedule_max_delay_ms + 3600 * 1000
    message_id = send(settings, options={"eta": too_far})

    dead = wait_until(lambda: dead_letter(runtime, message_id))

    assert "eta must be epoch milliseconds no later than" in dead.reason
    assert scheduled_row(runtime, message_id) is None


def test_a_retry_delay_beyond_the_broker_bound_goes_to_the_schedule_not_to_the_delay_queue(
    settings, broker, worker, runtime, probe
):
    delay_ms = settings.broker_delay_max_ms + 600_000
    message_id = send(settings, probe=probe, plan=[f"retry-in:{delay_ms}", "ok"])

    row = wait_until(lambda: scheduled_row(runtime, message_id))

    expected_due = time.time() * 1000 + delay_ms
    assert abs(row.available_at.timestamp() * 1000 - expected_due) < 5_000
    assert json.loads(row.body)["options"]["retries"] == 1
    assert queue_depth(settings, "fulfilment.DQ") == 0
    assert dead_letter(runtime, message_id) is None


class ExplodingHook(Middleware):
    """Raises in one hook, for every message of the probe actor."""

    def __init__(self, hook: str) -> None:
        self.hook = hook

    def __getattribute__(self, name: str) -> Any:
        if name == object.__getattribute__(self, "hook"):
            return self._explode
        return object.__getattribute__(self, name)

    def _explode(self, broker: Any, message: Any, *args: Any, **kwargs: Any) -> None:
        if getattr(message, "actor_name", None) == PROBE:
            raise ValueError(f"{object.__getattribute__(self, 'hook')} exploded")


#: Each message hook, and how the probe's message must end for the hook to be reached.
HOOK_SCENARIOS = {
    "before_process_message": ["ok"],
    "after_process_message": ["transient"],
    "after_skip_message": ["ok"],  # sent too old: the age limit skips it
    "before_ack": ["ok"],
    "after_ack": ["ok"],
    "before_nack": ["permanent"],
    "after_nack": ["permanent"],
    "before_enqueue": ["transient", "ok"],
    "after_enqueue": ["transient", "ok"],
    "before_delay_message": ["transient", "ok"],
}


@pytest.mark.parametrize("hook", sorted(HOOK_SCENARIOS))
def test_a_middleware_hook_that_raises_never_acks_a_message_away(
    settings, broker, worker, runtime, probe, hook
):
    broker.add_middleware(ExplodingHook(hook))
    old = 1_000 if hook == "after_skip_message" else None
    message_id = send(settings, timestamp_ms=old, probe=probe, plan=HOOK_SCENARIOS[hook])

    def settled() -> bool:
        done = probe.succeeded.get(message_id, 0) == 1
        dead = dead_letter(runtime, message_id) is not None and queue_depth(settings, "fulfilment.XQ") == 1
        return done or dead

    # Three attempts with their backoffs through the delay queue: seconds on an idle machine,
    # tens of them when the machine is starved; the wait ends as soon as the message settles.
    wait_until(settled, timeout=90)
    assert probe.succeeded.get(message_id, 0) <= 1
    wait_until(lambda: queue_depth(settings, "fulfilment") == 0)


def test_a_retry_that_cannot_be_published_is_dead_lettered_not_acked_away(
    settings, broker, worker, runtime, probe, monkeypatch
):
    # Retries re-enqueues a failed message from its after_process_message hook; if that publish
    # fails (a lost connection), Dramatiq logs the hook's error and acks the message.
    publish = broker.enqueue

    def enqueue_without_retries(message: Any, *, delay: int | None = None) -> Any:
        if delay is not None and message.actor_name == PROBE:
            raise ConnectionClosed(RuntimeError("the connection went away"))
        return publish(message, delay=delay)

    monkeypatch.setattr(broker, "enqueue", enqueue_without_retries)
    message_id = send(settings, probe=probe, plan=["transient", "ok"])

    dead = wait_until(lambda: dead_letter(runtime, message_id))

    assert dead.exception_type == "MiddlewareFailed"
    assert "after_process_message of Retries raised ConnectionClosed" in dead.reason
    assert "the attempt had failed with RuntimeError: probe: a transient failure" in dead.reason
    wait_until(lambda: queue_depth(settings, "fulfilment.XQ") == 1)
