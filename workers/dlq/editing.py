"""Editing an archived message's payload before re-driving it (the fix for a bad producer value).

Only the payload changes: the envelope (and so the idempotency key) stays as the producer sent
it. The edited message, envelope and payload together, must pass `decode_message` for the
actor's schema (`tasks.registry.PAYLOAD_TYPES`), exactly as the worker will decode it, so an
edit cannot create a message that dies again: a message whose envelope is what is wrong cannot
be fixed by an edit, and is refused. The history event keeps the payload before and after.
"""

from __future__ import annotations

import json
from typing import Any

from shared.dead_letters.record import storable
from shared.errors import InvalidMessage
from shared.messages import decode_message
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
    except (json.JSONDecodeError, RecursionError) as error:
        raise InvalidMessage(f"the new payload is not JSON: {error}") from error
    if storable(new_payload) != new_payload:
        raise InvalidMessage("the new payload holds a NUL character or an invalid surrogate")
    new_kwargs = kwargs | {"payload": new_payload}
    decode_message(payload_type, new_kwargs)
    return message | {"kwargs": new_kwargs}
