"""Fixtures shared by every test layer; each lives in tests/fixtures/ by what it provides."""

from __future__ import annotations

from tests.fixtures.services import clean_db, runtime, settings
from tests.fixtures.workers import broker, worker, worker_adapters

__all__ = ["broker", "clean_db", "runtime", "settings", "worker", "worker_adapters"]
