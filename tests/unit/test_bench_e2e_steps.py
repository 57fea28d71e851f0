"""The e2e section steps the rate up only while `confirmed` p95 stays under 1 s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workers.harness.bench import e2e


class _Result:
    def __init__(self, rate: float, p95_ms: float) -> None:
        self.rate = rate
        self.confirmed_ms = {"p95_ms": p95_ms}


def _run(p95_at: Mapping[float, float]) -> list[float]:
    offered: list[float] = []

    def at_rate(rate: float, duration_s: float) -> Any:
        offered.append(rate)
        return _Result(rate, p95_at.get(rate, 5000.0))

    e2e.run_rates(at_rate)
    return offered


def test_no_step_once_the_last_fixed_rate_passes_one_second() -> None:
    assert _run({5.0: 20, 20.0: 300, 50.0: 3100}) == list(e2e.RATES)


def test_steps_continue_while_under_one_second_and_stop_at_the_first_over() -> None:
    fast = {5.0: 10, 20.0: 50, 50.0: 90, 80.0: 400, 120.0: 1500}
    assert _run(fast) == [*e2e.RATES, 80.0, 120.0]
