"""Issue 11's chaos scenarios at their small size: the demo's orders, all twists, under each fault.

Every scenario runs on the module's own PostgreSQL and RabbitMQ (a database and a vhost of its
own each); the node-loss scenario on a 3-node cluster of its own. Each must prove its fault
fired, keep the demo's invariants, dead-letter nothing, and leave no order unfinished. The
figures (recovery per fault, throughput before and during, redeliveries, duplicates suppressed)
are printed, never asserted: `make chaos` runs the same scenarios at 5,000 orders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from workers.harness.chaos.runner import run_scenario
from workers.harness.chaos.scenarios import build

if TYPE_CHECKING:  # registered as a plugin below, so it must not be imported first
    from tests.fixtures.own_services import OwnPostgres, OwnRabbitNode, OwnServices

pytest_plugins = ["tests.fixtures.own_services"]
pytestmark = pytest.mark.timeout(420)

#: Orders per scenario under `make test` (docs/operations/reliability.md gives the measured times).
SMALL_ORDERS = 40
SCENARIOS = build(full=False)
#: Bounds each scenario's run, settling included, inside the test's timeout (setup is the rest).
RUN_TIMEOUT_S = 240
LOUD = ('"level": "warning"', '"level": "error"', '"level": "critical"', "traceback")


def _holds(result: dict[str, Any]) -> None:
    print(json.dumps({k: v for k, v in result.items() if k != "invariant_details"}, indent=1, default=str))
    try:
        assert result["fault_fired"], f"the fault did not fire: {result['missing_proof']}"
        assert all(result["invariants"].values()), result["invariant_details"]
        assert result["unplanned_dead_letters"] == 0, result["dead_letters"]
        assert not result["stuck"], result["stuck"]
    except AssertionError:
        print(_complaints(Path(result["run_dir"])))  # the run directory is gone after CI
        raise


def _complaints(run_dir: Path, per_log: int = 20) -> str:
    """The last warnings and errors each process logged, the first place to look at a failure."""
    out = []
    for log in sorted(run_dir.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()
        loud = [line for line in lines if any(level in line.lower() for level in LOUD)]
        out.append(f"== {log.name}: {len(lines)} lines, the last {per_log} of {len(loud)} warnings/errors")
        out.extend(line[:600] for line in loud[-per_log:])
    return "\n".join(out)


@pytest.mark.parametrize("name", ["worker_kills", "database_restarts", "broker_network", "crash_points"])
def test_the_demo_keeps_its_promises_when(
    name: str, own_postgres: OwnPostgres, own_rabbit: OwnRabbitNode, tmp_path: Path
) -> None:
    result = run_scenario(
        SCENARIOS[name], postgres=own_postgres, nodes=[own_rabbit], orders=SMALL_ORDERS, run_dir=tmp_path,
        timeout_s=RUN_TIMEOUT_S,
    )  # fmt: skip
    _holds(result)


def test_the_demo_keeps_its_promises_when_the_queue_leader_dies_and_the_cluster_rolls(
    own_services: OwnServices, own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    from tests.fixtures.own_services import FAST_CHANNEL_TICK

    nodes = own_services.rabbit_cluster(3, rabbit_env=FAST_CHANNEL_TICK)
    try:
        result = run_scenario(
            SCENARIOS["broker_node_loss"], postgres=own_postgres, nodes=nodes, orders=SMALL_ORDERS,
            run_dir=tmp_path, timeout_s=RUN_TIMEOUT_S,
        )  # fmt: skip
    finally:
        for node in nodes:
            node.close()
    _holds(result)
