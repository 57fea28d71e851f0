"""Settings: the one place that reads the environment (`CIRCULATE_*` variables).

Built once by an entry point and passed down explicitly; nothing reads the environment at import
time, so tests build their own `Settings(...)` pointing at their own database and vhost.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.broker_urls import AmqpNode, parse_amqp_urls, parse_http_urls

QUEUES: tuple[str, ...] = ("fulfilment", "shipping", "ledger", "notifications")


class Settings(BaseSettings):
    """Every setting, its default (localhost, development) and its meaning.

    docs/reference/settings.md is generated from these fields; every one has a description
    (tests/unit/test_settings_described.py).
    """

    model_config = SettingsConfigDict(env_prefix="CIRCULATE_", extra="ignore", frozen=True)

    database_url: str = Field(
        default="postgresql+psycopg://postgres@127.0.0.1:5432/circulate",
        description="PostgreSQL, as a SQLAlchemy URL (psycopg 3 driver).",
    )
    database_pool_size: int = Field(default=10, ge=1, description="Database connections per process.")
    # Behind PgBouncer in transaction pooling (docs/operations/postgres-at-scale.md): session state
    # does not survive a transaction, so LISTEN needs a direct URL, and PgBouncer before 1.21 cannot
    # carry prepared statements.
    database_direct_url: str | None = Field(
        default=None,
        description=(
            "PostgreSQL without a pooler in between, for what needs a session of its own (the relay's "
            "LISTEN); unset, `database_url` is used."
        ),
    )
    database_prepared_statements: bool = Field(
        default=True,
        description=(
            "Let psycopg prepare statements it runs often. Set to false behind PgBouncer older than "
            "1.21 in transaction pooling, where a statement prepared on one server connection is "
            "missing on the next."
        ),
    )
    # One URL, or the nodes of a cluster (shared.broker_urls parses and checks them once).
    amqp_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/circulate",
        description=(
            "RabbitMQ: one URL, or the URLs of a cluster's nodes separated by `,` or `;` (same vhost "
            "and credentials on each). Every process fails over to the next live node. The path is the "
            "vhost, which `circulate setup` creates if missing. See docs/operations/cluster.md."
        ),
    )
    # RabbitMQ's management API: creates the vhost in setup, reads queue depths for the console.
    rabbitmq_management_url: str = Field(
        default="http://127.0.0.1:15672",
        description=(
            "RabbitMQ's management API (vhost creation and leader rebalancing in setup, queue depths for "
            "the exporter and the console): one URL or several separated by `,` or `;`, tried in turn."
        ),
    )
    rabbitmq_management_user: str = Field(default="guest", description="User of the management API.")
    rabbitmq_management_password: SecretStr = Field(
        default=SecretStr("guest"), description="Password of the management API."
    )

    # Queues: quorum queues survive a node loss and give a delivery limit that stops poison loops.
    queue_type: str = Field(
        default="quorum",
        pattern="^(quorum|classic)$",
        description="`quorum` (survives a node loss, and has the delivery limit) or `classic`.",
    )
    delivery_limit: int = Field(
        default=20,
        ge=1,
        description=(
            "Quorum queues' `x-delivery-limit`: a message that kills its worker this often is dead-lettered."
        ),
    )

    # Retries: a handful, backoff capped in minutes, a time limit well below RabbitMQ's
    # consumer timeout (30 minutes by default), so a stuck handler is stopped before the broker
    # closes the channel under every other in-flight message.
    max_retries: int = Field(
        default=5,
        ge=0,
        description=(
            "Retries of a failing message before it is dead-lettered; also the most a producer's "
            "`retries` option may ask."
        ),
    )
    min_backoff_ms: int = Field(
        default=1_000, ge=1, description="First retry backoff, doubling up to `max_backoff_ms` (with jitter)."
    )
    max_backoff_ms: int = Field(default=300_000, ge=1, description="Longest retry backoff.")
    time_limit_ms: int = Field(
        default=120_000,
        ge=1_000,
        description=(
            "A handler still running after this long is stopped (well below RabbitMQ's 30-minute "
            "consumer timeout)."
        ),
    )
    max_age_ms: int = Field(
        default=7 * 24 * 3600 * 1000,
        ge=1_000,
        description="A message older than this is dead-lettered instead of handled.",
    )

    # Delays. Up to `broker_delay_max_ms` (retry backoff) a delayed message waits in RabbitMQ's
    # `.DQ`, held unacked by a worker until its eta: keep it well below RabbitMQ's consumer
    # timeout (30 minutes by default). Anything later waits in PostgreSQL (the outbox's
    # `available_at`) and the relay publishes it when due, so no worker holds it and a restart
    # costs nothing. A delay or eta beyond `schedule_max_delay_ms` is refused (dead-lettered).
    broker_delay_max_ms: int = Field(
        default=300_000,
        ge=0,
        description=(
            "The longest delay a worker may hold in a `.DQ`; later work waits in PostgreSQL and the "
            "relay publishes it when due. Keep it well below RabbitMQ's `consumer_timeout`."
        ),
    )
    schedule_max_delay_ms: int = Field(
        default=90 * 24 * 3600 * 1000,
        ge=1_000,
        description="The furthest eta or delay accepted (90 days); beyond it a message is dead-lettered.",
    )

    # Workers
    worker_processes: int = Field(default=2, ge=1, description="Default of `circulate worker --processes`.")
    worker_threads: int = Field(
        default=8, ge=1, description="Default of `circulate worker --threads` (threads per process)."
    )
    worker_prefetch: int = Field(
        default=256,
        ge=1,
        description=(
            "Unacknowledged messages per consumer (Dramatiq's default costs 24-43 % throughput here)."
        ),
    )
    heartbeat_dir: str | None = Field(
        default=None,
        description=(
            "Where each worker process, and the relay, exporter and dead-letter sweeper (each in a "
            "subdirectory named after its role), writes its heartbeat, which "
            "`python -m shared.heartbeat DIR` checks (the liveness probe); unset, none is written."
        ),
    )
    worker_shutdown_timeout_ms: int = Field(
        default=30_000,
        ge=1_000,
        description="How long SIGTERM waits for in-flight messages before returning them to the queue.",
    )
    worker_batch_size: int = Field(
        default=16,
        ge=1,
        description=(
            "Messages already waiting in a worker process that one thread may apply in one transaction "
            "(each acked after its commit; see shared.batch). 1 handles every message alone."
        ),
    )
    worker_batch_budget_ms: int = Field(
        default=20,
        ge=0,
        description=(
            "How long a batch is expected to take at most: a thread stops taking waiting messages "
            "into its batch once their domain functions' recent mean times add up to this, since "
            "every member's follow-ups wait for the batch's commit. 0: no limit but worker_batch_size. "
            "20 ms, not 50: at 50 orders/s the follow-ups' wait for the relay fell from ~70 to ~40 ms "
            "p50 per hop, at the same CPU (docs/development/benchmarks-http.md)."
        ),
    )

    # Outbox relay
    relay_batch_size: int = Field(
        default=500, ge=1, description="Outbox rows per relay pass: the publisher-confirm window."
    )
    relay_lanes: int = Field(
        default=2,
        ge=1,
        description=(
            "Relay passes run at once, each on its own database connection (taking disjoint rows), so "
            "one claims and marks while another publishes."
        ),
    )
    relay_poll_interval_ms: int = Field(
        default=100,
        ge=1,
        description=(
            "How long the relay's first lane waits when the outbox is drained before it polls; while the "
            "relay LISTENs, the other lanes poll every second (notifications wake them)."
        ),
    )
    outbox_retention_s: int = Field(
        default=3_600,
        ge=0,
        description="Published outbox rows are kept this long for inspection, then pruned.",
    )
    inbox_retention_s: int = Field(
        default=14 * 24 * 3600,
        ge=0,
        description=(
            "Handled idempotency keys (the inbox) are kept this long, and never less than `max_age_ms` "
            "(an older message is dead-lettered, not handled), then pruned by the relay."
        ),
    )
    prune_batch_size: int = Field(
        default=5_000,
        ge=1,
        description="Rows deleted per pruning transaction (inbox and outbox), so no prune holds locks long.",
    )

    # HTTP API
    api_host: str = Field(default="127.0.0.1", description="Bind address of `circulate api`.")
    api_port: int = Field(default=8000, description="Port of `circulate api`.")
    api_max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1_024,
        description="Request body limit of the API; a larger body gets a 413 before it is read.",
    )
    api_token_cache_s: float = Field(
        default=5.0,
        ge=0,
        description="How long the API trusts a valid token without asking the database again; "
        "a revoked token stops working within this time (0: ask on every request).",
    )
    api_workers: int = Field(
        default=1, ge=1, description="Processes `circulate api` serves with (about one per core)."
    )
    api_pool_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="How long an API request waits for a database connection before it is answered "
        "503 with Retry-After (PostgreSQL down, or every connection busy).",
    )

    # Carrier, push gateway and SMTP (the sandbox and sink by default)
    carrier_url: str = Field(
        default="http://127.0.0.1:8100",
        description="The carrier's HTTP API (the carrier sandbox by default).",
    )
    carrier_api_key: SecretStr = Field(
        default=SecretStr("sandbox-api-key"), description="Bearer key for the carrier's API."
    )
    carrier_timeout_s: float = Field(default=5.0, description="Seconds per HTTP attempt to the carrier.")
    carrier_webhook_secret: SecretStr = Field(
        default=SecretStr("sandbox-webhook-secret"),
        description="HMAC secret of the carrier's tracking webhooks (`Carrier-Signature`).",
    )
    push_url: str = Field(
        default="http://127.0.0.1:8100", description="The push gateway (the carrier sandbox by default)."
    )
    push_api_key: SecretStr = Field(
        default=SecretStr("sandbox-api-key"), description="Bearer key for the push gateway."
    )
    push_timeout_s: float = Field(
        default=5.0, gt=0, description="Seconds per HTTP attempt to the push gateway."
    )
    smtp_host: str = Field(
        default="127.0.0.1", description="SMTP relay for outgoing mail (the SMTP sink by default)."
    )
    smtp_port: int = Field(default=2525, description="Port of the SMTP relay.")
    smtp_sender: str = Field(
        default="Circulate <no-reply@circulate.test>", description="From address of outgoing mail."
    )

    # Marketplace rules
    fee_schedule_json: str | None = Field(
        default=None,
        description=(
            "Fees per market as JSON (see the ledger's fee schedule); unset, the built-in "
            "GB/US/FR/DE/IT schedule."
        ),
    )
    completion_hold_s: int = Field(
        default=3 * 24 * 3600,
        ge=0,
        description="Hold between delivery and completion, when the seller's funds are released (3 days).",
    )

    # Operator console: signs session cookies; at least 32 characters. Unset, /console answers 503.
    console_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Signs the operator console's session cookies; 32+ random characters. Unset, /console "
            "answers 503."
        ),
    )
    # Purged dead letters stay restorable this long, then the sweeper deletes them for good.
    dlq_purge_retention_days: int = Field(
        default=30,
        ge=0,
        description="Purged dead letters stay restorable this long; the sweeper then deletes them for good.",
    )

    # Logs: one JSON object per line (`text` for a terminal), redacted either way (shared.logs).
    log_format: str = Field(
        default="json",
        pattern="^(json|text)$",
        description="`json` (one object per line) or `text` for a terminal; redacted either way.",
    )
    log_level: str = Field(
        default="INFO",
        pattern="^(?i:debug|info|warning|error|critical)$",
        description="Root log level (`circulate --verbose` means DEBUG).",
    )
    log_buffer_ms: int = Field(
        default=20,
        ge=0,
        le=1000,
        description=(
            "Workers and the API write their lines below WARNING together, at most this long after "
            "the first (0: each at once); a warning or an error writes them and itself at once."
        ),
    )

    # Metrics
    metrics_host: str = Field(default="127.0.0.1", description="Bind address of the Prometheus endpoints.")
    metrics_port: int = Field(
        default=9191, description="Workers serve /metrics on this port, the relay on +1, the exporter on +2."
    )
    metrics_dir: str | None = Field(
        default=None,
        description=(
            "Parent of the workers' multiprocess metrics directory (default: the temporary directory)."
        ),
    )

    @field_validator("amqp_url")
    @classmethod
    def _amqp_urls_agree(cls, value: str) -> str:
        """Refuse a list whose nodes differ in vhost or credentials (ConfigurationError, with why)."""
        parse_amqp_urls(value)
        return value

    @field_validator("rabbitmq_management_url")
    @classmethod
    def _management_urls_parse(cls, value: str) -> str:
        parse_http_urls(value, setting="CIRCULATE_RABBITMQ_MANAGEMENT_URL")
        return value

    @property
    def amqp_nodes(self) -> tuple[AmqpNode, ...]:
        """Every RabbitMQ node of `amqp_url`, in the order given."""
        return parse_amqp_urls(self.amqp_url)

    @property
    def amqp_urls(self) -> list[str]:
        """The AMQP URL of each node, in the order given (what pika and aiormq are handed)."""
        return [node.url for node in self.amqp_nodes]

    @property
    def amqp_vhost(self) -> str:
        """The vhost of the AMQP URLs (`/` when none), which setup creates if missing."""
        return self.amqp_nodes[0].vhost

    @property
    def rabbitmq_management_urls(self) -> tuple[str, ...]:
        """The management API of each node, tried in turn (`shared.broker_nodes`)."""
        return parse_http_urls(self.rabbitmq_management_url, setting="CIRCULATE_RABBITMQ_MANAGEMENT_URL")
