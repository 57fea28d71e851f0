"""Who is calling: a bearer token resolved to its service and scopes, remembered for a few seconds.

Every request needs this answer, and it almost never changes, so asking PostgreSQL each time cost
a round trip (and, before the async pool, two thread hand-offs) per request. Valid tokens are kept
for `api_token_cache_s` under the SHA-256 of the token (the same hash the table stores, so the raw
token is never kept); unknown or revoked tokens are not kept, so a token created a moment ago works
at once. The price: a revoked token keeps working for up to `api_token_cache_s` in each process.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from workers.api.pool import Pool
from workers.api.tokens import Caller, hash_token

_LOOKUP = "SELECT service, scopes FROM api_tokens WHERE token_hash = %s AND revoked_at IS NULL"
#: More distinct live tokens than any deployment has services; past it the cache starts afresh.
MAX_ENTRIES = 10_000


class CallerCache:
    def __init__(self, pool: Pool, *, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.pool, self.ttl_s, self.clock = pool, ttl_s, clock
        self._known: dict[str, tuple[Caller, float]] = {}

    async def caller_for(self, token: str) -> Caller | None:
        """The service and scopes of a presented token, or None if it is unknown or revoked."""
        digest = hash_token(token)
        now = self.clock()
        known = self._known.get(digest)
        if known is not None and known[1] > now:
            return known[0]
        async with self.pool.connection() as conn:
            row = await (await conn.execute(_LOOKUP, (digest,))).fetchone()
        if row is None:
            self._known.pop(digest, None)
            return None
        caller = Caller(row[0], frozenset(row[1]))
        if self.ttl_s > 0:
            if len(self._known) >= MAX_ENTRIES:
                self._known.clear()
            self._known[digest] = (caller, now + self.ttl_s)
        return caller
