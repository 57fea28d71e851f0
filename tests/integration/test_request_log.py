"""The API's request log, on a real server: one line per request, and the ids its jobs will carry."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from shared.logs import build_formatter
from shared.tracing import trace_id
from tests.fixtures.sandbox import serve_app
from workers.api.request_log import RequestLog


@pytest.fixture
def api_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Lines of `circulate.api`; tests read them once the server has stopped, because a request's
    line is written just after its response has gone out."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(build_formatter(json=True))
    logger = logging.getLogger("circulate.api")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


def _echo_app() -> FastAPI:
    """A route that answers with the ids it was given, as the order routes pass them to enqueue."""
    app = FastAPI()

    @app.get("/v1/orders/{order_id}")
    def echo(order_id: str, request: Request) -> dict[str, str]:
        return {
            "correlation_id": request.headers["x-correlation-id"],
            "traceparent": request.headers["traceparent"],
        }

    app.add_middleware(RequestLog)
    return app


def test_an_api_request_is_one_line_with_its_route_and_the_ids_its_jobs_will_carry(api_lines) -> None:
    with serve_app(_echo_app()) as url:
        seen = httpx.get(f"{url}/v1/orders/6f1c1e8e-4a8b-4c3e-9d55-0f7d7f2a9b10").json()

    [line] = api_lines()
    assert (line["event"], line["level"], line["route"], line["method"], line["status"]) == (
        "http request", "info", "/v1/orders/{order_id}", "GET", 200,
    )  # fmt: skip
    assert line["duration_ms"] >= 0
    assert line["correlation_id"] == seen["correlation_id"]
    assert line["trace_id"] == trace_id(seen["traceparent"]) is not None


def test_the_callers_correlation_id_and_trace_are_kept(api_lines) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    headers = {"X-Correlation-Id": "checkout-7781", "traceparent": traceparent}
    with serve_app(_echo_app()) as url:
        seen = httpx.get(f"{url}/v1/orders/abc", headers=headers).json()

    assert seen == {"correlation_id": "checkout-7781", "traceparent": traceparent}
    [line] = api_lines()
    assert (line["correlation_id"], line["trace_id"]) == ("checkout-7781", "4bf92f3577b34da6a3ce929d0e0e4736")


def test_probes_and_unmatched_paths_are_logged_without_their_raw_path(api_lines) -> None:
    app = _echo_app()
    app.add_api_route("/healthz", lambda: {"status": "ok"})
    with serve_app(app) as url:
        httpx.get(f"{url}/healthz")
        httpx.get(f"{url}/no/such/ada@example.com")

    probe, unmatched = api_lines()
    assert (probe["route"], probe["level"]) == ("/healthz", "debug")
    assert (unmatched["route"], unmatched["status"]) == ("unmatched", 404)
    assert "ada@example.com" not in json.dumps(unmatched)
