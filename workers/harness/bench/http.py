"""The HTTP enqueue section: `circulate api` against a bare ASGI app doing one insert, same server.

Both run under the same uvicorn command line (one process, uvloop and httptools, no access log),
started here with only the `--factory` differing: `workers.api.app:app_from_environment` and
`workers.harness.bench.bare_asgi:app_from_environment`. Per run, in an order that alternates:

1. wrk, 2 threads x 16 connections for `BENCH_HTTP_SECONDS` (default 10) with `post_order.lua`
   (a fresh order and Idempotency-Key per request) against each: req/s, wrk's p50/p99, the
   server's CPU seconds per 1,000 requests (from /proc) and the share of a core it used;
2. the API alone at half the rate it just saturated at, open loop (`load.offer`): p50/p99.

"Processes per core" follows from the core share: an API process at saturation that uses a whole
core is CPU-bound, and a core carries one; one that uses half is waiting on something else.

The section has a database of its own (`<bench database>_http`): the API's outbox rows must not
reach the relay section's counts.

    python -m workers.harness.bench.http        # one run of this section alone
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from shared.config import Settings
from shared.db import build_engine, build_sessionmaker, libpq_url
from shared.migrate import create_database_if_missing, migrate
from workers.api.tokens import create_token
from workers.harness.bench import load, procstat
from workers.harness.bench.report import Figure, Summary, load_average
from workers.harness.bench.sections import BenchContext
from workers.harness.demo.supervisor import free_port, tcp_open

LUA = Path(__file__).with_name("post_order.lua")
WRK_THREADS, WRK_CONNECTIONS = 2, 16
DURATION_S = float(os.environ.get("BENCH_HTTP_SECONDS", "10"))
HALF_RATE_S = 8.0
#: How long a server may take to listen; importing the API takes tens of seconds on a loaded machine.
STARTUP_S = 120.0
API = "workers.api.app:app_from_environment"
BARE = "workers.harness.bench.bare_asgi:app_from_environment"
_TABLES = "outbox, accepted_orders, api_idempotency, bench_http_orders"


def section(context: BenchContext, run: int) -> list[Figure]:
    if shutil.which("wrk") is None:
        print("  http: wrk is not installed (bash scripts/install-wrk.sh); section skipped")
        return []
    settings = http_settings(context.env.quorum)
    token = prepare(settings)
    figures = []
    order = [(API, "api"), (BARE, "bare-asgi")]
    for factory, key in order if run % 2 == 0 else reversed(order):
        with serving(factory, settings) as (url, pid):
            figure = saturate(url, pid, token, key)
            figures.append(figure)
            if key == "api":
                figures.append(half_rate(url, token, figure.rate / 2))
    return figures


def http_settings(bench: Settings) -> Settings:
    """The bench settings with a database of this section's own."""
    url = make_url(bench.database_url)
    database_url = url.set(database=f"{url.database}_http").render_as_string(hide_password=False)
    return bench.model_copy(update={"database_url": database_url})


def prepare(settings: Settings) -> str:
    """Migrate, empty what the previous run wrote, and return a fresh token with both scopes."""
    create_database_if_missing(settings)
    migrate(settings)
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_http_orders (order_id uuid PRIMARY KEY, body jsonb)")
        conn.execute(f"TRUNCATE {_TABLES}")
    engine = build_engine(settings, pool_size=1)
    try:
        with build_sessionmaker(engine).begin() as session:
            return create_token(session, "bench")
    finally:
        engine.dispose()


@contextmanager
def serving(factory: str, settings: Settings, *, workers: int = 1) -> Iterator[tuple[str, int]]:
    """`factory` under uvicorn on a free port; yields its URL and pid, stops it on exit."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--loop", "auto", "--http", "auto", "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip
    env = {
        **os.environ,
        "CIRCULATE_DATABASE_URL": settings.database_url,
        "CIRCULATE_AMQP_URL": settings.amqp_url,
    }
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready, deadline = tcp_open(port), time.monotonic() + STARTUP_S
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{factory} did not start on port {port}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def saturate(url: str, pid: int, token: str, key: str) -> Figure:
    """wrk against `url`: req/s, its p50/p99, the server's CPU per 1k requests and core share."""
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{DURATION_S:.0f}s", "-s", str(LUA), url]
    cpu_before = procstat.cpu_seconds(pid)
    output = subprocess.run(
        command, env={**os.environ, "CIRCULATE_TOKEN": token}, capture_output=True, text=True, check=True
    ).stdout
    cpu = procstat.cpu_seconds(pid) - cpu_before
    line = next(line for line in output.splitlines() if line.startswith("circulate-bench-json "))
    result = json.loads(line.split(" ", 1)[1])
    seconds = result["duration_us"] / 1e6
    contender = {
        "api": "circulate api POST /v1/orders (wrk 2x16)",
        "bare-asgi": "bare ASGI + one insert, same uvicorn (wrk 2x16)",
    }[key]
    return Figure(
        "http", key, contender, result["requests"] / seconds, unit="req/s",
        cpu_s_per_1k=1000 * cpu / max(1, result["requests"]),
        extra={
            "p50_ms": round(result["p50_ms"], 1), "p99_ms": round(result["p99_ms"], 1),
            "errors": result["errors"], "core_share": round(cpu / seconds, 2),
        },
    )  # fmt: skip


def half_rate(url: str, token: str, rate: float) -> Figure:
    """The API at `rate` (half its saturation), open loop: the p99 the issue's target is about."""
    outcomes = load.run(_offer_orders(url, token, rate, HALF_RATE_S))
    ok = [o.latency_s for o in outcomes if o.status == 202]
    latencies = load.summary_ms(ok)
    return Figure(
        "http", "api-half-rate-p99", "circulate api at half its saturation, open loop: p99",
        latencies["p99_ms"], unit="ms",
        extra={"offered_per_s": round(rate, 1), **latencies, "not_202": len(outcomes) - len(ok)},
    )  # fmt: skip


async def _offer_orders(url: str, token: str, rate: float, duration_s: float) -> list[load.Outcome]:
    headers = {"Authorization": f"Bearer {token}"}
    async with load.KeepAliveClient(url, connections=64, headers=headers) as client:

        async def send(index: int) -> int:
            key = {"Idempotency-Key": str(uuid.uuid4())}
            return await client.post_json("/v1/orders", load.fresh_order(index), key)

        return await load.offer(send, rate=rate, duration_s=duration_s)


def ratios(summaries: list[Summary]) -> list[tuple[str, float | None, str]]:
    """The API against the bare endpoint, from this run's medians (None where one did not run)."""
    by_key = {s.key: s for s in summaries if s.section == "http"}
    api, bare = by_key.get("api"), by_key.get("bare-asgi")
    if api is None or bare is None:
        return [(_RATE_RATIO, None, ">= 0.5"), (_CPU_RATIO, None, "reported")]
    cpu = api.cpu_s_per_1k / bare.cpu_s_per_1k if api.cpu_s_per_1k and bare.cpu_s_per_1k else None
    return [(_RATE_RATIO, api.median / bare.median, ">= 0.5"), (_CPU_RATIO, cpu, "reported")]


_RATE_RATIO = "circulate api / bare ASGI + one insert, req/s"
_CPU_RATIO = "circulate api / bare ASGI + one insert, CPU per request"


def main() -> None:
    from workers.harness.bench.env import BenchEnv
    from workers.harness.bench.report import render, summarise

    print(f"load average before: {load_average()}", flush=True)
    context = BenchContext(BenchEnv.from_environment(), messages=0, backlog=0, soak_seconds=0, runs=1)
    summaries = summarise(section(context, 0))
    print(render(summaries, ratios(summaries)))
    for summary in summaries:  # wrk's percentiles, errors and the core share, which the table omits
        print(f"  {summary.key}: {json.dumps(summary.extra)}")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
