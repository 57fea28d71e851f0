"""Fixtures the integration layer shares beyond the root conftest's."""

from __future__ import annotations

from tests.fixtures.live_api import api

__all__ = ["api"]
