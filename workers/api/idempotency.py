"""HTTP `Idempotency-Key`: the same key and body replay the first response; another body is a 409.

The key is recorded in the same transaction as the request's effect (the outbox row), so a
request either happened with its stored response or not at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

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


def replay(session: Session, *, service: str, key: str, digest: str) -> StoredResponse | None:
    """The stored response for this key, None if the key is new; 409 if it was used differently."""
    record = session.execute(
        select(ApiIdempotencyRecord).where(
            ApiIdempotencyRecord.service == service, ApiIdempotencyRecord.idempotency_key == key
        )
    ).scalar_one_or_none()
    if record is None:
        return None
    if record.request_hash != digest:
        raise ApiError(
            409, "idempotency_key_reused", "this Idempotency-Key was already used with another request"
        )
    return StoredResponse(record.status_code, record.response_body)


def remember(session: Session, *, service: str, key: str, digest: str, response: StoredResponse) -> None:
    session.add(
        ApiIdempotencyRecord(
            service=service,
            idempotency_key=key,
            request_hash=digest,
            status_code=response.status_code,
            response_body=response.body,
        )
    )
