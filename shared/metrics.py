"""Every Prometheus metric of Circulate, its name, labels and buckets: nothing else lives here.

One module, as Oban's `telemetry.ex`, so a dashboard, an alert or a reader can find every name in
one place. docs/reference/metrics.md is generated from these objects (name, type, labels, help),
and docs/operations/observability.md says which process records each. Conventions: the
`circulate_` prefix, base units (seconds, minor currency units), `_total` on counters, label values
from small closed sets.

Two kinds of metric, split on purpose:
- module-level objects are recorded by the process that does the work (workers, API, relay,
  adapters). Worker processes run in prometheus_client's multiprocess mode, where every metric
  object without labels writes a file the moment it is created; so the only module-level gauge is
  the labelled in-progress gauge, with `livesum` so a dead process's share is dropped.
- `ExporterMetrics` are gauges of shared state (queue depths, outbox, dead letters, orders,
  ledger). Only the exporter builds them, afresh on every scrape into no registry, so they are
  gathered once rather than by every worker, and a queue or group that disappears disappears
  from the output instead of keeping its last value.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from shared.outcome import Outcome

#: `circulate_messages_total{outcome}` values (`shared.outcome.Outcome`).
MESSAGE_OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)
#: `circulate_queue_messages{state}` values: the queue's ready and unacknowledged (prefetched by a
#: worker, not yet acked) messages, its `.DQ` (delayed, held until their eta) and `.XQ` (dead).
QUEUE_STATES = ("ready", "unacked", "delayed", "dead")

HANDLING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Queue waits run from milliseconds (idle workers) to hours (an outage); a day caps the range.
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400, 86400)
CARRIER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# Messages (recorded by shared.middleware.metrics in the worker processes)
MESSAGES = Counter(
    "circulate_messages_total",
    "Messages handled, by how they ended: succeeded, failed, retried, dead_lettered, duplicate_skipped.",
    ["queue", "actor", "outcome"],
)
MESSAGE_HANDLING = Histogram(
    "circulate_message_handling_seconds",
    "Time a worker spent on one attempt at a message.",
    ["queue", "actor"],
    buckets=HANDLING_BUCKETS,
)
MESSAGE_QUEUE_WAIT = Histogram(
    "circulate_message_queue_wait_seconds",
    "Time from the envelope's produced_at to the start of the first handling attempt.",
    ["queue", "actor"],
    buckets=WAIT_BUCKETS,
)
MESSAGES_IN_PROGRESS = Gauge(
    "circulate_messages_in_progress",
    "Messages being handled now; a process that dies stops counting.",
    ["queue", "actor"],
    multiprocess_mode="livesum",
)
# An ack or nack whose channel died with its node (recorded by shared.broker's consumer): RabbitMQ
# redelivers the message, and its idempotency key absorbs the repeat.
ACKS_LOST = Counter(
    "circulate_acks_lost_total",
    "Acks and nacks that could not be sent because the delivery's connection was lost; the broker "
    "redelivers those messages.",
    ["queue", "operation"],
)

# Outbox relay and dead-letter re-drive
OUTBOX_PUBLISHED = Counter(
    "circulate_outbox_published_total",
    "Outbox rows published to RabbitMQ and confirmed by it.",
)
DEAD_LETTERS_REDRIVEN = Counter(
    "circulate_dead_letters_redriven_total",
    "Dead letters sent back to their queue by an operator.",
    ["queue"],
)

# Adapters and domains
CARRIER_REQUEST = Histogram(
    "circulate_carrier_request_seconds",
    "Duration of calls to the carrier API, by operation.",
    ["operation"],
    buckets=CARRIER_BUCKETS,
)
CARRIER_RESPONSES = Counter(
    "circulate_carrier_responses_total",
    "Carrier API responses by operation and HTTP status (`error` when no response arrived).",
    ["operation", "status"],
)
NOTIFICATIONS = Counter(
    "circulate_notifications_total",
    "Notifications attempted, by channel (email, push) and result (sent, failed, suppressed).",
    ["channel", "result"],
)
LEDGER_POSTINGS = Counter(
    "circulate_ledger_postings_total",
    "Ledger postings written, by kind and currency.",
    ["kind", "currency"],
)

# HTTP API (recorded by workers.api.metrics, labelled by route template, never the raw path)
HTTP_REQUESTS = Counter(
    "circulate_http_requests_total",
    "API requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_REQUEST = Histogram(
    "circulate_http_request_seconds",
    "API request duration, by route template and method.",
    ["route", "method"],
)
# New orders the API commits together (workers.api.group_commit)
API_ORDER_GROUP_ORDERS = Histogram(
    "circulate_api_order_group_orders",
    "New orders sent to PostgreSQL in one statement and one commit by an API process.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
API_ORDER_GROUPS_REFUSED = Counter(
    "circulate_api_order_groups_refused_total",
    "Groups of new orders rolled back because one was not new (a replay, a reused key) or two "
    "groups waited on each other; each of their orders is then accepted on its own.",
)


class ExporterMetrics:
    """The gauges of shared state; the exporter builds a fresh set per scrape (see the docstring)."""

    def __init__(self) -> None:
        self.queue_messages = Gauge(
            "circulate_queue_messages",
            "Messages in a queue's main, delay (.DQ) and dead-letter (.XQ) queues, by state.",
            ["queue", "state"],
            registry=None,
        )
        self.queue_consumers = Gauge(
            "circulate_queue_consumers",
            "Consumers attached to the queue (each worker process has one per queue).",
            ["queue"],
            registry=None,
        )
        self.queue_oldest_message_age = Gauge(
            "circulate_queue_oldest_message_age_seconds",
            (
                "Age of the oldest message waiting in the queue (0 when empty); estimated as in "
                "docs/operations/observability.md#queue-age."
            ),
            ["queue"],
            registry=None,
        )
        self.outbox_backlog = Gauge(
            "circulate_outbox_backlog", "Outbox rows not yet published.", registry=None
        )
        self.outbox_oldest_age = Gauge(
            "circulate_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox row (0 when none).",
            registry=None,
        )
        self.scheduled_messages = Gauge(
            "circulate_scheduled_messages",
            "Messages waiting in the PostgreSQL schedule (outbox rows not yet due), by kind.",
            ["actor"],
            registry=None,
        )
        self.scheduled_next_due = Gauge(
            "circulate_scheduled_next_due_seconds",
            "Seconds until the next scheduled message of a kind is due (once due it counts in the backlog).",
            ["actor"],
            registry=None,
        )
        self.dead_letters = Gauge(
            "circulate_dead_letters",
            "Dead letters recorded and not re-driven, by queue, actor and exception type.",
            ["queue", "actor", "exception_type"],
            registry=None,
        )
        self.orders = Gauge("circulate_orders", "Orders by state.", ["state"], registry=None)
        self.ledger_imbalance = Gauge(
            "circulate_ledger_imbalance_minor",
            "Sum of all journal entries per currency in minor units; anything but 0 is a bug.",
            ["currency"],
            registry=None,
        )
        self.source_up = Gauge(
            "circulate_exporter_source_up",
            "1 when the exporter could read a source (rabbitmq, database) on this scrape, else 0.",
            ["source"],
            registry=None,
        )

    def all(self) -> tuple[Gauge, ...]:
        return tuple(value for value in vars(self).values() if isinstance(value, Gauge))
