"""Owns the process's Runtime: built when the worker boots, closed when it shuts down."""

from __future__ import annotations

from collections.abc import Callable

import dramatiq
from dramatiq.middleware import Middleware

from shared.runtime import Runtime


class RuntimeResources(Middleware):
    """Builds the Runtime lazily in each worker process (after any fork), never at import."""

    def __init__(self, factory: Callable[[], Runtime]) -> None:
        self._factory = factory
        self._runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = self._factory()
        return self._runtime

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        _ = self.runtime

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
