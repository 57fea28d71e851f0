"""One enqueue request, accepted in one transaction of two round trips on the event loop.

What a request does has not changed (docs/orders-at-the-edge.md): look up its Idempotency-Key,
admit the order or cancellation (`workers.api.accepted`), write the job to the outbox, remember
the answer under the key, commit; a replayed key gets its first answer, a refusal rolls back
everything. What changed is how: the statements go out together in one pipeline (BEGIN, the key
lookup, the admission, the outbox row, the remembered answer), the answers are judged in that
order, then COMMIT or ROLLBACK. Before, each was a round trip of its own through the ORM on a
thread of the pool, which bounded the API at about a tenth of what the server does bare.

The refusals that need no database (a market the fee schedule lacks, a stale `placed_at`) are
found by the route beforehand; they still come after the key lookup, so a retry under a key that
was answered gets that answer, however stale its body has become since.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi.responses import JSONResponse
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from shared.messages import Envelope, Payload
from shared.outbox import encode_message
from shared.tracing import accept_traceparent, child_of
from workers.api import idempotency
from workers.api.accepted import Acceptance
from workers.api.errors import ApiError
from workers.api.pool import Pool

#: The same row `shared.outbox.Outbox.add` writes for a job due now; the relay publishes it.
_OUTBOX_INSERT = (
    "INSERT INTO outbox (message_id, queue_name, actor_name, body) "
    "VALUES (%(message_id)s, %(queue_name)s, %(actor_name)s, %(body)s)"
)


class Admission(Protocol):
    """The route's own check, as a statement sent with the others and a judgement of its answer."""

    async def send(self, conn: AsyncConnection[TupleRow]) -> AsyncCursor[TupleRow]: ...

    async def judge(
        self, conn: AsyncConnection[TupleRow], sent: AsyncCursor[TupleRow]
    ) -> Acceptance | None: ...


@dataclass(frozen=True)
class Submission:
    """One request to enqueue `payload`: who sent it, under which keys, and what it answers."""

    service: str
    http_key: str | None
    #: `idempotency.request_hash` of the request, compared when its key comes back.
    digest: str
    payload: Payload
    message_key: str
    order_id: uuid.UUID
    correlation_id: str | None
    traceparent: str | None


class _Answered(Exception):
    """Leaves the transaction (rolling it back) with an answer that needs no commit."""

    def __init__(self, response: JSONResponse) -> None:
        self.response = response


class _KeyTaken(Exception):
    """A concurrent request under the same key committed first: replay its answer."""


async def submit(
    pool: Pool,
    submission: Submission,
    admission: Admission,
    *,
    refusals: dict[Acceptance | None, ApiError],
    refused_before: ApiError | None = None,
) -> JSONResponse:
    """Accept `submission` (202), replay its key's first answer, or raise the refusal that applies.

    `refusals` maps what the admission found (None: nothing to act on, CONFLICT: another body)
    to the error answered; `refused_before` is a refusal the route found without the database.
    """
    if refused_before is not None:
        if submission.http_key and (stored := await _replayed(pool, submission)) is not None:
            return stored
        raise refused_before
    try:
        return await _accept(pool, submission, admission, refusals)
    except _Answered as answered:
        return answered.response
    except _KeyTaken:
        stored = await _replayed(pool, submission)
        if stored is None:  # the other request's row is gone again: nothing sensible to answer
            raise ApiError(
                409, "idempotency_key_reused", "this Idempotency-Key is in use by another request"
            ) from None
        return stored


async def _accept(
    pool: Pool, submission: Submission, admission: Admission, refusals: dict[Acceptance | None, ApiError]
) -> JSONResponse:
    envelope = _envelope(submission)
    accepted = _accepted_body(submission, envelope)
    async with pool.connection() as conn, conn.transaction():
        async with conn.pipeline():
            replay = await _send_replay(conn, submission)
            admitted = await admission.send(conn)
            await conn.execute(_OUTBOX_INSERT, _outbox_row(envelope, submission.payload))
            remembered = await _send_remember(conn, submission, accepted)
        if replay is not None and (stored := await _judge_replay(replay, submission)) is not None:
            raise _Answered(stored)
        acceptance = await admission.judge(conn, admitted)
        if acceptance in refusals:
            raise refusals[acceptance]
        if remembered is not None and await remembered.fetchone() is None:
            raise _KeyTaken
    return JSONResponse(status_code=202, content=accepted)


async def _replayed(pool: Pool, submission: Submission) -> JSONResponse | None:
    async with pool.connection() as conn:
        cursor = await _send_replay(conn, submission)
        return None if cursor is None else await _judge_replay(cursor, submission)


async def _send_replay(
    conn: AsyncConnection[TupleRow], submission: Submission
) -> AsyncCursor[TupleRow] | None:
    if not submission.http_key:
        return None
    params = {"service": submission.service, "key": submission.http_key}
    return await conn.execute(idempotency.REPLAY, params)


async def _judge_replay(cursor: AsyncCursor[TupleRow], submission: Submission) -> JSONResponse | None:
    stored = idempotency.judge_replay(await cursor.fetchone(), submission.digest)
    if stored is None:
        return None
    return JSONResponse(
        status_code=stored.status_code, content=stored.body, headers={"Idempotent-Replayed": "true"}
    )


async def _send_remember(
    conn: AsyncConnection[TupleRow], submission: Submission, accepted: dict[str, Any]
) -> AsyncCursor[TupleRow] | None:
    if not submission.http_key:
        return None
    params = {
        "service": submission.service,
        "key": submission.http_key,
        "digest": submission.digest,
        "status": 202,
        "body": Jsonb(accepted),
    }
    return await conn.execute(idempotency.REMEMBER, params)


def _envelope(submission: Submission) -> Envelope:
    """As `shared.enqueue.enqueue` builds it: the request's correlation id, a child of its trace."""
    return Envelope(
        idempotency_key=submission.message_key,
        kind=submission.payload.kind,
        correlation_id=submission.correlation_id or str(uuid.uuid4()),
        traceparent=child_of(accept_traceparent(submission.traceparent)),
    )


def _outbox_row(envelope: Envelope, payload: Payload) -> dict[str, Any]:
    return {
        "message_id": envelope.message_id,
        "queue_name": payload.queue,
        "actor_name": payload.kind,
        "body": encode_message(envelope, payload),
    }


def _accepted_body(submission: Submission, envelope: Envelope) -> dict[str, Any]:
    return {
        "order_id": str(submission.order_id),
        "status": "accepted",
        "message_id": str(envelope.message_id),
        "correlation_id": envelope.correlation_id,
        "links": {"order": f"/v1/orders/{submission.order_id}"},
    }
