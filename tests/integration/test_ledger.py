"""The commission ledger against real Postgres (and RabbitMQ for the dead-letter path)."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from shared.actors import ActorSpec, run_message
from shared.config import Settings
from shared.dead_letters.models import DeadLetter
from shared.errors import ConflictingReplay
from shared.fees import (
    DEFAULT_FEE_SCHEDULE_JSON,
    FeeSchedule,
    MarketCurrencyMismatch,
    UnknownMarket,
    fee_schedule_from_settings,
)
from shared.messages import Envelope
from shared.outbox import OutboxRow
from shared.runtime import AdapterFactory, Runtime
from tasks.ledger import actors
from tasks.ledger.handlers import FundsAlreadyReleased, PaymentAlreadyReversed
from tasks.ledger.messages import CapturePayment, OrderAmounts, ReleaseFunds, ReversePayment
from tasks.ledger.models import EntryRecord, TransactionRecord
from tasks.ledger.posting import (
    BUYER_FEE_REVENUE,
    BUYER_PAYMENTS_CLEARING,
    CARRIER_PAYABLE,
    REFUNDS_PAYABLE,
    JournalTransaction,
    content_hash,
    seller_available,
    seller_pending,
)
from tasks.ledger.reports import as_json, trial_balance_report
from tests.fixtures.services import wait_until
from workers.ledger_cli import ledger as ledger_command

SPECS: dict[str, ActorSpec[Any]] = {spec.name: spec for spec in actors.ACTORS}


@pytest.fixture
def worker_adapters() -> dict[str, AdapterFactory]:
    return {"fees": fee_schedule_from_settings}


@pytest.fixture
def ledger(settings: Settings, clean_db: Runtime) -> Iterator[Runtime]:
    """A Runtime with the default fee schedule, over an emptied database."""
    runtime = Runtime.from_settings(settings, adapters={"fees": fee_schedule_from_settings})
    yield runtime
    runtime.close()


def amounts(**overrides: Any) -> dict[str, Any]:
    """A GB order of 25.00 plus 2.99 shipping: buyer fee 5% + 0.70 = 1.95, no commission in GB."""
    fields = {
        "order_id": uuid.uuid4(),
        "seller_id": "seller-" + uuid.uuid4().hex[:8],
        "market": "GB",
        "currency": "GBP",
        "item_price_minor": 2500,
        "shipping_price_minor": 299,
    }
    return fields | overrides


def kwargs_for(payload: OrderAmounts, *, key: str | None = None) -> dict[str, Any]:
    envelope = Envelope(
        idempotency_key=key or f"{payload.kind}:{uuid.uuid4()}", kind=payload.kind, correlation_id="test"
    )
    return {"envelope": envelope.model_dump(mode="json"), "payload": payload.model_dump(mode="json")}


def deliver(runtime: Runtime, payload: OrderAmounts, *, key: str | None = None) -> None:
    run_message(SPECS[payload.kind], runtime, kwargs_for(payload, key=key))


def journal(runtime: Runtime) -> dict[str, JournalTransaction]:
    with runtime.sessions() as session:
        return {r.posting_key: r.as_posting() for r in session.scalars(select(TransactionRecord))}


def lines(transaction: JournalTransaction) -> dict[str, int]:
    return {entry.account: entry.amount_minor for entry in transaction.entries}


def trial_balance_report_for(runtime: Runtime) -> dict[str, dict[str, int]]:
    with runtime.sessions() as session:
        report = trial_balance_report(session)
    assert report.ok, report.violations
    return report.balances


def _insert_transaction(session: Any, key: str, entries: list[tuple[str, int]]) -> None:
    record = TransactionRecord(posting_key=key, kind="manual", order_id=uuid.uuid4(), content_hash="0" * 64)
    session.add(record)
    session.flush()
    session.add_all(
        EntryRecord(transaction_id=record.id, account=account, amount_minor=amount, currency="GBP")
        for account, amount in entries
    )
    session.flush()


def _trial_balance(settings: Settings, *args: str) -> Any:
    env = {"CIRCULATE_DATABASE_URL": settings.database_url}
    return CliRunner().invoke(ledger_command, ["trial-balance", *args], env=env)


def _json(output: str) -> dict[str, Any]:
    return dict(json.loads(output))


def _dead_letters(runtime: Runtime) -> list[DeadLetter]:
    with runtime.sessions() as session:
        return list(session.scalars(select(DeadLetter)))


def _answers(runtime: Runtime, kind: str) -> list[dict[str, Any]]:
    """The payloads of the `kind` messages the ledger wrote to the outbox for fulfilment."""
    with runtime.sessions() as session:
        rows = session.scalars(select(OutboxRow).where(OutboxRow.actor_name == kind).order_by(OutboxRow.id))
        return [json.loads(row.body)["kwargs"]["payload"] for row in rows]


def test_a_capture_posts_one_balanced_transaction_with_the_market_fees(ledger: Runtime) -> None:
    order = amounts()

    deliver(ledger, CapturePayment(**order))

    posted = journal(ledger)
    assert list(posted) == [f"payment_captured:{order['order_id']}"]
    capture = posted[f"payment_captured:{order['order_id']}"]
    assert lines(capture) == {
        BUYER_PAYMENTS_CLEARING: 2500 + 299 + 195,
        seller_pending(order["seller_id"]): -2500,
        BUYER_FEE_REVENUE: -195,
        CARRIER_PAYABLE: -299,
    }
    assert {entry.currency for entry in capture.entries} == {"GBP"}
    assert capture.imbalance() == {}


def test_the_same_capture_delivered_again_posts_nothing_more(ledger: Runtime) -> None:
    capture = CapturePayment(**amounts())
    deliver(ledger, capture, key="checkout:1")

    deliver(ledger, capture, key="checkout:1")  # a redelivery: the inbox skips it
    deliver(ledger, capture, key="checkout:1-resent")  # a resend under a new key: the journal skips it

    with ledger.sessions() as session:
        assert len(session.scalars(select(TransactionRecord)).all()) == 1
        assert len(session.scalars(select(EntryRecord)).all()) == 4


def test_a_capture_of_the_same_order_with_other_amounts_is_dead_lettered_as_a_conflict(
    broker: Any, worker: Any, ledger: Runtime
) -> None:
    # Given a captured order
    order = amounts()
    send = broker.get_actor("ledger.capture_payment").send_with_options
    send(kwargs=kwargs_for(CapturePayment(**order)))
    broker.join("ledger", timeout=10_000)
    worker.join()
    # When another producer books the same order for another price
    send(kwargs=kwargs_for(CapturePayment(**order | {"item_price_minor": 2600})))
    broker.join("ledger", timeout=10_000)
    worker.join()
    # Then that message is dead-lettered with its reason, and the first capture stands
    dead = wait_until(lambda: _dead_letters(ledger))
    assert dead[0].exception_type == "ConflictingReplay"
    assert "item_price_minor 2600 != captured 2500" in dead[0].reason
    capture = journal(ledger)[f"payment_captured:{order['order_id']}"]
    assert lines(capture)[seller_pending(order["seller_id"])] == -2500
    # and fulfilment heard only of the booked capture: a dead letter is not an answer
    assert len(_answers(ledger, "fulfilment.record_payment")) == 1
    assert _answers(ledger, "fulfilment.record_payment_refusal") == []


def test_a_booked_capture_tells_fulfilment_what_was_booked(ledger: Runtime) -> None:
    order = amounts()

    deliver(ledger, CapturePayment(**order))

    assert _answers(ledger, "fulfilment.record_payment") == [
        {
            "order_id": str(order["order_id"]),
            "buyer_total_minor": 2994,
            "seller_net_minor": 2500,
            "currency": "GBP",
        }
    ]
    assert _answers(ledger, "fulfilment.record_payment_refusal") == []


def test_a_capture_in_a_market_without_fees_is_answered_with_a_refusal_not_dead_lettered(
    broker: Any, worker: Any, ledger: Runtime
) -> None:
    payload = CapturePayment(**amounts(market="SE", currency="SEK"))

    broker.get_actor("ledger.capture_payment").send_with_options(kwargs=kwargs_for(payload))
    broker.join("ledger", timeout=10_000)
    worker.join()

    [refusal] = wait_until(lambda: _answers(ledger, "fulfilment.record_payment_refusal"))
    assert refusal["order_id"] == str(payload.order_id)
    assert "no fees configured for market 'SE'" in refusal["reason"]
    assert _dead_letters(ledger) == []
    assert journal(ledger) == {}
    assert _answers(ledger, "fulfilment.record_payment") == []


def test_a_capture_in_a_currency_other_than_the_markets_is_answered_with_a_refusal(ledger: Runtime) -> None:
    deliver(ledger, CapturePayment(**amounts(currency="EUR")))

    [refusal] = _answers(ledger, "fulfilment.record_payment_refusal")
    assert "GB is priced in GBP, not EUR" in refusal["reason"]
    assert journal(ledger) == {}


def test_a_reversal_in_a_market_without_fees_raises_a_permanent_error(ledger: Runtime) -> None:
    with pytest.raises(UnknownMarket):
        deliver(ledger, ReversePayment(**amounts(market="SE", currency="SEK")))


def test_a_release_in_a_currency_other_than_the_markets_is_refused(ledger: Runtime) -> None:
    with pytest.raises(MarketCurrencyMismatch, match="GB is priced in GBP, not EUR"):
        deliver(ledger, ReleaseFunds(**amounts(currency="EUR")))


def test_a_reversal_that_overtakes_its_capture_posts_the_capture_then_the_reversal(ledger: Runtime) -> None:
    order = amounts()

    deliver(ledger, ReversePayment(**order))

    posted = journal(ledger)
    assert sorted(posted) == sorted(
        [f"payment_captured:{order['order_id']}", f"payment_reversed:{order['order_id']}"]
    )
    balances = trial_balance_report_for(ledger)["GBP"]
    remaining = {account: amount for account, amount in balances.items() if amount}
    assert remaining == {BUYER_PAYMENTS_CLEARING: 2994, REFUNDS_PAYABLE: -2994}


def test_a_capture_arriving_after_its_reversal_posts_nothing_more(ledger: Runtime) -> None:
    order = amounts()
    deliver(ledger, ReversePayment(**order))

    deliver(ledger, CapturePayment(**order))

    assert len(journal(ledger)) == 2


def test_a_release_that_overtakes_its_capture_posts_the_capture_then_the_release(ledger: Runtime) -> None:
    order = amounts()

    deliver(ledger, ReleaseFunds(**order))

    balances = trial_balance_report_for(ledger)["GBP"]
    assert balances[seller_pending(order["seller_id"])] == 0
    assert balances[seller_available(order["seller_id"])] == -2500


def test_a_reversal_after_the_release_is_refused_and_posts_nothing(ledger: Runtime) -> None:
    order = amounts()
    deliver(ledger, CapturePayment(**order))
    deliver(ledger, ReleaseFunds(**order))

    with pytest.raises(FundsAlreadyReleased, match="cannot reverse a payment after its release"):
        deliver(ledger, ReversePayment(**order))

    assert sorted(journal(ledger)) == sorted(
        [f"payment_captured:{order['order_id']}", f"funds_released:{order['order_id']}"]
    )


def test_a_release_after_the_reversal_is_refused(ledger: Runtime) -> None:
    order = amounts()
    deliver(ledger, ReversePayment(**order))

    with pytest.raises(PaymentAlreadyReversed):
        deliver(ledger, ReleaseFunds(**order))


def test_a_release_and_a_reversal_handled_at_once_cannot_both_be_posted(ledger: Runtime) -> None:
    order = amounts()
    deliver(ledger, CapturePayment(**order))
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def handle(payload: OrderAmounts) -> None:
        start.wait()
        try:
            deliver(ledger, payload)
        except (FundsAlreadyReleased, PaymentAlreadyReversed) as error:
            errors.append(error)

    threads = [
        threading.Thread(target=handle, args=(p,)) for p in (ReleaseFunds(**order), ReversePayment(**order))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(errors) == 1
    assert len(journal(ledger)) == 2


def test_release_and_reversal_use_the_fees_of_the_capture_after_the_schedule_changes(
    settings: Settings, ledger: Runtime
) -> None:
    # Given an order captured under the default schedule (no commission in GB)
    order = amounts()
    deliver(ledger, CapturePayment(**order))
    # When GB starts charging 10% commission before the funds are released
    pricier = DEFAULT_FEE_SCHEDULE_JSON.replace('"commission_bps": 0', '"commission_bps": 1000')
    later = Runtime.from_settings(settings, adapters={"fees": lambda _: FeeSchedule.from_json(pricier)})
    try:
        deliver(later, ReleaseFunds(**order))
    finally:
        later.close()
    # Then the seller is released exactly what was held for them
    balances = trial_balance_report_for(ledger)["GBP"]
    assert balances[seller_pending(order["seller_id"])] == 0
    assert balances[seller_available(order["seller_id"])] == -2500


def test_the_release_of_a_zero_net_is_recorded_and_still_blocks_a_reversal(
    settings: Settings, ledger: Runtime
) -> None:
    # A commission of 100% leaves the seller nothing: the release has no lines but must still exist.
    everything = DEFAULT_FEE_SCHEDULE_JSON.replace('"commission_bps": 0', '"commission_bps": 10000')
    greedy = Runtime.from_settings(settings, adapters={"fees": lambda _: FeeSchedule.from_json(everything)})
    order = amounts()
    try:
        deliver(greedy, ReleaseFunds(**order))
        with pytest.raises(FundsAlreadyReleased):
            deliver(greedy, ReversePayment(**order))
    finally:
        greedy.close()

    assert journal(ledger)[f"funds_released:{order['order_id']}"].entries == ()


def test_a_posting_key_already_used_for_other_entries_is_a_conflicting_replay(ledger: Runtime) -> None:
    # Given a release booked by an earlier (buggy) version for the wrong amount
    order = amounts()
    deliver(ledger, CapturePayment(**order))
    wrong = JournalTransaction(
        f"funds_released:{order['order_id']}",
        "funds_released",
        order["order_id"],
        (),
    )
    with ledger.sessions.begin() as session:
        session.add(
            TransactionRecord(
                posting_key=wrong.posting_key,
                kind=wrong.kind,
                order_id=wrong.order_id,
                content_hash=content_hash(wrong),
            )
        )
    # When the release is handled, it is refused rather than silently skipped
    with pytest.raises(ConflictingReplay, match="already posted with different entries"):
        deliver(ledger, ReleaseFunds(**order))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_entries SET amount_minor = amount_minor * 2",
        "DELETE FROM journal_entries",
        "UPDATE journal_transactions SET kind = 'edited'",
        "DELETE FROM journal_transactions",
    ],
)
def test_the_journal_refuses_updates_and_deletes(ledger: Runtime, statement: str) -> None:
    deliver(ledger, CapturePayment(**amounts()))

    with pytest.raises(DBAPIError, match="the journal is append-only"), ledger.engine.begin() as connection:
        connection.execute(text(statement))


def test_an_unbalanced_transaction_cannot_be_committed(ledger: Runtime) -> None:
    with (
        pytest.raises(DBAPIError, match="does not balance: GBP entries sum to 1"),
        ledger.sessions.begin() as session,
    ):
        _insert_transaction(session, "manual:1", [("a", 5), ("b", -4)])

    assert journal(ledger) == {}


def test_the_trial_balance_sums_to_zero_per_currency_across_markets(ledger: Runtime) -> None:
    for market, currency in [("GB", "GBP"), ("US", "USD"), ("FR", "EUR"), ("DE", "EUR")]:
        first, second = amounts(market=market, currency=currency), amounts(market=market, currency=currency)
        deliver(ledger, CapturePayment(**first))
        deliver(ledger, ReleaseFunds(**first))
        deliver(ledger, ReversePayment(**second))

    with ledger.sessions() as session:
        report = trial_balance_report(session)

    assert report.ok, report.violations
    assert report.totals == {"EUR": 0, "GBP": 0, "USD": 0}
    # US: 10% commission (250) + buyer fee (195) on the released order; the reversed one earns nothing.
    assert report.revenue == {"GBP": 195, "USD": 250 + 195, "EUR": 2 * (125 + 195)}


def test_the_trial_balance_command_exits_0_on_a_sound_journal(settings: Settings, ledger: Runtime) -> None:
    order = amounts()
    deliver(ledger, CapturePayment(**order))
    deliver(ledger, ReleaseFunds(**order))

    result = _trial_balance(settings)

    assert result.exit_code == 0, result.output
    assert "buyer_payments_clearing" in result.output
    assert re.search(r"^GBP +total +29\.94 +29\.94$", result.output, re.MULTILINE)
    assert "revenue: GBP 1.95" in result.output
    assert "OK:" in result.output


def test_the_trial_balance_command_exits_1_and_names_what_is_wrong(
    settings: Settings, ledger: Runtime
) -> None:
    # Given a sound order, then rows written around the journal's triggers and foreign key
    deliver(ledger, CapturePayment(**amounts()))
    with ledger.sessions.begin() as session:
        session.execute(text("SET LOCAL session_replication_role = replica"))
        _insert_transaction(session, "manual:1", [("a", 5), ("b", -4)])
        session.execute(
            text(
                "INSERT INTO journal_entries (transaction_id, account, amount_minor, currency) "
                "VALUES (999999, 'stray', 7, 'EUR')"
            )
        )
    # When the trial balance runs
    result = _trial_balance(settings, "--json")
    # Then it fails, naming both problems and the currencies that do not sum to zero
    assert result.exit_code == 1, result.output
    report = _json(result.output)
    assert report["ok"] is False
    assert report["totals"] == {"EUR": 7, "GBP": 1}
    unbalanced, stray = report["violations"]
    assert unbalanced == "manual:1: unbalanced, entries sum to {'GBP': 1}"
    assert stray.endswith(": its transaction 999999 does not exist (stray 7 EUR)")


def test_the_report_as_json_is_in_minor_units(ledger: Runtime) -> None:
    deliver(ledger, CapturePayment(**amounts()))

    with ledger.sessions() as session:
        document = as_json(trial_balance_report(session))

    assert document["ok"] is True
    assert document["revenue"] == {"GBP": 195}
    assert document["balances"]["GBP"][BUYER_PAYMENTS_CLEARING] == 2994
