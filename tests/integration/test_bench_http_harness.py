"""The benchmark's HTTP harness at a tiny size: the bare ASGI app and the open-loop load generator.

Figures belong to `circulate bench`; this only checks that what produces them works: the bare app
answers 202 and stores one row per order, and the generator sends every request it schedules.
"""

from __future__ import annotations

import uuid

import psycopg

from shared.db import libpq_url
from tests.fixtures.sandbox import serve_app
from workers.harness.bench import load
from workers.harness.bench.bare_asgi import BareEnqueue


def test_the_bare_app_stores_every_order_the_open_loop_offers(settings, clean_db):
    async def offer(url: str) -> list[load.Outcome]:
        async with load.KeepAliveClient(url, connections=4) as client:

            async def send(index: int) -> int:
                return await client.post_json("/v1/orders", load.fresh_order(index))

            return await load.offer(send, rate=40, duration_s=0.25)

    with serve_app(BareEnqueue(libpq_url(settings), pool_size=2), lifespan="on") as url:
        outcomes = load.run(offer(url))
    assert [o.index for o in outcomes] == list(range(10))
    assert {o.status for o in outcomes} == {202}
    with psycopg.connect(libpq_url(settings)) as conn:
        rows = conn.execute("SELECT order_id FROM bench_http_orders").fetchall()
        # The table is the benchmark's, not the schema's: leave the run's database as migrated.
        conn.execute("DROP TABLE bench_http_orders")
    assert len(rows) == 10
    assert all(isinstance(row[0], uuid.UUID) for row in rows)


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert load.percentile(values, 50) == 50.0
    assert load.percentile(values, 99) == 99.0
    assert load.percentile([7.0], 95) == 7.0
    assert load.summary_ms([0.001, 0.002]) == {"p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 2.0}
