"""Per-request dependencies: a database session and the calling service (bearer-token auth)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session, sessionmaker

from workers.api.errors import ApiError
from workers.tokens import service_for


def get_sessions(request: Request) -> sessionmaker[Session]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


def get_session(sessions: Annotated[sessionmaker[Session], Depends(get_sessions)]) -> Iterator[Session]:
    with sessions() as session:
        yield session


def calling_service(
    session: Annotated[Session, Depends(get_session)],
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    """The service named by a valid `Authorization: Bearer <token>`; 401 otherwise."""
    if not authorization:
        raise ApiError(
            401, "unauthenticated", "send `Authorization: Bearer <token>` (see `circulate token create`)"
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthenticated", "the Authorization header must be `Bearer <token>`")
    service = service_for(session, token.strip())
    session.rollback()
    if service is None:
        raise ApiError(401, "unauthenticated", "unknown or revoked token")
    return service


Service = Annotated[str, Depends(calling_service)]
DbSession = Annotated[Session, Depends(get_session)]
