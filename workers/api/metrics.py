"""HTTP metrics of the API and its /metrics endpoint (`install_api_metrics`).

Requests are labelled by route template (`/v1/orders/{order_id}`), never by raw path: a raw path
makes one time series per order id, and a scanner probing random URLs would add one per probe.
Unmatched paths share the label `unmatched`, and unusual methods the label `OTHER`.

The API's one middleware (`workers.api.edge.RequestEdge`) records each request once answered,
so the status of every answer counts, a 413 from the body limit and a 400 for control
characters included.
"""

from __future__ import annotations

import functools
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from shared import metrics
from shared.metrics_runtime import exposition_registry

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def record(route: str, scope: Scope, status: int, seconds: float) -> None:
    """Count and time one answered request (`workers.api.edge`, once it is answered)."""
    method = _method(scope)
    _requests(route, method, status).inc()
    _durations(route, method).observe(seconds)


# The labelled series, looked up once each: `labels()` validates and locks on every call. Bounded:
# route templates are the app's, methods one of METHODS or OTHER, statuses the server's own.
@functools.cache
def _requests(route: str, method: str, status: int) -> Any:
    return metrics.HTTP_REQUESTS.labels(route, method, str(status))


@functools.cache
def _durations(route: str, method: str) -> Any:
    return metrics.HTTP_REQUEST.labels(route, method)


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
    """Add /metrics (the request metrics are recorded by `workers.api.edge.RequestEdge`)."""
    app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
