"""One chaos scenario, start to finish: the demo's run with a fault thread and a keeper beside it.

The run gets a database and a vhost of its own on the given services (`chaos_<scenario>`), so
scenarios can share one PostgreSQL cluster and one RabbitMQ node. Faults start once a tenth of
the orders are final, so there is a "before" to compare the throughput with. After the last
order is final and the platform is quiet, the demo's audit runs unchanged; on top of it the
result says whether the fault fired (its proof), whether anything was dead-lettered, how many
deliveries RabbitMQ redelivered, and per fault the time to recovery and the throughput.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from shared.config import Settings
from shared.crash_points import ENV_VAR as CRASH_POINTS_ENV
from shared.db import build_engine
from workers.harness.chaos.faults import Postgres, RabbitNode, Target
from workers.harness.chaos.keeper import Keeper, crash_lines
from workers.harness.chaos.monitor import Monitor
from workers.harness.chaos.scenarios import ChaosScenario
from workers.harness.demo.driver import Driver
from workers.harness.demo.facts import collect
from workers.harness.demo.invariants import Refused, check_all
from workers.harness.demo.prepare import prepare
from workers.harness.demo.report import build_report
from workers.harness.demo.scenario import build_scenario
from workers.harness.demo.settle import wait_until_quiet, what_is_busy
from workers.harness.demo.stack import Stack, start_stack
from workers.harness.demo.supervisor import ProcessFailed, Supervisor
from workers.harness.fault_proxy import FaultProxy

#: Faults start once this share of the orders is final.
TRIGGER_SHARE = 0.1
SETTLE_TIMEOUT_S = 120.0
#: What the faults' end and the settling get at least, however late the drive ended.
LAST_WAIT_S = 15.0
STACK_ATTEMPTS = 3


def run_scenario(
    scenario: ChaosScenario,
    *,
    postgres: Postgres,
    nodes: Sequence[RabbitNode],
    orders: int,
    run_dir: Path,
    seed: int = 7,
    timeout_s: float = 600.0,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run `scenario` on `orders` demo orders against `postgres` and `nodes`; the result dict.

    `timeout_s` bounds the whole run, the faults' end and the settling included (each of those
    still gets LAST_WAIT_S after a drive that used it all), so that a run that goes wrong returns
    its report, with what was still busy, instead of being stopped from outside without one.
    """
    deadline = time.monotonic() + timeout_s
    run_dir.mkdir(parents=True, exist_ok=True)
    database = vhost = f"chaos_{scenario.name}"
    nodes[0].add_vhost(vhost)
    settings = Settings(
        database_url=postgres.url(database),
        amqp_url=",".join(node.amqp_url(vhost) for node in nodes),
        rabbitmq_management_url=",".join(node.management_url for node in nodes),
    )
    plan = build_scenario(orders, seed=seed, now=datetime.now(UTC))
    say(f"{scenario.name}: preparing {orders} orders on database and vhost {database}")
    token = prepare(settings, opt_outs=plan.opt_outs)
    monitor = Monitor(postgres.conninfo(database))
    engine = build_engine(settings, pool_size=2)
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        stack.callback(engine.dispose)
        proxy = stack.enter_context(FaultProxy("127.0.0.1", nodes[0].amqp_port)) if scenario.proxy else None
        child_settings = settings
        if proxy is not None:
            child_settings = settings.model_copy(
                update={"amqp_url": f"amqp://guest:guest@127.0.0.1:{proxy.port}/{quote(vhost, safe='')}"}
            )
        supervisor = stack.enter_context(Supervisor(run_dir, say=say))
        with _environment({CRASH_POINTS_ENV: scenario.crash_points} if scenario.crash_points else {}):
            running = start_with_retries(supervisor, child_settings)
        keeper = Keeper(supervisor, monitor)
        monitor.start()
        stack.callback(monitor.stop)
        keeper.start()
        stack.callback(keeper.stop)
        stack.callback(stop.set)
        target = Target(postgres, nodes, monitor, keeper, stop, vhost, proxy)
        injector = _start_injector(scenario, target, orders, say)
        auth = {"Authorization": f"Bearer {token}"}
        api = stack.enter_context(httpx.Client(base_url=running.api_url, headers=auth, timeout=15.0))
        sandbox = stack.enter_context(httpx.Client(base_url=running.sandbox_url, timeout=15.0))
        driver = Driver(api=api, sandbox=sandbox, engine=engine)
        drive = driver.run(
            plan, timeout_s=_left(deadline), progress=monitor.progress, check_alive=keeper.check_alive
        )
        target.drive_over.set()
        say(f"{scenario.name}: drive over after {drive.elapsed_s:.0f}s; waiting for the faults to end")
        if injector is not None:
            injector.join(timeout=_left(deadline))
            if injector.is_alive():
                drive.errors.append(f"the faults had not ended {timeout_s:.0f}s after the start")
        settle_s = min(SETTLE_TIMEOUT_S, _left(deadline))
        if not wait_until_quiet(engine, settings, timeout_s=settle_s):
            busy = what_is_busy(engine, settings)
            drive.errors.append(f"still busy {settle_s:.0f}s after the drive ended: {busy}")
        facts = collect(engine, sandbox=sandbox, maildir=running.maildir)
        refused = Refused(
            planned=len(plan.refusals),
            answers=drive.refusals,
            never_stored=frozenset(r.order_id for r in plan.refusals if r.after is None),
        )
        report = build_report(
            plan, drive, facts, check_all(facts, planned_orders=len(plan.orders), refused=refused)
        )
        redelivered = redeliveries(nodes, vhost)
    proof = Counter(target.proof)
    proof.update(crash_lines(run_dir))
    proof.update({f"{name}_restarts": n for name, n in keeper.restarts.items()})
    missing_proof = scenario.proves(proof)
    dead = sum(int(group["n"]) for group in report["dead_letters"])
    return {
        "scenario": scenario.name,
        "title": scenario.title,
        "orders": orders,
        "ok": report["ok"] and not missing_proof and dead == 0,
        "invariants": report["invariants"],
        "invariant_details": report["invariant_details"],
        "fault_fired": not missing_proof,
        "missing_proof": missing_proof,
        "proof": dict(sorted(proof.items())),
        "unplanned_dead_letters": dead,
        "dead_letters": report["dead_letters"],
        "redeliveries": redelivered,
        "duplicates_suppressed": report["duplicates_suppressed"],
        "elapsed_s": report["throughput"]["elapsed_s"],
        "orders_per_s": report["throughput"]["orders_per_s"],
        "faults": [monitor.figures(fault) for fault in monitor.faults],
        "stuck": report["stuck"][:10],
        "driver_errors": report["driver"]["errors"][:10],
        "run_dir": str(run_dir),
    }


def _left(deadline: float) -> float:
    return max(LAST_WAIT_S, deadline - time.monotonic())


def start_with_retries(supervisor: Supervisor, settings: Settings) -> Stack:
    """The demo's stack; started again if a process could not start, which on a busy machine is
    most often a free port taken by someone else between the choice and the bind."""
    for attempt in range(STACK_ATTEMPTS):
        try:
            return start_stack(supervisor, settings, fail_rate=0.05)
        except ProcessFailed:
            if attempt == STACK_ATTEMPTS - 1:
                raise
            supervisor.stop_all()
    raise AssertionError("unreachable")


def _start_injector(
    scenario: ChaosScenario, target: Target, orders: int, say: Callable[[str], None]
) -> threading.Thread | None:
    inject = scenario.inject
    if inject is None:
        return None
    trigger = max(1, int(orders * TRIGGER_SHARE))

    def run() -> None:
        while target.monitor.final < trigger:
            if target.stop.wait(0.1):
                return
        say(f"{scenario.name}: {target.monitor.final} orders final; injecting: {scenario.title}")
        inject(target)
        say(f"{scenario.name}: faults over: {dict(target.proof)}")

    thread = threading.Thread(target=run, name=f"chaos-{scenario.name}", daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def _environment(extra: dict[str, str]) -> Iterator[None]:
    """Children copy the runner's environment when started (and keep it when restarted)."""
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def redeliveries(nodes: Sequence[RabbitNode], vhost: str) -> int | None:
    """Deliveries RabbitMQ made again (`message_stats.redeliver`, summed over the vhost's queues),
    from the first node whose management API answers; None if none does."""
    for node in nodes:
        try:
            response = httpx.get(
                f"{node.management_url}/api/queues/{quote(vhost, safe='')}",
                auth=("guest", "guest"),
                timeout=10,
            )
            response.raise_for_status()
        except httpx.HTTPError:
            continue
        return sum(int((q.get("message_stats") or {}).get("redeliver", 0)) for q in response.json())
    return None
