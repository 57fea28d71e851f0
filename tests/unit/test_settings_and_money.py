"""Settings come from CIRCULATE_* variables only; money never holds a float."""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.money import Money


def test_settings_read_circulate_variables(monkeypatch):
    monkeypatch.setenv("CIRCULATE_AMQP_URL", "amqp://u:p@rabbit:5672/orders%2Fprod")
    monkeypatch.setenv("CIRCULATE_WORKER_THREADS", "16")
    settings = Settings()
    assert settings.worker_threads == 16
    assert settings.amqp_vhost == "orders/prod"


def test_settings_refuse_an_unknown_queue_type():
    with pytest.raises(ValueError, match="queue_type"):
        Settings(queue_type="stream")


def test_the_default_vhost_is_the_root():
    assert Settings(amqp_url="amqp://guest:guest@localhost:5672").amqp_vhost == "/"


def test_secrets_are_not_shown_in_the_settings_repr():
    assert "sandbox-api-key" not in repr(Settings())


def test_money_refuses_floats_and_mixed_currencies():
    with pytest.raises(TypeError):
        Money(12.5, "GBP")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mix"):
        Money(1, "GBP") + Money(1, "EUR")


def test_money_formats_by_the_currency_exponent():
    assert Money(1250, "GBP").format() == "GBP 12.50"
    assert Money(-5, "EUR").format() == "EUR -0.05"
    assert Money(1250, "JPY").format() == "JPY 1250"
