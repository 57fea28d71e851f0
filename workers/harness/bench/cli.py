"""`circulate bench` (also `make bench`, `python -m workers.harness.bench`): figures, never assertions."""

from __future__ import annotations

import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from workers.cli_errors import reports_configuration_errors
from workers.harness.bench.env import BenchEnv
from workers.harness.bench.report import Figure, Summary, load_average, render, summarise, write_json
from workers.harness.bench.sections import SECTIONS, BenchContext, load
from workers.harness.bench.sections_core import CONSUMERS

EPILOG = """\b
Examples:
  circulate bench                                  # every section, 3 interleaved runs
  circulate bench --sections consume --runs 1 --messages 5000
  circulate bench --json artifacts/bench.json
  circulate bench --sections memory --soak-seconds 600
  circulate bench --sections consume --consumers core --consumers bare   # the CPU ratio only
"""


@click.command(epilog=EPILOG)
@click.option("--runs", default=3, show_default=True, help="Interleaved repetitions of each section.")
@click.option(
    "--messages", default=int(os.environ.get("BENCH_MESSAGES", "10000")), show_default=True,
    help="Messages per consume and publish measurement.",
)  # fmt: skip
@click.option("--backlog", default=100_000, show_default=True, help="Backlog the memory section drains.")
@click.option("--soak-seconds", default=0.0, show_default=True, help="Memory soak length (0: none).")
@click.option(
    "--sections", "chosen", multiple=True, type=click.Choice(list(SECTIONS)),
    help="Sections to run (repeatable; default all).",
)  # fmt: skip
@click.option(
    "--consumers", multiple=True, type=click.Choice(list(CONSUMERS)),
    help="Consume contenders to run (repeatable; default all).",
)  # fmt: skip
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the results here.")
@reports_configuration_errors
def bench(
    runs: int,
    messages: int,
    backlog: int,
    soak_seconds: float,
    chosen: tuple[str, ...],
    consumers: tuple[str, ...],
    json_path: Path | None,
) -> None:
    """Throughput and CPU of the core, its baselines, Celery, the relay; worker memory.

    Runs in its own database and vhosts: CIRCULATE_BENCH_DATABASE_URL and CIRCULATE_BENCH_AMQP_URL
    (default circulate_bench on the local services). Figures are printed, never judged.
    """
    env = BenchEnv.from_environment()
    env.prepare()
    context = BenchContext(env, messages, backlog, soak_seconds, runs, consumers)
    names = list(chosen or SECTIONS)
    sections = {name: load(name) for name in names}
    started = time.monotonic()
    click.echo(
        f"benchmark: {messages:,} messages per measurement, {runs} interleaved runs, "
        f"{os.cpu_count()} cores, load {load_average()}"
    )
    for name, section in sections.items():
        if section is None:
            click.echo(f"  section {name}: not part of this checkout, skipped")
    figures: list[Figure] = []
    loads = []
    for run in range(runs):
        for section in sections.values():
            if section is not None:
                measured = section(context, run)
                for figure in measured:
                    cpu = f", {figure.cpu_s_per_1k:.3f} CPU s/1k" if figure.cpu_s_per_1k is not None else ""
                    note = figure.extra.get("note")
                    note = f" ({note})" if note else ""
                    click.echo(f"    {figure.contender}: {figure.rate:,.0f} {figure.unit}{cpu}{note}")
                figures += measured
        loads.append(load_average())
        click.echo(f"  run {run + 1} done after {time.monotonic() - started:.0f} s (load {loads[-1]})")
    summaries = summarise(figures)
    click.echo(render(summaries, ratios(summaries)))
    if json_path:
        meta = {
            "when": datetime.now(UTC).isoformat(), "host": platform.node(), "cores": os.cpu_count(),
            "messages": messages, "runs": runs, "load_after_each_run": loads,
            "ratios": {name: value for name, value, _ in ratios(summaries)},
        }  # fmt: skip
        write_json(json_path, meta, summaries)
        click.echo(f"written to {json_path}")


def ratios(summaries: list[Summary]) -> list[tuple[str, float | None, str]]:
    """The issue's targets as ratios of this run's medians (None where a contender did not run)."""
    from workers.harness.bench.http import ratios as http_ratios  # imports the API; only when run

    by_key = {s.key: s for s in summaries}

    def rate(a: str, b: str) -> float | None:
        return by_key[a].median / by_key[b].median if a in by_key and b in by_key else None

    def cpu(a: str, b: str) -> float | None:
        x, y = by_key.get(a), by_key.get(b)
        if x is None or y is None or not x.cpu_s_per_1k or not y.cpu_s_per_1k:
            return None
        return x.cpu_s_per_1k / y.cpu_s_per_1k

    return [
        ("core / Celery, msg/s", rate("core", "celery"), ">= 1.5"),
        ("core / bare Dramatiq (quorum), msg/s", rate("core", "bare"), ">= 0.8"),
        ("core / bare Dramatiq (quorum), worker CPU per message", cpu("core", "bare"), "<= 1.4"),
        ("core / stock Dramatiq (classic), msg/s", rate("core", "stock"), "reported"),
        ("core without batches / bare Dramatiq (quorum), msg/s", rate("core-single", "bare"), "reported"),
        ("bare (quorum) / stock (classic), msg/s: the queue type's cost", rate("bare", "stock"), "reported"),
        ("relay / raw publish (quorum), msg/s", rate("relay-quorum", "raw-quorum"), ">= 0.9"),
        ("relay / raw publish (classic), msg/s", rate("relay-classic", "raw-classic"), ">= 0.9"),
        ("relay / raw framed (quorum), msg/s", rate("relay-quorum", "raw-framed-quorum"), "reported"),
        ("relay / raw framed (classic), msg/s", rate("relay-classic", "raw-framed-classic"), "reported"),
        *http_ratios(summaries),
    ]
