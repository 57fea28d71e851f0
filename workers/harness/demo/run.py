"""One demo run, start to finish: prepare, start the stack, drive, settle, audit, build the report.

Whatever happens (an exception, Ctrl-C, SIGTERM turned into KeyboardInterrupt by the command),
the supervisor stops every child process before `run_demo` returns or raises; the run directory
keeps each process's log for a post-mortem, and `endpoints.json` says where each process answered.

With `linger_s`, the report is handed to `on_report` while every process is still up, and they
stay up that long (or until Ctrl-C / SIGTERM) so that Prometheus can scrape the finished run.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import httpx

from shared.config import Settings
from shared.db import build_engine
from workers.harness.demo.driver import Driver, DriveResult
from workers.harness.demo.facts import collect
from workers.harness.demo.invariants import Refused, check_all
from workers.harness.demo.prepare import prepare
from workers.harness.demo.report import build_report
from workers.harness.demo.scenario import Scenario
from workers.harness.demo.settle import wait_until_quiet
from workers.harness.demo.stack import start_stack, write_endpoints
from workers.harness.demo.supervisor import Supervisor

#: How long the follow-ups of the last orders may take once every order is final.
SETTLE_TIMEOUT_S = 60.0


def run_demo(
    settings: Settings,
    scenario: Scenario,
    *,
    run_dir: Path,
    timeout_s: float,
    fail_rate: float,
    exporter: bool = False,
    linger_s: float = 0.0,
    on_report: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run `scenario` on a fresh stack and return the report (see `report.build_report`)."""
    say(f"preparing database {settings.database_url.rsplit('/', 1)[-1]} and vhost {settings.amqp_vhost}")
    token = prepare(settings, opt_outs=scenario.opt_outs)
    engine = build_engine(settings, pool_size=2)
    try:
        with Supervisor(run_dir, say=say) as supervisor:
            say(f"starting smtp-sink, api, sandbox, relay and workers (logs in {run_dir})")
            stack = start_stack(supervisor, settings, fail_rate=fail_rate, exporter=exporter)
            write_endpoints(run_dir / "endpoints.json", stack, supervisor)
            auth = {"Authorization": f"Bearer {token}"}
            with (
                httpx.Client(base_url=stack.api_url, headers=auth, timeout=15.0) as api,
                httpx.Client(base_url=stack.sandbox_url, timeout=15.0) as sandbox,
            ):
                driver = Driver(api=api, sandbox=sandbox, engine=engine)
                drive = _drive(driver, scenario, timeout_s, supervisor)
                say("timed out" if drive.timed_out else "all orders final; waiting for their follow-ups")
                if not wait_until_quiet(engine, settings, timeout_s=SETTLE_TIMEOUT_S):
                    drive.errors.append(f"still busy {SETTLE_TIMEOUT_S:.0f}s after the last order was final")
                facts = collect(engine, sandbox=sandbox, maildir=stack.maildir)
            refused = Refused(
                planned=len(scenario.refusals),
                answers=drive.refusals,
                never_stored=frozenset(r.order_id for r in scenario.refusals if r.after is None),
            )
            checks = check_all(facts, planned_orders=len(scenario.orders), refused=refused)
            report = build_report(scenario, drive, facts, checks)
            if linger_s > 0:
                if on_report is not None:
                    on_report(report)
                linger(supervisor, linger_s)
            say("stopping processes")
    finally:
        engine.dispose()
    return report


def linger(supervisor: Supervisor, seconds: float) -> None:
    """Keep every process up for `seconds`; Ctrl-C or SIGTERM ends the wait early, not the run."""
    say(f"lingering {seconds:.0f}s so the run can be scraped (Ctrl-C or SIGTERM to stop now)")
    deadline = time.monotonic() + seconds
    pause = threading.Event()
    try:
        while time.monotonic() < deadline:
            if dead := [child.name for child in supervisor.children if not child.alive()]:
                say(f"{', '.join(dead)} exited: ending the linger")
                return
            pause.wait(min(0.5, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        say("interrupted: ending the linger")


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


def say(message: str) -> None:
    click.echo(f"demo: {message}", err=True)
