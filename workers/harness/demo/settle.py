"""Waiting for the platform to go quiet once every order is final, before auditing it.

An order reaches its final state before its last follow-ups are done: the seller's
"funds_released" email and the ledger's release are messages the same transaction only queued.
Auditing at once would report them missing. So the demo waits until nothing is left to do: no
unpublished outbox row, no message in any work or delay queue (ready or held by a worker, which is
where Dramatiq keeps delayed retries), and no new processed message, dead letter or notification
for `QUIET_S`, longer than the demo's largest retry backoff (2 s).
"""

from __future__ import annotations

import threading
import time
from urllib.parse import quote

import httpx
from sqlalchemy import Engine, text

from shared.config import Settings
from shared.topology import management_client

QUIET_S = 3.0

_ACTIVITY = text(
    "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS unpublished, "
    "(SELECT count(*) + coalesce(sum(duplicate_count), 0) FROM processed_messages) AS handled, "
    "(SELECT count(*) FROM dead_letters) AS dead, "
    "(SELECT count(*) FROM notifications) AS notified"
)


def wait_until_quiet(
    engine: Engine, settings: Settings, *, timeout_s: float, stall_s: float | None = None
) -> bool:
    """True once the platform has been idle for QUIET_S; False if it is still busy at `timeout_s`.

    With `stall_s`, a platform still working through a backlog (a long run's notifications) is
    waited for as long as it makes progress: False comes earlier, once nothing has moved (no
    message handled, no dead letter, no notification) for `stall_s` while work is left.
    """
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    last: tuple[int, ...] | None = None
    quiet_since = moved_at = time.monotonic()
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            unpublished, *activity = connection.execute(_ACTIVITY).one()
        busy = unpublished > 0 or queued_messages(settings) > 0
        if tuple(activity) != last:
            moved_at = time.monotonic()
        if busy or tuple(activity) != last:
            last, quiet_since = tuple(activity), time.monotonic()
            if stall_s is not None and time.monotonic() - moved_at >= stall_s:
                return False
        elif time.monotonic() - quiet_since >= QUIET_S:
            return True
        pause.wait(0.25)
    return False


def what_is_busy(engine: Engine, settings: Settings) -> str:
    """What keeps the platform from being quiet, for the report of a run that did not settle:
    unpublished outbox rows and, per non-empty queue, its ready and unacknowledged messages and
    consumers (a message held unacknowledged by a consumer that no longer works shows here)."""
    with engine.connect() as connection:
        unpublished = connection.execute(_ACTIVITY).one()[0]
    parts = [f"{unpublished} unpublished outbox rows"]
    path = f"/api/queues/{quote(settings.amqp_vhost, safe='')}"
    columns = "name,messages,messages_ready,messages_unacknowledged,consumers"
    try:
        with management_client(settings) as client:
            response = client.get(path, params={"columns": columns})
            response.raise_for_status()
    except httpx.HTTPError as error:
        return f"{parts[0]}; queues unknown ({error})"
    for queue in response.json():
        if int(queue.get("messages") or 0) > 0:
            parts.append(
                f"{queue['name']}: {queue.get('messages_ready', 0)} ready, "
                f"{queue.get('messages_unacknowledged', 0)} unacknowledged, "
                f"{queue.get('consumers', 0)} consumers"
            )
    return "; ".join(parts)


def queued_messages(settings: Settings) -> int:
    """Messages ready or unacknowledged in the vhost's work and delay queues (RabbitMQ's view).

    Dead-letter queues (.XQ) are left out: what lands there stays, and the report counts it.
    """
    path = f"/api/queues/{quote(settings.amqp_vhost, safe='')}"
    try:
        with management_client(settings) as client:
            response = client.get(path, params={"columns": "name,messages"})
            response.raise_for_status()
    except httpx.HTTPError:
        return 1  # unknown counts as busy; the deadline bounds the wait
    return sum(int(q.get("messages") or 0) for q in response.json() if not q["name"].endswith(".XQ"))
