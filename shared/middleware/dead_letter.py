"""Records why a message was dead-lettered, at the moment Dramatiq rejects it.

Rejection (`nack`) routes the message to its `.XQ` through the queue's dead-letter exchange; this
middleware adds the reason, exception type, traceback, attempt count and host to
`dead_letters`. If the database is down at that moment the `.XQ` copy still holds the message and
the archive sweeper records it later, so a failure here is logged and never re-raised.
"""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, SkipMessage

from shared.dead_letters.record import record, storable_json, storable_text
from shared.redaction import truncate
from shared.runtime import Runtime

logger = logging.getLogger(__name__)

#: A traceback quoting a huge value is cut (head and tail kept) to this many characters.
MAX_TRACEBACK_CHARS = 100_000


def describe_failure(message: Any) -> tuple[str, str, str | None]:
    """Exception type, reason and traceback of a failed message proxy."""
    exception: BaseException | None = getattr(message, "_exception", None)
    if exception is None:
        return "Rejected", "rejected without an exception", None
    if isinstance(exception, SkipMessage):
        return "AgeLimitExceeded", "the message was older than the age limit when a worker took it", None
    text = "".join(traceback.format_exception(exception)) if exception.__traceback__ else None
    return type(exception).__name__, str(exception) or type(exception).__name__, text


class DeadLetterRecorder(Middleware):
    def __init__(self, runtime: Callable[[], Runtime]) -> None:
        self._runtime = runtime
        self._host = socket.gethostname()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        # Retries increments the count before the nack on some paths and not on others; the
        # attempt number is fixed here, before any of that.
        message.circulate_attempt = int(message.options.get("retries", 0)) + 1

    def after_nack(self, broker: dramatiq.Broker, message: Any) -> None:
        exception_type, reason, trace = describe_failure(message)
        # Postgres text and JSONB cannot hold NUL or a lone surrogate, so every string is cleaned
        # before it is encoded; the sweeper keeps the exact bytes of the .XQ copy.
        fields = {
            "message_id": message.message_id,
            "queue_name": storable_text(str(message.queue_name))[:100],
            "actor_name": storable_text(str(message.actor_name))[:100],
            "message": storable_json(message._message.asdict()),
            "exception_type": storable_text(exception_type)[:200],
            "reason": storable_text(reason[:10_000]),
            "traceback": storable_text(truncate(trace, MAX_TRACEBACK_CHARS)) if trace else None,
            "attempts": getattr(message, "circulate_attempt", None)
            or int(message.options.get("retries", 0)) + 1,
            "host": self._host,
        }
        try:
            with self._runtime().sessions.begin() as session:
                record(session, **fields)
        except Exception:
            logger.exception("could not record the dead-letter reason of %s", message.message_id)
