"""The bench prints the API against the bare ASGI endpoint, the issue's HTTP target, as a ratio."""

from __future__ import annotations

from workers.harness.bench.cli import ratios
from workers.harness.bench.report import Summary


def _summary(key: str, rate: float, cpu: float) -> Summary:
    return Summary("http", key, key, "req/s", [rate], rate, 0.0, cpu, {})


def test_the_api_over_the_bare_endpoint_is_among_the_printed_ratios() -> None:
    printed = {
        name: value
        for name, value, _ in ratios([_summary("api", 600, 1.2), _summary("bare-asgi", 1200, 0.4)])
    }
    assert printed["circulate api / bare ASGI + one insert, req/s"] == 0.5
    assert printed["circulate api / bare ASGI + one insert, CPU per request"] == 1.2 / 0.4


def test_the_ratio_is_not_available_when_the_http_section_did_not_run() -> None:
    printed = {name: value for name, value, _ in ratios([])}
    assert printed["circulate api / bare ASGI + one insert, req/s"] is None
