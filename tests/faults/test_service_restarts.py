"""A RabbitMQ restart and a PostgreSQL restart under a running worker and relay: nothing is lost,
nothing is doubled, and neither process needs restarting.

Both services are the module's own (tests/fixtures/own_services.py): the machine's shared
RabbitMQ and PostgreSQL are never restarted, so a demo or another test run keeps working."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from shared.config import Settings
from shared.fees import fee_schedule_from_settings
from shared.runtime import Runtime
from tasks.fulfilment.models import Order
from tests.fixtures.processes import enqueue_orders, fulfilment_worker, running_relay
from tests.fixtures.services import wait_until

pytestmark = [pytest.mark.timeout(240)]
# own_services, own_postgres, own_rabbit, own_settings; registered as a plugin (not imported) so
# that pytest can still rewrite its asserts.
pytest_plugins = ["tests.fixtures.own_services"]


@pytest.fixture(scope="module")
def settings(own_settings: Settings) -> Settings:
    """Every fixture of this module (runtime, clean_db, broker) points at the own instances."""
    return own_settings


@pytest.fixture(scope="module")
def runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.from_settings(settings, adapters={"fees": fee_schedule_from_settings})
    yield runtime
    runtime.close()


def _orders(runtime: Runtime) -> int:
    try:
        with runtime.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(Order)) or 0)
    except Exception:
        runtime.engine.dispose()
        return -1


@pytest.fixture
def relay(settings: Settings) -> Iterator[None]:
    with running_relay(settings):
        yield


def test_a_broker_restart_loses_and_doubles_nothing(settings, own_rabbit, broker, runtime, relay, tmp_path):
    with fulfilment_worker(settings, log=tmp_path / "worker.log", threads=4):
        before = enqueue_orders(runtime, 20)
        wait_until(lambda: _orders(runtime) == 20, timeout=60)
        # When the RabbitMQ node restarts (the whole node, not only its app) under the worker and relay
        node_pid = own_rabbit.pid()
        own_rabbit.restart()
        assert own_rabbit.pid() != node_pid
        after = enqueue_orders(runtime, 20)
        # Then both reconnect by themselves and every order exists exactly once
        wait_until(lambda: _orders(runtime) == 40, timeout=90)
    with runtime.sessions() as session:
        assert {str(i) for i in session.scalars(select(Order.id))} == before | after


def test_a_database_restart_loses_and_doubles_nothing(
    settings, own_postgres, broker, runtime, relay, tmp_path
):
    with fulfilment_worker(settings, log=tmp_path / "worker.log", threads=4):
        before = enqueue_orders(runtime, 20)
        wait_until(lambda: _orders(runtime) == 20, timeout=60)
        # When PostgreSQL restarts: every pooled connection of the worker and the relay breaks
        postmaster_pid = own_postgres.pid()
        own_postgres.restart()
        assert own_postgres.pid() != postmaster_pid
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
