"""The `circulate` command line: one entry point for every process and operator task."""

from __future__ import annotations

import os
import sys

import click

from shared.config import QUEUES, Settings
from shared.errors import ConfigurationError

#: `circulate worker` runs Dramatiq's CLI through this, so its processes log as ours do.
_DRAMATIQ = "import sys; from workers.worker import run_dramatiq; sys.exit(run_dramatiq(sys.argv[1:]))"


def _settings() -> Settings:
    return Settings()


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def main(verbose: bool) -> None:
    """Circulate: idempotent marketplace workers on RabbitMQ and PostgreSQL."""
    from shared.logs import configure_logging

    settings = _settings()
    level = "DEBUG" if verbose else settings.log_level
    configure_logging(level=level, json=settings.log_format == "json")


@main.command()
def migrate() -> None:
    """Upgrade the database schema to the latest revision."""
    from shared.migrate import migrate as run_migrations

    run_migrations(_settings())
    click.echo("database migrated")


@main.command()
def setup() -> None:
    """Create the database if missing, migrate it, create the vhost and declare every queue."""
    from shared.db import build_engine, build_sessionmaker
    from shared.migrate import create_database_if_missing
    from shared.migrate import migrate as run_migrations
    from shared.topology import declare_queues, ensure_vhost, replace_stale_delay_queues

    settings = _settings()
    try:
        created = create_database_if_missing(settings)
        run_migrations(settings)
        ensure_vhost(settings)
        queues = declare_queues(settings)
        engine = build_engine(settings, pool_size=1)
        try:
            replaced = replace_stale_delay_queues(settings, build_sessionmaker(engine))
        finally:
            engine.dispose()
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"database {'created and ' if created else ''}migrated")
    click.echo(f"vhost {settings.amqp_vhost!r}: declared {', '.join(queues)}")
    for name, moved in replaced.items():
        click.echo(
            f"replaced {name} (declared with a delivery limit); {moved} message(s) moved to the schedule"
        )


@main.command()
@click.option("--processes", type=int, help="Worker processes (default: CIRCULATE_WORKER_PROCESSES).")
@click.option("--threads", type=int, help="Threads per process (default: CIRCULATE_WORKER_THREADS).")
@click.option(
    "--queues", "queues", multiple=True, type=click.Choice(QUEUES), help="Consume only these queues."
)
def worker(processes: int | None, threads: int | None, queues: tuple[str, ...]) -> None:
    """Run Dramatiq workers; SIGTERM finishes in-flight messages and requeues the rest."""
    settings = _settings()
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
    from shared.metrics_runtime import worker_metrics_env

    try:
        env.update(worker_metrics_env(settings))
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from error
    # A larger prefetch than Dramatiq's default is worth 24-43% throughput on this workload.
    env["dramatiq_queue_prefetch"] = str(settings.worker_prefetch)
    env.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    os.execve(sys.executable, argv, env)


@main.command()
def relay() -> None:
    """Publish outbox rows to RabbitMQ with windowed publisher confirms, until SIGTERM."""
    from workers.relay import main as run

    try:
        run(_settings())
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from error


@main.command()
@click.option("--host", help="Bind address (default: CIRCULATE_METRICS_HOST).")
@click.option("--port", type=int, help="Port (default: CIRCULATE_METRICS_PORT + 2).")
def exporter(host: str | None, port: int | None) -> None:
    """Serve queue depths and ages, outbox, dead letters, orders and ledger balance as metrics."""
    from shared.metrics_runtime import exporter_port
    from workers.exporter import run_exporter

    settings = _settings()
    try:
        run_exporter(settings, host or settings.metrics_host, port or exporter_port(settings))
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from error


@main.command()
@click.option("--host", help="Bind address (default: CIRCULATE_API_HOST).")
@click.option("--port", type=int, help="Port (default: CIRCULATE_API_PORT).")
def api(host: str | None, port: int | None) -> None:
    """Serve the HTTP enqueue API (OpenAPI at /docs and /openapi.json)."""
    from workers.api.app import serve

    settings = _settings()
    serve(settings, host=host or settings.api_host, port=port or settings.api_port)


@main.group()
def token() -> None:
    """Bearer tokens of the services that call the API."""


@token.command("create")
@click.argument("service")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(["enqueue", "read"]),
    help="What the token may do (repeat for both): enqueue = place/cancel orders, set preferences; "
    "read = read orders and preferences.",
)
def token_create(service: str, scopes: tuple[str, ...]) -> None:
    """Create a token for SERVICE with the given scopes and print it once; only its hash is stored.

    Example: circulate token create checkout --scope enqueue --scope read
    """
    from shared.db import build_engine, build_sessionmaker
    from workers.api.tokens import create_token

    engine = build_engine(_settings(), pool_size=1)
    with build_sessionmaker(engine).begin() as session:
        value = create_token(session, service, scopes=scopes)
    engine.dispose()
    click.echo(value)


@token.command("revoke")
@click.argument("service")
def token_revoke(service: str) -> None:
    """Revoke every token of SERVICE."""
    from shared.db import build_engine, build_sessionmaker
    from workers.api.tokens import revoke_tokens

    engine = build_engine(_settings(), pool_size=1)
    with build_sessionmaker(engine).begin() as session:
        count = revoke_tokens(session, service)
    engine.dispose()
    click.echo(f"revoked {count} token(s) of {service}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8100, show_default=True)
@click.option("--webhook-url", help="Where tracking webhooks go (our API's /v1/carrier/webhooks).")
@click.option("--fail-references", multiple=True, help="Label references (order ids) that always fail.")
@click.option("--fail-rate", type=float, default=0.0, help="Share of carrier requests that fail (0..1).")
@click.option("--fault-mode", type=click.Choice(["5xx", "429", "timeout"]), default="5xx", show_default=True)
def sandbox(
    host: str,
    port: int,
    webhook_url: str | None,
    fail_references: tuple[str, ...],
    fail_rate: float,
    fault_mode: str,
) -> None:
    """Serve the carrier sandbox and push gateway (tests, the demo, local development)."""
    from workers.harness.sandbox.app import run_sandbox
    from workers.harness.sandbox.state import FaultConfig, SandboxConfig

    settings = _settings()
    faults = FaultConfig(fail_references=fail_references, fail_rate=fail_rate, mode=fault_mode, seed=7)
    config = SandboxConfig(
        api_key=settings.carrier_api_key.get_secret_value(),
        webhook_url=webhook_url,
        webhook_secret=settings.carrier_webhook_secret.get_secret_value(),
        faults=faults,
    )
    run_sandbox(host, port, config)


@main.command("smtp-sink")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=2525, show_default=True)
@click.option("--maildir", type=click.Path(file_okay=False), help="Also write each message here as .eml.")
def smtp_sink(host: str, port: int, maildir: str | None) -> None:
    """Serve an SMTP sink that keeps every message (tests and the demo)."""
    from pathlib import Path

    from workers.harness.smtp_sink import run_smtp_sink

    run_smtp_sink(host, port, Path(maildir) if maildir else None)


def _attach_subcommands() -> None:
    from workers.db_cli import db
    from workers.dlq.cli import dlq
    from workers.harness.demo.cli import demo
    from workers.ledger_cli import ledger
    from workers.schedule_cli import scheduled

    main.add_command(ledger)
    main.add_command(scheduled)
    main.add_command(dlq)
    main.add_command(demo)
    main.add_command(db)


_attach_subcommands()
