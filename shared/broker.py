"""The RabbitMQ broker, its queue topology, its JSON encoder and the middleware order.

Differences from a stock `RabbitmqBroker`, each on purpose:
- queues are quorum queues (setting `queue_type`) with a delivery limit, so a message that kills
  its worker again and again ends in the dead-letter queue instead of looping;
- the dead-letter queues (`.XQ`) have no TTL: nothing expires silently, the archive sweeps them;
- publisher confirms are on for everything the broker itself publishes (retries, delayed
  messages); the outbox relay publishes with windowed confirms of its own;
- the encoder is strict JSON: a body that is not a well-formed Dramatiq message is turned into a
  message for the `circulate.undecodable` actor, which dead-letters it with its reason, and
  options a producer sets are cut down to an allowlist.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker, _RabbitmqConsumer
from dramatiq.common import dq_name, xq_name
from dramatiq.encoder import Encoder, MessageData
from dramatiq.middleware import (
    AgeLimit,
    CurrentMessage,
    Middleware,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from shared.config import QUEUES, Settings

UNDECODABLE_ACTOR = "circulate.undecodable"

#: Options Dramatiq's own middleware writes; anything else a producer sets is dropped on decode.
ALLOWED_OPTIONS = frozenset({"eta", "retries", "traceback", "requeue_timestamp", "redelivered"})

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "queue_name": str,
    "actor_name": str,
    "args": list,
    "kwargs": dict,
    "options": dict,
    "message_id": str,
    "message_timestamp": int,
}


class StrictJSONEncoder(Encoder):
    """JSON only, never pickle; decoding never raises, so no body is ever dropped by the consumer."""

    def encode(self, data: MessageData) -> bytes:
        return json.dumps(data, separators=(",", ":")).encode("utf-8")

    def decode(self, data: bytes) -> MessageData:
        try:
            fields = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return undecodable_message(data, f"body is not JSON: {error}")
        problem = _shape_problem(fields)
        if problem:
            return undecodable_message(data, problem)
        fields["options"] = {k: v for k, v in fields["options"].items() if k in ALLOWED_OPTIONS}
        return dict(fields)


def _shape_problem(fields: Any) -> str | None:
    if not isinstance(fields, dict):
        return "body is not a JSON object"
    for name, kind in _FIELDS.items():
        if name not in fields:
            return f"body has no {name!r} field"
        if not isinstance(fields[name], kind) or isinstance(fields[name], bool):
            return f"field {name!r} has the wrong type"
    return None


def undecodable_message(data: bytes, reason: str) -> MessageData:
    """A stand-in message that carries the raw body and the reason to the dead-letter path."""
    digest = hashlib.sha256(data).hexdigest()
    return {
        "queue_name": "undecodable",
        "actor_name": UNDECODABLE_ACTOR,
        "args": [],
        "kwargs": {"reason": reason, "raw": data.decode("utf-8", errors="replace")[:10_000]},
        "options": {},
        "message_id": str(uuid.UUID(digest[:32])),
        # Stamped now, so the age limit never pre-empts the reason with its own.
        "message_timestamp": int(time.time() * 1000),
    }


class CirculateConsumer(_RabbitmqConsumer):
    """Trusts the queue a message came from, not the queue its body names.

    Dramatiq routes acks through `message.queue_name`; a body naming another queue (or the
    undecodable stand-in) would otherwise crash the worker thread instead of being dead-lettered.
    """

    def __next__(self) -> Any:
        delivered = super().__next__()  # type: ignore[no-untyped-call]
        if delivered is not None and delivered.queue_name != self.queue_name:
            delivered._message = delivered._message.copy(queue_name=self.queue_name)
        return delivered


class CirculateBroker(RabbitmqBroker):
    """Dramatiq's RabbitMQ broker with Circulate's queue arguments (see the module docstring)."""

    def __init__(self, *, settings: Settings, middleware: list[Middleware]) -> None:
        super().__init__(url=settings.amqp_url, confirm_delivery=True, middleware=middleware)
        self.queue_type = settings.queue_type
        self.delivery_limit = settings.delivery_limit

    @property
    def consumer_class(self) -> type[CirculateConsumer]:
        return CirculateConsumer

    def _build_queue_arguments(self, queue_name: str) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": xq_name(queue_name),
        }
        if self.queue_type == "quorum":
            arguments["x-queue-type"] = "quorum"
            arguments["x-delivery-limit"] = self.delivery_limit
        return arguments

    def _declare_xq_queue(self, queue_name: str) -> Any:
        arguments = {"x-queue-type": "quorum"} if self.queue_type == "quorum" else {}
        return self.channel.queue_declare(queue=xq_name(queue_name), durable=True, arguments=arguments)

    def declare_topology(self) -> list[str]:
        """Declare every queue with its delay and dead-letter queues; `circulate setup` calls this."""
        declared = []
        for queue in QUEUES:
            self.declare_queue(queue, ensure=True)
            declared += [queue, dq_name(queue), xq_name(queue)]
        return declared


def build_middleware(settings: Settings, extra: list[Middleware]) -> list[Middleware]:
    """The middleware order, in one list: limits first, retries, then Circulate's own."""
    return [
        AgeLimit(max_age=settings.max_age_ms),
        TimeLimit(time_limit=settings.time_limit_ms),
        ShutdownNotifications(),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=settings.min_backoff_ms,
            max_backoff=settings.max_backoff_ms,
        ),
        CurrentMessage(),
        *extra,
    ]


def build_broker(settings: Settings, *, extra_middleware: list[Middleware] | None = None) -> CirculateBroker:
    """A broker for `settings`; also installs the strict encoder process-wide (Dramatiq has one)."""
    dramatiq.set_encoder(StrictJSONEncoder())
    return CirculateBroker(settings=settings, middleware=build_middleware(settings, extra_middleware or []))
