"""Order routes: enqueue `fulfilment.place_order` / `cancel_order`, and read an order's state.

Enqueueing writes to the outbox in the request's transaction, together with the Idempotency-Key
record; the relay publishes after commit. The message's own idempotency key derives from the
order id, so two requests about the same order can never apply twice downstream.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from shared.enqueue import enqueue
from shared.messages import Payload
from shared.tracing import accept_traceparent
from tasks.fulfilment.messages import CancelOrder, PlaceOrder
from tasks.fulfilment.models import Order, OrderTransition
from workers.api import idempotency
from workers.api.deps import DbSession, Service
from workers.api.errors import ApiError

router = APIRouter(prefix="/v1/orders", tags=["orders"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
CorrelationId = Annotated[str | None, Header(alias="X-Correlation-Id", max_length=200)]
TraceParent = Annotated[str | None, Header(alias="traceparent", max_length=100)]


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="buyer_request", min_length=1, max_length=200)


class Accepted(BaseModel):
    order_id: uuid.UUID
    status: str = "accepted"
    message_id: uuid.UUID
    correlation_id: str
    links: dict[str, str]


def _accept(
    request: Request,
    session: Session,
    *,
    service: str,
    http_key: str | None,
    correlation_id: str | None,
    traceparent: str | None,
    payload: Payload,
    message_key: str,
    order_id: uuid.UUID,
) -> JSONResponse:
    canonical = json.dumps(payload.model_dump(mode="json"), sort_keys=True).encode()
    digest = idempotency.request_hash(request.method, request.url.path, canonical)
    if http_key:
        stored = idempotency.replay(session, service=service, key=http_key, digest=digest)
        if stored is not None:
            return JSONResponse(
                status_code=stored.status_code, content=stored.body, headers={"Idempotent-Replayed": "true"}
            )
    envelope = enqueue(
        session,
        payload,
        idempotency_key=message_key,
        correlation_id=correlation_id,
        traceparent=accept_traceparent(traceparent),
    )
    accepted = Accepted(
        order_id=order_id,
        message_id=envelope.message_id,
        correlation_id=envelope.correlation_id,
        links={"order": f"/v1/orders/{order_id}"},
    ).model_dump(mode="json")
    if http_key:
        response = idempotency.StoredResponse(202, accepted)
        idempotency.remember(session, service=service, key=http_key, digest=digest, response=response)
    session.commit()
    return JSONResponse(status_code=202, content=accepted)


@router.post("", status_code=202, response_model=Accepted)
def place_order(
    order: PlaceOrder,
    request: Request,
    session: DbSession,
    service: Service,
    idempotency_key: IdempotencyKey = None,
    correlation_id: CorrelationId = None,
    traceparent: TraceParent = None,
) -> JSONResponse:
    """An order was placed and paid: fulfil it. Answers 202 once the job is durably queued."""
    return _accept(
        request,
        session,
        service=service,
        http_key=idempotency_key,
        correlation_id=correlation_id,
        traceparent=traceparent,
        payload=order,
        message_key=f"order-placed:{order.order_id}",
        order_id=order.order_id,
    )


@router.post("/{order_id}/cancel", status_code=202, response_model=Accepted)
def cancel_order(
    order_id: uuid.UUID,
    request: Request,
    session: DbSession,
    service: Service,
    body: CancelRequest | None = None,
    idempotency_key: IdempotencyKey = None,
    correlation_id: CorrelationId = None,
    traceparent: TraceParent = None,
) -> JSONResponse:
    """Ask for a cancellation; fulfilment refuses it if the parcel has already shipped."""
    reason = body.reason if body else "buyer_request"
    return _accept(
        request,
        session,
        service=service,
        http_key=idempotency_key,
        correlation_id=correlation_id,
        traceparent=traceparent,
        payload=CancelOrder(order_id=order_id, reason=reason),
        message_key=f"order-cancel:{order_id}",
        order_id=order_id,
    )


@router.get("/{order_id}")
def get_order(order_id: uuid.UUID, session: DbSession, service: Service) -> dict[str, Any]:
    """The order's state and full history, for services that poll."""
    order = session.get(Order, order_id)
    if order is None:
        raise ApiError(
            404, "not_found", f"no order {order_id} (a just-accepted order appears within seconds)"
        )
    history = session.scalars(
        select(OrderTransition).where(OrderTransition.order_id == order_id).order_by(OrderTransition.id)
    )
    return {
        "order_id": str(order.id),
        "listing_id": str(order.listing_id),
        "state": order.state,
        "market": order.market,
        "currency": order.currency,
        "item_price_minor": order.item_price_minor,
        "shipping_price_minor": order.shipping_price_minor,
        "placed_at": order.placed_at.isoformat(),
        "label": _label(session, order_id),
        "history": [
            {
                "from": t.from_state,
                "to": t.to_state,
                "event": t.event,
                "cause": t.cause,
                "at": t.at.isoformat(),
            }
            for t in history
        ],
    }


def _label(session: Session, order_id: uuid.UUID) -> dict[str, Any] | None:
    row = session.execute(
        text("SELECT label_id, tracking_number, label_url, status FROM labels WHERE order_id = :id"),
        {"id": order_id},
    ).first()
    return dict(row._mapping) if row else None
