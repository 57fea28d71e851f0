"""New orders accepted together: concurrent `POST /v1/orders` requests share a statement and a commit.

A new order under a new key is one statement of its own (`workers.api.intake`): the accepted
order, its outbox row and the remembered answer, committed. Under load many such requests wait
on the database at once, and each paid for its own round trip, its own parameters' conversion, its
own transaction and its own WAL flush: at saturation that statement was half of the API process's
CPU per request, and PostgreSQL spent about 170 us of CPU on each. `OrderGroupCommit` sends the
new orders waiting at the same moment as one statement (a JSON array, a row each) in one transaction:
measured in-process with 16 concurrent requests, 176 -> 108 us of the API's CPU and 167 -> 80 us
of PostgreSQL's per order (`docs/development/benchmarks-http.md`).

Nobody waits for a group to fill. At most `MAX_IN_FLIGHT` groups are at the database; a request
arriving while fewer are sends its group at once (alone, when the API is quiet), and the requests
arriving meanwhile leave together as the next group when one comes back. So a group is as large as
what came in during one round trip, up to `MAX_MEMBERS`.

A group commits only whole. Every order must be new, every key new, and no two rows may wait on
each other: the statement divides by zero otherwise, and PostgreSQL rolls back every row of it. A
member is then answered as if the group never existed: alone, it is judged step by step
(`intake.Grouped.REFUSED`: a replay, a reused key, a conflicting body); with others, it tries the
one-request statement first (`Grouped.GROUP_REFUSED`), so only the member that was not new pays for
the step-by-step path. A deadlock between two groups (two requests for one order, each in another
group) is refused the same way. Any other failure (the database down, the pool exhausted) is every
member's, and each gets the answer it got alone: the 503 of `workers.api.errors`.

What it costs: a member waits for its group's slowest row lock (a key another request holds),
where alone it waited for its own.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from psycopg.errors import DeadlockDetected, DivisionByZero

from shared import metrics
from shared.outbox import WAKE_CHANNEL
from workers.api.intake import Grouped, Submission, outbox_row
from workers.api.pool import Pool

#: Groups at the database at once: two keep the connection busy while the next group gathers
#: (in-process, 16 concurrent requests: 236 us of wall time per order with one, 181 with two,
#: 175 with four at more CPU per order).
MAX_IN_FLIGHT = 2
#: The most orders in one statement; a burst larger than this leaves as several groups.
MAX_MEMBERS = 64

#: Each member a row of `input` (in arrival order, `n`); the order, its outbox row with the relay's
#: wake-up, and the remembered answer of each keyed member; then the guard. Rows are inserted in
#: one order per table (order ids, then keys), so two groups lock a table's rows in the same order.
STATEMENT = (
    "WITH input AS (SELECT * FROM json_to_recordset(%(members)s::json) AS member("
    "n int, order_id uuid, digest text, service text, message_id uuid, queue_name text, "
    "actor_name text, body json, key text, request_digest text, response jsonb)), "
    "admitted AS (INSERT INTO accepted_orders (order_id, content_hash, service) "
    "SELECT order_id, digest, service FROM input ORDER BY order_id "
    "ON CONFLICT (order_id) DO NOTHING RETURNING 1), "
    "queued AS (INSERT INTO outbox (message_id, queue_name, actor_name, body) "
    "SELECT message_id, queue_name, actor_name, convert_to(body::text, 'UTF8') "
    f"FROM input, (SELECT pg_notify('{WAKE_CHANNEL}', '')) AS wake ORDER BY n RETURNING 1), "
    "remembered AS (INSERT INTO api_idempotency "
    "(service, idempotency_key, request_hash, status_code, response_body) "
    "SELECT service, key, request_digest, 202, response FROM input WHERE key IS NOT NULL "
    "ORDER BY service, key ON CONFLICT (service, idempotency_key) DO NOTHING RETURNING 1) "
    "SELECT 1 / ((SELECT count(*) FROM admitted) = %(count)s "
    "AND (SELECT count(*) FROM remembered) = %(keyed)s)::int, (SELECT count(*) FROM queued)"
)


def _new_future() -> asyncio.Future[Grouped]:
    return asyncio.get_running_loop().create_future()


@dataclass
class _Member:
    submission: Submission
    #: `OrderAdmission.params`: the order id and its content hash.
    order: dict[str, Any]
    verdict: asyncio.Future[Grouped] = field(default_factory=_new_future)


class OrderGroupCommit:
    """The API process's groups of new orders, on its pool (one per app, built in its lifespan)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._waiting: list[_Member] = []
        self._in_flight = 0
        self._senders: set[asyncio.Task[None]] = set()

    async def accept(self, submission: Submission, order: dict[str, Any]) -> Grouped:
        """Commit this new order with the others waiting now; raises what the group's statement
        raised when the database failed it (it committed nothing then)."""
        member = _Member(submission, order)
        self._waiting.append(member)
        if self._in_flight < MAX_IN_FLIGHT:
            self._in_flight += 1
            sender = asyncio.create_task(self._send_waiting())  # not the request's: it may be cancelled
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        return await member.verdict

    async def _send_waiting(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:MAX_MEMBERS], self._waiting[MAX_MEMBERS:]
                group = [member for member in group if not member.verdict.done()]  # cancelled: unsent
                if not group:
                    continue
                try:
                    verdict = await self._send(group)
                except Exception as error:
                    for future in _waiting_for(group):
                        future.set_exception(error)
                    continue
                except BaseException:
                    for future in _waiting_for(group):
                        future.cancel()
                    raise
                for future in _waiting_for(group):
                    future.set_result(verdict)
        finally:
            self._in_flight -= 1

    async def _send(self, group: list[_Member]) -> Grouped:
        metrics.API_ORDER_GROUP_ORDERS.observe(len(group))
        params = _params(group)
        async with self._pool.connection() as conn:
            try:
                await conn.execute(STATEMENT, params)
            except (DivisionByZero, DeadlockDetected):
                metrics.API_ORDER_GROUPS_REFUSED.inc()
                return Grouped.REFUSED if len(group) == 1 else Grouped.GROUP_REFUSED
        return Grouped.COMMITTED


def _waiting_for(group: list[_Member]) -> list[asyncio.Future[Grouped]]:
    """The verdicts still awaited: a request cancelled meanwhile no longer waits for its own."""
    return [member.verdict for member in group if not member.verdict.done()]


def _params(group: list[_Member]) -> dict[str, Any]:
    """The group as one JSON array, a row per member: one parameter for PostgreSQL to take apart.

    Ten typed arrays cost the API about a tenth of its CPU per request at saturation (psycopg
    dumps every element of an array in Python); the standard library's encoder writes the short
    fields in C. The outbox body and the remembered answer are JSON already and go in as they are:
    a `json` value keeps its text to the byte, so the body PostgreSQL stores is the one encoded.
    """
    rows = []
    for n, member in enumerate(group):
        submission = member.submission
        row = outbox_row(submission.envelope, submission)
        fields = {
            "n": n, "order_id": str(member.order["order_id"]), "digest": member.order["digest"],
            "service": submission.service, "message_id": str(row["message_id"]),
            "queue_name": row["queue_name"], "actor_name": row["actor_name"],
            "key": submission.http_key or None, "request_digest": submission.digest,
        }  # fmt: skip
        head = json.dumps(fields, separators=(",", ":"))[:-1]
        body = row["body"].decode()
        rows.append(f'{head},"body":{body},"response":{submission.accepted_json}}}')
    keyed = sum(1 for member in group if member.submission.http_key)
    return {"members": f"[{','.join(rows)}]", "count": len(group), "keyed": keyed}
