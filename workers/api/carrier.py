"""The carrier's tracking webhook: signed with HMAC, turned into `fulfilment.record_tracking`.

The signature is the authentication (no bearer token): the body is verified before it is parsed,
and the carrier's event id becomes the message's idempotency key, so a webhook the carrier
retries is applied once.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from shared.enqueue import enqueue
from shared.messages import describe_validation_error
from shared.tracing import accept_traceparent
from tasks.fulfilment.messages import RecordTracking
from tasks.shipping.webhooks import SIGNATURE_HEADER, InvalidSignature, verify
from workers.api.deps import DbSession
from workers.api.errors import ApiError, responses
from workers.api.printable import control_character

router = APIRouter(prefix="/v1/carrier", tags=["carrier"])


class WebhookAccepted(BaseModel):
    status: Literal["accepted"]
    event_id: str


class TrackingWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_id: str = Field(min_length=1, max_length=100)
    label_id: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)
    reference: uuid.UUID
    event: str = Field(pattern=r"^(in_transit|shipped|delivered|returned)$")
    occurred_at: AwareDatetime

    @field_validator("event_id", "label_id", "tracking_number")
    @classmethod
    def printable(cls, value: str) -> str:
        """Ids become idempotency keys and columns; a control character would fail in the worker."""
        found = control_character(value)
        if found is not None:
            raise ValueError(f"contains the control character {found}")
        return value


@router.post("/webhooks", status_code=202, response_model=WebhookAccepted, responses=responses(401))
async def tracking_webhook(
    request: Request,
    session: DbSession,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
    traceparent: Annotated[str | None, Header(max_length=100)] = None,
) -> WebhookAccepted:
    """A tracking event from the carrier; 401 unless signed with the shared webhook secret."""
    body = await request.body()
    secret = request.app.state.settings.carrier_webhook_secret.get_secret_value()
    try:
        verify(secret, body, signature, now=int(time.time()))
    except InvalidSignature as error:
        raise ApiError(401, "invalid_signature", str(error)) from error
    try:
        event = TrackingWebhook.model_validate_json(body)
    except ValidationError as error:
        raise ApiError(422, "validation_failed", describe_validation_error(error)) from error
    message = RecordTracking(
        order_id=event.reference,
        event=event.event,
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        tracking_number=event.tracking_number,
    )

    def accept() -> None:
        key = f"carrier-event:{event.event_id}"
        enqueue(
            session,
            message,
            idempotency_key=key,
            correlation_id=str(event.reference),
            traceparent=accept_traceparent(traceparent),
        )
        session.commit()

    await run_in_threadpool(accept)
    return WebhookAccepted(status="accepted", event_id=event.event_id)
