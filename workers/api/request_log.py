"""One log line per API request, and the request's correlation id and trace carried into its jobs.

Each request gets its correlation id (the caller's `X-Correlation-Id`, or a new one) and its
trace context (the caller's `traceparent` if well formed, or a new trace) here, before routing,
written back into the request's headers. The routes read those headers when they enqueue, so the
request's log line and every message it causes share one correlation id and one trace id
(`shared.tracing`): `trace_id` finds an order from its HTTP request to its last follow-up. What a
route would have done with the headers is unchanged: a missing or malformed traceparent already
meant a new trace, and over-long headers are left alone for the route to refuse.

The line (logger `circulate.api`): route template (never the raw path), method, status,
duration_ms, correlation_id, trace_id. The same ids are bound for the request's duration, so a
route's own log lines carry them. Probes and scrapes (/healthz, /readyz, /metrics) log at DEBUG.
"""

from __future__ import annotations

import logging
import time
import uuid

import structlog
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.tracing import accept_traceparent, trace_id
from workers.api.metrics import route_template

logger = logging.getLogger("circulate.api")

CORRELATION_HEADER = b"x-correlation-id"
TRACEPARENT_HEADER = b"traceparent"
#: The routes' own limits (workers.api.orders); a longer header is the route's to refuse.
MAX_CORRELATION_ID = 200
MAX_TRACEPARENT = 100
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        correlation_id, traceparent = assign_ids(scope)
        ids = {"correlation_id": correlation_id[:MAX_CORRELATION_ID], "trace_id": trace_id(traceparent)}
        status = 500  # what the server answers when the app raises before responding

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(**ids)
        try:
            await self.app(scope, receive, recording_send)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
            _log(scope, status, time.perf_counter() - started, ids)


def assign_ids(scope: Scope) -> tuple[str, str]:
    """The request's correlation id and traceparent, written into its headers when missing."""
    headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
    found = {name.lower(): value.decode("latin-1") for name, value in headers}
    correlation_id = found.get(CORRELATION_HEADER) or str(uuid.uuid4())
    traceparent = found.get(TRACEPARENT_HEADER)
    if traceparent is None or len(traceparent) <= MAX_TRACEPARENT:
        traceparent = accept_traceparent(traceparent)
    kept = [(name, value) for name, value in headers if name.lower() != TRACEPARENT_HEADER]
    if CORRELATION_HEADER not in found:
        kept.append((CORRELATION_HEADER, correlation_id.encode("latin-1")))
    scope["headers"] = [*kept, (TRACEPARENT_HEADER, traceparent.encode("latin-1"))]
    return correlation_id, traceparent


def _log(scope: Scope, status: int, seconds: float, ids: dict[str, str | None]) -> None:
    route = route_template(scope)
    level = logging.ERROR if status >= 500 else logging.INFO
    if route in QUIET_ROUTES and status < 500:
        level = logging.DEBUG
    fields = {
        "route": route,
        "method": str(scope.get("method", "")),
        "status": status,
        "duration_ms": round(seconds * 1000, 1),
        **ids,
    }
    logger.log(level, "http request", extra=fields)


def install_request_log(app: FastAPI) -> None:
    """Add the request log; call it after BodySizeLimit, so a 413 is logged too."""
    app.add_middleware(RequestLog)
