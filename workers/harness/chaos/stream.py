"""Every scenario's faults in one stream of orders: `make chaos` at 5,000 orders in about an hour.

Run one after the other, the five scenarios each pay for their own stack and their own orders;
at 5,000 orders apiece that is five times the orders (at 1-3 orders/s on two loaded cores, five
hours). Here one stack drives the orders once, on a 3-node cluster whose nodes are each reached
through a fault proxy, and the scenarios' faults come in turn, each as a **segment**: it starts
once its share of the orders is final (5 %, 15 %, 25 %, 35 %, 45 %) and at least `GAP_S` after
the previous segment recovered, so every fault has a calm "before" of its own and the faults
never overlap. The shares stop at half the stream and the longest segment (node loss: a kill and
three whole-node restarts, each waited out, about three minutes) comes last: with the shares
spread to 70 % and node loss fourth, a 5,000-order run reached its fifth segment at 4,840 orders
final, too late for the crash points to fire before the last order was final.

Each segment's figures (its faults' resume and recovery times, throughput before and during, the
proof that it fired, the redeliveries RabbitMQ counted meanwhile) are its own; the audit
(invariants, dead letters, duplicates suppressed) is of the whole stream, since every order
lives through every fault that came while it was in flight.

The crash points are armed by restarting the relay and the workers with
`CIRCULATE_CRASH_POINTS` set (a process reads it at import): the restart happens before the
segment's window opens. Once the segment has its proof they are disarmed the same way: left
armed, every relay would die again at its 50th batch and every worker process at its 100th
commit until the end, and on a long stream the platform would still be crashing (and its
notification backlog still draining) when the audit came.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
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
from workers.harness.chaos.runner import SETTLE_TIMEOUT_S, redeliveries, start_with_retries
from workers.harness.chaos.scenarios import ChaosScenario
from workers.harness.demo.driver import Driver
from workers.harness.demo.facts import collect
from workers.harness.demo.invariants import Refused, check_all
from workers.harness.demo.prepare import prepare
from workers.harness.demo.report import build_report
from workers.harness.demo.scenario import build_scenario
from workers.harness.demo.settle import wait_until_quiet
from workers.harness.demo.supervisor import Child, Supervisor
from workers.harness.fault_proxy import FaultProxy

#: The segments in turn; node loss, the longest, last so that it cannot crowd out another.
ORDER = ("worker_kills", "database_restarts", "broker_network", "crash_points", "broker_node_loss")
FIRST_SHARE = 0.05
SHARE_STEP = 0.10
#: Calm between one segment's recovery and the next one's start (`make chaos`; shorter when small).
GAP_S = 30.0
#: How long the armed crash points get to fire before their segment's window closes.
CRASH_WINDOW_S = 600.0


class ProxyGroup:
    """One fault proxy per node, driven as one: a cut or a delay hits every broker connection."""

    def __init__(self, proxies: Sequence[FaultProxy]) -> None:
        self.proxies = list(proxies)

    @property
    def stats(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for proxy in self.proxies:
            total.update(proxy.stats)
        return total

    def cut(self) -> None:
        for proxy in self.proxies:
            proxy.cut()

    def delay(self, milliseconds: float) -> None:
        for proxy in self.proxies:
            proxy.delay(milliseconds)

    def pass_through(self) -> None:
        for proxy in self.proxies:
            proxy.pass_through()


def run_stream(
    scenarios: Mapping[str, ChaosScenario],
    names: Sequence[str],
    *,
    postgres: Postgres,
    nodes: Sequence[RabbitNode],
    orders: int,
    run_dir: Path,
    seed: int = 7,
    timeout_s: float = 7200.0,
    gap_s: float = GAP_S,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Drive `orders` demo orders once while each named scenario's faults come in turn."""
    run_dir.mkdir(parents=True, exist_ok=True)
    database = vhost = "chaos_stream"
    nodes[0].add_vhost(vhost)
    settings = Settings(
        database_url=postgres.url(database),
        amqp_url=",".join(node.amqp_url(vhost) for node in nodes),
        rabbitmq_management_url=",".join(node.management_url for node in nodes),
    )
    plan = build_scenario(orders, seed=seed, now=datetime.now(UTC))
    say(f"stream: preparing {orders} orders on database and vhost {database}")
    token = prepare(settings, opt_outs=plan.opt_outs)
    monitor = Monitor(postgres.conninfo(database))
    engine = build_engine(settings, pool_size=2)
    stop = threading.Event()
    segments: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        stack.callback(engine.dispose)
        proxies = ProxyGroup([stack.enter_context(FaultProxy("127.0.0.1", node.amqp_port)) for node in nodes])
        through_proxies = ",".join(
            f"amqp://guest:guest@127.0.0.1:{proxy.port}/{quote(vhost, safe='')}" for proxy in proxies.proxies
        )
        child_settings = settings.model_copy(update={"amqp_url": through_proxies})
        supervisor = stack.enter_context(Supervisor(run_dir, say=say))
        running = start_with_retries(supervisor, child_settings)
        keeper = Keeper(supervisor, monitor)
        monitor.start()
        stack.callback(monitor.stop)
        keeper.start()
        stack.callback(keeper.stop)
        stack.callback(stop.set)
        target = Target(postgres, nodes, monitor, keeper, stop, vhost, proxies)
        injector = threading.Thread(
            target=_inject_in_turn,
            args=(scenarios, names, target, orders, gap_s, run_dir, segments, say),
            name="chaos-stream",
            daemon=True,
        )
        injector.start()
        auth = {"Authorization": f"Bearer {token}"}
        api = stack.enter_context(httpx.Client(base_url=running.api_url, headers=auth, timeout=15.0))
        sandbox = stack.enter_context(httpx.Client(base_url=running.sandbox_url, timeout=15.0))
        driver = Driver(api=api, sandbox=sandbox, engine=engine)
        drive = driver.run(
            plan, timeout_s=timeout_s, progress=monitor.progress, check_alive=keeper.check_alive
        )
        target.drive_over.set()
        say(f"stream: drive over after {drive.elapsed_s:.0f}s; waiting for the last segment to end")
        injector.join(timeout=timeout_s)
        # A 5,000-order stream ends with thousands of notifications still queued: wait while
        # they drain, and call it stuck only when nothing has moved for SETTLE_TIMEOUT_S.
        if not wait_until_quiet(engine, settings, timeout_s=timeout_s, stall_s=SETTLE_TIMEOUT_S):
            drive.errors.append(f"no progress for {SETTLE_TIMEOUT_S:.0f}s after the last order was final")
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
    for segment in segments:
        segment["faults"] = [monitor.figures(fault) for fault in segment.pop("fault_objects")]
    skipped = [name for name in names if name not in {s["scenario"] for s in segments}]
    dead = sum(int(group["n"]) for group in report["dead_letters"])
    fired = all(segment["fault_fired"] for segment in segments) and not skipped
    return {
        "mode": "stream",
        "orders": orders,
        "ok": report["ok"] and fired and dead == 0,
        "invariants": report["invariants"],
        "invariant_details": report["invariant_details"],
        "unplanned_dead_letters": dead,
        "dead_letters": report["dead_letters"],
        # A node restart resets RabbitMQ's counters of the queues it led, so the figure read at the
        # end misses what came before the rolling restart; the segments' own figures are summed.
        "redeliveries": sum(s["redeliveries"] for s in segments if s["redeliveries"] is not None),
        "redeliveries_read_at_end": redelivered,
        "duplicates_suppressed": report["duplicates_suppressed"],
        "elapsed_s": report["throughput"]["elapsed_s"],
        "orders_per_s": report["throughput"]["orders_per_s"],
        "segments": segments,
        "segments_not_reached": skipped,
        "stuck": report["stuck"][:10],
        "driver_errors": report["driver"]["errors"][:10],
        "run_dir": str(run_dir),
    }


def _inject_in_turn(
    scenarios: Mapping[str, ChaosScenario],
    names: Sequence[str],
    target: Target,
    orders: int,
    gap_s: float,
    run_dir: Path,
    segments: list[dict[str, Any]],
    say: Callable[[str], None],
) -> None:
    calm_since = time.monotonic()
    for index, name in enumerate(n for n in ORDER if n in names):
        scenario = scenarios[name]
        trigger = segment_trigger(orders, index)
        while target.monitor.final < trigger or time.monotonic() - calm_since < gap_s:
            if target.drive_over.is_set() or target.stop.wait(0.25):
                say(f"stream: every order final before segment {name}: not run")
                return
        if scenario.crash_points:
            _set_crash_points(target, scenario.crash_points, say)
        say(f"stream: {target.monitor.final} orders final; segment {name}: {scenario.title}")
        first_fault = len(target.monitor.faults)
        before = _proof(target, run_dir)
        redelivered_before = redeliveries(target.nodes, target.vhost)
        final_before = target.monitor.final
        started = time.time()
        if scenario.inject is not None:
            scenario.inject(target)
        else:
            _wait_for_proof(scenario, target, run_dir, before)
        faults = target.monitor.faults[first_fault:]
        for fault in faults:
            target.wait_recovered(fault)
        proof = _proof(target, run_dir)
        proof.subtract(before)
        proof = +proof  # keep what grew in this segment
        missing = scenario.proves(proof)
        redelivered_after = redeliveries(target.nodes, target.vhost)
        segments.append(
            {
                "scenario": name,
                "title": scenario.title,
                "orders_final_at_start": final_before,
                "window_s": round(time.time() - started, 1),
                "fault_fired": not missing,
                "missing_proof": missing,
                "proof": dict(sorted(proof.items())),
                # A node restart resets the statistics of the queues it led: then no figure.
                "redeliveries": _grown(redelivered_before, redelivered_after),
                "fault_objects": list(target.monitor.faults[first_fault:]),
            }
        )
        say(f"stream: segment {name} over: {dict(proof)}")
        if scenario.crash_points:
            _set_crash_points(target, None, say)
        calm_since = time.monotonic()


def segment_trigger(orders: int, index: int) -> int:
    """How many orders must be final before the segment at `index` (in ORDER) may start."""
    return max(1, int(orders * (FIRST_SHARE + SHARE_STEP * index)))


def _set_crash_points(target: Target, spec: str | None, say: Callable[[str], None]) -> None:
    """Restart the relay and the workers with the crash points `spec` (None: none); wait until
    they work again."""
    doing = f"arming crash points {spec}" if spec else "disarming the crash points"
    say(f"stream: {doing}: restarting the relay and the workers")
    arming = target.monitor.fault(f"{doing} (relay and workers restarted)")
    stopped = [child for child in _stack(target) if child.alive()]
    for child in stopped:
        # The keeper starts the replacement with the stopped child's environment.
        environment = {key: value for key, value in child.env.items() if key != CRASH_POINTS_ENV}
        child.env = {**environment, CRASH_POINTS_ENV: spec} if spec else environment
        child.process.send_signal(signal.SIGTERM)
    while any(child.alive() for child in stopped) and not target.stop.is_set():
        target.stop.wait(0.25)
    while len([child for child in _stack(target) if child.alive()]) < len(stopped):
        if target.stop.wait(0.1):
            break
    arming.lift()
    target.wait_recovered(arming, timeout_s=120.0)
    target.monitor.faults.remove(arming)  # preparation or clearing up, not a segment's fault


def _stack(target: Target) -> list[Child]:
    return target.keeper.children("relay") + target.keeper.children("worker")


def _wait_for_proof(scenario: ChaosScenario, target: Target, run_dir: Path, before: Counter[str]) -> None:
    """For faults the processes inject themselves (crash points): until the proof is complete."""
    deadline = time.monotonic() + CRASH_WINDOW_S
    while time.monotonic() < deadline and not target.drive_over.is_set():
        proof = _proof(target, run_dir)
        proof.subtract(before)
        if not scenario.proves(+proof):
            return
        if target.stop.wait(2.0):
            return


def _proof(target: Target, run_dir: Path) -> Counter[str]:
    proof = Counter(target.proof)
    proof.update(crash_lines(run_dir))
    proof.update({f"{name}_restarts": n for name, n in target.keeper.restarts.items()})
    return proof


def _grown(before: int | None, after: int | None) -> int | None:
    if before is None or after is None or after < before:
        return None
    return after - before
