"""How the inbox claims reach PostgreSQL: BEGIN, then the claim, without psycopg's pipeline mode.

In pipeline mode BEGIN and the claim travelled in one round trip, but psycopg's per-statement
machinery there (a flush and a poll per statement, a Sync, the pipeline's enter and exit) cost
more client CPU than the round trip it saved: a claim of 16 keys 347-394 us against 268-314
plain, a single key 305-349 against 189-244, and the wall time was shorter plain too (the
local round trip is cheaper than the machinery; docs/development/benchmarks.md, eighth round).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable

from shared import idempotency
from shared.db import driver_connection
from shared.runtime import Runtime
from tests.factories import envelope_for, place_order


def _sent(runtime: Runtime, claim: Callable[..., object]) -> tuple[object, list[str]]:
    """What `claim(session)` returned and the types of the messages its connection sent."""
    with runtime.sessions() as session, tempfile.TemporaryFile("w+") as trace:
        connection = driver_connection(session)
        connection.pgconn.trace(trace.fileno())
        try:
            result = claim(session)
        finally:
            connection.pgconn.untrace()
            session.rollback()
        trace.seek(0)
        return result, [line.split("\t")[3] for line in trace.read().splitlines() if "\tF\t" in line]


def test_a_claim_is_begin_then_the_statement_without_a_pipeline(clean_db: Runtime) -> None:
    payload = place_order()
    result, sent = _sent(clean_db, lambda session: idempotency.claim(session, envelope_for(payload), payload))
    assert result == idempotency.Claim.CLAIMED
    assert sent[0] == "Query", sent  # BEGIN, answered before the claim is sent
    assert sent.count("Sync") == 1, sent  # the claim's own; a pipeline adds one of its own


def test_a_batch_claim_is_begin_then_the_statement_without_a_pipeline(clean_db: Runtime) -> None:
    payloads = [place_order() for _ in range(3)]
    messages = [(envelope_for(payload), payload) for payload in payloads]
    result, sent = _sent(clean_db, lambda session: idempotency.claim_all(session, messages))
    assert result is True
    assert sent[0] == "Query", sent
    assert sent.count("Sync") == 1, sent
