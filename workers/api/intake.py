"""One enqueue request, accepted in one transaction of one or two round trips on the event loop.

What a request does has not changed (docs/orders-at-the-edge.md): look up its Idempotency-Key,
admit the order or cancellation (`workers.api.accepted`), write the job to the outbox, remember
the answer under the key, commit; a replayed key gets its first answer, a refusal rolls back
everything. What changed is how: BEGIN and those statements go to PostgreSQL as one batch (one
query string, parameters bound by psycopg's client-side cursor), their answers are judged in
order, then COMMIT or ROLLBACK. A new order under a new key skips the judging: its statements
are one statement with guards (`_accept_first_time`), one round trip and its own transaction.
Before, each statement was a round trip of its own through the ORM on a thread of the pool,
which bounded the API at about a tenth of what the server does bare.

Not psycopg's pipeline mode: its async wait polls a socket that is always writable, so it spins
a core while PostgreSQL works (the largest item of the API's py-spy profile with it).

The refusals that need no database (a market the fee schedule lacks, a stale `placed_at`) are
found by the route beforehand; they still come after the key lookup, so a retry under a key that
was answered gets that answer, however stale its body has become since.
"""

from __future__ import annotations

import enum
import functools
import json
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from fastapi.responses import JSONResponse
from psycopg import AsyncClientCursor, AsyncConnection
from psycopg.errors import DivisionByZero
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb
from starlette.responses import Response

from shared.messages import Envelope, Payload
from shared.outbox import INSERT_DUE_AND_WAKE, encode_message
from shared.tracing import accept_traceparent, child_of
from workers.api import idempotency
from workers.api.accepted import Acceptance
from workers.api.errors import ApiError
from workers.api.pool import Pool

#: The row `shared.outbox.Outbox.add` writes for a job due now, with the relay's wake-up
#: (delivered by PostgreSQL on commit), so the relay publishes it at once instead of at its poll.
_OUTBOX_INSERT = INSERT_DUE_AND_WAKE


class Admission(Protocol):
    """The route's own check: one statement sent in the batch, and a judgement of its rows.

    `first_time`, if not None, is an `INSERT ... RETURNING` that returns a row only when the
    request is admitted as new: the one-statement path (`_accept_first_time`) runs it.
    """

    statement: str
    first_time: str | None
    params: dict[str, Any]

    async def judge(self, conn: AsyncConnection[TupleRow], rows: list[TupleRow]) -> Acceptance | None: ...


@dataclass(frozen=True)
class Submission:
    """One request to enqueue `payload`: who sent it, under which keys, and what it answers."""

    service: str
    http_key: str | None
    method: str
    path: str
    #: `idempotency.request_hash` of the request (over `payload_json`), compared when its key
    #: comes back.
    digest: str
    payload: Payload
    #: `payload.model_dump(mode="json")`, dumped once for the digest, the content hash and the body.
    payload_data: dict[str, Any]
    #: `shared.idempotency.canonical_json(payload_data)`: hashed, and the message's payload.
    payload_json: str
    message_key: str
    order_id: uuid.UUID
    correlation_id: str | None
    traceparent: str | None

    @cached_property
    def envelope(self) -> Envelope:
        """As `shared.enqueue.enqueue` builds it: the request's correlation id, a child of its trace."""
        return Envelope(
            idempotency_key=self.message_key,
            kind=self.payload.kind,
            correlation_id=self.correlation_id or str(uuid.uuid4()),
            traceparent=child_of(accept_traceparent(self.traceparent)),
        )

    def digest_spelled_before(self) -> str:
        """The digest as the API spelled it before 2026-12-07, over the payload's JSON with sorted
        keys and the encoder's default separators: the keys remembered until then hold it.

        Taken only when a stored digest is not `digest` (`_judge_replay`), so a retry of a
        request answered before the change is still its replay, not a 409.
        """
        canonical = json.dumps(self.payload_data, sort_keys=True).encode()
        return idempotency.request_hash(self.method, self.path, canonical)

    @cached_property
    def accepted_json(self) -> str:
        """The 202 answer's body, encoded once: sent, and remembered under the Idempotency-Key.

        Encoded as Starlette's `JSONResponse` renders a body, so the answer is the same bytes.
        """
        body = _accepted_body(self, self.envelope)
        return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


class Grouped(enum.Enum):
    """What became of a new order sent with others (`workers.api.group_commit`)."""

    COMMITTED = "committed"
    #: Alone in its group and not new (or its key not): judge it step by step.
    REFUSED = "refused"
    #: Its group was refused for one of its members, maybe another: try it alone.
    GROUP_REFUSED = "group_refused"


class OrderGroups(Protocol):
    """`workers.api.group_commit.OrderGroupCommit`: commits a new order with others."""

    async def accept(self, submission: Submission, order: dict[str, Any]) -> Grouped: ...


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
    groups: OrderGroups | None = None,
) -> Response:
    """Accept `submission` (202), replay its key's first answer, or raise the refusal that applies.

    `refusals` maps what the admission found (None: nothing to act on, CONFLICT: another body)
    to the error answered; `refused_before` is a refusal the route found without the database.
    With `groups` (an order's admission), a new order is first sent with the others waiting.
    """
    if refused_before is not None:
        if submission.http_key and (stored := await _replayed(pool, submission)) is not None:
            return stored
        raise refused_before
    try:
        first_time = admission.first_time is not None
        if first_time and await _accepted_first_time(pool, submission, admission, groups):
            return _accepted(submission)
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


async def _accepted_first_time(
    pool: Pool, submission: Submission, admission: Admission, groups: OrderGroups | None
) -> bool:
    """Whether the request was committed as new: with a group, else (or if its group was refused
    for another member's sake) alone."""
    if groups is not None:
        grouped = await groups.accept(submission, admission.params)
        if grouped is not Grouped.GROUP_REFUSED:
            return grouped is Grouped.COMMITTED
    return await _accept_first_time(pool, submission, admission)


async def _accept_first_time(pool: Pool, submission: Submission, admission: Admission) -> bool:
    """The common case as one statement, its own transaction on the autocommit connection.

    The admission's insert, the outbox row and the remembered answer are data-modifying CTEs of
    one statement, whose result divides by the rows they returned: an order accepted before (the
    admission's `ON CONFLICT DO NOTHING`) or a key answered before, or taken by a concurrent
    request (the remembered answer's), fails the statement with a division by zero, and nothing
    was written. True once committed; False when refused, and `_accept` judges the request step
    by step.
    """
    assert admission.first_time is not None
    statement = _first_time_statement(admission.first_time, keyed=bool(submission.http_key))
    params = _params(submission, admission, submission.envelope)
    async with pool.connection() as conn:
        try:
            # Server-side binding: psycopg prepares the statement after a few uses (unless
            # prepared statements are off for PgBouncer), so PostgreSQL stops parsing and planning
            # it per request, and the body is not escaped into the query text.
            await conn.execute(statement, params)
        except DivisionByZero:
            return False
    return True


@functools.cache
def _first_time_statement(admit: str, *, keyed: bool) -> str:
    ctes = [f"admitted AS ({admit})", f"queued AS ({_OUTBOX_INSERT} RETURNING 1)"]
    guards = ["1 / (SELECT count(*) FROM admitted)::int", "(SELECT count(*) FROM queued)"]
    if keyed:
        ctes.append(f"remembered AS ({idempotency.REMEMBER})")
        guards.append("1 / (SELECT count(*) FROM remembered)::int")
    return f"WITH {', '.join(ctes)} SELECT {', '.join(guards)}"


def _params(submission: Submission, admission: Admission, envelope: Envelope) -> dict[str, Any]:
    return {
        **admission.params,
        **outbox_row(envelope, submission),
        "service": submission.service,
        "key": submission.http_key,
        "request_digest": submission.digest,
        "status": 202,
        "response": Jsonb(submission.accepted_json, dumps=_already_json),
    }


async def _accept(
    pool: Pool, submission: Submission, admission: Admission, refusals: dict[Acceptance | None, ApiError]
) -> Response:
    envelope = submission.envelope
    keyed = bool(submission.http_key)
    statements = ["BEGIN", *([idempotency.REPLAY] if keyed else []), admission.statement, _OUTBOX_INSERT]
    statements += [idempotency.REMEMBER] if keyed else []
    params = _params(submission, admission, envelope)
    async with pool.connection() as conn:
        try:
            results = await _batch(conn, statements, params)
            if keyed and (stored := _judge_replay(results[1], submission)) is not None:
                raise _Answered(stored)
            acceptance = await admission.judge(conn, results[2 if keyed else 1])
            if acceptance in refusals:
                raise refusals[acceptance]
            if keyed and not results[-1]:
                raise _KeyTaken
            await conn.execute("COMMIT")
        except BaseException:
            if conn.info.transaction_status != TransactionStatus.IDLE:
                await conn.execute("ROLLBACK")
            raise
    return _accepted(submission)


async def _batch(
    conn: AsyncConnection[TupleRow], statements: list[str], params: dict[str, Any]
) -> list[list[TupleRow]]:
    """Run `statements` in one round trip; the rows of each, in order (none for a command)."""
    cursor = AsyncClientCursor(conn)
    await cursor.execute(";\n".join(statements), params)
    results = []
    while True:
        results.append(await cursor.fetchall() if cursor.description else [])
        if not cursor.nextset():
            return results


async def _replayed(pool: Pool, submission: Submission) -> JSONResponse | None:
    params = {"service": submission.service, "key": submission.http_key}
    async with pool.connection() as conn:
        rows = await (await conn.execute(idempotency.REPLAY, params)).fetchall()
    return _judge_replay(rows, submission)


def _judge_replay(rows: list[TupleRow], submission: Submission) -> JSONResponse | None:
    row = rows[0] if rows else None
    stored = idempotency.judge_replay(row, submission.digest, spelled_before=submission.digest_spelled_before)
    if stored is None:
        return None
    return JSONResponse(
        status_code=stored.status_code, content=stored.body, headers={"Idempotent-Replayed": "true"}
    )


def outbox_row(envelope: Envelope, submission: Submission) -> dict[str, Any]:
    payload = submission.payload
    return {
        "message_id": envelope.message_id,
        "queue_name": payload.queue,
        "actor_name": payload.kind,
        "body": encode_message(envelope, payload, payload_json=submission.payload_json),
    }


def _accepted(submission: Submission) -> Response:
    return Response(submission.accepted_json.encode(), status_code=202, media_type="application/json")


def _already_json(text: str) -> str:
    return text


def _accepted_body(submission: Submission, envelope: Envelope) -> dict[str, Any]:
    return {
        "order_id": str(submission.order_id),
        "status": "accepted",
        "message_id": str(envelope.message_id),
        "correlation_id": envelope.correlation_id,
        "links": {"order": f"/v1/orders/{submission.order_id}"},
    }
