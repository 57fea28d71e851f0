"""CPU time and memory of a process tree, read from /proc (Linux only).

A `dramatiq` or `celery` command forks its worker processes, so the figures are summed (CPU) or
maxed (RSS) over the whole tree under the process the benchmark started.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def tree(root: int) -> list[int]:
    """`root` and every live descendant."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(root: int) -> float:
    """User plus system CPU seconds of the tree's live processes (fields 14 and 15 of stat)."""
    total = 0
    for pid in tree(root):
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def peak_rss_mb(root: int) -> float:
    """The largest peak resident set (VmHWM) of any process in the tree, in MiB."""
    return max((_status_kb(pid, "VmHWM") for pid in tree(root)), default=0) / 1024


def rss_mb(root: int) -> float:
    """The largest current resident set (VmRSS) of any process in the tree, in MiB."""
    return max((_status_kb(pid, "VmRSS") for pid in tree(root)), default=0) / 1024


def _stat_fields(pid: int) -> list[str] | None:
    """Fields after the command name (which may hold spaces), so index 0 is field 3 (state)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
