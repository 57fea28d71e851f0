"""The real Dramatiq CLI with two worker processes: one port serves the metrics of both.

The CLI loads `boot` below, which is the worker's own boot plus the metrics middleware when
`workers.worker` does not add it itself, so this test holds before and after that wiring.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.config import Settings
from shared.metrics_runtime import worker_metrics_env
from shared.middleware.metrics import MessageMetrics, MetricsServer
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.services import wait_until
from workers.harness.demo.supervisor import free_port
from workers.worker import build_worker_broker


def boot() -> None:
    broker, _ = build_worker_broker(Settings())
    for kind in (MessageMetrics, MetricsServer):
        if not any(isinstance(middleware, kind) for middleware in broker.middleware):
            broker.add_middleware(kind())
    dramatiq.set_broker(broker)


@pytest.fixture
def worker_cli(settings: Settings, broker: object, tmp_path: Path) -> Iterator[tuple[Settings, int]]:
    port = free_port()
    child = settings.model_copy(update={"metrics_port": port, "metrics_dir": str(tmp_path)})
    stale = tmp_path / "circulate-metrics" / f"worker-{port}"
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"not a metrics file: would break every scrape if kept")
    env = {
        **os.environ,
        "CIRCULATE_DATABASE_URL": child.database_url,
        "CIRCULATE_AMQP_URL": child.amqp_url,
        "CIRCULATE_METRICS_PORT": str(port),
        "CIRCULATE_METRICS_DIR": str(tmp_path),
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
        **worker_metrics_env(child),
    }
    argv = [sys.executable, "-m", "dramatiq", f"{__name__}:boot", "--processes", "2", "--threads", "2"]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield child, port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def scrape(port: int) -> Samples | None:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    except httpx.TransportError:
        return None
    return {
        key(sample.name, **sample.labels): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_the_worker_cli_serves_every_process_metrics_on_one_port(worker_cli, broker):
    _settings, port = worker_cli
    actor = broker.get_actor("fulfilment.place_order")
    labels = {"queue": "fulfilment", "actor": actor.actor_name}
    succeeded = key("circulate_messages_total", outcome="succeeded", **labels)

    # Given the CLI answers on its metrics port (the stale file of an earlier run is gone). Its
    # two processes import everything before they answer: 33 s at a load average of 35 on 2 cores.
    wait_until(lambda: scrape(port), timeout=120, interval=0.2)
    # When six orders are handled by its two processes
    for _ in range(6):
        payload = place_order()
        actor.send_with_options(kwargs=message_kwargs(payload, envelope_for(payload)))

    # Then the one endpoint counts all six, and nothing is left in progress
    def all_counted() -> Samples | None:
        samples = scrape(port)
        return samples if samples and samples.get(succeeded) == 6 else None

    samples = wait_until(all_counted, timeout=30)
    assert samples[key("circulate_messages_in_progress", **labels)] == 0
