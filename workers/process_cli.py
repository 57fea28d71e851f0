"""The long-running processes: `circulate worker`, `relay`, `exporter` and `api`.

Each runs until SIGTERM. Its modules are imported inside the command, so loading this one for
`circulate worker --help` stays quick.
"""

from __future__ import annotations

import os
import sys

import click

from shared.config import QUEUES
from workers.cli_context import CliContext, pass_cli
from workers.cli_errors import reports_configuration_errors

#: `circulate worker` runs Dramatiq's CLI through this, so its processes log as ours do and a
#: killed worker process is replaced alone rather than stopping the group (workers.worker_restarts).
_DRAMATIQ = "import sys; from workers.worker_restarts import main; sys.exit(main(sys.argv[1:]))"


@click.command()
@click.option("--processes", type=int, help="Worker processes (default: CIRCULATE_WORKER_PROCESSES).")
@click.option("--threads", type=int, help="Threads per process (default: CIRCULATE_WORKER_THREADS).")
@click.option(
    "--queues", "queues", multiple=True, type=click.Choice(QUEUES), help="Consume only these queues."
)
@reports_configuration_errors
@pass_cli
def worker(cli: CliContext, processes: int | None, threads: int | None, queues: tuple[str, ...]) -> None:
    """Run Dramatiq workers; SIGTERM finishes in-flight messages and requeues the rest."""
    from shared.metrics_runtime import worker_metrics_env

    settings = cli.settings
    # Dramatiq's CLI with --skip-logging, after our logging is set up (workers.worker.run_dramatiq).
    argv = [
        sys.executable, "-c", _DRAMATIQ, "workers.worker:boot",
        "--processes", str(processes or settings.worker_processes),
        "--threads", str(threads or settings.worker_threads),
        "--worker-shutdown-timeout", str(settings.worker_shutdown_timeout_ms),
    ]  # fmt: skip
    if queues:
        argv += ["--queues", *queues]
    env = dict(os.environ)
    env.update(worker_metrics_env(settings))
    # A larger prefetch than Dramatiq's default is worth 24-43% throughput on this workload.
    env["dramatiq_queue_prefetch"] = str(settings.worker_prefetch)
    env.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    os.execve(sys.executable, argv, env)


@click.command()
@reports_configuration_errors
@pass_cli
def relay(cli: CliContext) -> None:
    """Publish outbox rows to RabbitMQ with windowed publisher confirms, until SIGTERM."""
    from workers.relay import main as run

    run(cli.settings)


@click.command()
@click.option("--host", help="Bind address (default: CIRCULATE_METRICS_HOST).")
@click.option("--port", type=int, help="Port (default: CIRCULATE_METRICS_PORT + 2).")
@reports_configuration_errors
@pass_cli
def exporter(cli: CliContext, host: str | None, port: int | None) -> None:
    """Serve queue depths and ages, outbox, dead letters, orders and ledger balance as metrics."""
    from shared.metrics_runtime import exporter_port
    from workers.exporter import run_exporter

    settings = cli.settings
    run_exporter(settings, host or settings.metrics_host, port or exporter_port(settings))


@click.command()
@click.option("--host", help="Bind address (default: CIRCULATE_API_HOST).")
@click.option("--port", type=int, help="Port (default: CIRCULATE_API_PORT).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes, about one per core (default: CIRCULATE_API_WORKERS).",
)
@reports_configuration_errors
@pass_cli
def api(cli: CliContext, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP enqueue API (OpenAPI at /docs and /openapi.json)."""
    from workers.api.app import serve

    settings = cli.settings
    serve(settings, host=host or settings.api_host, port=port or settings.api_port, workers=workers)
