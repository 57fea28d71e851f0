"""Every API error is one JSON shape: `{"error": code, "message": text, "fields": [...]}`.

Where errors come from, and who turns each into that shape:

    ApiError                          raised by routes and dependencies (401, 403, 404, 409, 422)
    DATABASE_UNAVAILABLE              PostgreSQL down, restarting or out of connections, or no pooled
                                      connection within `api_pool_timeout_s`: 503 with Retry-After
                                      (a client retries later; a load balancer tries another node)
    RequestValidationError            FastAPI's parameter and body validation (422, one field each)
    starlette HTTPException           the router and body parsing (404, 405, 400 for a body that
      └── fastapi HTTPException       cannot be decoded); handled at the parent, so both are caught
    any other Exception               a bug: `workers.api.edge` answers 500 without re-raising, so
                                      uvicorn keeps the connection open and the caller still gets
                                      the shape (`log_unhandled`)
    control characters, huge bodies   refused before routing (`workers.api.edge`), same shape

`document_errors` writes the same shape and each route's possible statuses into the OpenAPI
document, so the published contract is the one the server keeps (the schemathesis test checks it).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import psycopg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope, Send

from workers.api.metrics import route_template

logger = logging.getLogger("circulate.api")

#: The error code for each status the framework itself raises (the routes name their own).
FRAMEWORK_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
}
DESCRIPTIONS = {
    400: "Malformed request: control characters in the path or query, or a body that cannot be decoded",
    401: "No valid credentials (bearer token, or the carrier's signature)",
    403: "The token is valid but lacks the scope this route needs",
    404: "No such resource",
    409: "Conflicts with an earlier request",
    413: "The request body is over the size limit",
    422: "The request is well formed but a field is invalid (each named in `fields`)",
    500: "A server fault; the message never carries internal details",
    503: "A dependency (the database) is unavailable",
}


#: What PostgreSQL being unavailable raises: psycopg's OperationalError (a refused or lost
#: connection, an administrator shutdown, the async pool's `PoolTimeout`), SQLAlchemy's wrapper of
#: it, and SQLAlchemy's own pool timeout. Never a constraint violation or a bad statement: a bug
#: stays a 500.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.TimeoutError,
)
#: Seconds a client is asked to wait before retrying while the database is unavailable.
RETRY_AFTER_S = 5


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str
    message: str
    fields: list[FieldError]


class ApiError(Exception):
    """An answer a route gives on purpose: a status, a stable code and a human message."""

    def __init__(
        self, status: int, code: str, message: str, *, fields: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []


def error_body(code: str, message: str, fields: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"error": code, "message": message, "fields": fields or []}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    content = error_body(code, message, fields)
    return JSONResponse(status_code=status, content=content, headers=headers or None)


def database_unavailable_response() -> JSONResponse:
    """503 with Retry-After. Sending the same request again is safe: an order or a cancellation is
    accepted once per order id, and a request under its Idempotency-Key gets its first answer."""
    message = f"the database is unavailable; send the same request again in {RETRY_AFTER_S} s"
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    return error_response(503, "database_unavailable", message, headers=headers)


def _field_errors(error: RequestValidationError) -> list[dict[str, str]]:
    fields = []
    for item in error.errors():
        location = [str(part) for part in item["loc"] if part != "body"]
        fields.append({"field": ".".join(location) or "(body)", "message": str(item["msg"])})
    return fields


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers and the documented error responses."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        fields = _field_errors(error)
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return error_response(422, "validation_failed", summary, fields=fields)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, fields=error.fields)

    async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
        log_unavailable(request.scope, error)
        return database_unavailable_response()

    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, database_unavailable)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = FRAMEWORK_CODES.get(error.status_code, "http_error")
        return error_response(error.status_code, code, str(error.detail), headers=dict(error.headers or {}))

    document_errors(app)


def log_unavailable(scope: Scope, error: Exception) -> None:
    """A warning, not a traceback: the outage is the database's, and its own alerts say so."""
    logger.warning("database unavailable", extra={"route": route_template(scope), "error": str(error)[:200]})


def log_unhandled(scope: Scope) -> None:
    """Log the exception being handled, a bug, under the route template (never the raw path: ids
    in paths are personal data). `workers.api.edge` then answers 500 without re-raising: Starlette's
    own last-resort handler re-raises after answering, and uvicorn then closes the connection;
    answering instead keeps keep-alive connections (and proxies' pools) intact."""
    logger.exception("unhandled error", extra={"route": route_template(scope)})


async def send_error(send: Send, status: int, code: str, message: str) -> None:
    """Answer in the error shape from plain ASGI code (middleware that runs before routing)."""
    body = json.dumps(error_body(code, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def document_errors(app: FastAPI) -> None:
    """Publish `ErrorBody` and each route's error statuses in the OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            _add_error_responses(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010 - FastAPI documents this override


def _add_error_responses(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(components["ErrorBody"].pop("$defs", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in _statuses(path, operation):
                responses[str(status)] = _error_response(status)


def _statuses(path: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation can answer, from what it takes and how it is protected."""
    statuses = [400, 500]
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.append(422)
    if operation.get("requestBody"):
        statuses.append(413)
    if "{" in path:
        statuses.append(404)  # a path parameter holding `/` matches no route
    if operation.get("security"):
        statuses += [401, 403]
    if "health" not in operation.get("tags", []):
        statuses.append(503)  # every route but the probes asks the database
    declared = [int(code) for code in operation.get("responses", {}) if code.isdigit() and int(code) >= 400]
    return sorted(set(statuses) | set(declared))


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS.get(status, "Error"),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's own error statuses (404, 409, ...); the shape is added for all."""
    return {status: {"description": DESCRIPTIONS.get(status, "Error")} for status in statuses}
