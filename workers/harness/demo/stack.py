"""The demo's processes, their start order and their environment.

Order matters: the SMTP sink and the API come first because the sandbox needs the API's webhook
URL and the workers need the sink; the relay before the workers, so the first messages are
published as soon as something consumes. Each process is "ready" by an outside signal (its
/healthz, a TCP accept, a connection or consumers seen by RabbitMQ), never by a guessed sleep.
Every child runs the same `circulate` CLI an operator would, with the demo's settings in its
environment. `circulate exporter` is started too when asked (a run to be scraped by Prometheus).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from shared.broker_nodes import blocking_connection
from shared.config import QUEUES, Settings
from shared.metrics_runtime import EXPORTER_PORT_OFFSET, RELAY_PORT_OFFSET
from shared.topology import management_client
from workers.harness.demo.supervisor import Probe, Supervisor, free_port, free_port_block, http_ok, tcp_open

# `python -c` rather than the console script, so the children run the code of this checkout.
_CLI = ("-c", "import sys; from workers.cli import main; sys.exit(main())")

#: Demo-speed settings for the workers: a 2 s hold instead of days, quick retries and shutdown.
#: Quick retries, but enough of them to outlast the chaos scenarios' database outage (a restart,
#: then a SIGKILL and crash recovery: PostgreSQL back after about 6 s). With backoffs of 200 ms
#: doubling to 2 s (jittered down to half), five retries lasted 3.4-6.8 s, and a message whose
#: first attempt failed early in the outage was dead-lettered just before PostgreSQL came back
#: (an order left `confirmed`); ten last at least 8.4 s.
DEMO_ENV = {
    "CIRCULATE_COMPLETION_HOLD_S": "2",
    "CIRCULATE_MIN_BACKOFF_MS": "200",
    "CIRCULATE_MAX_BACKOFF_MS": "2000",
    "CIRCULATE_MAX_RETRIES": "10",
    "CIRCULATE_WORKER_SHUTDOWN_TIMEOUT_MS": "5000",
}


@dataclass(frozen=True)
class Stack:
    """Where the running processes can be reached."""

    api_url: str
    sandbox_url: str
    maildir: Path
    #: Workers serve /metrics here, the relay on +1, the exporter (if started) on +2.
    metrics_port: int


def circulate(*args: str) -> list[str]:
    return [sys.executable, *_CLI, *args]


def start_stack(
    supervisor: Supervisor, settings: Settings, *, fail_rate: float, exporter: bool = False
) -> Stack:
    """Start sink, API, sandbox, relay, workers (and the exporter); return once each is ready."""
    smtp_port, api_port, sandbox_port = free_port(), free_port(), free_port()
    api_url, sandbox_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sandbox_port}"
    maildir = supervisor.run_dir / "maildir"
    # The sink appends to what is there; a reused --run-dir must not count an earlier run's mail.
    shutil.rmtree(maildir, ignore_errors=True)
    env = child_env(settings, smtp_port=smtp_port, api_port=api_port, sandbox_url=sandbox_url)
    start = supervisor.start
    start("smtp-sink", circulate("smtp-sink", "--port", str(smtp_port), "--maildir", str(maildir)),
          env=env, ready=tcp_open(smtp_port))  # fmt: skip
    start("api", circulate("api", "--host", "127.0.0.1", "--port", str(api_port)),
          env=env, ready=http_ok(f"{api_url}/readyz"))  # fmt: skip
    webhook_url = f"{api_url}/v1/carrier/webhooks"
    sandbox = circulate("sandbox", "--port", str(sandbox_port), "--webhook-url", webhook_url,
                        "--fail-rate", str(fail_rate))  # fmt: skip
    start("sandbox", sandbox, env=env, ready=http_ok(f"{sandbox_url}/healthz"))
    # The relay and the workers boot side by side; both are waited for before any order is sent.
    relay = start("relay", circulate("relay"), env=env, ready=None)
    # CIRCULATE_WORKER_PROCESSES / _THREADS (2 x 8 by default): the scaling guide's runs vary them;
    # the bench's e2e section runs 1 x 8 (workers.harness.bench.e2e.worker_shape).
    worker = circulate("worker", "--processes", str(settings.worker_processes),
                       "--threads", str(settings.worker_threads))  # fmt: skip
    start("worker", worker, env=env, ready=consumers_on_every_queue(settings), timeout_s=60)
    supervisor.wait_ready(relay, relay_connected(settings))
    metrics_port = int(env["CIRCULATE_METRICS_PORT"])
    if exporter:
        start("exporter", circulate("exporter"), env=env,
              ready=http_ok(f"http://127.0.0.1:{metrics_port + EXPORTER_PORT_OFFSET}/metrics"))  # fmt: skip
    return Stack(api_url=api_url, sandbox_url=sandbox_url, maildir=maildir, metrics_port=metrics_port)


def write_endpoints(path: Path, stack: Stack, supervisor: Supervisor) -> None:
    """Where this run's processes answer, for whoever scrapes or pokes at a run (its e2e test)."""
    port = stack.metrics_port
    endpoints = {
        "api": stack.api_url,
        "sandbox": stack.sandbox_url,
        "metrics": {
            "worker": f"127.0.0.1:{port}",
            "relay": f"127.0.0.1:{port + RELAY_PORT_OFFSET}",
            "exporter": f"127.0.0.1:{port + EXPORTER_PORT_OFFSET}",
        },
        "pids": {child.name: child.process.pid for child in supervisor.children},
    }
    path.write_text(json.dumps(endpoints, indent=2) + "\n")


def child_env(settings: Settings, *, smtp_port: int, api_port: int, sandbox_url: str) -> dict[str, str]:
    """The demo's own environment plus where everything is; the children build Settings from it."""
    return {
        **os.environ,
        **DEMO_ENV,
        "CIRCULATE_DATABASE_URL": settings.database_url,
        "CIRCULATE_AMQP_URL": settings.amqp_url,
        "CIRCULATE_CARRIER_URL": sandbox_url,
        "CIRCULATE_PUSH_URL": sandbox_url,
        "CIRCULATE_SMTP_HOST": "127.0.0.1",
        "CIRCULATE_SMTP_PORT": str(smtp_port),
        "CIRCULATE_API_HOST": "127.0.0.1",
        "CIRCULATE_API_PORT": str(api_port),
        "CIRCULATE_METRICS_HOST": "127.0.0.1",
        # Workers serve /metrics on this port, the relay on +1, the exporter on +2.
        "CIRCULATE_METRICS_PORT": str(free_port_block(3)),
        "PYTHONUNBUFFERED": "1",
    }


def relay_connected(settings: Settings) -> Probe:
    """Ready when RabbitMQ lists an aiormq client (the relay; workers use pika) in the vhost."""
    path = f"/api/vhosts/{quote(settings.amqp_vhost, safe='')}/connections"

    def probe() -> bool:
        try:
            with management_client(settings) as client:
                response = client.get(path)
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        products = [str(c.get("client_properties", {}).get("product", "")) for c in response.json()]
        return any("aiormq" in product.lower() for product in products)

    return probe


def consumers_on_every_queue(settings: Settings) -> Probe:
    """Ready when every work queue has a consumer: the workers have booted and subscribed."""

    def probe() -> bool:
        connection = blocking_connection(settings)
        try:
            channel = connection.channel()
            counts = [channel.queue_declare(q, passive=True).method.consumer_count for q in QUEUES]
        finally:
            connection.close()
        return all(count > 0 for count in counts)

    return probe
