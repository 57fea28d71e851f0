"""`POST /v1/orders` without the framework: the hot route, served from `workers.api.edge`.

The route is declared in `workers.api.orders` as every other route is (the OpenAPI document, the
validation errors and the 401/403 answers come from that declaration). For each request the
framework resolved the bearer-token dependency, three header parameters and the body through its
dependency machinery, which cost more CPU than the route's own work. This shortcut takes the
request first and serves it when it is well formed: a JSON content type, a bearer token whose
caller may enqueue (`workers.api.callers`, cached), headers within the declared lengths, and a
body that is a valid `PlaceOrder` (`model_validate_json`, the same model). Then it runs the same
code as the declared route (`orders.accept_order`), and its refusals (409, 422 for the fee
schedule or `placed_at`) are `ApiError`s answered in the same shape.

Anything else (no token, a bad body, a header too long, an unknown content type) is declined,
before the database is written, and the declared route answers it with the body replayed: a
request the shortcut does not serve gets exactly the answer it got before the shortcut existed.
"""

from __future__ import annotations

from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import Message, Scope, Send

from tasks.fulfilment.messages import PlaceOrder
from workers.api import orders
from workers.api.callers import CallerCache
from workers.api.edge import BodyReader
from workers.api.errors import ApiError, error_response

METHOD, PATH = "POST", "/v1/orders"
#: The declared route, for its template in the request's log line and metrics.
ROUTE = next(r for r in orders.router.routes if getattr(r, "path", None) == PATH)
#: The headers read, with the declared route's length limits (`workers.api.orders`).
_LIMITS = {b"idempotency-key": 200, b"x-correlation-id": 200, b"traceparent": 100}
_WANTED = frozenset({b"content-type", b"authorization", *_LIMITS})


async def place_order(scope: Scope, reader: BodyReader, send: Send) -> bool:
    """Serve a well-formed `POST /v1/orders` and return True; False hands it to the declared route."""
    headers = _headers(scope)
    if not _is_json(headers.get(b"content-type")):
        return False
    token = _bearer(headers.get(b"authorization"))
    if token is None or any(len(headers.get(name, "")) > limit for name, limit in _LIMITS.items()):
        return False
    body = await reader.body()
    if not body:
        return False
    try:
        order = PlaceOrder.model_validate_json(body)
    except ValidationError:
        return False
    state = scope["app"].state
    callers: CallerCache = state.callers
    caller = await callers.caller_for(token)
    if caller is None or "enqueue" not in caller.scopes:
        return False
    scope["route"] = ROUTE
    response: Response
    try:
        response = await orders.accept_order(
            state,
            order,
            method=METHOD,
            path=PATH,
            service=caller.service,
            http_key=headers.get(b"idempotency-key"),
            correlation_id=headers.get(b"x-correlation-id"),
            traceparent=headers.get(b"traceparent"),
        )
    except ApiError as refused:
        response = error_response(refused.status, refused.code, refused.message, fields=refused.fields)
    await response(scope, _no_receive, send)
    return True


def _headers(scope: Scope) -> dict[bytes, str]:
    """The first value of each header read, decoded as Starlette decodes them (latin-1)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        lowered = name.lower()
        if lowered in _WANTED and lowered not in found:
            found[lowered] = value.decode("latin-1")
    return found


def _is_json(content_type: str | None) -> bool:
    """`application/json` with or without parameters; any other type is the declared route's."""
    if content_type is None:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json"


def _bearer(authorization: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>`, as FastAPI's HTTPBearer and the route read it."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def _no_receive() -> Message:
    raise RuntimeError("the response does not read the request")  # a response never calls it
