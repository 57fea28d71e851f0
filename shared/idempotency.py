"""The inbox: one row per idempotency key ever handled. The only deduplication code there is.

`claim` runs inside the handler's transaction, so the key is taken if and only if the effects
commit. A concurrent duplicate blocks on the primary key until the first transaction ends, then
sees the conflict; if the first rolled back, the second proceeds.
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Uuid, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.db import Base, driver_connection
from shared.messages import Envelope, Payload


class ProcessedMessage(Base):
    __tablename__ = "processed_messages"

    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(100))
    message_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    content_hash: Mapped[str] = mapped_column(String(64))
    processed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
    duplicate_count: Mapped[int] = mapped_column(Integer, server_default="0")


class Claim(enum.Enum):
    CLAIMED = "claimed"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


def content_hash(kind: str, payload: Payload) -> str:
    """Stable hash of what a message asks for, to tell a replay from a key reused for other content."""
    return content_hash_of(kind, payload.model_dump(mode="json"))


def content_hash_of(kind: str, payload_data: Mapping[str, Any]) -> str:
    """`content_hash` of a payload already dumped as JSON data (`model_dump(mode="json")`)."""
    return content_hash_of_json(kind, canonical_json(payload_data))


def canonical_json(payload_data: Mapping[str, Any]) -> str:
    """The payload as JSON with sorted keys and no spaces: the text its content hash covers."""
    return json.dumps(payload_data, sort_keys=True, separators=(",", ":"))


def content_hash_of_json(kind: str, canonical: str) -> str:
    """`content_hash_of` from the payload's `canonical_json`, which a caller may need again.

    The hashed text is `{"kind": kind, "payload": payload}` dumped with sorted keys and no spaces,
    as it always was: "kind" sorts before "payload", and the payload's own text is `canonical`.
    """
    text = f'{{"kind":{json.dumps(kind)},"payload":{canonical}}}'
    return hashlib.sha256(text.encode()).hexdigest()


_CLAIM = (
    "INSERT INTO processed_messages (idempotency_key, kind, message_id, content_hash) "
    "VALUES (%(key)s, %(kind)s, %(message_id)s, %(hash)s) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1"
)


def claim(session: Session, envelope: Envelope, payload: Payload) -> Claim:
    """Take the envelope's key for this transaction; say whether it was free, replayed or reused."""
    digest = content_hash(envelope.kind, payload)
    params = {
        "key": envelope.idempotency_key,
        "kind": envelope.kind,
        "message_id": envelope.message_id,
        "hash": digest,
    }
    # Not in psycopg's pipeline mode: BEGIN and the claim are two round trips, which cost less
    # client CPU and less time than the pipeline's machinery that made them one
    # (tests/integration/test_claim_protocol.py).
    claimed = driver_connection(session).execute(_CLAIM, params).fetchone() is not None
    if claimed:
        return Claim.CLAIMED
    stored = session.execute(
        select(ProcessedMessage.content_hash).where(
            ProcessedMessage.idempotency_key == envelope.idempotency_key
        )
    ).scalar_one_or_none()
    return Claim.DUPLICATE if stored == digest else Claim.CONFLICT


_CLAIM_ALL = (
    "INSERT INTO processed_messages (idempotency_key, kind, message_id, content_hash) "
    "SELECT * FROM unnest(%(keys)s::varchar[], %(kinds)s::varchar[], %(ids)s::uuid[], %(hashes)s::varchar[]) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1"
)


def claim_all(session: Session, messages: Sequence[tuple[Envelope, Payload]]) -> bool:
    """Take every message's key in one statement; False unless all were free.

    The batch path (`shared.batch`) rolls back and handles its messages one by one when any key
    was taken (a duplicate, a reused key, or the same key twice in the batch), so replays are told
    apart from conflicts by `claim` alone.
    """
    params = {
        "keys": [envelope.idempotency_key for envelope, _ in messages],
        "kinds": [envelope.kind for envelope, _ in messages],
        "ids": [envelope.message_id for envelope, _ in messages],
        "hashes": [content_hash(envelope.kind, payload) for envelope, payload in messages],
    }
    claimed = len(driver_connection(session).execute(_CLAIM_ALL, params).fetchall())
    return claimed == len(messages)


def count_duplicate(session: Session, envelope: Envelope) -> None:
    """Remember that a duplicate of this key was suppressed (reports sum these)."""
    session.execute(
        update(ProcessedMessage)
        .where(ProcessedMessage.idempotency_key == envelope.idempotency_key)
        .values(duplicate_count=ProcessedMessage.duplicate_count + 1)
    )
