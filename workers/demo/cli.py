"""`circulate demo`: prepare, start the stack, drive the scenario, settle, audit, report.

The exit code is the verdict (0 only if every invariant holds), so `make demo` and the e2e test
can gate on it. Whatever happens (an exception, Ctrl-C, SIGTERM) every child process is stopped
before the command returns; the run directory keeps each process's log for a post-mortem.
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
import httpx

from shared.config import Settings
from shared.db import build_engine
from workers.demo.driver import Driver, DriveResult
from workers.demo.facts import Facts, collect
from workers.demo.invariants import check_all
from workers.demo.prepare import UnsafeTarget, prepare
from workers.demo.render import render_text
from workers.demo.report import build_report
from workers.demo.scenario import Scenario, build_scenario
from workers.demo.settle import wait_until_quiet
from workers.demo.stack import start_stack
from workers.demo.supervisor import ProcessFailed, Supervisor

SETTLE_TIMEOUT_S = 60.0


@click.command()
@click.option("--orders", "count", type=click.IntRange(min=1), default=200, show_default=True)
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
def demo(
    count: int, json_path: Path | None, seed: int, timeout_s: float, fail_rate: float, run_dir: Path | None
) -> None:
    """Run the whole platform on N seeded orders and check it kept its promises (exit 1 if not)."""
    settings = Settings()
    run_dir = run_dir or Path("artifacts", "demo", datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    run_dir.mkdir(parents=True, exist_ok=True)
    scenario = build_scenario(count, seed=seed, now=datetime.now(UTC))
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = _run(settings, scenario, run_dir=run_dir, timeout_s=timeout_s, fail_rate=fail_rate)
    except (ProcessFailed, UnsafeTarget) as error:
        raise click.ClickException(str(error)) from error
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo(render_text(report))
    click.echo(f"\nlogs: {run_dir}", err=True)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    sys.exit(0 if report["ok"] else 1)


def _run(
    settings: Settings, scenario: Scenario, *, run_dir: Path, timeout_s: float, fail_rate: float
) -> dict[str, Any]:
    _say(f"preparing database {settings.database_url.rsplit('/', 1)[-1]} and vhost {settings.amqp_vhost}")
    token = prepare(settings, opt_outs=scenario.opt_outs)
    engine = build_engine(settings, pool_size=2)
    try:
        with Supervisor(run_dir, say=_say) as supervisor:
            _say(f"starting sandbox, smtp-sink, api, relay and workers (logs in {run_dir})")
            stack = start_stack(supervisor, settings, fail_rate=fail_rate)
            auth = {"Authorization": f"Bearer {token}"}
            with (
                httpx.Client(base_url=stack.api_url, headers=auth, timeout=15.0) as api,
                httpx.Client(base_url=stack.sandbox_url, timeout=15.0) as sandbox,
            ):
                drive = _drive(
                    Driver(api=api, sandbox=sandbox, engine=engine), scenario, timeout_s, supervisor
                )
                _say(
                    "all orders final; waiting for follow-ups to finish"
                    if not drive.timed_out
                    else "timed out"
                )
                if not wait_until_quiet(engine, settings, timeout_s=SETTLE_TIMEOUT_S):
                    drive.errors.append(
                        f"the platform was still busy {SETTLE_TIMEOUT_S:.0f}s after the last order"
                    )
                facts: Facts = collect(engine, sandbox=sandbox, maildir=stack.maildir)
            _say("stopping processes")
    finally:
        engine.dispose()
    return build_report(scenario, drive, facts, check_all(facts, planned_orders=len(scenario.orders)))


def _drive(driver: Driver, scenario: Scenario, timeout_s: float, supervisor: Supervisor) -> DriveResult:
    with click.progressbar(length=len(scenario.orders), label="orders final", file=sys.stderr) as bar:
        shown = 0

        def progress(final: int) -> None:
            nonlocal shown
            bar.update(final - shown)
            shown = final

        return driver.run(
            scenario, timeout_s=timeout_s, progress=progress, check_alive=supervisor.check_alive
        )


def _say(message: str) -> None:
    click.echo(f"demo: {message}", err=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (a CI job cancelled, `kill`) unwinds like Ctrl-C, so every child process is stopped.
    raise KeyboardInterrupt
