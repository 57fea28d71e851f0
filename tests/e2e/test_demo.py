"""The demo is the platform's widest end-to-end check: every process, real sockets, its own audit.

It runs `circulate demo` as a subprocess (as `make demo` does) against a database and vhost of its
own, derived from this session's names with a `_demo` suffix, because the demo empties whatever it
is pointed at.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import Settings
from shared.migrate import create_database_if_missing
from shared.topology import delete_vhost, ensure_vhost
from tests.fixtures.services import _drop_database, make_settings

ORDERS = 100
CLI = ("-c", "import sys; from workers.cli import main; sys.exit(main())")


@pytest.fixture
def demo_settings(settings: Settings) -> Iterator[Settings]:
    demo = make_settings(database_url=f"{settings.database_url}_demo", amqp_url=f"{settings.amqp_url}_demo")
    _drop_database(demo)
    create_database_if_missing(demo)
    ensure_vhost(demo)
    yield demo
    delete_vhost(demo)
    _drop_database(demo)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_demo_keeps_every_promise_on_a_hundred_orders(demo_settings: Settings, tmp_path: Path) -> None:
    # Given a database and vhost of the demo's own
    env = {
        **os.environ,
        "CIRCULATE_DATABASE_URL": demo_settings.database_url,
        "CIRCULATE_AMQP_URL": demo_settings.amqp_url,
    }
    report_path = tmp_path / "report.json"

    # When the demo runs a hundred orders end to end
    result = subprocess.run(
        [sys.executable, *CLI, "demo", "--orders", str(ORDERS), "--json", str(report_path),
         "--run-dir", str(tmp_path / "run"), "--timeout", "240"],
        env=env, capture_output=True, text=True, timeout=540,
    )  # fmt: skip

    # Then it exits 0 and its report shows every invariant holding, for every order
    output = f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
    assert result.returncode == 0, output
    report = json.loads(report_path.read_text())
    assert report["invariants"] and all(report["invariants"].values()), report["invariant_details"]
    assert sum(report["orders_by_state"].values()) == ORDERS
    assert set(report["orders_by_state"]) <= {"completed", "cancelled", "needs_attention"}
