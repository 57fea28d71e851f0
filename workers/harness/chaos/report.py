"""The chaos report: every scenario's result in one JSON document, and the same as a Markdown table.

`artifacts/chaos-report.json` is the contract (CI and the docs read it); the table is what the
reliability page shows, pasted from a real run. "Recovery" is the worst of a scenario's faults:
from the fault's start until a worker transaction and a relay batch begun after it was lifted
had both committed; "resume" the same for work begun after the fault started, while the broken
part may still be down (workers.harness.chaos.monitor). A run in one stream
(workers.harness.chaos.stream) has one audit for all its orders and one row per segment.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def build(results: list[dict[str, Any]], *, orders: int) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "orders_per_scenario": orders,
        "ok": bool(results) and all(r["ok"] for r in results),
        "scenarios": results,
    }


def write(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def build_stream(result: dict[str, Any]) -> dict[str, Any]:
    """The report of a run in one stream: the stream's audit and its segments, one per scenario."""
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "stream",
        "orders": result["orders"],
        "ok": bool(result["ok"]),
        "stream": result,
    }


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The row of one scenario: worst resume and recovery, and throughput around its first fault."""
    faults = result["faults"]
    recoveries = [f["recovery_s"] for f in faults if f["recovery_s"] is not None]
    resumes = [f["resumed_s"] for f in faults if f.get("resumed_s") is not None]
    first = faults[0] if faults else {}
    return {
        "faults": len(faults),
        "recovered": len(recoveries),
        "worst_resume_s": max(resumes) if resumes else None,
        "worst_recovery_s": max(recoveries) if recoveries else None,
        "orders_per_s_before": first.get("orders_per_s_before"),
        "orders_per_s_during": first.get("orders_per_s_during"),
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| scenario | orders | invariants | fault fired | unplanned dead letters | redeliveries "
        "| duplicates suppressed | faults (recovered) | worst resume | worst recovery "
        "| orders/s before → during |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in report["scenarios"]:
        row = headline(result)
        held = sum(result["invariants"].values())
        lines.append(
            f"| {result['scenario']} | {result['orders']} | {held}/{len(result['invariants'])} hold "
            f"| {'yes' if result['fault_fired'] else 'NO'} | {result['unplanned_dead_letters']} "
            f"| {_shown(result['redeliveries'])} | {result['duplicates_suppressed']['total']} "
            f"| {row['faults']} ({row['recovered']}) | {_seconds(row['worst_resume_s'])} "
            f"| {_seconds(row['worst_recovery_s'])} "
            f"| {_shown(row['orders_per_s_before'])} → {_shown(row['orders_per_s_during'])} |"
        )
    return "\n".join(lines) + "\n"


def markdown_stream(report: dict[str, Any]) -> str:
    """The stream's audit as a line, then one row per segment (scenario) with its own figures."""
    stream = report["stream"]
    held = sum(stream["invariants"].values())
    lines = [
        f"{stream['orders']} orders in {stream['elapsed_s']} s ({stream['orders_per_s']} orders/s); "
        f"invariants {held}/{len(stream['invariants'])} hold; unplanned dead letters "
        f"{stream['unplanned_dead_letters']}; redeliveries (summed over the segments that could count them) "
        f"{_shown(stream['redeliveries'])}; "
        f"duplicates suppressed {stream['duplicates_suppressed']['total']}"
        + (
            f"; segments not reached: {', '.join(stream['segments_not_reached'])}"
            if stream["segments_not_reached"]
            else ""
        ),
        "",
        "| scenario | orders final at start | fault fired | redeliveries | faults (recovered) | worst resume "
        "| worst recovery | orders/s before → during |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for segment in stream["segments"]:
        row = headline(segment)
        lines.append(
            f"| {segment['scenario']} | {segment['orders_final_at_start']} "
            f"| {'yes' if segment['fault_fired'] else 'NO'} | {_shown(segment['redeliveries'])} "
            f"| {row['faults']} ({row['recovered']}) | {_seconds(row['worst_resume_s'])} "
            f"| {_seconds(row['worst_recovery_s'])} "
            f"| {_shown(row['orders_per_s_before'])} → {_shown(row['orders_per_s_during'])} |"
        )
    return "\n".join(lines) + "\n"


def _shown(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"
