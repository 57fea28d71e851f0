"""One log line per message outcome, and the message's ids on every line its handler writes.

`MessageLog` writes, when Dramatiq acks or rejects a message (the moment its outcome is final,
see `shared.middleware.metrics`), one line on the `circulate.messages` logger:

    event="message <outcome>"  message_id  actor  queue  order_id  correlation_id  trace_id
    attempt  outcome  duration_ms  [error_type]

The outcome is `classify` of the `Attempt` that MessageMetrics records, so a line and the
`circulate_messages_total` counter always agree; MessageMetrics must be in the same broker.
Succeeded and duplicate_skipped lines are INFO, retried WARNING, failed and dead_lettered ERROR.

While the handler runs, the same ids are bound with `structlog.contextvars` in the worker thread,
so anything logged meanwhile (a handler, an adapter, SQLAlchemy) carries `trace_id` and
`correlation_id` too; they are unbound when the handler returns.

Only the envelope's ids and the payload's `order_id` (when it is a UUID) are read; nothing else
of a payload is ever logged, because payloads hold names, emails and addresses.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import dramatiq
import structlog
from dramatiq.middleware import Middleware

from shared.logs import log_fields
from shared.middleware.metrics import attempt_of, classify, labels
from shared.outcome import Outcome
from shared.tracing import trace_id

logger = logging.getLogger("circulate.messages")

#: The proxy attribute holding the context tokens bound for the current attempt.
_BOUND = "circulate_log_context"
#: The proxy attribute holding the message's ids, as `message_ids` read them before handling.
_IDS = "circulate_log_ids"
_LEVELS = {
    Outcome.SUCCEEDED: logging.INFO,
    Outcome.DUPLICATE_SKIPPED: logging.INFO,
    Outcome.RETRIED: logging.WARNING,
    Outcome.FAILED: logging.ERROR,
    Outcome.DEAD_LETTERED: logging.ERROR,
}


class MessageLog(Middleware):
    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        queue, actor = labels(broker, message)
        ids = message_ids(message)
        setattr(message, _IDS, ids)  # read again for the outcome line, not parsed twice
        context = {"message_id": message.message_id, "actor": actor, "queue": queue, **ids}
        setattr(message, _BOUND, structlog.contextvars.bind_contextvars(**context))

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        self._unbind(message)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._unbind(message)

    def after_ack(self, broker: dramatiq.Broker, message: Any) -> None:
        self._log(broker, message, acked=True)

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        self._log(broker, message, acked=False)

    def _unbind(self, message: Any) -> None:
        tokens = getattr(message, _BOUND, None)
        if tokens:
            setattr(message, _BOUND, None)
            structlog.contextvars.reset_contextvars(**tokens)

    def _log(self, broker: dramatiq.Broker, message: Any, *, acked: bool) -> None:
        attempt = attempt_of(message)
        outcome = classify(attempt, acked=acked)
        if outcome is None:
            return
        queue, actor = (attempt.queue, attempt.actor) if attempt else labels(broker, message)
        fields: dict[str, Any] = {
            "message_id": message.message_id,
            "actor": actor,
            "queue": queue,
            **(getattr(message, _IDS, None) or message_ids(message)),
            "attempt": attempt.number if attempt else int(message.options.get("retries", 0) or 0) + 1,
            "outcome": outcome.value,
            "duration_ms": _ms(attempt.elapsed_s) if attempt else None,
        }
        exception = getattr(message, "_exception", None)
        if outcome is not Outcome.SUCCEEDED and exception is not None:
            fields["error_type"] = type(exception).__name__
        log_fields(logger, _LEVELS[outcome], f"message {outcome.value}", fields)


def message_ids(message: Any) -> dict[str, str | None]:
    """order_id, correlation_id and trace_id of a delivered message; None where absent or malformed.

    The body may be anything a producer sent, so every field is checked before it is used and
    the order id is only taken when it is a UUID (never free text from the payload).
    """
    kwargs = _dict(message.kwargs)
    envelope, payload = _dict(kwargs.get("envelope")), _dict(kwargs.get("payload"))
    correlation = envelope.get("correlation_id")
    traceparent = envelope.get("traceparent")
    return {
        "order_id": _uuid(payload.get("order_id")),
        "correlation_id": correlation[:200] if isinstance(correlation, str) else None,
        "trace_id": trace_id(traceparent) if isinstance(traceparent, str) else None,
    }


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 1) if seconds is not None else None


#: Longer than any spelling of a UUID (`urn:uuid:{...}`): not parsed, so its size costs nothing.
_MAX_UUID_CHARS = 50


def _uuid(value: Any) -> str | None:
    """The UUID `value` spells; only short text is parsed, nothing else is ever rendered."""
    if not isinstance(value, str) or len(value) > _MAX_UUID_CHARS:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
