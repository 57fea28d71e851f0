"""A RabbitMQ restart and a PostgreSQL restart under a running worker and relay: nothing is lost,
nothing is doubled, and neither process needs restarting."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shared.config import Settings
from shared.runtime import Runtime
from tasks.fulfilment.models import Order
from tests.fixtures.processes import enqueue_orders, fulfilment_worker, running_relay
from tests.fixtures.services import wait_until

pytestmark = [pytest.mark.timeout(180)]


def _orders(runtime: Runtime) -> int:
    try:
        with runtime.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(Order)) or 0)
    except Exception:
        runtime.engine.dispose()
        return -1


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def _restart_rabbitmq() -> None:
    _run("rabbitmqctl", "stop_app")
    _run("rabbitmqctl", "start_app")
    _run("rabbitmqctl", "await_startup")


def _restart_postgres() -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]
    _run("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart")


@pytest.fixture
def relay(settings: Settings) -> Iterator[None]:
    with running_relay(settings):
        yield


@pytest.mark.skipif(not shutil.which("rabbitmqctl"), reason="needs the local RabbitMQ's rabbitmqctl")
def test_a_broker_restart_loses_and_doubles_nothing(settings, broker, runtime, relay, tmp_path):
    with fulfilment_worker(settings, log=tmp_path / "worker.log", threads=4):
        before = enqueue_orders(runtime, 20)
        wait_until(lambda: _orders(runtime) == 20, timeout=60)
        # When RabbitMQ restarts under the running worker and relay
        _restart_rabbitmq()
        after = enqueue_orders(runtime, 20)
        # Then both reconnect by themselves and every order exists exactly once
        wait_until(lambda: _orders(runtime) == 40, timeout=90)
    with runtime.sessions() as session:
        assert {str(i) for i in session.scalars(select(Order.id))} == before | after


@pytest.mark.skipif(not Path("/etc/postgresql").is_dir(), reason="needs the local PostgreSQL cluster")
def test_a_database_restart_loses_and_doubles_nothing(settings, broker, runtime, relay, tmp_path):
    with fulfilment_worker(settings, log=tmp_path / "worker.log", threads=4):
        before = enqueue_orders(runtime, 20)
        wait_until(lambda: _orders(runtime) == 20, timeout=60)
        # When PostgreSQL restarts: every pooled connection of the worker and the relay breaks
        _restart_postgres()
        runtime.engine.dispose()
        after = wait_until(lambda: _enqueue_when_up(runtime), timeout=60)
        # Then messages that hit a broken connection are retried and every order exists once
        wait_until(lambda: _orders(runtime) == 40, timeout=90)
    with runtime.sessions() as session:
        assert {str(i) for i in session.scalars(select(Order.id))} == before | after


def _enqueue_when_up(runtime: Runtime) -> set[str] | None:
    try:
        return enqueue_orders(runtime, 20)
    except Exception:
        runtime.engine.dispose()
        return None
