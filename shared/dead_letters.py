"""Why a message died: one row per dead-lettered message id, beside its `.XQ` copy.

The `.XQ` copy is the body as delivered; it has no traceback and no reason. The dead-letter
middleware writes them here when Dramatiq rejects a message, keyed by message id so a message that
dies again after a re-drive updates its row (attempts, last failure) instead of adding one.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, LargeBinary, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.db import Base


class DeadLetter(Base):
    __tablename__ = "dead_letters"

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    queue_name: Mapped[str] = mapped_column(String(100))
    actor_name: Mapped[str] = mapped_column(String(100))
    message: Mapped[dict[str, Any]] = mapped_column(JSONB)
    exception_type: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    host: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), server_default="dead")
    first_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The archive's columns (revision 0005): grouping, sweeping, re-drive, purge and edit history.
    # `normalised_reason` and `group_key` are computed by a trigger, never written from Python.
    normalised_reason: Mapped[str | None] = mapped_column(Text)
    group_key: Mapped[str | None] = mapped_column(String(16))
    recorded_by: Mapped[str] = mapped_column(String(20), server_default="worker")
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    raw_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    redrive_count: Mapped[int] = mapped_column(Integer, server_default="0")
    last_redriven_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    purged_by: Mapped[str | None] = mapped_column(String(200))
    purged_from: Mapped[str | None] = mapped_column(String(20))
    original_message: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


_UPSERT = text(
    """
    INSERT INTO dead_letters (message_id, queue_name, actor_name, message, exception_type, reason,
                              traceback, attempts, host, status)
    VALUES (:message_id, :queue_name, :actor_name, CAST(:message AS jsonb), :exception_type, :reason,
            :traceback, :attempts, :host, 'dead')
    ON CONFLICT (message_id) DO UPDATE SET
        message = EXCLUDED.message, exception_type = EXCLUDED.exception_type,
        reason = EXCLUDED.reason, traceback = EXCLUDED.traceback,
        attempts = dead_letters.attempts + EXCLUDED.attempts, host = EXCLUDED.host,
        status = 'dead', last_failed_at = now()
    """
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
    session.execute(_UPSERT, fields)
