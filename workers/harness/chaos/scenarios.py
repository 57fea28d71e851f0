"""The five chaos scenarios: what each needs, what it breaks, and how it proves the break happened.

Sizes: `make test` runs each at a few hundred orders with short faults; `make chaos` at 5,000
orders with the faults at full length. A scenario whose proof comes back empty
failed, whatever the invariants say: a fault that never fired proves nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from workers.harness.chaos import faults

Proof = Callable[[Counter[str]], list[str]]


@dataclass(frozen=True)
class ChaosScenario:
    name: str
    title: str
    #: Runs on a 3-node cluster (else one node).
    cluster: bool = False
    #: The workers and the relay reach the broker through the fault proxy.
    proxy: bool = False
    #: CIRCULATE_CRASH_POINTS for every child process (shared.crash_points).
    crash_points: str = ""
    inject: faults.Inject | None = None
    #: What the proof counters must show; each string is a missing proof.
    proves: Proof = lambda proof: []


def _at_least(**minimums: int) -> Proof:
    def check(proof: Counter[str]) -> list[str]:
        return [f"{key}: {proof[key]} < {least}" for key, least in minimums.items() if proof[key] < least]

    return check


def build(*, full: bool) -> dict[str, ChaosScenario]:
    """Every scenario, at the full size (`make chaos`) or the small one (`make test`)."""
    kills = 15 if full else 3
    #: The proxy's cut and delay: 10 s each under `make chaos`, 4 s under `make test`.
    outage = 10.0 if full else 4.0
    return {
        s.name: s
        for s in (
            ChaosScenario(
                "worker_kills",
                f"a random worker process SIGKILLed every 2 s ({kills} kills)",
                inject=faults.worker_kill_storm(2.0, kills),
                proves=_at_least(worker_processes_killed=kills, worker_processes_replaced=kills),
            ),
            ChaosScenario(
                "broker_node_loss",
                "3-node cluster: the quorum queues' leader killed -9 and restarted, then a rolling restart",
                cluster=True,
                inject=faults.leader_loss_then_rolling_restart(10.0 if full else 3.0, whole_nodes=full),
                proves=_at_least(rabbit_nodes_killed=1, rabbit_nodes_restarted=3),
            ),
            ChaosScenario(
                "database_restarts",
                "PostgreSQL restarted mid-run, then killed -9 (crash recovery)",
                inject=faults.postgres_restart_then_kill(5.0 if full else 2.0),
                proves=_at_least(postgres_restarts=1, postgres_kills=1),
            ),
            ChaosScenario(
                "broker_network",
                f"proxy cuts the workers' and relay's broker connections {outage:g} s, "
                f"then delays them 200 ms for {outage:g} s",
                proxy=True,
                inject=faults.proxy_cut_then_delay(outage, 200.0, outage),
                proves=_at_least(connections_cut=1, chunks_delayed=1),
            ),
            ChaosScenario(
                "crash_points",
                "relay SIGKILLed between publishing a batch and marking it; a worker between commit and ack",
                crash_points=(
                    # Low enough to fire within the stream's last 30 % of orders after the restart
                    # that arms them (400/250 did not, in 315 orders).
                    "relay.after_publish=50,worker.after_commit=100"
                    if full
                    else "relay.after_publish=40,worker.after_commit=100"
                ),
                proves=_at_least(
                    **{
                        "relay.after_publish": 1,
                        "worker.after_commit": 1,
                        "relay_restarts": 1,
                        "worker_processes_replaced": 1,
                    }
                ),
            ),
        )
    }
