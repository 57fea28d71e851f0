"""The worker module the benchmark's `dramatiq` processes load (`workers.harness.bench.worker:boot`)."""

from __future__ import annotations

import warnings

import dramatiq

from shared.actors import bind_actors
from shared.broker import build_broker
from shared.config import Settings
from shared.middleware.resources import RuntimeResources
from shared.runtime import Runtime
from workers.harness.bench.work import RECORD_SALE, bind_bare_actor


def boot() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    settings = Settings()
    resources = RuntimeResources(lambda: Runtime.from_settings(settings))
    broker = build_broker(settings, extra_middleware=[resources])
    bind_actors(broker, [RECORD_SALE], lambda: resources.runtime)
    bind_bare_actor(broker, settings)
    dramatiq.set_broker(broker)
