"""A real HTTP carrier and push gateway for tests and the demo, with faults on demand.

Tests run our clients against this server instead of mocks, so retries, timeouts, idempotency
and signatures are exercised over real sockets. State lives in memory (`SandboxState`).

Carrier API (needs `Authorization: Bearer <api_key>`, else 401). Errors are JSON
`{"error": code, "message": text}` plus `"field"` on 422.

    POST /v1/labels              header Idempotency-Key (400 without). Body {"reference",
                                 "ship_from": Address, "ship_to": Address, "weight_grams",
                                 "service": "standard"|"express" = "standard"}, where Address is
                                 {name, line1, city, postcode, country}. 201 {"label_id",
                                 "tracking_number", "label_url", "cost_minor", "currency",
                                 "carrier": "sandbox-post", "status": "purchased", "reference",
                                 "service", "events"}. Same key + same body: 200 with the same
                                 label, no new purchase. Same key + other body: 409
                                 idempotency_conflict. A malformed body: 400 invalid_request.
                                 line1 containing "INVALID" (any case) or a country outside
                                 GB US FR DE IT ES NL BE IE: 422 {"error": "invalid_address",
                                 "field": "ship_to.line1", "message"}. Price: domestic 299,
                                 within continental Europe 899, else 1999, +100 per started kg
                                 over 1 kg, x2 for express; GBP from GB, USD from US, else EUR.
    POST /v1/labels/{id}/void    200 {"label_id", "status": "voided"}; again is fine; unknown
                                 404 not_found; after any tracking event 409 already_shipped.
    GET  /v1/labels/{id}         the label as above, with its current status and events.

Push gateway (same bearer key):

    POST /v1/push                {"user_id", "title", "body", "dedupe_key"} -> 202 {"push_id",
                                 "duplicate"}; a repeated dedupe_key is stored once, same push_id.
    GET  /v1/push                {"pushes": [{"push_id", "user_id", "title", "body",
                                 "dedupe_key", "received_at"}]}

Sandbox control (no auth: the sandbox is never exposed beyond tests and the demo):

    POST /v1/sandbox/labels/{id}/events  {"event": "in_transit"|"shipped"|"delivered"|"returned"}
        records the event and POSTs {"event_id", "label_id", "tracking_number", "reference",
        "event", "occurred_at"} to `webhook_url`, signed with `webhook_secret` as
        `Carrier-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of "{t}.{raw body}">`
        (tasks.shipping.webhooks). Delivery happens before answering, retrying connection
        errors, 429 and 5xx up to `webhook_attempts` times with the same event_id; answers
        {"event_id", "delivered", "status_code", "attempts"}. 404 unknown, 409 voided label.
    GET    /v1/sandbox/stats    {"labels_purchased", "labels_voided", "purchase_requests" (every
                                POST /v1/labels, replays and faults included), "pushes",
                                "webhooks_sent" (delivered), "webhook_attempts"}
    GET    /v1/sandbox/faults   the current FaultConfig
    POST   /v1/sandbox/faults   replace it: {"fail_next": int, "mode": "5xx"|"429"|"timeout",
                                "retry_after_seconds": int, "timeout_seconds": float,
                                "fail_rate": 0..1, "seed": int, "fail_references": [str]}
    DELETE /v1/sandbox/faults   back to no faults
    GET    /healthz             {"status": "ok"}

Faults hit POST /v1/labels, void, GET label and POST /v1/push, once auth and the body are
checked: each of the next `fail_next` requests fails, then each fails with probability
`fail_rate` (seeded), and a label purchase whose reference is in `fail_references` always fails.
Modes: "5xx" answers 503, "429" answers 429 with `Retry-After: retry_after_seconds`, "timeout"
waits `timeout_seconds` and then answers 504, so a client with a shorter timeout sees a timeout.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from tasks.shipping.webhooks import SIGNATURE_HEADER, sign
from workers.harness.sandbox.state import (
    EventRequest,
    FaultConfig,
    LabelRequest,
    PushRequest,
    SandboxConfig,
    SandboxProblem,
    SandboxState,
)

__all__ = ["SandboxConfig", "build_sandbox_app", "run_sandbox"]

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class WebhookOutcome:
    delivered: bool
    status_code: int | None
    attempts: int


def build_sandbox_app(config: SandboxConfig) -> FastAPI:
    """A fresh sandbox with its own state, so each test or demo run starts from nothing."""
    state = SandboxState(config)
    app = FastAPI(title="Circulate carrier sandbox", openapi_url=None)
    app.add_exception_handler(SandboxProblem, _problem_response)  # type: ignore[arg-type]
    app.include_router(_carrier_routes(state, config))
    app.include_router(_push_routes(state, config))
    app.include_router(_control_routes(state, config))
    return app


def run_sandbox(host: str, port: int, config: SandboxConfig) -> None:
    """Serve the sandbox until interrupted (the demo's stand-in for the carrier)."""
    uvicorn.run(build_sandbox_app(config), host=host, port=port, log_level="info")


def _carrier_routes(state: SandboxState, config: SandboxConfig) -> APIRouter:
    router = APIRouter(prefix="/v1/labels")

    @router.post("")
    async def buy_label(request: Request) -> JSONResponse:
        state.count("purchase_requests")
        _require_key(request, config.api_key)
        key = request.headers.get("Idempotency-Key")
        if not key:
            raise SandboxProblem(400, "missing_idempotency_key", "send an Idempotency-Key header")
        order = await _parse(request, LabelRequest)
        await _inject_fault(state, order.reference)
        label, created = state.purchase(key, order)
        return JSONResponse(label.as_json(), status_code=201 if created else 200)

    @router.post("/{label_id}/void")
    async def void_label(label_id: str, request: Request) -> dict[str, str]:
        _require_key(request, config.api_key)
        await _inject_fault(state)
        return {"label_id": state.void(label_id).label_id, "status": "voided"}

    @router.get("/{label_id}")
    async def get_label(label_id: str, request: Request) -> dict[str, Any]:
        _require_key(request, config.api_key)
        await _inject_fault(state)
        return state.label(label_id).as_json()

    return router


def _push_routes(state: SandboxState, config: SandboxConfig) -> APIRouter:
    router = APIRouter(prefix="/v1/push")

    @router.post("")
    async def send_push(request: Request) -> JSONResponse:
        _require_key(request, config.api_key)
        push = await _parse(request, PushRequest)
        await _inject_fault(state)
        push_id, duplicate = state.push(push)
        return JSONResponse({"push_id": push_id, "duplicate": duplicate}, status_code=202)

    @router.get("")
    async def list_pushes(request: Request) -> dict[str, Any]:
        _require_key(request, config.api_key)
        return {"pushes": state.pushes()}

    return router


def _control_routes(state: SandboxState, config: SandboxConfig) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/sandbox/labels/{label_id}/events")
    async def send_event(label_id: str, request: Request) -> dict[str, Any]:
        event = await _parse(request, EventRequest)
        payload = state.record_event(label_id, event.event)
        outcome = await _deliver_webhook(config, payload)
        state.count("webhook_attempts", outcome.attempts)
        state.count("webhooks_sent", int(outcome.delivered))
        return {"event_id": payload["event_id"], **outcome.__dict__}

    @router.get("/v1/sandbox/stats")
    async def stats() -> dict[str, int]:
        return state.stats()

    @router.get("/v1/sandbox/faults")
    async def faults() -> FaultConfig:
        return state.faults()

    @router.post("/v1/sandbox/faults")
    async def set_faults(request: Request) -> FaultConfig:
        state.set_faults(await _parse(request, FaultConfig))
        return state.faults()

    @router.delete("/v1/sandbox/faults")
    async def clear_faults() -> FaultConfig:
        state.set_faults(FaultConfig())
        return state.faults()

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return router


def _require_key(request: Request, api_key: str) -> None:
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
        headers = {"WWW-Authenticate": "Bearer"}
        raise SandboxProblem(401, "unauthorized", "missing or wrong bearer API key", headers=headers)


async def _parse(request: Request, model: type[Model]) -> Model:
    # Parsed by hand rather than by FastAPI so that auth and the idempotency header are checked
    # first, and so that a malformed body is a 400: 422 is kept for refused addresses.
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise SandboxProblem(400, "invalid_request", problems) from exc


async def _inject_fault(state: SandboxState, reference: str | None = None) -> None:
    fault = state.take_fault(reference)
    if fault is None:
        return
    if fault.mode == "timeout":
        await asyncio.sleep(fault.timeout_seconds)
        raise SandboxProblem(504, "timeout", "injected fault: the carrier took too long")
    if fault.mode == "429":
        headers = {"Retry-After": str(fault.retry_after_seconds)}
        raise SandboxProblem(429, "rate_limited", "injected fault: slow down", headers=headers)
    raise SandboxProblem(503, "unavailable", "injected fault: the carrier is down")


async def _problem_response(_request: Request, problem: SandboxProblem) -> JSONResponse:
    body = {"error": problem.error, "message": problem.message}
    if problem.field is not None:
        body["field"] = problem.field
    return JSONResponse(body, status_code=problem.status, headers=problem.headers)


async def _deliver_webhook(config: SandboxConfig, payload: dict[str, Any]) -> WebhookOutcome:
    """POST the event, re-signed on each attempt; a 4xx other than 429 means the receiver said no."""
    if config.webhook_url is None:
        return WebhookOutcome(delivered=False, status_code=None, attempts=0)
    body = json.dumps(payload, separators=(",", ":")).encode()
    status: int | None = None
    async with httpx.AsyncClient(timeout=config.webhook_timeout_s) as client:
        for attempt in range(1, config.webhook_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(0.05 * 2**attempt)
            status = await _post_signed(client, config.webhook_url, config.webhook_secret, body)
            if status is not None and status < 500 and status != 429:
                return WebhookOutcome(delivered=200 <= status < 300, status_code=status, attempts=attempt)
    return WebhookOutcome(delivered=False, status_code=status, attempts=config.webhook_attempts)


async def _post_signed(client: httpx.AsyncClient, url: str, secret: str, body: bytes) -> int | None:
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body, int(time.time()))}
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.TransportError:
        return None
    return response.status_code
