"""How a message ended (`Outcome`), and the mark for an ending Dramatiq cannot see (a skipped duplicate).

`Outcome` is the one list of endings: the `outcome` label of `circulate_messages_total`, the
`outcome` field of the message log line, and the table `shared.middleware.metrics.classify`
fills. Its values are wire values that dashboards and alert rules query, so they never change.

The actor factory marks a skipped duplicate; middleware reads and clears the mark in
`after_process_message`, so outcome metrics and logs come from middleware and handlers stay free
of bookkeeping.
"""

from __future__ import annotations

import threading
from enum import StrEnum


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRIED = "retried"
    DEAD_LETTERED = "dead_lettered"
    DUPLICATE_SKIPPED = "duplicate_skipped"


_state = threading.local()


def mark(outcome: Outcome) -> None:
    _state.outcome = outcome


def take() -> Outcome | None:
    """The outcome marked for this thread's message, cleared so the next message starts clean."""
    outcome: Outcome | None = getattr(_state, "outcome", None)
    _state.outcome = None
    return outcome
