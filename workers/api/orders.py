"""Order routes: enqueue `fulfilment.place_order` / `cancel_order`, and read an order's state.

Enqueueing writes to the outbox in the request's transaction, together with the Idempotency-Key
record and the accepted-order record (`workers.api.intake`, async, one pipeline); the relay
publishes after commit. The message's own
idempotency key derives from the order id, so two requests about the same order can never apply
twice downstream.

The API refuses what a worker would refuse (docs/orders-at-the-edge.md): the body is the
`PlaceOrder` payload itself (shared value types), the market and currency must agree with the fee
schedule the workers load, `placed_at` must be recent, a different body for an accepted order is a
409 and a cancellation of an order never accepted a 404.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from starlette.datastructures import State

from shared.fees import FeeSchedule, MarketCurrencyMismatch, UnknownMarket, fee_schedule_from_settings
from shared.idempotency import canonical_json, content_hash_of_json
from shared.messages import Payload
from shared.values import PrintableLine
from tasks.fulfilment.messages import CancelOrder, PlaceOrder
from tasks.fulfilment.models import Order, OrderTransition
from workers.api import accepted, idempotency, intake
from workers.api.deps import DbSession, Enqueuer, Reader
from workers.api.errors import ApiError, responses

router = APIRouter(prefix="/v1/orders", tags=["orders"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
CorrelationId = Annotated[str | None, Header(alias="X-Correlation-Id", max_length=200)]
TraceParent = Annotated[str | None, Header(alias="traceparent", max_length=100)]

#: How far ahead of this server's clock `placed_at` may be (the checkout's clock may run fast).
PLACED_AT_MAX_SKEW = timedelta(minutes=5)
#: How old an order may be when first sent: checkout posts at payment, and retries for a while.
PLACED_AT_MAX_AGE = timedelta(days=30)


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: PrintableLine = Field(default="buyer_request", min_length=1, max_length=200)


class Accepted(BaseModel):
    order_id: uuid.UUID
    status: str = "accepted"
    message_id: uuid.UUID
    correlation_id: str
    links: dict[str, str]


#: A timestamp as `datetime.isoformat()` writes it (`+00:00`, not pydantic's `Z`): the body
#: this route has always returned, which pollers may compare as text.
IsoTimestamp = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class ShippingLabel(BaseModel):
    label_id: str
    tracking_number: str
    label_url: str
    status: Literal["purchased", "voided"]


class OrderHistoryEntry(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_state: str | None = Field(alias="from", description="null for the order's first state")
    to_state: str = Field(alias="to")
    event: str
    cause: str
    at: IsoTimestamp


class OrderDetail(BaseModel):
    order_id: uuid.UUID
    listing_id: uuid.UUID
    state: str
    market: str
    currency: str
    item_price_minor: int
    shipping_price_minor: int
    placed_at: IsoTimestamp
    label: ShippingLabel | None = Field(description="null until a label is bought")
    history: list[OrderHistoryEntry] = Field(description="Every state transition, oldest first")


def _submission(
    *,
    method: str,
    path: str,
    service: str,
    http_key: str | None,
    correlation_id: str | None,
    traceparent: str | None,
    payload: Payload,
    message_key: str,
    order_id: uuid.UUID,
) -> intake.Submission:
    payload_data = payload.model_dump(mode="json")
    payload_json = canonical_json(payload_data)
    return intake.Submission(
        service=service,
        http_key=http_key,
        method=method,
        path=path,
        digest=idempotency.request_hash(method, path, payload_json.encode()),
        payload=payload,
        payload_data=payload_data,
        payload_json=payload_json,
        message_key=message_key,
        order_id=order_id,
        correlation_id=correlation_id,
        traceparent=traceparent,
    )


@router.post("", status_code=202, response_model=Accepted, responses=responses(409))
async def place_order(
    order: PlaceOrder,
    request: Request,
    service: Enqueuer,
    idempotency_key: IdempotencyKey = None,
    correlation_id: CorrelationId = None,
    traceparent: TraceParent = None,
) -> Response:
    """An order was placed and paid: fulfil it. Answers 202 once the job is durably queued."""
    # Served by `workers.api.order_shortcut` when the request is well formed; this declaration
    # documents the route and answers every request the shortcut hands over.
    return await accept_order(
        request.app.state,
        order,
        method=request.method,
        path=request.url.path,
        service=service,
        http_key=idempotency_key,
        correlation_id=correlation_id,
        traceparent=traceparent,
    )


async def accept_order(
    state: State,
    order: PlaceOrder,
    *,
    method: str,
    path: str,
    service: str,
    http_key: str | None,
    correlation_id: str | None,
    traceparent: str | None,
) -> Response:
    """`POST /v1/orders` once the body is a valid `PlaceOrder` and the caller may enqueue."""
    submission = _submission(
        method=method,
        path=path,
        service=service,
        http_key=http_key,
        correlation_id=correlation_id,
        traceparent=traceparent,
        payload=order,
        message_key=f"order-placed:{order.order_id}",
        order_id=order.order_id,
    )
    admission = accepted.OrderAdmission(
        order_id=order.order_id,
        digest=content_hash_of_json(order.kind, submission.payload_json),
        service=service,
    )
    conflict = ApiError(
        409,
        "order_conflict",
        f"order {order.order_id} was already accepted with another body; "
        "resend the original body or use a new order id",
    )
    return await intake.submit(
        state.pool,
        submission,
        admission,
        refusals={accepted.Acceptance.CONFLICT: conflict},
        refused_before=_refusal_without_database(state, order),
        groups=state.order_groups,
    )


@router.post("/{order_id}/cancel", status_code=202, response_model=Accepted, responses=responses(409))
async def cancel_order(
    order_id: uuid.UUID,
    request: Request,
    service: Enqueuer,
    body: CancelRequest | None = None,
    idempotency_key: IdempotencyKey = None,
    correlation_id: CorrelationId = None,
    traceparent: TraceParent = None,
) -> Response:
    """Ask for a cancellation; fulfilment refuses it if the parcel has already shipped."""
    payload = CancelOrder(order_id=order_id, reason=body.reason if body else "buyer_request")
    submission = _submission(
        method=request.method,
        path=request.url.path,
        service=service,
        http_key=idempotency_key,
        correlation_id=correlation_id,
        traceparent=traceparent,
        payload=payload,
        message_key=f"order-cancel:{order_id}",
        order_id=order_id,
    )
    refusals = {
        None: ApiError(404, "not_found", f"no order {order_id} was accepted by this API"),
        accepted.Acceptance.CONFLICT: ApiError(
            409, "cancel_conflict", f"order {order_id} already has a cancellation with another reason"
        ),
    }
    admission = accepted.CancelAdmission(
        order_id=order_id, digest=content_hash_of_json(payload.kind, submission.payload_json)
    )
    return await intake.submit(request.app.state.pool, submission, admission, refusals=refusals)


def _refusal_without_database(state: State, order: PlaceOrder) -> ApiError | None:
    """What the route refuses before asking the database (answered after the key's replay)."""
    try:
        _check_against_schedule(_fee_schedule(state), order)
        _check_placed_at(order.placed_at)
    except ApiError as refused:
        return refused
    return None


def _fee_schedule(state: State) -> FeeSchedule:
    """The schedule the workers load from the same settings; parsed once per app."""
    schedule: FeeSchedule | None = getattr(state, "fee_schedule", None)
    if schedule is None:
        schedule = state.fee_schedule = fee_schedule_from_settings(state.settings)
    return schedule


def _check_against_schedule(schedule: FeeSchedule, order: PlaceOrder) -> None:
    """422 naming `market` or `currency` where the ledger could never book the payment."""
    try:
        schedule.for_order(order.market, order.currency)
    except (UnknownMarket, MarketCurrencyMismatch) as refused:
        raise _invalid(refused.field, str(refused)) from None


def _check_placed_at(placed_at: datetime) -> None:
    """Freshness is checked here, not in the payload: a re-driven message must stay valid."""
    now = datetime.now(UTC)
    if placed_at > now + PLACED_AT_MAX_SKEW:
        raise _invalid("placed_at", f"is more than {PLACED_AT_MAX_SKEW} ahead of the server's clock")
    if placed_at < now - PLACED_AT_MAX_AGE:
        raise _invalid("placed_at", f"is more than {PLACED_AT_MAX_AGE.days} days old")


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(
        422, "validation_failed", f"{field}: {message}", fields=[{"field": field, "message": message}]
    )


@router.get("/{order_id}", response_model=OrderDetail)
def get_order(order_id: uuid.UUID, session: DbSession, service: Reader) -> OrderDetail:
    """The order's state and full history, for services that poll."""
    order = session.get(Order, order_id)
    if order is None:
        raise ApiError(
            404, "not_found", f"no order {order_id} (a just-accepted order appears within seconds)"
        )
    history = session.scalars(
        select(OrderTransition).where(OrderTransition.order_id == order_id).order_by(OrderTransition.id)
    )
    return OrderDetail(
        order_id=order.id,
        listing_id=order.listing_id,
        state=order.state,
        market=order.market,
        currency=order.currency,
        item_price_minor=order.item_price_minor,
        shipping_price_minor=order.shipping_price_minor,
        placed_at=order.placed_at,
        label=_label(session, order_id),
        history=[
            OrderHistoryEntry(
                from_state=t.from_state, to_state=t.to_state, event=t.event, cause=t.cause, at=t.at
            )
            for t in history
        ],
    )


def _label(session: Session, order_id: uuid.UUID) -> ShippingLabel | None:
    row = session.execute(
        text("SELECT label_id, tracking_number, label_url, status FROM labels WHERE order_id = :id"),
        {"id": order_id},
    ).first()
    return ShippingLabel.model_validate(dict(row._mapping)) if row else None
