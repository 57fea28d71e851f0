"""Child processes of the demo: started in their own process group, waited for, always stopped.

Each child gets a new session (so a new process group): a Ctrl-C in the terminal reaches only the
demo, which then stops its children in order, and a child that forks (Dramatiq's worker processes)
is stopped as a whole by signalling its group. Output goes to `<run dir>/<name>.log`, so a failed
run can be read after the fact; a child that dies while we wait for it fails with its log's tail.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

Probe = Callable[[], bool]


class ProcessFailed(Exception):
    """A child exited early or did not become ready in time; the message quotes its log."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes] = field(repr=False)
    #: How it was started, so that `Supervisor.respawn` can start it again (the chaos runner does).
    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


#: Listening ports are handed out from here, below the kernel's ephemeral range (see `free_port`).
#: Below 30000 also keeps them clear of what a RabbitMQ node's CLI tools bind: its distribution
#: port + 10000 to + 10010, and the nodes the tests start take their distribution ports from here.
LISTEN_PORTS = range(20000, 30000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A port of 127.0.0.1 that was free a moment ago, for a server about to listen on it.

    Not one the OS picks for port 0: those come from the ephemeral range
    (`net.ipv4.ip_local_port_range`, 32768-60999 here), which every outgoing connection takes its
    local port from too. A stack of processes opening connections to PostgreSQL and RabbitMQ could
    take such a port between this pick and the server's bind, and the server failed with 'Address
    already in use'. A port of `LISTEN_PORTS` is taken only by a listener; one is never handed out
    twice by a process, so two servers started together do not get the same one.
    """
    return free_port_block(1)


def free_port_block(size: int) -> int:
    """The first of `size` consecutive free ports (the metrics ports: workers, relay +1, exporter +2)."""
    ports = _listen_ports() or range(1024, 65536)  # an ephemeral range starting below ours: any port
    for _ in range(200):
        first = random.choice(ports[: len(ports) - size + 1])
        block = range(first, first + size)
        if _handed_out.isdisjoint(block) and all(_bindable(port) for port in block):
            _handed_out.update(block)
            return first
    raise OSError(f"no {size} consecutive free ports found on 127.0.0.1")


def _listen_ports() -> range:
    """`LISTEN_PORTS`, cut short where this machine's ephemeral range starts lower."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    return range(LISTEN_PORTS.start, min(LISTEN_PORTS.stop, low))


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def http_ok(url: str) -> Probe:
    """Ready when `url` answers 200 (the /healthz of our HTTP processes)."""

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def tcp_open(port: int) -> Probe:
    """Ready when 127.0.0.1:`port` accepts a connection (the SMTP sink)."""

    def probe() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return False
        return True

    return probe


class Supervisor:
    """Starts children one by one, and stops every one of them on exit, whatever the exit."""

    def __init__(
        self, run_dir: Path, *, stop_timeout_s: float = 15.0, say: Callable[[str], None] = lambda _: None
    ) -> None:
        self.run_dir = run_dir
        self.stop_timeout_s = stop_timeout_s
        self.say = say
        self.children: list[Child] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        ready: Probe | None,
        timeout_s: float = 30.0,
    ) -> Child:
        """Spawn `argv` and return once `ready()` is true; ProcessFailed if it dies or times out.

        With `ready=None` it returns at once, so slow starters can boot side by side; call
        `wait_ready` for them afterwards.
        """
        log_path = self.run_dir / f"{name}.log"
        log_file = log_path.open("wb")
        process = subprocess.Popen(
            list(argv), env=dict(env), stdin=subprocess.DEVNULL, stdout=log_file,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        child = Child(name, process, log_path, log_file, tuple(argv), dict(env))
        self.children.append(child)
        if ready is not None:
            self.wait_ready(child, ready, timeout_s)
        return child

    def respawn(self, child: Child, name: str) -> Child:
        """Replace `child`, which has exited, by the same command started again, logging to
        `<name>.log`; as systemd or Kubernetes restart a crashed process. Not waited for."""
        self.children.remove(child)
        child.process.wait()
        child.log_file.close()
        return self.start(name, child.argv, env=child.env, ready=None)

    def check_alive(self) -> None:
        """Raise ProcessFailed if any child has exited: the run cannot finish without it."""
        for child in self.children:
            if not child.alive():
                raise ProcessFailed(_died(child))

    def stop_all(self) -> None:
        """SIGTERM every child (newest first), then SIGKILL the groups that outlive the deadline.

        SIGTERM goes to the leader only: Dramatiq's main process forwards it to its worker
        processes, and a worker that gets a second SIGTERM stops at once instead of finishing.
        """
        for child in reversed(self.children):
            with contextlib.suppress(ProcessLookupError):
                child.process.terminate()
        deadline = time.monotonic() + self.stop_timeout_s
        try:
            for child in reversed(self.children):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        finally:
            # Past the deadline, or a second Ctrl-C: nothing of ours may outlive the demo, and a
            # grandchild that ignored SIGTERM after its leader exited is swept up with the group.
            for child in self.children:
                _signal_group(child, signal.SIGKILL)
                child.process.wait()
                child.log_file.close()
            self.children.clear()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()

    def wait_ready(self, child: Child, ready: Probe, timeout_s: float = 30.0) -> None:
        """Poll `ready` until true; ProcessFailed (quoting the log) if the child dies or times out."""
        pause = threading.Event()
        started = time.monotonic()
        deadline = started + timeout_s
        while not ready():
            if not child.alive():
                raise ProcessFailed(_died(child))
            if time.monotonic() > deadline:
                raise ProcessFailed(
                    f"{child.name} was not ready within {timeout_s:.0f}s; see {child.log_path}:\n"
                    f"{child.log_tail()}"
                )
            pause.wait(0.1)
        self.say(f"{child.name} ready after {time.monotonic() - started:.1f}s (pid {child.process.pid})")


def _died(child: Child) -> str:
    code = child.process.returncode
    return f"{child.name} exited with code {code}; see {child.log_path}:\n{child.log_tail()}"


def _signal_group(child: Child, signum: signal.Signals) -> None:
    # The group may already be gone (and its id even reused only after every member has exited).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.process.pid, signum)
