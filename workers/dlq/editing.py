"""Editing an archived message's payload before re-driving it (the fix for a bad producer value).

Only the payload changes: the envelope (and so the idempotency key) stays as the producer sent
it. The new payload must validate against the actor's schema (`tasks.registry.PAYLOAD_TYPES`),
exactly as the worker will validate it, so an edit cannot create a message that dies again for
the same reason. The history event keeps the payload before and after.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from shared.errors import InvalidMessage
from shared.messages import describe_validation_error
from tasks.registry import PAYLOAD_TYPES


def payload_text(message: dict[str, Any]) -> str:
    """The payload as indented JSON, what an operator edits."""
    return json.dumps(message.get("kwargs", {}).get("payload"), indent=2, sort_keys=True) + "\n"


def edited_message(actor_name: str, message: dict[str, Any], new_payload_text: str) -> dict[str, Any]:
    """`message` with its payload replaced by the validated new one; InvalidMessage says what is wrong."""
    payload_type = PAYLOAD_TYPES.get(actor_name)
    if payload_type is None:
        raise InvalidMessage(
            f"no payload schema for actor {actor_name!r}; only {sorted(PAYLOAD_TYPES)} can be edited"
        )
    kwargs = message.get("kwargs")
    if not isinstance(kwargs, dict) or "envelope" not in kwargs:
        raise InvalidMessage("the archived message has no envelope, so it cannot be re-driven after an edit")
    try:
        new_payload = json.loads(new_payload_text)
    except json.JSONDecodeError as error:
        raise InvalidMessage(f"the new payload is not JSON: {error}") from error
    try:
        payload_type.model_validate(new_payload)
    except ValidationError as error:
        raise InvalidMessage(f"invalid payload: {describe_validation_error(error)}") from error
    return message | {"kwargs": kwargs | {"payload": new_payload}}
