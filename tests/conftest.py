"""Fixtures shared by every test layer; each lives in tests/fixtures/ by what it provides."""

from __future__ import annotations

import pytest
from hypothesis import settings as hypothesis_settings

from tests.fixtures.services import clean_db, runtime, settings
from tests.fixtures.workers import broker, worker, worker_adapters

__all__ = ["broker", "clean_db", "runtime", "settings", "worker", "worker_adapters"]

# Property tests check correctness, not speed: no per-example deadline, which a loaded CI machine
# would otherwise turn into flaky failures.
hypothesis_settings.register_profile("circulate", deadline=None, print_blob=True)
hypothesis_settings.load_profile("circulate")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that runs on service instances of its own, so `make test` can run them
    beside the tests that use the machine's services (scripts/run-tests.sh)."""
    for item in items:
        if "own_services" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.own_instances)
