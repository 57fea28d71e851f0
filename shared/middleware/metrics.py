"""Message metrics (`MessageMetrics`) and the worker's /metrics process (`MetricsServer`).

Handling time and the in-progress gauge are recorded around the handler; the outcome is counted
when Dramatiq acks or rejects the message, because only then is it final. Dramatiq runs `after_`
hooks in reverse order, so in `after_process_message` this middleware (listed after `Retries`)
would run before `Retries` has decided between retry and dead-letter. At ack/nack time:

    nack                                        -> dead_lettered (also never-handled messages)
    ack, handler raised, retry enqueued         -> retried
    ack, handler raised, no retry enqueued      -> failed (the retry could not be published)
    ack, marked by the actor factory            -> duplicate_skipped
    ack otherwise                               -> succeeded
    ack of a skipped message                    -> not counted (no Circulate middleware does it)

Messages taken off a `.DQ` and moved to their queue are acked too but were never handled here;
they carry no attempt and are not counted.

The table is `classify`, and the facts it reads are the `Attempt` this middleware records on the
message proxy; `shared.middleware.message_log` reads the same record with the same function, so
a log line and the counter can never disagree about how a message ended.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.common import q_name
from dramatiq.middleware import Middleware

from shared import metrics, metrics_held, outcome
from shared.metrics_runtime import mark_this_process_dead, serve_worker_metrics
from shared.outcome import Outcome

#: The proxy attribute holding this middleware's record of the current attempt.
ATTEMPT = "circulate_metrics_attempt"
UNKNOWN_ACTOR = "unknown"


@dataclass
class Attempt:
    """One delivery of a message being handled: what `classify` needs, kept on the message proxy."""

    message_id: str
    queue: str
    actor: str
    started: float
    #: 1 on the first delivery; Retries raises `options["retries"]` before the next one.
    number: int = 1
    elapsed_s: float | None = None
    finished: bool = False
    skipped: bool = False
    raised: bool = False
    retry_enqueued: bool = False
    marked: Outcome | None = None


def attempt_of(message: Any) -> Attempt | None:
    """The attempt MessageMetrics recorded on `message`, or None if no worker handled it."""
    attempt: Attempt | None = getattr(message, ATTEMPT, None)
    return attempt


def classify(attempt: Attempt | None, *, acked: bool) -> Outcome | None:
    """How a delivery ended, at ack (`acked`) or nack time: the table of the module docstring.

    None means "not a handled message" (moved off a `.DQ`, or skipped and acked on purpose) and
    is neither counted nor logged.
    """
    if not acked:
        return Outcome.DEAD_LETTERED
    if attempt is None:
        return None
    if attempt.raised:
        return Outcome.RETRIED if attempt.retry_enqueued else Outcome.FAILED
    if attempt.marked == Outcome.DUPLICATE_SKIPPED:
        return Outcome.DUPLICATE_SKIPPED
    if attempt.finished and not attempt.skipped:
        return Outcome.SUCCEEDED
    return None  # skipped and acked: dropped on purpose by a middleware; none of ours does this


@dataclass(frozen=True)
class _Series:
    """One queue and actor's labelled series, looked up once: `labels()` validates and locks on
    every call, about 2.5 us each, five times a message."""

    in_progress: Any
    queue_wait: Any
    handling: Any


@functools.cache
def _series(queue: str, actor: str) -> _Series:
    # Bounded: `labels` only lets registered actor names (and UNKNOWN_ACTOR) through.
    return _Series(
        in_progress=metrics.MESSAGES_IN_PROGRESS.labels(queue, actor),
        queue_wait=metrics.MESSAGE_QUEUE_WAIT.labels(queue, actor),
        handling=metrics.MESSAGE_HANDLING.labels(queue, actor),
    )


@functools.cache
def _outcome_counter(queue: str, actor: str, result: Outcome) -> Any:
    return metrics.MESSAGES.labels(queue, actor, result)


class MessageMetrics(Middleware):
    def __init__(self) -> None:
        self._current = threading.local()

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        # Every outcome of every actor starts at 0: Prometheus's increase() cannot see the first
        # increment of a series that appears with the value 1, so alerts would miss it.
        for actor in list(broker.actors.values()):
            for result in metrics.MESSAGE_OUTCOMES:
                metrics.MESSAGES.labels(q_name(actor.queue_name), actor.actor_name, result)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        queue, actor = labels(broker, message)
        number = _int(message.options.get("retries")) + 1
        attempt = Attempt(message.message_id, queue, actor, time.perf_counter(), number=number)
        # Recorded on the proxy before the increment, so every increment has its decrement.
        setattr(message, ATTEMPT, attempt)
        self._current.attempt = attempt
        series = _series(queue, actor)
        series.in_progress.inc()
        wait = queue_wait_seconds(message)
        if wait is not None:
            metrics_held.observe(series.queue_wait, wait)

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        self._finish(message, raised=exception is not None)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        attempt = attempt_of(message)
        if attempt is not None:
            attempt.skipped = True
        self._finish(message, raised=False)

    def _finish(self, message: Any, *, raised: bool) -> None:
        attempt = attempt_of(message)
        if attempt is None or attempt.finished:
            return
        attempt.finished = True
        series = _series(attempt.queue, attempt.actor)
        try:
            attempt.raised = raised
            attempt.marked = outcome.take()
            attempt.elapsed_s = time.perf_counter() - attempt.started
            metrics_held.observe(series.handling, attempt.elapsed_s)
        finally:
            series.in_progress.dec()

    def after_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        # Retries re-enqueues the message (same id) from the worker thread handling it.
        attempt: Attempt | None = getattr(self._current, "attempt", None)
        if attempt is not None and attempt.message_id == message.message_id:
            attempt.retry_enqueued = True

    def after_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        self._count(broker, message, acked=True)

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        self._count(broker, message, acked=False)

    def _count(self, broker: dramatiq.Broker, message: Any, *, acked: bool) -> None:
        attempt = attempt_of(message)
        self._current.attempt = None
        result = classify(attempt, acked=acked)
        if result is not None:
            queue, actor = (attempt.queue, attempt.actor) if attempt else labels(broker, message)
            metrics_held.inc(_outcome_counter(queue, actor, result))


def labels(broker: dramatiq.Broker, message: Any) -> tuple[str, str]:
    """The queue and actor a message is counted (and logged) under."""
    # The actor name comes from the body; only registered names become label values.
    actor = message.actor_name if message.actor_name in broker.actors else UNKNOWN_ACTOR
    return q_name(message.queue_name), actor


def _int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def queue_wait_seconds(message: Any) -> float | None:
    """Seconds since the envelope's `produced_at`, on a first attempt only; None when unknown.

    A retry keeps the original `produced_at`, so its wait would include earlier attempts and the
    backoff: that is latency, not queueing, and would drown the signal.
    """
    try:
        if int(message.options.get("retries") or 0) > 0:
            return None
        produced = datetime.fromisoformat(message.kwargs["envelope"]["produced_at"])
        if produced.tzinfo is None:
            produced = produced.replace(tzinfo=UTC)
        return max(0.0, time.time() - produced.timestamp())
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


class MetricsServer(Middleware):
    """Asks Dramatiq's CLI for one extra process serving every worker process's metrics.

    Dramatiq collects `forks` from the first worker process to boot and starts each in a process
    of its own; the function is found again by module and name, so it is a module-level function
    that reads its settings from the environment, as the workers do.
    """

    @property
    def forks(self) -> list[Callable[[], int]]:
        return [serve_worker_metrics]

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        mark_this_process_dead()
