"""One log line per API request, and the request's correlation id and trace carried into its jobs.

Each request gets its correlation id (the caller's `X-Correlation-Id`, or a new one) and its trace
context (the caller's `traceparent` if well formed, or a new trace) before routing, from the API's
one middleware (`workers.api.edge.RequestEdge`), written back into the request's headers. The
routes read those headers when they enqueue, so the request's log line and every message it
causes share one correlation id and one trace id (`shared.tracing`): `trace_id` finds an order
from its HTTP request to its last follow-up. What a route would have done with the headers is
unchanged: a missing or malformed traceparent already meant a new trace, and over-long headers
are left alone for the route to refuse.

The line (logger `circulate.api`): route template (never the raw path), method, status,
duration_ms, correlation_id, trace_id. The same ids are bound for the request's duration, so a
route's own log lines carry them. Probes and scrapes (/healthz, /readyz, /metrics) log at DEBUG.
"""

from __future__ import annotations

import logging
import uuid

from starlette.types import ASGIApp, Scope

from shared.logs import log_fields
from shared.tracing import accept_traceparent

logger = logging.getLogger("circulate.api")

CORRELATION_HEADER = b"x-correlation-id"
TRACEPARENT_HEADER = b"traceparent"
#: The routes' own limits (workers.api.orders); a longer header is the route's to refuse.
MAX_CORRELATION_ID = 200
MAX_TRACEPARENT = 100
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def RequestLog(app: ASGIApp) -> ASGIApp:  # the name the layer had on its own
    """The API's request layer (`workers.api.edge.RequestEdge`) around `app`: ids, log line and
    metrics, without a body limit or shortcuts (for apps other than the API's)."""
    from workers.api.edge import RequestEdge  # the edge imports this module

    return RequestEdge(app)


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


def log_request(route: str, scope: Scope, status: int, seconds: float, ids: dict[str, str | None]) -> None:
    """The request's line, once it is answered (`workers.api.edge`)."""
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
    log_fields(logger, level, "http request", fields)
