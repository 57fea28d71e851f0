"""`circulate chaos` (or `python -m workers.harness.chaos`): every scenario on instances of its own.

Starts a PostgreSQL cluster and a RabbitMQ node of its own (and a 3-node cluster for the node-loss
scenario) with `tests/fixtures/own_services.py`, never the machine's services, runs the chosen
scenarios one after the other on fresh databases and vhosts, writes the JSON report and prints
the table. The exit code is the verdict: 0 only if every scenario held. Imports happen inside
the command, as for `demo`, so loading the CLI stays cheap.
"""

from __future__ import annotations

import importlib
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import click

from workers.cli_errors import reports_configuration_errors

NAMES = ("worker_kills", "broker_node_loss", "database_restarts", "broker_network", "crash_points")


@click.command()
@click.option("--orders", type=click.IntRange(min=20), default=5000, show_default=True, help="Per scenario.")
@click.option(
    "--scenario", "chosen", multiple=True, type=click.Choice(NAMES), help="Run only these (repeatable)."
)
@click.option(
    "--small", is_flag=True, help="The short faults `make test` uses (fewer kills, shorter outages)."
)
@click.option(
    "--stream",
    is_flag=True,
    help="One stream of --orders orders on one stack, every scenario's faults in turn (make chaos).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("artifacts/chaos-report.json"),
    show_default=True,
    help="Where the report goes.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same orders and twists.")
@click.option(
    "--timeout", "timeout_s", type=float, default=1800.0, show_default=True, help="Per scenario (s)."
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Logs (default: artifacts/chaos/<time>).",
)
@reports_configuration_errors
def chaos(
    orders: int,
    chosen: tuple[str, ...],
    small: bool,
    stream: bool,
    json_path: Path,
    seed: int,
    timeout_s: float,
    run_dir: Path | None,
) -> None:
    """Run the demo's scenario under each fault, audit it against its invariants, write the report."""
    # Loaded by name: the instances are test fixtures, outside the packages mypy checks strictly.
    own = importlib.import_module("tests.fixtures.own_services")
    from workers.harness.chaos import report as chaos_report
    from workers.harness.chaos.runner import run_scenario
    from workers.harness.chaos.scenarios import build

    scenarios = build(full=not small)
    run_dir = run_dir or Path("artifacts", "chaos", datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    if stream:
        _run_stream(own, scenarios, chosen or NAMES, orders, json_path, seed, timeout_s, run_dir, small)
        return
    results = []
    previous = signal.signal(signal.SIGTERM, _interrupt)
    services = own.OwnServices()
    try:
        postgres = services.postgres()
        single = None
        for name in chosen or NAMES:
            scenario = scenarios[name]
            if scenario.cluster:
                nodes = services.rabbit_cluster(3, rabbit_env=own.FAST_CHANNEL_TICK)
            else:
                single = single or services.rabbit(rabbit_env=own.FAST_CHANNEL_TICK)
                nodes = [single]
            result = run_scenario(
                scenario, postgres=postgres, nodes=nodes, orders=orders, run_dir=run_dir / name,
                seed=seed, timeout_s=timeout_s, say=_say,
            )  # fmt: skip
            results.append(result)
            _say(f"{name}: {'held' if result['ok'] else 'FAILED'}")
            # Written after each scenario, so a run stopped part way keeps what it measured.
            chaos_report.write(chaos_report.build(results, orders=orders), json_path)
            if scenario.cluster:
                for node in nodes:
                    node.close()
    finally:
        services.close()
        signal.signal(signal.SIGTERM, previous)
    report = chaos_report.build(results, orders=orders)
    chaos_report.write(report, json_path)
    click.echo(chaos_report.markdown(report))
    click.echo(f"report: {json_path}; logs: {run_dir}", err=True)
    sys.exit(0 if report["ok"] else 1)


def _run_stream(
    own: Any,
    scenarios: dict[str, Any],
    names: tuple[str, ...],
    orders: int,
    json_path: Path,
    seed: int,
    timeout_s: float,
    run_dir: Path,
    small: bool,
) -> None:
    """Every chosen scenario's faults in turn on one stream of orders, on a 3-node cluster."""
    from workers.harness.chaos import report as chaos_report
    from workers.harness.chaos.stream import GAP_S, run_stream

    previous = signal.signal(signal.SIGTERM, _interrupt)
    services = own.OwnServices()
    try:
        postgres = services.postgres()
        nodes = services.rabbit_cluster(3, rabbit_env=own.FAST_CHANNEL_TICK)
        result = run_stream(
            scenarios, names, postgres=postgres, nodes=nodes, orders=orders, run_dir=run_dir,
            seed=seed, timeout_s=timeout_s, gap_s=15.0 if small else GAP_S, say=_say,
        )  # fmt: skip
    finally:
        services.close()
        signal.signal(signal.SIGTERM, previous)
    report = chaos_report.build_stream(result)
    chaos_report.write(report, json_path)
    click.echo(chaos_report.markdown_stream(report))
    click.echo(f"report: {json_path}; logs: {run_dir}", err=True)
    sys.exit(0 if report["ok"] else 1)


def _say(message: str) -> None:
    click.echo(f"chaos: {message}", err=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so every child process and every own instance is removed.
    raise KeyboardInterrupt
