"""The enqueue client for API services: a job exists if and only if the caller's commit does.

    with Session(engine) as session, session.begin():
        session.add(Purchase(...))                       # the caller's own write
        enqueue(session, PlaceOrder(...), idempotency_key=f"order-placed:{order_id}")

The message goes to the outbox in the caller's transaction; the relay publishes it after the
commit. A rollback takes the job with it.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from shared.messages import Envelope, Payload
from shared.outbox import Outbox


def enqueue(
    session: Session,
    payload: Payload,
    *,
    idempotency_key: str,
    correlation_id: str | None = None,
    delay_ms: int | None = None,
    traceparent: str | None = None,
) -> Envelope:
    """Write `payload` to the outbox in `session`'s current transaction; returns its envelope.

    The idempotency key is the producer's promise: resending the same job must reuse it, so the
    consumer applies it once however often it arrives.
    """
    outbox = Outbox(session, correlation_id=correlation_id or str(uuid.uuid4()), traceparent=traceparent)
    return outbox.add(payload, idempotency_key=idempotency_key, delay_ms=delay_ms)
