"""The ledger's domain functions: book an order's money events as balanced journal transactions.

Messages may arrive in any order (a reversal may overtake the capture it undoes), so release and
reversal first make sure the capture is booked: the order was paid at checkout whatever fulfilment
managed to confirm. Later postings reuse the capture's terms (`posting.capture_terms`), never a fresh
quote, so a fee schedule change between capture and release cannot unbalance a seller's account.

The capture is answered: fulfilment hands the seller a label only once it hears the payment is booked
(`fulfilment.record_payment`, written in the transaction that books it). A capture the ledger's own
rules refuse for good (`REFUSALS`: no fees for the market, another currency) books nothing and is
answered with `fulfilment.record_payment_refusal` instead of being dead-lettered: the message was
understood and the answer is final, so the order goes to `needs_attention`, where support sees it;
a dead letter would only say it again, and a re-drive would refuse again. Any other failure (a
conflicting replay, a database error) is not an answer: it is dead-lettered and the order waits,
confirmed and without its label handed over, until the capture is re-driven and booked.

Every function takes a per-order advisory lock first. Without it a release and a reversal of the same
order, handled at once by two workers, would each see that the other has not been booked and both
be posted; with it they run one after the other and the second is refused.
"""

from __future__ import annotations

from shared import metrics
from shared.errors import ConflictingReplay, PermanentError
from shared.fees import FeeQuote, FeeSchedule, MarketCurrencyMismatch, UnknownMarket, quote
from shared.uow import UnitOfWork
from tasks.fulfilment.messages import RecordPayment, RecordPaymentRefusal
from tasks.ledger import posting
from tasks.ledger.messages import CapturePayment, OrderAmounts, ReleaseFunds, ReversePayment
from tasks.ledger.posting import FUNDS_RELEASED, PAYMENT_CAPTURED, PAYMENT_REVERSED, JournalTransaction


class FundsAlreadyReleased(PermanentError):
    """A reversal arrived after the seller's funds were released: they may be paid out already, so
    taking them back is a manual clawback, not something a retry can do."""


class PaymentAlreadyReversed(PermanentError):
    """A release arrived after the payment was reversed: the buyer is owed the money, not the seller."""


#: The refusals the ledger answers rather than dead-letters: the order's terms can never be booked
#: under this ledger's fee schedule, however often the capture is retried (see the module docstring).
REFUSALS = (UnknownMarket, MarketCurrencyMismatch)


def capture_payment(uow: UnitOfWork, msg: CapturePayment) -> None:
    """Book the buyer's payment, split between the seller (held), the marketplace and the carrier,
    and tell fulfilment it is booked, or that it never will be."""
    _lock_order(uow, msg)
    try:
        captured = _ensure_captured(uow, msg)
    except REFUSALS as refused:
        reason = f"payment cannot be booked: {refused}"
        uow.outbox.add(RecordPaymentRefusal(order_id=msg.order_id, reason=reason))
        return
    uow.outbox.add(
        RecordPayment(
            order_id=msg.order_id,
            buyer_total_minor=captured.buyer_total_minor,
            seller_net_minor=captured.seller_net_minor,
            currency=captured.currency,
        )
    )


def release_funds(uow: UnitOfWork, msg: ReleaseFunds) -> None:
    """Make the seller's net available, booking the capture first if it has not arrived yet."""
    _lock_order(uow, msg)
    captured = _ensure_captured(uow, msg)
    if _is_posted(uow, posting.posting_key(PAYMENT_REVERSED, msg.order_id)):
        raise PaymentAlreadyReversed(f"order {msg.order_id} was reversed; its funds cannot be released")
    _post(uow, posting.funds_released(msg.order_id, msg.seller_id, captured))


def reverse_payment(uow: UnitOfWork, msg: ReversePayment) -> None:
    """Owe the buyer their payment back, booking the capture first if it has not arrived yet (the
    losing buyer of a double-buy paid at checkout though fulfilment never confirmed the order)."""
    _lock_order(uow, msg)
    captured = _ensure_captured(uow, msg)
    if _is_posted(uow, posting.posting_key(FUNDS_RELEASED, msg.order_id)):
        raise FundsAlreadyReleased(f"order {msg.order_id}: cannot reverse a payment after its release")
    reversal = posting.payment_reversed(msg.order_id, msg.seller_id, captured, msg.shipping_price_minor)
    _post(uow, reversal)


def _ensure_captured(uow: UnitOfWork, msg: OrderAmounts) -> FeeQuote:
    """The quote the order was captured at; posts the capture, quoted now, if there is none yet.

    A stored capture whose seller or prices differ from the message's is a ConflictingReplay: two
    producers disagree about the order, and neither version may be booked over the other.
    """
    stored = _load(uow, posting.posting_key(PAYMENT_CAPTURED, msg.order_id))
    if stored is None:
        fee_quote = _quote(uow, msg)
        capture = posting.payment_captured(msg.order_id, msg.seller_id, fee_quote, msg.shipping_price_minor)
        _post(uow, capture)
        return fee_quote
    terms = posting.capture_terms(stored)
    facts = msg.model_dump(include={"seller_id", "currency", "item_price_minor", "shipping_price_minor"})
    if problems := terms.disagreements(**facts):
        raise ConflictingReplay(f"{stored.posting_key} was booked with other terms: {'; '.join(problems)}")
    return terms.quote


def _quote(uow: UnitOfWork, msg: OrderAmounts) -> FeeQuote:
    """Today's charges for the order, by the rule the API and fulfilment check too; raises one of
    `REFUSALS` for an order that can never be booked."""
    fees = uow.runtime.adapter("fees", FeeSchedule).for_order(msg.market, msg.currency)
    return quote(fees, msg.item_price_minor, msg.shipping_price_minor)


def _post(uow: UnitOfWork, transaction: JournalTransaction) -> None:
    """Insert a transaction and its entries once; a replay is a no-op, a key reused for other content
    raises ConflictingReplay. ON CONFLICT rather than a lookup first: the unique index, not the order
    lock, is what guarantees one posting per key, whoever else writes to the journal.

    A transaction without entries (the release of a zero net) is still stored: the event happened, and
    the release/reversal guards read it. The transaction and its entries go in one statement.
    """
    if imbalance := transaction.imbalance():
        raise posting.UnbalancedPosting(f"{transaction.posting_key} does not balance: off by {imbalance}")
    digest = posting.content_hash(transaction)
    entries = transaction.entries
    params = {
        "posting_key": transaction.posting_key,
        "kind": transaction.kind,
        "order_id": transaction.order_id,
        "content_hash": digest,
        "accounts": [entry.account for entry in entries],
        "amounts": [entry.amount_minor for entry in entries],
        "currencies": [entry.currency for entry in entries],
    }
    if uow.execute(_POST, params).fetchone() is None:
        _check_replay(uow, transaction.posting_key, digest)
        return
    currency = entries[0].currency if entries else "none"
    metrics.LEDGER_POSTINGS.labels(transaction.kind, currency).inc()


_POST = (
    "WITH posted AS (INSERT INTO journal_transactions (posting_key, kind, order_id, content_hash) "
    "VALUES (%(posting_key)s, %(kind)s, %(order_id)s, %(content_hash)s) "
    "ON CONFLICT (posting_key) DO NOTHING RETURNING id), "
    "lines AS (INSERT INTO journal_entries (transaction_id, account, amount_minor, currency) "
    "SELECT posted.id, line.account, line.amount_minor, line.currency FROM posted, "
    "unnest(%(accounts)s::text[], %(amounts)s::bigint[], %(currencies)s::text[]) WITH ORDINALITY "
    "AS line (account, amount_minor, currency, n) ORDER BY line.n) "
    "SELECT id FROM posted"
)


def _check_replay(uow: UnitOfWork, key: str, digest: str) -> None:
    stored = uow.execute(_HASH, {"key": key}).fetchone()
    if stored is None or stored[0] != digest:
        raise ConflictingReplay(f"{key} was already posted with different entries")


_HASH = "SELECT content_hash FROM journal_transactions WHERE posting_key = %(key)s"
#: A transaction and its entries in the order they were written; one row (entries NULL) when it has none.
_LOAD = (
    "SELECT t.kind, t.order_id, e.account, e.amount_minor, e.currency FROM journal_transactions t "
    "LEFT JOIN journal_entries e ON e.transaction_id = t.id WHERE t.posting_key = %(key)s ORDER BY e.id"
)
_EXISTS = "SELECT EXISTS (SELECT 1 FROM journal_transactions WHERE posting_key = %(key)s)"
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0))"


def _load(uow: UnitOfWork, key: str) -> JournalTransaction | None:
    rows = uow.execute(_LOAD, {"key": key}).fetchall()
    if not rows:
        return None
    kind, order_id = rows[0][0], rows[0][1]
    entries = tuple(
        posting.Entry(account, amount, currency) for _, _, account, amount, currency in rows if account
    )
    return JournalTransaction(key, kind, order_id, entries)


def _is_posted(uow: UnitOfWork, key: str) -> bool:
    row = uow.execute(_EXISTS, {"key": key}).fetchone()
    return row is not None and bool(row[0])


def _lock_order(uow: UnitOfWork, msg: OrderAmounts) -> None:
    """Serialise the ledger's handling of one order until the transaction ends (see module docstring)."""
    uow.execute(_LOCK, {"key": f"ledger:{msg.order_id}"})
