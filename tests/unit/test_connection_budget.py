"""The connection budget of docs/operations/postgres-at-scale.md, derived from the pools the code builds.

Each process's "connections, at most" is read off the objects the process itself creates with the
default settings (no connection is opened: SQLAlchemy and psycopg_pool connect on first use), so
a change of pool size, overflow, relay lanes or the CLI's pool fails here until the page says so.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from shared.config import Settings
from shared.db import build_engine
from workers.api.pool import build_pool
from workers.cli_context import POOL_SIZE as CLI_POOL_SIZE

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "operations" / "postgres-at-scale.md"


def engine_limit(settings: Settings, pool_size: int | None = None) -> int:
    engine = build_engine(settings, pool_size=pool_size)
    try:
        return int(engine.pool.size() + engine.pool._max_overflow)  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def documented_budget() -> dict[str, int]:
    """The budget table's first column (up to the first parenthesis or comma) -> its "at most"."""
    section = PAGE.read_text().split("## The connection budget", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([^|]+) \| [^|]+ \| (\d+) \| [^|]+ \|$", section, flags=re.MULTILINE)
    return {re.split(r" \(|,", name)[0].strip(): int(limit) for name, limit in rows}


def test_the_documented_connections_per_process_are_the_ones_the_code_opens():
    settings = Settings(database_url="postgresql+psycopg://budget@127.0.0.1:1/budget")
    api_pool = build_pool(settings)
    assert api_pool.min_size == api_pool.max_size  # all opened at start-up, as the page says

    assert documented_budget() == {
        "worker process": engine_limit(settings),
        "API process": api_pool.max_size + engine_limit(settings),
        "relay": settings.relay_lanes + 1,  # a connection per lane, and the LISTEN one
        "exporter": engine_limit(settings, pool_size=1),  # workers/exporter.py
        "dead-letter sweeper": engine_limit(settings, pool_size=CLI_POOL_SIZE),
        "`circulate setup` / migrations": 1,
    }


def test_outbound_worker_pods_have_a_connection_for_each_of_their_threads():
    manifest = (ROOT / "deploy" / "k8s" / "base" / "worker-outbound.yaml").read_text()
    (deployment,) = [doc for doc in yaml.safe_load_all(manifest) if doc["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    threads = int(container["args"][container["args"].index("--threads") + 1])
    env = {item["name"]: item["value"] for item in container["env"]}
    pool_size = int(env["CIRCULATE_DATABASE_POOL_SIZE"])

    assert engine_limit(Settings(), pool_size=pool_size) >= threads
