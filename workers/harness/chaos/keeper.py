"""Restart the relay and the workers when they die, as systemd or Kubernetes would in production.

The demo treats any child's exit as fatal; under chaos the relay and the workers are meant to
die (SIGKILL, crash points), so a thread notices their exit within a tenth of a second and starts
the same command again. A killed Dramatiq worker process does not stop its `circulate worker`: it
is replaced inside the group (workers.worker_restarts), and `crash_lines` counts those
replacements from the log; a `circulate worker` restarted here is one whose main process died. Each death
is recorded as a fault on the monitor, lifted when its replacement is started. Any other child
(the API, the sandbox, the SMTP sink) dying is still fatal.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from workers.harness.chaos.monitor import Monitor
from workers.harness.demo.supervisor import Child, ProcessFailed, Supervisor
from workers.worker_restarts import REPLACED

RESTARTED = ("relay", "worker")


def base_name(child: Child) -> str:
    """`worker#3` (the third replacement) -> `worker`."""
    return child.name.split("#", 1)[0]


class Keeper:
    def __init__(self, supervisor: Supervisor, monitor: Monitor) -> None:
        self.supervisor = supervisor
        self.monitor = monitor
        self.restarts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._failed: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-keeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def check_alive(self) -> None:
        """The driver's check: raise if a child that is not restarted has died."""
        if self._failed is not None:
            raise ProcessFailed(self._failed)

    def children(self, name: str) -> list[Child]:
        with self.lock:
            return [child for child in self.supervisor.children if base_name(child) == name]

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            with self.lock:
                for child in list(self.supervisor.children):
                    if child.alive():
                        continue
                    name = base_name(child)
                    if name not in RESTARTED:
                        self._failed = (
                            f"{child.name} exited with {child.process.returncode}; see {child.log_path}"
                        )
                        continue
                    fault = self.monitor.fault(f"{name} exited ({child.process.returncode})")
                    self.restarts[name] += 1
                    self.supervisor.respawn(child, f"{name}#{self.restarts[name]}")
                    fault.lift()


def crash_lines(run_dir: Path) -> Counter[str]:
    """How often each crash point fired, from the lines the dying processes wrote to their logs,
    and how many killed worker processes were replaced in their group (`worker_processes_replaced`)."""
    fired: Counter[str] = Counter()
    for log in run_dir.glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("crash point ") and line.endswith(" reached: SIGKILL"):
                fired[line.split()[2]] += 1
            elif REPLACED in line:
                fired["worker_processes_replaced"] += 1
    return fired
