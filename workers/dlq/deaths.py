"""What the sweeper can learn about a dead message from its `.XQ` copy alone.

Usually the worker has already recorded the reason and traceback (`shared.middleware.dead_letter`)
and the archive row keeps them. When it has not (the database was down when the message died, or
RabbitMQ dead-lettered it itself after too many deliveries), the reason comes from RabbitMQ's
`x-death` header. A body that is not a Dramatiq message gets the id the worker would have given
it (derived from the body's SHA-256, see `shared.broker.undecodable_message`) and is kept raw.
Pure functions: no broker, no database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.broker import UNDECODABLE_ACTOR, StrictJSONEncoder
from shared.dead_letters.models import DeadLetter

_REASONS = {
    "delivery_limit": (
        "DeliveryLimitExceeded",
        "delivery limit exceeded: RabbitMQ dead-lettered the message from {queue} after {deliveries} "
        "deliveries, none of them acknowledged or rejected (x-death reason delivery_limit). Each "
        "return of an unacknowledged delivery counts: a worker that crashed, was killed or restarted "
        "while holding it, a lost connection, or a channel the broker closed (consumer timeout)",
    ),
    "rejected": ("Rejected", "rejected by a worker, but no reason was recorded (was the database down?)"),
    "expired": ("Expired", "the message expired (TTL) before a worker took it"),
    "maxlen": ("QueueLengthExceeded", "dropped from a full queue (length limit)"),
}


def describe(
    xq_name: str, body: bytes, headers: Mapping[str, Any] | None, *, host: str, delivery_limit: int
) -> DeadLetter:
    """The archive row for one `.XQ` copy (unsaved), as complete as the copy allows.

    `x-delivery-count` is no help for the attempt count: it counts deliveries from the `.XQ`
    itself. A delivery-limit death means the queue's limit was passed; otherwise the Dramatiq
    retry count in the message's options is what is known.
    """
    headers = headers or {}
    fields = dict(StrictJSONEncoder().decode(body))
    death = _last_death(headers)
    queue = _text(death.get("queue")) or xq_name.removesuffix(".XQ")
    attempts = _int(fields["options"].get("retries")) + 1
    if _text(death.get("reason")) == "delivery_limit":
        attempts = max(attempts, delivery_limit + 1)
    if fields["actor_name"] == UNDECODABLE_ACTOR:
        exception_type, reason, raw = "InvalidMessage", str(fields["kwargs"].get("reason")), body
    else:
        exception_type, reason = death_reason(death, xq_name=xq_name, deliveries=attempts)
        raw = None
    return DeadLetter(
        message_id=str(fields["message_id"]),
        queue_name=queue,
        actor_name=str(fields["actor_name"]),
        message=_storable(json.loads(json.dumps(fields, default=str))),
        exception_type=exception_type,
        reason=_storable(reason),
        attempts=attempts,
        host=host,
        raw_body=raw,
    )


def death_reason(death: Mapping[str, Any], *, xq_name: str, deliveries: int) -> tuple[str, str]:
    """Exception type and reason for a death RabbitMQ describes in `x-death` (or does not)."""
    code = _text(death.get("reason"))
    queue = _text(death.get("queue")) or xq_name.removesuffix(".XQ")
    if code in _REASONS:
        exception_type, template = _REASONS[code]
        reason = template.format(deliveries=deliveries, queue=queue)
        if code == "delivery_limit" and queue.endswith(".DQ"):
            reason += "; it was a delayed message waiting for its eta and never ran"
        return exception_type, reason
    if code:
        return "DeadLettered", f"dead-lettered by RabbitMQ ({code})"
    return "Unknown", f"found in {xq_name} with no dead-letter record and no x-death header"


def _last_death(headers: Mapping[str, Any]) -> Mapping[str, Any]:
    """The most recent x-death entry (RabbitMQ puts it first), or the x-first-death-* headers."""
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0]
    return {
        "reason": headers.get("x-first-death-reason"),
        "queue": headers.get("x-first-death-queue"),
    }


def _storable(value: Any) -> Any:
    """Postgres text and jsonb cannot hold NUL characters, which a garbage body may decode to."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value) if value else None


def _int(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0
