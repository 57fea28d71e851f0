"""The benchmark's sections, by name, loaded only when run (a section may need extra tools).

Each section is a function `(context, run) -> list[Figure]`, called once per run with the runs
interleaved (run 0 of every section, then run 1 ...), so a slow minute on this shared machine
touches every contender alike. A section that should run once returns [] after run 0. A section
whose module is not there is listed as skipped: `http` and `e2e` plug in here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from workers.harness.bench.env import BenchEnv
from workers.harness.bench.report import Figure


@dataclass(frozen=True)
class BenchContext:
    env: BenchEnv
    #: Messages per consume and publish measurement.
    messages: int
    #: Backlog the memory section drains (0 skips it).
    backlog: int
    #: Length of the memory soak in seconds (0, the default, skips it).
    soak_seconds: float
    runs: int
    #: Consume contenders to run (`sections_core.CONSUMERS` keys); empty runs them all.
    consumers: tuple[str, ...] = ()


Section = Callable[[BenchContext, int], list[Figure]]

#: name -> "module:function", in the order they run within each run.
SECTIONS: dict[str, str] = {
    "consume": "workers.harness.bench.sections_core:consume",
    "publish": "workers.harness.bench.sections_core:publish",
    "http": "workers.harness.bench.http:section",
    "e2e": "workers.harness.bench.e2e:section",
    "memory": "workers.harness.bench.sections_core:memory",
}


def load(name: str) -> Section | None:
    """The section's function, or None when its module is not part of this checkout."""
    module_name, _, function = SECTIONS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        return None
    section: Section = getattr(module, function)
    return section
