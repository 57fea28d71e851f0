"""HTTP metrics of the API and its /metrics endpoint (`install_api_metrics`).

Requests are labelled by route template (`/v1/orders/{order_id}`), never by raw path: a raw path
makes one time series per order id, and a scanner probing random URLs would add one per probe.
Unmatched paths share the label `unmatched`, and unusual methods the label `OTHER`.

The middleware is plain ASGI (not `BaseHTTPMiddleware`), so it adds no task per request and sees
the status of responses produced by the other middleware (a 413 from the body limit included)
when it is installed last, which makes it the outermost.
"""

from __future__ import annotations

import time

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics
from shared.metrics_runtime import exposition_registry

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route, method = route_template(scope), _method(scope)
            metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
            metrics.HTTP_REQUEST.labels(route, method).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The matched route's path template; the router writes the route into the shared scope."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def _method(scope: Scope) -> str:
    method = str(scope.get("method", "")).upper()
    return method if method in METHODS else "OTHER"


def metrics_endpoint(request: Request) -> Response:
    """The Prometheus text format of this process (every process's in multiprocess mode)."""
    return Response(generate_latest(exposition_registry()), media_type=CONTENT_TYPE_LATEST)


def install_api_metrics(app: FastAPI) -> None:
    """Add /metrics and the request metrics; call it after every other `add_middleware`."""
    app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    app.add_middleware(HttpMetrics)
