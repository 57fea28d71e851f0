"""Deterministic database errors are permanent: dead-lettered at once with the reason, never retried."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, text

from shared.actors import ActorSpec, run_message
from shared.config import Settings
from shared.dead_letters.models import DeadLetter
from shared.errors import PermanentError
from shared.fees import DEFAULT_FEE_SCHEDULE_JSON, FeeSchedule
from shared.idempotency import ProcessedMessage
from shared.messages import Envelope, Payload
from shared.runtime import Runtime
from shared.uow import UnitOfWork
from tasks.fulfilment import actors
from tasks.fulfilment.messages import CompleteOrder
from tests.factories import envelope_for, message_kwargs, place_order
from tests.fixtures.services import wait_until


@pytest.fixture
def rt(settings: Settings, clean_db: Runtime) -> Iterator[Runtime]:
    runtime = Runtime.from_settings(
        settings, adapters={"fees": lambda s: FeeSchedule.from_json(DEFAULT_FEE_SCHEDULE_JSON)}
    )
    yield runtime
    runtime.close()


def _deliver(runtime: Runtime, spec: ActorSpec[Any], payload: Payload, key: str | None = None) -> None:
    envelope = Envelope(idempotency_key=key or f"test:{uuid.uuid4()}", kind=payload.kind, correlation_id="t")
    kwargs = {"envelope": envelope.model_dump(mode="json"), "payload": payload.model_dump(mode="json")}
    run_message(spec, runtime, kwargs)


def _running(handler: Any) -> ActorSpec[CompleteOrder]:
    return ActorSpec(handler=handler, payload_type=CompleteOrder)


def _claims(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(ProcessedMessage)) or 0)


def test_a_bigint_out_of_range_is_permanent_and_the_reason_names_the_sqlstate(rt):
    def overflow(uow: UnitOfWork, msg: CompleteOrder) -> None:
        uow.session.execute(text("SELECT CAST(:v AS bigint)"), {"v": 2**63})

    with pytest.raises(PermanentError) as caught:
        _deliver(rt, _running(overflow), CompleteOrder(order_id=uuid.uuid4()))
    assert "22003" in str(caught.value)
    assert _claims(rt) == 0  # rolled back with everything else


def test_a_nul_byte_in_text_is_permanent(rt):
    def nul(uow: UnitOfWork, msg: CompleteOrder) -> None:
        uow.session.execute(text("SELECT CAST(:v AS text)"), {"v": "a\x00b"})

    with pytest.raises(PermanentError) as caught:
        _deliver(rt, _running(nul), CompleteOrder(order_id=uuid.uuid4()))
    assert "DataError" in str(caught.value)


def test_a_constraint_violation_from_a_handler_is_permanent_without_quoting_the_row(rt):
    # A producer resending one order under another idempotency key: the orders primary key refuses it.
    payload = place_order()
    _deliver(rt, actors.place_order, payload, key=f"order-placed:{payload.order_id}")
    with pytest.raises(PermanentError) as caught:
        _deliver(rt, actors.place_order, payload, key=f"checkout-v2:{payload.order_id}")
    assert "23505" in str(caught.value)
    assert str(payload.order_id) not in str(caught.value)  # the DETAIL line quotes the key's value


@pytest.mark.parametrize("condition", ["serialization_failure", "deadlock_detected", "lock_not_available"])
def test_errors_that_a_retry_may_cure_stay_transient(rt, condition):
    def contended(uow: UnitOfWork, msg: CompleteOrder) -> None:
        uow.session.execute(text(f"DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '{condition}'; END $$"))

    with pytest.raises(Exception) as caught:
        _deliver(rt, _running(contended), CompleteOrder(order_id=uuid.uuid4()))
    assert not isinstance(caught.value, PermanentError)


def test_a_worker_dead_letters_a_constraint_violation_at_once_instead_of_retrying(broker, worker, runtime):
    payload = place_order()
    actor = broker.get_actor("fulfilment.place_order")
    actor.send_with_options(kwargs=message_kwargs(payload, envelope_for(payload)))
    resent = envelope_for(payload, key=f"checkout-v2:{payload.order_id}")
    actor.send_with_options(kwargs=message_kwargs(payload, resent))

    def dead() -> DeadLetter | None:
        with runtime.sessions() as session:
            return session.scalars(select(DeadLetter)).first()

    # Retried, the first attempt again would come after Dramatiq's backoff (seconds, then minutes).
    letter = wait_until(dead, timeout=10)
    assert letter.exception_type == "PermanentDatabaseError"
    assert letter.attempts == 1
    assert "23505" in letter.reason
