"""`circulate demo`: run the whole platform on N seeded orders and check that it kept its promises.

The exit code is the verdict (0 only if every invariant holds), so `make demo` and the e2e test
can gate on it. The platform's modules are imported inside the command, not at import time,
because `circulate demo --help` should answer at once.
"""

from __future__ import annotations

import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import click

from workers.cli_context import CliContext, pass_cli
from workers.cli_errors import reports_configuration_errors


@click.command()
@click.option(
    "--orders", "count", type=click.IntRange(min=1), default=200, show_default=True, help="Orders to place."
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the report here."
)
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same orders and twists.")
@click.option(
    "--timeout", "timeout_s", type=float, default=300.0, show_default=True, help="Give up after (s)."
)
@click.option(
    "--fail-rate", type=click.FloatRange(0, 1), default=0.05, show_default=True, help="Carrier 5xx share."
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Logs (default: artifacts/demo/<time>).",
)
@click.option("--exporter", is_flag=True, help="Also run `circulate exporter` (queues, orders, ledger).")
@click.option(
    "--linger",
    "linger_s",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Keep every process up this long (s) after the report, e.g. for Prometheus to scrape.",
)
@reports_configuration_errors
@pass_cli
def demo(
    cli: CliContext,
    count: int,
    json_path: Path | None,
    seed: int,
    timeout_s: float,
    fail_rate: float,
    run_dir: Path | None,
    exporter: bool,
    linger_s: float,
) -> None:
    """Run every process on N seeded orders, audit the result, exit 1 unless every invariant holds.

    Uses CIRCULATE_DATABASE_URL and CIRCULATE_AMQP_URL, and empties that database and vhost first.
    `<run dir>/endpoints.json` says where each process answers; with --linger the report (and
    --json) is written before the processes stop, so a scraper can compare the two.
    """
    from workers.harness.demo.prepare import UnsafeTarget
    from workers.harness.demo.render import render_text
    from workers.harness.demo.run import run_demo
    from workers.harness.demo.scenario import build_scenario
    from workers.harness.demo.supervisor import ProcessFailed

    settings = cli.settings  # read first: a bad setting stops the demo before it writes anything
    run_dir = run_dir or Path("artifacts", "demo", datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    run_dir.mkdir(parents=True, exist_ok=True)
    scenario = build_scenario(count, seed=seed, now=datetime.now(UTC))
    previous = signal.signal(signal.SIGTERM, _interrupt)
    published = []

    def publish(report: dict[str, Any]) -> None:
        published.append(True)
        click.echo(render_text(report))
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")

    try:
        report = run_demo(
            settings, scenario, run_dir=run_dir, timeout_s=timeout_s, fail_rate=fail_rate,
            exporter=exporter, linger_s=linger_s, on_report=publish,
        )  # fmt: skip
    except (ProcessFailed, UnsafeTarget) as error:
        raise click.ClickException(str(error)) from error
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not published:
        publish(report)
    click.echo(f"\nlogs: {run_dir}", err=True)
    sys.exit(0 if report["ok"] else 1)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (a cancelled CI job, `kill`) unwinds like Ctrl-C, so every child process is stopped.
    raise KeyboardInterrupt
