"""The API's async PostgreSQL pool: the routes on the hot path run on the event loop with it.

`POST /v1/orders` and the token lookup used to run on SQLAlchemy sessions in Starlette's thread
pool: every request paid a thread hand-off for the session dependency, another for the route, the
ORM's per-statement work and one round trip per statement. On this pool a request is a couple of
round trips on the event loop (`workers.api.intake`). The sync engine stays for the
routes that read (order detail, preferences) and the carrier's webhooks.

Opened in the app's lifespan, closed at shutdown, with all `database_pool_size` connections
open from the start (a burst never waits for connects); the sync engine opens its own connections
only when a sync route runs,
so an API process counts `database_pool_size` (+ the engine's, when read routes are busy) in the
connection budget (docs/operations/postgres-at-scale.md).

A request waits `api_pool_timeout_s` for a connection (psycopg_pool's default is 30 s); past it,
PostgreSQL is down or every connection busy, and the request is answered 503 with Retry-After
(`workers.api.errors`) instead of holding its client.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from shared.config import Settings
from shared.db import connect_options, libpq_url

Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]


def build_pool(settings: Settings) -> Pool:
    """A closed pool for `settings`' database; `await pool.open()` in the lifespan."""
    size = settings.database_pool_size
    # Autocommit: a lone read is one round trip; a write opens its own `conn.transaction()`.
    return AsyncConnectionPool(
        libpq_url(settings),
        min_size=size,
        max_size=size,
        kwargs={"autocommit": True, **connect_options(settings)},
        timeout=settings.api_pool_timeout_s,
        open=False,
    )
