"""Held metrics write what prometheus_client's own `inc` and `observe` would have, sample for sample."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram

from shared import metrics_held
from shared.metrics import HANDLING_BUCKETS


def _metrics() -> tuple[CollectorRegistry, Counter, Histogram]:
    registry = CollectorRegistry()
    counter = Counter("things", "things", ["kind"], registry=registry)
    histogram = Histogram("seconds", "seconds", ["kind"], buckets=HANDLING_BUCKETS, registry=registry)
    counter.labels("a"), histogram.labels("a")  # both series exist from the start
    return registry, counter, histogram


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


_VALUES = st.lists(
    st.one_of(
        st.floats(min_value=0, max_value=400, allow_nan=False), st.sampled_from([0.005, 0.1, 300.0, 1e9])
    ),
    max_size=40,
)


@settings(max_examples=200)
@given(values=_VALUES, increments=st.lists(st.integers(min_value=0, max_value=3), max_size=20))
def test_what_a_block_held_is_written_as_the_direct_calls_write_it(
    values: list[float], increments: list[int]
) -> None:
    direct, direct_counter, direct_histogram = _metrics()
    held, held_counter, held_histogram = _metrics()
    for value in values:
        direct_histogram.labels("a").observe(value)
    for amount in increments:
        direct_counter.labels("a").inc(amount)
    with metrics_held.metrics_held():
        for value in values:
            metrics_held.observe(held_histogram.labels("a"), value)
        for amount in increments:
            metrics_held.inc(held_counter.labels("a"), amount)
        # nothing is written before the block ends
        assert held_histogram.labels("a")._sum.get() == 0.0
    expected, written = _samples(direct), _samples(held)
    assert expected.keys() == written.keys()
    for key, value in expected.items():
        assert math.isclose(written[key], value, rel_tol=1e-9, abs_tol=1e-9), key


def test_a_discarded_block_writes_nothing_and_calls_outside_a_block_write_at_once() -> None:
    registry, counter, histogram = _metrics()
    with metrics_held.metrics_held() as held:
        metrics_held.observe(histogram.labels("a"), 0.2)
        metrics_held.inc(counter.labels("a"))
        held.discard()
    assert registry.get_sample_value("seconds_count", {"kind": "a"}) == 0.0
    assert registry.get_sample_value("things_total", {"kind": "a"}) == 0.0
    metrics_held.observe(histogram.labels("a"), 0.2)
    metrics_held.inc(counter.labels("a"))
    assert registry.get_sample_value("seconds_count", {"kind": "a"}) == 1.0
    assert registry.get_sample_value("things_total", {"kind": "a"}) == 1.0


def test_a_nested_block_writes_when_the_outermost_ends() -> None:
    registry, counter, _ = _metrics()
    with metrics_held.metrics_held():
        with metrics_held.metrics_held():
            metrics_held.inc(counter.labels("a"), 2)
        assert registry.get_sample_value("things_total", {"kind": "a"}) == 0.0
    assert registry.get_sample_value("things_total", {"kind": "a"}) == 2.0
