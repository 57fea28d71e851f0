"""The floor the HTTP enqueue API is measured against: a bare ASGI app doing one insert per request.

`POST /v1/orders` reads the body, parses the JSON, takes `order_id` from it and inserts one row
(the order id and the body) through an async psycopg pool, then answers 202 with a small JSON
body. No framework, no validation, no authentication, no idempotency: what is left is the HTTP
server, the JSON parse and one round trip to PostgreSQL, which no enqueue endpoint can beat. The
benchmark serves it under the same uvicorn settings as `circulate api` (`workers.harness.bench.http`).

    CIRCULATE_DATABASE_URL=... uvicorn --factory workers.harness.bench.bare_asgi:app_from_environment
"""

from __future__ import annotations

import json
from typing import Any

from psycopg_pool import AsyncConnectionPool
from starlette.types import Receive, Scope, Send

from shared.config import Settings
from shared.db import libpq_url

TABLE_DDL = "CREATE TABLE IF NOT EXISTS bench_http_orders (order_id uuid PRIMARY KEY, body jsonb NOT NULL)"
_INSERT = "INSERT INTO bench_http_orders (order_id, body) VALUES (%s, %s)"


class BareEnqueue:
    """One insert per POST; the pool opens at lifespan startup and closes at shutdown."""

    def __init__(self, conninfo: str, *, pool_size: int) -> None:
        self.pool = AsyncConnectionPool(
            conninfo, min_size=pool_size, max_size=pool_size, kwargs={"autocommit": True}, open=False
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.pool.open(wait=True)
                async with self.pool.connection() as conn:
                    await conn.execute(TABLE_DDL)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST" or scope["path"] != "/v1/orders":
            await _answer(send, 404, {"error": "not_found"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        order = json.loads(body)
        async with self.pool.connection() as conn:
            await conn.execute(_INSERT, (order["order_id"], body.decode()))
        await _answer(send, 202, {"order_id": order["order_id"], "status": "accepted"})


async def _answer(send: Send, status: int, content: dict[str, Any]) -> None:
    payload = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def app_from_environment() -> BareEnqueue:
    """The app for uvicorn's `--factory`: the database from CIRCULATE_DATABASE_URL, as the API's."""
    settings = Settings()
    return BareEnqueue(libpq_url(settings), pool_size=settings.database_pool_size)
