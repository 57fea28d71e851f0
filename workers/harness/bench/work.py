"""The same unit of work for every contender: record one row per message.

`circulate` runs it through `handler_actor` (validation, inbox claim, unit of work, commit);
`bare` is plain Dramatiq with one psycopg insert, the baseline the core is to match.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import dramatiq
import psycopg

from shared.actors import handler_actor
from shared.config import Settings
from shared.db import libpq_url
from shared.messages import Payload
from shared.uow import UnitOfWork


class RecordSale(Payload):
    kind: ClassVar[str] = "bench.record_sale"
    queue: ClassVar[str] = "fulfilment"

    sale_id: int
    amount_minor: int


_INSERT = "INSERT INTO bench_sales (sale_id, amount_minor) VALUES (%(sale_id)s, %(amount_minor)s)"


def record_sale(uow: UnitOfWork, msg: RecordSale) -> None:
    """A row for the record, which nothing reads in the transaction: sent with the commit
    (`uow.write_at_commit`), as a domain handler sends such a write."""
    uow.write_at_commit(_INSERT, {"sale_id": msg.sale_id, "amount_minor": msg.amount_minor})


RECORD_SALE = handler_actor(record_sale, RecordSale)

_local = threading.local()
_BARE_INSERT = "INSERT INTO bench_sales (sale_id, amount_minor) VALUES (%s, %s)"


def bind_bare_actor(broker: dramatiq.Broker, settings: Settings) -> None:
    """Plain Dramatiq: one connection per thread, one autocommit INSERT per message."""

    def bare_record_sale(sale_id: int, amount_minor: int) -> None:
        conn = getattr(_local, "conn", None)
        if conn is None:
            conn = _local.conn = psycopg.connect(libpq_url(settings), autocommit=True)
        conn.execute(_BARE_INSERT, (sale_id, amount_minor))

    dramatiq.Actor(
        bare_record_sale, broker=broker, actor_name="bench.bare_record_sale", queue_name="fulfilment",
        priority=0, options={},
    )  # fmt: skip


def sale_kwargs(sale_id: int) -> dict[str, Any]:
    return {"sale_id": sale_id, "amount_minor": 1000 + sale_id % 5000}
