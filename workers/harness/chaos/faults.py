"""The faults a scenario injects, each recorded on the monitor and counted as proof that it fired.

Each fault runs in the scenario's fault thread once the run is under way, and returns when it
is over (its last service restarted, its proxy passing again). `Target` is what the faults act
on: the run's PostgreSQL cluster, its RabbitMQ nodes, the fault proxy in front of the broker
and the processes the keeper looks after. The services are the tests' own instances
(tests/fixtures/own_services.py), typed here by what the faults call on them.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import httpx

from workers.harness.chaos.keeper import Keeper
from workers.harness.chaos.monitor import Fault, Monitor
from workers.harness.demo.supervisor import Child


class Postgres(Protocol):
    def restart(self) -> None: ...
    def kill(self) -> None: ...
    def start(self) -> None: ...
    def url(self, database: str = ...) -> str: ...
    def conninfo(self, database: str = ...) -> str: ...


class RabbitNode(Protocol):
    name: str
    amqp_port: int

    def kill(self) -> None: ...
    def start(self, *, timeout: float = ...) -> None: ...
    def restart(self) -> None: ...
    def stop_app(self) -> None: ...
    def start_app(self) -> None: ...
    def amqp_url(self, vhost: str = ...) -> str: ...
    def add_vhost(self, vhost: str, *, user: str = ...) -> None: ...

    @property
    def management_url(self) -> str: ...


class Proxy(Protocol):
    """The fault proxy in front of the broker (`FaultProxy`, or one per node of a cluster)."""

    @property
    def stats(self) -> Counter[str]: ...

    def cut(self) -> None: ...
    def delay(self, milliseconds: float) -> None: ...
    def pass_through(self) -> None: ...


@dataclass
class Target:
    postgres: Postgres
    nodes: Sequence[RabbitNode]
    monitor: Monitor
    keeper: Keeper
    stop: threading.Event
    vhost: str
    proxy: Proxy | None = None
    #: Set when every order is final: no recovery can be seen once there is nothing left to do.
    drive_over: threading.Event = field(default_factory=threading.Event)
    #: Proof that each fault fired: kills, restarts, proxy cuts...
    proof: Counter[str] = field(default_factory=Counter)

    def pause(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def wait_recovered(self, fault: Fault, *, timeout_s: float = 60.0) -> None:
        """Until the platform consumes and publishes again after `fault`, or every order is final."""
        deadline = time.monotonic() + timeout_s
        while self.monitor.recovered_at(fault) is None and time.monotonic() < deadline:
            if self.drive_over.is_set() or self.stop.wait(0.25):
                return


Inject = Callable[[Target], None]


def worker_kill_storm(every_s: float, kills: int) -> Inject:
    """SIGKILL a random worker process (a child of a `circulate worker`) every `every_s`."""

    def inject(target: Target) -> None:
        storm = target.monitor.fault(f"worker process SIGKILLed every {every_s:g}s, {kills} times")
        while target.proof["worker_processes_killed"] < kills and not target.stop.is_set():
            pids = [pid for child in target.keeper.children("worker") for pid in _worker_processes(child)]
            if pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(random.choice(pids), signal.SIGKILL)
                    target.proof["worker_processes_killed"] += 1
            target.pause(every_s if pids else 0.1)
        # Lifted once a worker process runs again (each killed one is replaced by its keeper).
        while not any(_worker_processes(child) for child in target.keeper.children("worker")):
            if target.stop.wait(0.1):
                break
        storm.lift()

    return inject


def _worker_processes(child: Child) -> list[int]:
    argv = list(child.argv)
    count = int(argv[argv.index("--processes") + 1]) if "--processes" in argv else 1
    return worker_processes(child.process.pid, count)


def worker_processes(main_pid: int, count: int) -> list[int]:
    """The live Dramatiq worker processes under a `circulate worker` whose main process is
    `main_pid`: the children of its first `count` children by start time (the fork processes,
    such as the /metrics server, start after them). Those first children are the keepers that
    replace a killed worker process (workers.worker_restarts); the worker is the keeper's child."""
    workers = _children(main_pid)[:count]
    return [pid for keeper in workers for pid in _children(keeper)]


def _children(pid: int) -> list[int]:
    """Live children of `pid`, oldest first; a killed process stays a zombie until reaped, and
    signalling one proves nothing."""
    try:
        children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []
    stats = {}
    for child in children:
        try:
            stats[child] = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
    # After the command's ")": field 3 (state) is the first, field 22 (start time) the 20th.
    return [p for p in sorted(stats, key=lambda p: int(stats[p][19])) if stats[p][0] != "Z"]


def postgres_restart_then_kill(down_s: float) -> Inject:
    """`pg_ctl restart -m fast`; once recovered, SIGKILL of the postmaster and its backends, down
    for `down_s`, then a start that runs crash recovery."""

    def inject(target: Target) -> None:
        restarted = target.monitor.fault("PostgreSQL restarted (pg_ctl -m fast)")
        target.postgres.restart()
        restarted.lift()
        target.proof["postgres_restarts"] += 1
        target.wait_recovered(restarted)
        killed = target.monitor.fault(f"PostgreSQL SIGKILLed, down {down_s:g}s, crash recovery")
        target.postgres.kill()
        target.proof["postgres_kills"] += 1
        target.pause(down_s)
        target.postgres.start()
        killed.lift()
        target.wait_recovered(killed)

    return inject


def proxy_cut_then_delay(cut_s: float, delay_ms: float, delay_s: float) -> Inject:
    """Every broker connection of the workers and the relay cut for `cut_s` (refused meanwhile),
    then every byte delayed `delay_ms` each way for `delay_s`."""

    def inject(target: Target) -> None:
        proxy = target.proxy
        if proxy is None:
            raise RuntimeError("this fault needs the fault proxy in front of the broker")
        cut = target.monitor.fault(f"broker connections cut for {cut_s:g}s")
        proxy.cut()
        target.pause(cut_s)
        proxy.pass_through()
        cut.lift()
        delayed = target.monitor.fault(f"broker traffic delayed {delay_ms:g} ms each way for {delay_s:g}s")
        proxy.delay(delay_ms)
        target.pause(delay_s)
        proxy.pass_through()
        delayed.lift()
        target.proof.update(
            {k: proxy.stats[k] for k in ("connections_cut", "chunks_delayed", "connections_accepted")}
        )

    return inject


def leader_loss_then_rolling_restart(down_s: float, *, whole_nodes: bool = True) -> Inject:
    """`kill -9` of the node leading most quorum queues, restarted after `down_s`; once recovered,
    each node restarted in turn, waiting for recovery between nodes: the whole node (Erlang VM
    included, 12-16 s each here) or, `whole_nodes=False` for `make test`, its RabbitMQ
    application (`rabbitmqctl stop_app` / `start_app`, a few seconds; clients are disconnected
    and queue leaders move just the same)."""

    def inject(target: Target) -> None:
        leader = quorum_leader(target)
        killed = target.monitor.fault(f"queue leader {leader.name.split('@')[0]} SIGKILLed, down {down_s:g}s")
        leader.kill()
        target.proof["rabbit_nodes_killed"] += 1
        target.pause(down_s)
        leader.start()
        killed.lift()
        target.wait_recovered(killed)
        for node in target.nodes:
            if target.stop.is_set():
                return
            what = "node" if whole_nodes else "rabbit app"
            rolled = target.monitor.fault(f"rolling restart ({what}): {node.name.split('@')[0]}")
            if whole_nodes:
                node.restart()
            else:
                node.stop_app()
                node.start_app()
            rolled.lift()
            target.proof["rabbit_nodes_restarted"] += 1
            target.wait_recovered(rolled)

    return inject


def quorum_leader(target: Target) -> RabbitNode:
    """The node that leads most of the vhost's quorum queues, by the management API."""
    leaders: Counter[str] = Counter()
    for node in target.nodes:
        try:
            response = httpx.get(
                f"{node.management_url}/api/queues/{quote(target.vhost, safe='')}",
                params={"columns": "name,type,leader"},
                auth=("guest", "guest"),
                timeout=5,
            )
            response.raise_for_status()
        except httpx.HTTPError:
            continue
        leaders.update(q["leader"] for q in response.json() if q.get("type") == "quorum" and q.get("leader"))
        break
    by_name = {node.name: node for node in target.nodes}
    for name, _ in leaders.most_common():
        if name in by_name:
            target.proof["quorum_queues_led_by_killed_node"] = leaders[name]
            return by_name[name]
    return target.nodes[0]
