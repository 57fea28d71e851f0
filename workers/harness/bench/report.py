"""Figures, their median and spread over the runs, the printed table and the JSON file."""

from __future__ import annotations

import json
import os
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One measurement of one contender in one run; `cpu_s_per_1k` is None where not measured."""

    section: str
    key: str
    contender: str
    rate: float
    unit: str = "msg/s"
    cpu_s_per_1k: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Summary:
    section: str
    key: str
    contender: str
    unit: str
    runs: list[float]
    median: float
    spread_pct: float
    cpu_s_per_1k: float | None
    extra: dict[str, Any]


def summarise(figures: list[Figure]) -> list[Summary]:
    """Group by contender (first-seen order); median of the rates, spread = (max - min) / median."""
    groups: dict[tuple[str, str], list[Figure]] = defaultdict(list)
    for figure in figures:
        groups[(figure.section, figure.key)].append(figure)
    summaries = []
    for (section, key), runs in groups.items():
        rates = [run.rate for run in runs]
        median = statistics.median(rates)
        cpus = [run.cpu_s_per_1k for run in runs if run.cpu_s_per_1k is not None]
        summaries.append(
            Summary(
                section=section,
                key=key,
                contender=runs[0].contender,
                unit=runs[0].unit,
                runs=rates,
                median=median,
                spread_pct=100 * (max(rates) - min(rates)) / median if median else 0.0,
                cpu_s_per_1k=statistics.median(cpus) if cpus else None,
                extra=runs[-1].extra,
            )
        )
    return summaries


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def render(summaries: list[Summary], ratios: list[tuple[str, float | None, str]]) -> str:
    lines = [
        f"{'section':<9} {'contender':<52} {'median':>9} {'unit':<8} {'spread':>7} {'CPU s/1k':>9}  runs"
    ]
    for s in summaries:
        cpu = f"{s.cpu_s_per_1k:9.3f}" if s.cpu_s_per_1k is not None else f"{'-':>9}"
        runs = " / ".join(f"{rate:,.0f}" for rate in s.runs)
        spread = f"{s.spread_pct:6.0f}%"
        lines.append(f"{s.section:<9} {s.contender:<52} {s.median:9,.0f} {s.unit:<8} {spread} {cpu}  {runs}")
    if ratios:
        lines.append("")
        lines.append("ratios (medians of this run) against the issue's targets:")
        for name, value, target in ratios:
            shown = f"{value:.2f}x" if value is not None else "n/a"
            lines.append(f"  {name:<60} {shown:>7}  (target {target})")
    return "\n".join(lines)


def write_json(path: Path, payload: dict[str, Any], summaries: list[Summary]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**payload, "results": [asdict(s) for s in summaries]}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
