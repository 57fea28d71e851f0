"""Crash points: named places where a process can be made to die with SIGKILL, for fault tests.

A crash between two steps that must both happen (publish a batch, then mark it; commit, then ack)
is the fault at-least-once delivery exists for, and the one a random `kill -9` rarely lands on.
A crash point lands on it every time:

    CIRCULATE_CRASH_POINTS="relay.after_publish=5,worker.after_commit=40"

makes every process that reaches `relay.after_publish` die on its 5th pass there, and every
process reaching `worker.after_commit` die on its 40th (each process counts its own passes, so a
restarted process dies again 40 passes later; `=1` would stop a process from ever passing twice).
Before dying the process writes one line, `crash point <name> reached: SIGKILL`, to stderr, so a
test can count the crashes it caused.

The variable is read once, when this module is imported, and on purpose not through
`shared.config.Settings`: `reach()` sits on the hot path of every message, and when the variable
is unset it is a lookup in an empty dict. It is a test hook, not a setting; production never sets it.

Points (each a one-line call):
    relay.after_publish   shared.relay.relay_once: the batch is confirmed by RabbitMQ, not yet marked
    worker.after_commit   shared.uow.UnitOfWork.commit: the transaction committed, the message not acked
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV_VAR = "CIRCULATE_CRASH_POINTS"
POINTS = frozenset({"relay.after_publish", "worker.after_commit"})


class UnknownCrashPoint(ValueError):
    """The variable names a point no code reaches: a typo would make a fault test pass silently."""


def parse(spec: str) -> dict[str, int]:
    """`"name=N,other=M"` (a bare name means 1) into {name: N}; unknown names and N < 1 refused."""
    armed: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, count = item.partition("=")
        name = name.strip()
        if name not in POINTS:
            raise UnknownCrashPoint(f"{ENV_VAR}: unknown crash point {name!r}; known: {sorted(POINTS)}")
        try:
            armed[name] = int(count or 1)
        except ValueError:
            raise UnknownCrashPoint(f"{ENV_VAR}: {item!r} needs a whole number after '='") from None
        if armed[name] < 1:
            raise UnknownCrashPoint(f"{ENV_VAR}: {item!r} must count from 1")
    return armed


_ARMED = parse(os.environ.get(ENV_VAR, ""))
_passes: Counter[str] = Counter()


def reach(name: str) -> None:
    """Die here with SIGKILL if `name` is armed and this is its Nth pass in this process."""
    if name not in _ARMED:
        return
    _passes[name] += 1
    if _passes[name] >= _ARMED[name]:
        # File descriptor 2, not sys.stderr: Dramatiq's worker processes point sys.stderr at a
        # framed pipe to their parent, which a raw write would corrupt (and lose).
        os.write(2, f"crash point {name} reached: SIGKILL\n".encode())
        os.kill(os.getpid(), signal.SIGKILL)
