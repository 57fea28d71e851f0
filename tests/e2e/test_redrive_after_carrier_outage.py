"""The operator's story: the carrier is down, orders dead-letter, the carrier recovers, the group
is re-driven, and every order completes with no label, ledger entry or notification doubled."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from shared.config import QUEUES, Settings
from shared.enqueue import enqueue
from shared.runtime import Runtime
from tasks.fulfilment.messages import RecordTracking
from tests.factories import place_order
from tests.fixtures import sandbox as sandbox_fixtures
from tests.fixtures.processes import running_relay
from tests.fixtures.sandbox import Sandbox, carrier_for, push_client_for
from tests.fixtures.services import wait_until
from tests.fixtures.smtp import mailer_for, smtp_sink
from workers.dlq.cli import dlq
from workers.harness.smtp_sink import SmtpSink

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]
webhook_receiver = sandbox_fixtures.webhook_receiver
sandbox = sandbox_fixtures.sandbox
__all__ = ["sandbox", "smtp_sink", "webhook_receiver"]
ORDERS = 3


@pytest.fixture
def worker_adapters(worker_adapters: dict[str, Any], sandbox: Sandbox, smtp_sink: SmtpSink) -> dict[str, Any]:
    return {
        **worker_adapters,
        "carrier": lambda settings: carrier_for(sandbox, retry_attempts=1, max_retry_wait_s=0.05),
        "push": lambda settings: push_client_for(sandbox),
        "mailer": lambda settings: mailer_for(smtp_sink),
    }


@pytest.fixture
def relay(settings: Settings, broker: Any) -> Iterator[None]:
    with running_relay(settings):
        yield


def dlq_cli(settings: Settings, *args: str) -> Result:
    env = {"CIRCULATE_DATABASE_URL": settings.database_url, "CIRCULATE_AMQP_URL": settings.amqp_url}
    result = CliRunner().invoke(dlq, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def scalar(runtime: Runtime, sql: str, **params: Any) -> Any:
    with runtime.engine.connect() as connection:
        return connection.execute(text(sql), params).scalar()


def states(runtime: Runtime, order_ids: list[uuid.UUID]) -> list[str]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(text("SELECT state FROM orders WHERE id = ANY(:ids)"), {"ids": order_ids})
        return sorted(row[0] for row in rows)


def quiet(runtime: Runtime, broker: Any, worker: Any) -> bool:
    """Nothing left anywhere: outbox published, every queue and delay queue empty, workers idle."""
    if scalar(runtime, "SELECT count(*) FROM outbox WHERE published_at IS NULL"):
        return False
    for queue in QUEUES:
        broker.join(queue, timeout=20_000)
    worker.join()
    return not scalar(runtime, "SELECT count(*) FROM outbox WHERE published_at IS NULL")


def test_a_dead_lettered_group_re_driven_after_a_carrier_outage_completes_every_order_once(
    settings, runtime, broker, worker, relay, sandbox, smtp_sink
):
    # Given a carrier that fails every label purchase for these orders
    orders = [place_order() for _ in range(ORDERS)]
    sandbox.set_faults(mode="5xx", fail_references=[str(o.order_id) for o in orders])
    with runtime.sessions.begin() as session:
        for order in orders:
            enqueue(session, order, idempotency_key=f"order-placed:{order.order_id}")

    # When their label purchases exhaust their retries, they are dead-lettered and archived
    dead = "SELECT count(*) FROM dead_letters WHERE actor_name = 'shipping.buy_label' AND status = 'dead'"
    wait_until(lambda: scalar(runtime, dead) == ORDERS, timeout=60)
    ids = [o.order_id for o in orders]
    assert states(runtime, ids) == ["confirmed"] * ORDERS
    dlq_cli(settings, "sweep")
    (group,) = json.loads(dlq_cli(settings, "groups", "--actor", "shipping.buy_label", "--json").output)
    assert group["count"] == ORDERS

    # And the carrier recovers and the operator re-drives the group
    sandbox.clear_faults()
    dlq_cli(settings, "redrive", "--group", group["group_key"], "--yes")
    wait_until(lambda: states(runtime, ids) == ["label_purchased"] * ORDERS, timeout=60)
    with runtime.sessions.begin() as session:
        for order in orders:
            tracking = RecordTracking(
                order_id=order.order_id,
                event="delivered",
                event_id=uuid.uuid4().hex,
                occurred_at=datetime.now(UTC),
            )
            enqueue(session, tracking, idempotency_key=f"carrier-event:{tracking.event_id}")

    # Then every order completes
    wait_until(lambda: states(runtime, ids) == ["completed"] * ORDERS, timeout=60)
    wait_until(lambda: quiet(runtime, broker, worker), timeout=60)
    # with one label each at the carrier
    assert sandbox.stats()["labels_purchased"] == ORDERS
    # one capture and one release each in a balanced journal
    for kind in ("payment_captured", "funds_released"):
        sql = "SELECT count(*) FROM journal_transactions WHERE kind = :kind AND order_id = ANY(:ids)"
        assert scalar(runtime, sql, kind=kind, ids=ids) == ORDERS
    assert (
        scalar(
            runtime, "SELECT count(*) FROM journal_entries GROUP BY currency HAVING sum(amount_minor) <> 0"
        )
        is None
    )
    # and each email received exactly once
    sent = scalar(runtime, "SELECT count(*) FROM notifications WHERE channel = 'email' AND status = 'sent'")
    assert sent == ORDERS * 5  # order_confirmed, item_sold, shipped, delivered, funds_released
    assert len(smtp_sink.messages) == len(smtp_sink.unique_message_ids()) == sent

    # When the same group is re-driven again, nothing is published
    again = dlq_cli(settings, "redrive", "--group", group["group_key"], "--yes")
    assert again.output.startswith("nothing to re-drive")
    wait_until(lambda: quiet(runtime, broker, worker), timeout=30)
    assert sandbox.stats()["labels_purchased"] == ORDERS
    assert scalar(runtime, "SELECT count(*) FROM dead_letters WHERE status = 'dead'") == 0
