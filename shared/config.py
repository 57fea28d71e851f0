"""Settings: the one place that reads the environment (`CIRCULATE_*` variables).

Built once by an entry point and passed down explicitly; nothing reads the environment at import
time, so tests build their own `Settings(...)` pointing at their own database and vhost.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

QUEUES: tuple[str, ...] = ("fulfilment", "shipping", "ledger", "notifications")


class Settings(BaseSettings):
    """Every setting, its default (localhost, development) and its meaning. README lists them all."""

    model_config = SettingsConfigDict(env_prefix="CIRCULATE_", extra="ignore", frozen=True)

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/circulate"
    database_pool_size: int = Field(default=10, ge=1)
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/circulate"
    # RabbitMQ's management API: creates the vhost in setup, reads queue depths for the console.
    rabbitmq_management_url: str = "http://127.0.0.1:15672"
    rabbitmq_management_user: str = "guest"
    rabbitmq_management_password: SecretStr = SecretStr("guest")

    # Queues: quorum queues survive a node loss and give a delivery limit that stops poison loops.
    queue_type: str = Field(default="quorum", pattern="^(quorum|classic)$")
    delivery_limit: int = Field(default=20, ge=1)

    # Retries: a handful, backoff capped in minutes, a time limit well below RabbitMQ's
    # consumer timeout (30 minutes by default), so a stuck handler is stopped before the broker
    # closes the channel under every other in-flight message.
    max_retries: int = Field(default=5, ge=0)
    min_backoff_ms: int = Field(default=1_000, ge=1)
    max_backoff_ms: int = Field(default=300_000, ge=1)
    time_limit_ms: int = Field(default=120_000, ge=1_000)
    max_age_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=1_000)

    # Delays. Up to `broker_delay_max_ms` (retry backoff) a delayed message waits in RabbitMQ's
    # `.DQ`, held unacked by a worker until its eta: keep it well below RabbitMQ's consumer
    # timeout (30 minutes by default). Anything later waits in PostgreSQL (the outbox's
    # `available_at`) and the relay publishes it when due, so no worker holds it and a restart
    # costs nothing. A delay or eta beyond `schedule_max_delay_ms` is refused (dead-lettered).
    broker_delay_max_ms: int = Field(default=300_000, ge=0)
    schedule_max_delay_ms: int = Field(default=90 * 24 * 3600 * 1000, ge=1_000)

    # Workers
    worker_processes: int = Field(default=2, ge=1)
    worker_threads: int = Field(default=8, ge=1)
    worker_prefetch: int = Field(default=256, ge=1)
    worker_shutdown_timeout_ms: int = Field(default=30_000, ge=1_000)

    # Outbox relay
    relay_batch_size: int = Field(default=500, ge=1)
    relay_poll_interval_ms: int = Field(default=50, ge=1)
    outbox_retention_s: int = Field(default=3_600, ge=0)

    # HTTP API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_max_body_bytes: int = Field(default=64 * 1024, ge=1_024)

    # Carrier, push gateway and SMTP (the sandbox and sink by default)
    carrier_url: str = "http://127.0.0.1:8100"
    carrier_api_key: SecretStr = SecretStr("sandbox-api-key")
    carrier_timeout_s: float = 5.0
    carrier_webhook_secret: SecretStr = SecretStr("sandbox-webhook-secret")
    push_url: str = "http://127.0.0.1:8100"
    push_api_key: SecretStr = SecretStr("sandbox-api-key")
    push_timeout_s: float = Field(
        default=5.0, gt=0, description="Seconds per HTTP attempt to the push gateway."
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_sender: str = "Circulate <no-reply@circulate.test>"

    # Marketplace rules
    fee_schedule_json: str | None = None
    completion_hold_s: int = Field(default=3 * 24 * 3600, ge=0)

    # Operator console: signs session cookies; at least 32 characters. Unset, /console answers 503.
    console_secret: SecretStr | None = None
    # Purged dead letters stay restorable this long, then the sweeper deletes them for good.
    dlq_purge_retention_days: int = Field(default=30, ge=0)

    # Logs: one JSON object per line (`text` for a terminal), redacted either way (shared.logs).
    log_format: str = Field(default="json", pattern="^(json|text)$")
    log_level: str = Field(default="INFO", pattern="^(?i:debug|info|warning|error|critical)$")

    # Metrics
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9191
    metrics_dir: str | None = None

    @property
    def amqp_vhost(self) -> str:
        """The vhost named in the AMQP URL (`/` when none), which setup creates if missing."""
        from urllib.parse import unquote, urlsplit

        path = urlsplit(self.amqp_url).path
        return unquote(path[1:]) if len(path) > 1 else "/"
