"""Open-loop load: requests sent on a schedule whatever the answers, and their percentiles.

A closed loop (a fixed number of clients, each waiting for its answer before the next request)
slows down with the server it measures and hides the queueing a real stream of orders meets. Here
request `i` is due at `start + i / rate` and is sent then even if earlier ones are still waiting,
and its latency counts from when it was due, so a stalled server shows up in every later request
instead of in none (no coordinated omission).

Orders are fresh each time: new order and listing ids, a recent `placed_at`, two people of one
market, so every request is a new order all the way through the pipeline.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """One request: its answer's status (0: no answer), latency from when it was due, wall time."""

    index: int
    status: int
    latency_s: float
    #: `time.time()` when the answer arrived, to compare with timestamps PostgreSQL wrote later.
    answered_at: float


async def offer(send: Callable[[int], Awaitable[int]], *, rate: float, duration_s: float) -> list[Outcome]:
    """Call `send(i)` at `rate` per second for `duration_s`; `send` returns the HTTP status."""
    count = max(1, round(rate * duration_s))
    start = time.perf_counter()

    async def one(index: int, due: float) -> Outcome:
        try:
            status = await send(index)
        except Exception:  # a refused or timed-out request is an outcome too, not a crash
            status = 0
        return Outcome(index, status, time.perf_counter() - due, time.time())

    tasks = []
    for index in range(count):
        due = start + index / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(index, due)))
    return list(await asyncio.gather(*tasks))


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (`share` in 0..100) of `values`; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50, p95 and p99 in milliseconds, rounded to 0.1 ms."""
    return {f"p{p}_ms": round(1000 * percentile(latencies_s, p), 1) for p in (50, 95, 99)}


def fresh_order(index: int) -> dict[str, Any]:
    """A new, valid `PlaceOrder` body (FR, EUR) that goes all the way to a bought label."""

    def person(role: str) -> dict[str, Any]:
        return {
            "id": f"{role}_{index}_{uuid.uuid4().hex[:8]}",
            "email": f"{role}.{index}@example.com",
            "name": "Camille Dubois",
            "address": {"line1": "12 rue Victor Hugo", "city": "Lyon", "postcode": "69002", "country": "FR"},
        }

    return {
        "order_id": str(uuid.uuid4()),
        "listing_id": str(uuid.uuid4()),
        "buyer": person("buyer"),
        "seller": person("seller"),
        "market": "FR",
        "currency": "EUR",
        "item_price_minor": 4500,
        "shipping_price_minor": 449,
        "placed_at": datetime.now(UTC).isoformat(),
    }
