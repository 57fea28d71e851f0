"""`circulate sandbox` and `circulate smtp-sink`: the fakes of the outside world, as processes.

Tests, the demo and local development run them in place of the carrier, the push gateway and an
SMTP relay. They live with the harnesses, so production code cannot reach them (import-linter).
"""

from __future__ import annotations

from pathlib import Path

import click

from workers.cli_context import CliContext, pass_cli
from workers.cli_errors import reports_configuration_errors


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", type=int, default=8100, show_default=True, help="Port.")
@click.option("--webhook-url", help="Where tracking webhooks go (our API's /v1/carrier/webhooks).")
@click.option("--fail-references", multiple=True, help="Label references (order ids) that always fail.")
@click.option("--fail-rate", type=float, default=0.0, help="Share of carrier requests that fail (0..1).")
@click.option(
    "--fault-mode",
    type=click.Choice(["5xx", "429", "timeout"]),
    default="5xx",
    show_default=True,
    help="How a failing request fails: 503, 429 with Retry-After, or a slow 504 (timeout).",
)
@reports_configuration_errors
@pass_cli
def sandbox(
    cli: CliContext,
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

    settings = cli.settings
    faults = FaultConfig(fail_references=fail_references, fail_rate=fail_rate, mode=fault_mode, seed=7)
    config = SandboxConfig(
        api_key=settings.carrier_api_key.get_secret_value(),
        webhook_url=webhook_url,
        webhook_secret=settings.carrier_webhook_secret.get_secret_value(),
        faults=faults,
    )
    run_sandbox(host, port, config)


@click.command("smtp-sink")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", type=int, default=2525, show_default=True, help="Port.")
@click.option("--maildir", type=click.Path(file_okay=False), help="Also write each message here as .eml.")
@reports_configuration_errors
def smtp_sink(host: str, port: int, maildir: str | None) -> None:
    """Serve an SMTP sink that keeps every message (tests and the demo)."""
    from workers.harness.smtp_sink import run_smtp_sink

    run_smtp_sink(host, port, Path(maildir) if maildir else None)
