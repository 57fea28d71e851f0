"""Bearer tokens for calling services: shown once at creation, stored only as a SHA-256 hash.

Tokens carry 256 bits of randomness, so a fast hash is enough (no password-style stretching);
the hash lets the API look a token up by equality without keeping anything replayable.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.db import Base

TOKEN_PREFIX = "circ_"


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    service: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, service: str) -> str:
    """Store a new token's hash for `service` and return the token itself (printed once)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(service=service, token_hash=hash_token(token)))
    return token


def service_for(session: Session, token: str) -> str | None:
    """The calling service a presented token belongs to, or None if unknown or revoked."""
    return session.execute(
        select(ApiToken.service).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
        )
    ).scalar_one_or_none()


def revoke_tokens(session: Session, service: str) -> int:
    tokens = session.scalars(
        select(ApiToken).where(ApiToken.service == service, ApiToken.revoked_at.is_(None))
    )
    count = 0
    for token in tokens:
        token.revoked_at = func.now()
        count += 1
    return count
