"""The message contract: an Envelope around a schema-validated Payload.

On the wire a message is a Dramatiq message (JSON) whose kwargs are
`{"envelope": {...}, "payload": {...}}` and whose `actor_name` is the payload's stable dotted
`kind` (`fulfilment.place_order`), never a Python function name. The idempotency key is chosen by
the producer and survives resends; Dramatiq's `message_id` only survives broker retries.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import InvalidMessage

SCHEMA_VERSION = 1


def utc_now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """What every message carries besides its payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    idempotency_key: str = Field(min_length=1, max_length=200)
    kind: str = Field(min_length=1, max_length=100)
    version: int = Field(default=SCHEMA_VERSION, ge=1)
    produced_at: datetime = Field(default_factory=utc_now)
    correlation_id: str = Field(min_length=1, max_length=200)
    traceparent: str | None = Field(default=None, max_length=100)


class Payload(BaseModel):
    """Base of every command and event; subclasses set `kind` and `queue` (the wire contract)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassVar[str]
    queue: ClassVar[str]


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad field, for dead-letter reasons and HTTP 4xx bodies."""
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(body)"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)


def decode_message(payload_type: type[Payload], kwargs: dict[str, Any]) -> tuple[Envelope, Payload]:
    """Validate a delivered message's kwargs; anything off raises InvalidMessage with the reason."""
    if set(kwargs) != {"envelope", "payload"}:
        raise InvalidMessage(f"message kwargs must be exactly envelope and payload, got {sorted(kwargs)}")
    try:
        envelope = Envelope.model_validate(kwargs["envelope"])
    except ValidationError as error:
        raise InvalidMessage(f"invalid envelope: {describe_validation_error(error)}") from error
    if envelope.kind != payload_type.kind:
        raise InvalidMessage(f"envelope kind {envelope.kind!r} does not match actor {payload_type.kind!r}")
    if envelope.version > SCHEMA_VERSION:
        raise InvalidMessage(f"schema version {envelope.version} is newer than this worker understands")
    try:
        payload = payload_type.model_validate(kwargs["payload"])
    except ValidationError as error:
        raise InvalidMessage(f"invalid payload: {describe_validation_error(error)}") from error
    return envelope, payload
