"""HTTP `Idempotency-Key`: the same key and body replay the first response; another body is a 409.

The key is recorded in the same transaction as the request's effect (the outbox row), so a
request either happened with its stored response or not at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base
from workers.api.errors import ApiError


class ApiIdempotencyRecord(Base):
    __tablename__ = "api_idempotency"

    service: Mapped[str] = mapped_column(String(100), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\0".join([method.encode(), path.encode(), body])).hexdigest()


#: The stored answer for (service, key); read in the request's transaction.
REPLAY = (
    "SELECT request_hash, status_code, response_body FROM api_idempotency "
    "WHERE service = %(service)s AND idempotency_key = %(key)s"
)
#: The first answer, remembered with the request's effects; no row back: a concurrent request
#: with the same key committed first, and this one replays it instead (`workers.api.intake`).
REMEMBER = (
    "INSERT INTO api_idempotency (service, idempotency_key, request_hash, status_code, response_body) "
    "VALUES (%(service)s, %(key)s, %(request_digest)s, %(status)s, %(response)s) "
    "ON CONFLICT (service, idempotency_key) DO NOTHING RETURNING 1"
)


def judge_replay(
    row: tuple[Any, ...] | None, digest: str, *, spelled_before: Callable[[], str] | None = None
) -> StoredResponse | None:
    """The stored response for a REPLAY row, None if the key is new; 409 if it was used differently.

    `spelled_before` gives the request's digest as an earlier version of the API spelled it, for
    rows stored then; it is asked only when the stored digest is not `digest`.
    """
    if row is None:
        return None
    request_hash, status_code, body = row
    if request_hash != digest and (spelled_before is None or request_hash != spelled_before()):
        raise ApiError(
            409, "idempotency_key_reused", "this Idempotency-Key was already used with another request"
        )
    return StoredResponse(int(status_code), body)
