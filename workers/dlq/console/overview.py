"""The console's queue overview: depths, consumers and rates from RabbitMQ, dead counts from the archive.

One row per Circulate queue: ready and unacknowledged messages, delayed ones (its `.DQ`), dead
copies not yet swept (its `.XQ`), dead messages in the archive, consumers, and the publish,
deliver and ack rates RabbitMQ's management API reports (`/api/queues/<vhost>`). If the
management API does not answer, the overview says so instead of failing the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from dramatiq.common import dq_name, xq_name

from shared.config import QUEUES, Settings
from shared.topology import management_client

_COLUMNS = "name,messages_ready,messages_unacknowledged,messages,consumers,message_stats"


@dataclass(frozen=True)
class QueueRow:
    name: str
    ready: int
    unacked: int
    delayed: int
    dead_unswept: int
    dead_archived: int
    consumers: int
    publish_rate: float
    deliver_rate: float
    ack_rate: float


def fetch_queues(settings: Settings) -> dict[str, dict[str, Any]]:
    """RabbitMQ's view of every queue in the vhost, by name; raises httpx.HTTPError if it fails."""
    vhost = quote(settings.amqp_vhost, safe="")
    with management_client(settings) as client:
        response = client.get(f"/api/queues/{vhost}", params={"columns": _COLUMNS})
        response.raise_for_status()
        return {queue["name"]: queue for queue in response.json()}


def overview(settings: Settings, archived_dead: dict[str, int]) -> tuple[list[QueueRow], str | None]:
    """Rows for every queue, and an error text when the management API could not be read."""
    try:
        queues = fetch_queues(settings)
        error = None
    except httpx.HTTPError as failure:
        queues, error = {}, f"RabbitMQ's management API did not answer: {failure}"
    return [_row(name, queues, archived_dead.get(name, 0)) for name in QUEUES], error


def _row(name: str, queues: dict[str, dict[str, Any]], dead_archived: int) -> QueueRow:
    main = queues.get(name, {})
    stats = main.get("message_stats") or {}
    return QueueRow(
        name=name,
        ready=int(main.get("messages_ready") or 0),
        unacked=int(main.get("messages_unacknowledged") or 0),
        delayed=int(queues.get(dq_name(name), {}).get("messages") or 0),
        dead_unswept=int(queues.get(xq_name(name), {}).get("messages") or 0),
        dead_archived=dead_archived,
        consumers=int(main.get("consumers") or 0),
        publish_rate=_rate(stats, "publish"),
        deliver_rate=_rate(stats, "deliver_get"),
        ack_rate=_rate(stats, "ack"),
    )


def _rate(stats: dict[str, Any], name: str) -> float:
    return float((stats.get(f"{name}_details") or {}).get("rate") or 0.0)
