"""Every setting says what it means: docs/reference/settings.md is generated from these fields."""

from __future__ import annotations

import pytest

from shared.config import Settings


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_has_a_description(name: str) -> None:
    description = Settings.model_fields[name].description or ""
    assert len(description.split()) >= 3, f"Settings.{name} needs Field(description=...) of a few words"
