"""The worker process: what `dramatiq workers.worker:boot` (and so `circulate worker`) loads.

`boot` is the composition root of a worker process: settings from the environment, the broker
with its middleware, the Runtime (built at worker boot, after any fork) and every domain's
actors. Tests call `build_worker_broker` with their own Settings instead.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping

import dramatiq

from shared.actors import bind_actors
from shared.broker import CirculateBroker, build_broker
from shared.config import Settings
from shared.middleware.dead_letter import DeadLetterRecorder
from shared.middleware.metrics import MessageMetrics, MetricsServer
from shared.middleware.resources import RuntimeResources
from shared.runtime import AdapterFactory, Runtime
from tasks.registry import ACTORS, ADAPTERS


def build_worker_broker(
    settings: Settings, *, adapters: Mapping[str, AdapterFactory] | None = None
) -> tuple[CirculateBroker, RuntimeResources]:
    """A broker with every actor bound, and the middleware that owns the process's Runtime."""
    chosen = ADAPTERS if adapters is None else adapters
    resources = RuntimeResources(lambda: Runtime.from_settings(settings, adapters=chosen))
    runtime = lambda: resources.runtime  # noqa: E731
    broker = build_broker(
        settings,
        extra_middleware=[MessageMetrics(), resources, DeadLetterRecorder(runtime), MetricsServer()],
    )
    bind_actors(broker, ACTORS, runtime)
    return broker, resources


def boot() -> None:
    """Entry point for Dramatiq's CLI: build everything from the environment and install it."""
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="pika")
    for noisy in ("pika", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    broker, _ = build_worker_broker(Settings())
    dramatiq.set_broker(broker)
