"""The metrics reference: every metric object of `shared.metrics`, read at build time.

Module-level metrics are the ones a process records as it works; `ExporterMetrics` are the gauges
of shared state that only `circulate exporter` builds. Both are listed from the objects themselves
(name as exposed, type, labels, help, buckets), so the page cannot disagree with `/metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics import MetricWrapperBase
from reference_markdown import cell

from shared import metrics


def metrics_markdown() -> str:
    """Two tables: the module-level metrics, then the exporter's gauges."""
    module_level = [value for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]
    return "\n".join(
        [
            "### Recorded by the process doing the work",
            "",
            "Module-level objects in `shared.metrics`.",
            "",
            _table(module_level),
            "### Gathered by the exporter",
            "",
            "`shared.metrics.ExporterMetrics`: built afresh by `circulate exporter` on every scrape.",
            "",
            _table(metrics.ExporterMetrics().all()),
            "### Histogram buckets",
            "",
            _buckets(module_level),
        ]
    )


def exposed_name(metric: MetricWrapperBase) -> str:
    """The name in the exposition: prometheus_client keeps a counter's name without `_total`."""
    name = str(metric._name)
    return f"{name}_total" if metric._type == "counter" else name


def _table(items: Iterable[MetricWrapperBase]) -> str:
    rows = ["| metric | type | labels | help |", "| --- | --- | --- | --- |"]
    for metric in items:
        kind = str(metric._type)
        mode = getattr(metric, "_multiprocess_mode", None)
        if kind == "gauge" and mode and mode != "all":
            kind = f"gauge (`{mode}`)"
        labels = ", ".join(f"`{label}`" for label in metric._labelnames) or "none"
        name = exposed_name(metric)
        rows.append(f'| <a id="{name}"></a>`{name}` | {kind} | {labels} | {cell(metric._documentation)} |')
    return "\n".join(rows) + "\n"


def _buckets(items: Iterable[MetricWrapperBase]) -> str:
    rows = ["| histogram | upper bounds (seconds) |", "| --- | --- |"]
    for metric in items:
        bounds = getattr(metric, "_upper_bounds", None)
        if metric._type == "histogram" and bounds:
            shown = ", ".join(f"{bound:g}" for bound in bounds if bound != float("inf"))
            rows.append(f"| `{exposed_name(metric)}` | {shown}, +Inf |")
    return "\n".join(rows) + "\n"
