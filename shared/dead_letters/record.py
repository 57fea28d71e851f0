"""Why a message died: one row per dead-lettered message id, beside its `.XQ` copy.

The `.XQ` copy is the body as delivered; it has no traceback and no reason. The dead-letter
middleware writes them here when Dramatiq rejects a message, keyed by message id so a message that
dies again after a re-drive updates its row (attempts, last failure) instead of adding one.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import Text, bindparam, cast, func
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Session

from shared.dead_letters.models import DeadLetter

_INSERT = insert(DeadLetter).values(
    # The middleware hands over the message already encoded (`storable_json`), so it is cast,
    # not encoded a second time.
    message=cast(bindparam("message_json", type_=Text), JSONB),
    status="dead",
)
_UPSERT = _INSERT.on_conflict_do_update(
    index_elements=[DeadLetter.message_id],
    set_={
        "message": _INSERT.excluded.message,
        "exception_type": _INSERT.excluded.exception_type,
        "reason": _INSERT.excluded.reason,
        "traceback": _INSERT.excluded.traceback,
        "attempts": DeadLetter.attempts + _INSERT.excluded.attempts,
        "host": _INSERT.excluded.host,
        "status": "dead",
        "last_failed_at": func.now(),
    },
)


#: What Postgres `text` and `jsonb` cannot hold: NUL, and surrogates that pair with nothing
#: (JSON may spell `\ud800` alone; UTF-8 cannot encode it).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` without NUL, and with a lone surrogate as U+FFFD, so Postgres takes it."""
    return _UNSTORABLE.sub(lambda found: "" if found.group() == "\x00" else "\ufffd", text)


def storable(value: Any) -> Any:
    """A copy of a JSON value with `storable_text` applied to every string, keys included.

    Cleaning the strings before encoding, never the encoded text, is what keeps the JSON valid:
    replacing `\\u0000` in the encoded text also eats the escape of a backslash the message
    really held (`"\\\\u0000"`) and leaves JSON that Postgres refuses, losing the reason.
    """
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(str(key)): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def storable_json(value: Any) -> str:
    """`value` as JSON that a `jsonb` column accepts (other types as their `str`)."""
    return json.dumps(storable(value), default=lambda other: storable_text(str(other)))


def record(session: Session, **fields: Any) -> None:
    """Insert or refresh the reason for one dead message (see the module docstring)."""
    fields = dict(fields)
    fields["message_json"] = fields.pop("message")
    session.execute(_UPSERT, fields)
