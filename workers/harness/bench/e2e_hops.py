"""Where an order's time goes, hop by hop, read from what the pipeline already records.

The path to `confirmed` is one relay hop (`fulfilment.place_order`); to the label, three
(then `ledger.capture_payment` and `shipping.buy_label`, then `fulfilment.record_payment` and
`fulfilment.record_label`). For every message of those kinds that the window's orders sent:

- **outbox**: its row's `published_at` minus the start of the transaction that wrote it
  (`created_at` is that transaction's `now()`). For the API's row that is the intake's commit and
  the relay's wake-up and claim; for a worker's follow-up it also holds the rest of the producing
  handler and its commit, which `handling` below tells apart.
- **queue**: the start of the transaction that handled it (`processed_messages.processed_at`)
  minus `published_at`: the broker, the prefetch buffer, a free worker thread, decoding and the
  middleware before BEGIN.
- **handling**: each actor's mean attempt time, from the workers' own histogram
  (`circulate_message_handling_seconds`), as the difference between a scrape before and after.

`order_transitions.at` is a transaction's `now()` too, so `confirmed` is stamped when
`place_order`'s transaction began: accept -> confirmed is the intake's outbox wait plus its queue
wait, and the handler's own time only shows in the next hop.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from workers.harness.bench import load

#: The kinds on the path to the label, in hop order.
PATH_KINDS = (
    "fulfilment.place_order",
    "ledger.capture_payment",
    "shipping.buy_label",
    "fulfilment.record_payment",
    "fulfilment.record_label",
)
_HANDLING = "circulate_message_handling_seconds"

_HOPS = (
    "SELECT o.actor_name, extract(epoch FROM o.published_at - greatest(o.created_at, o.available_at)), "
    "extract(epoch FROM p.processed_at - o.published_at) "
    "FROM outbox o JOIN processed_messages p ON p.message_id = o.message_id "
    "WHERE o.published_at IS NOT NULL AND o.actor_name = ANY(%s) "
    "AND convert_from(o.body, 'UTF8')::jsonb #>> '{kwargs,payload,order_id}' = ANY(%s)"
)


@dataclass(frozen=True)
class Hop:
    kind: str
    messages: int
    outbox_ms: dict[str, float]
    queue_ms: dict[str, float]
    #: Mean attempt time of the actor over the window, None when the workers' scrape failed.
    handling_mean_ms: float | None


def hops(conn: psycopg.Connection[tuple[object, ...]], order_ids: list[str],
         handling: dict[str, tuple[float, float]]) -> list[Hop]:  # fmt: skip
    """The path's hops for `order_ids`; `handling` maps an actor to (seconds, attempts) in the window."""
    outbox: dict[str, list[float]] = defaultdict(list)
    queue: dict[str, list[float]] = defaultdict(list)
    for kind, outbox_s, queue_s in conn.execute(_HOPS, (list(PATH_KINDS), order_ids)).fetchall():
        outbox[str(kind)].append(float(outbox_s))  # type: ignore[arg-type]
        queue[str(kind)].append(float(queue_s))  # type: ignore[arg-type]
    found = []
    for kind in PATH_KINDS:
        if not outbox[kind]:
            continue
        seconds, attempts = handling.get(kind, (0.0, 0.0))
        mean = round(1000 * seconds / attempts, 1) if attempts else None
        found.append(
            Hop(kind, len(outbox[kind]), load.summary_ms(outbox[kind]), load.summary_ms(queue[kind]), mean)
        )
    return found


def scrape_handling(metrics_url: str) -> dict[str, tuple[float, float]]:
    """actor -> (handling seconds, attempts) so far, summed over queues; empty if the scrape fails."""
    try:
        text = httpx.get(metrics_url, timeout=10).text
    except httpx.HTTPError:
        return {}
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for family in text_string_to_metric_families(text):
        if family.name != _HANDLING:
            continue
        for sample in family.samples:
            actor = sample.labels.get("actor", "")
            if sample.name == f"{_HANDLING}_sum":
                totals[actor][0] += sample.value
            elif sample.name == f"{_HANDLING}_count":
                totals[actor][1] += sample.value
    return {actor: (total[0], total[1]) for actor, total in totals.items()}


def window(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    """What the workers spent between two scrapes, per actor."""
    return {
        actor: (seconds - before.get(actor, (0.0, 0.0))[0], attempts - before.get(actor, (0.0, 0.0))[1])
        for actor, (seconds, attempts) in after.items()
    }


def describe(found: list[Hop]) -> str:
    """One line per hop: outbox and queue waits (p50 / p95) and the mean handling time."""
    lines = []
    for hop in found:
        handling = f"{hop.handling_mean_ms:,.0f} ms" if hop.handling_mean_ms is not None else "-"
        lines.append(
            f"    {hop.kind:<26} x{hop.messages:<4} outbox {hop.outbox_ms['p50_ms']:,.0f} / "
            f"{hop.outbox_ms['p95_ms']:,.0f} ms, queue {hop.queue_ms['p50_ms']:,.0f} / "
            f"{hop.queue_ms['p95_ms']:,.0f} ms, handling {handling} (mean)"
        )
    return "\n".join(lines)
