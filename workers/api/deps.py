"""Per-request dependencies: a database session and the calling service (bearer token + scope).

The calling service is resolved on the event loop (`workers.api.callers`, cached for a few
seconds), so a route that needs no session (placing an order) takes no thread for it.

Routes declare what they need as a type: `Enqueuer` (the `enqueue` scope: anything that changes
state) or `Reader` (the `read` scope). Both resolve to the calling service's name. A missing or
unknown token is a 401, a valid token without the scope a 403, both in the API's error shape and
both before the route's own work. The scheme and each route's scope are in the OpenAPI document
(`ServiceToken`), so clients and the contract test see the same rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from sqlalchemy.orm import Session, sessionmaker

from workers.api.callers import CallerCache
from workers.api.errors import ApiError

bearer = HTTPBearer(
    scheme_name="ServiceToken",
    description="A service token from `circulate token create SERVICE --scope enqueue --scope read`.",
    auto_error=False,
)


def get_sessions(request: Request) -> sessionmaker[Session]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


def get_session(sessions: Annotated[sessionmaker[Session], Depends(get_sessions)]) -> Iterator[Session]:
    with sessions() as session:
        yield session


async def calling_service(
    required: SecurityScopes,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> str:
    """The service named by a valid `Authorization: Bearer <token>` holding `required` scopes."""
    if credentials is None or not credentials.credentials.strip():
        raise ApiError(
            401,
            "unauthenticated",
            "send `Authorization: Bearer <token>` (see `circulate token create`)",
        )
    callers: CallerCache = request.app.state.callers
    caller = await callers.caller_for(credentials.credentials.strip())
    if caller is None:
        raise ApiError(401, "unauthenticated", "unknown or revoked token")
    missing = [scope for scope in required.scopes if scope not in caller.scopes]
    if missing:
        raise ApiError(
            403,
            "missing_scope",
            f"this token of {caller.service} lacks the scope {', '.join(missing)} this route needs "
            f"(it has: {', '.join(sorted(caller.scopes))})",
        )
    return caller.service


Enqueuer = Annotated[str, Security(calling_service, scopes=["enqueue"])]
Reader = Annotated[str, Security(calling_service, scopes=["read"])]
#: Any valid token, whatever its scopes; prefer `Enqueuer` or `Reader` on a route.
Service = Annotated[str, Security(calling_service)]
DbSession = Annotated[Session, Depends(get_session)]
