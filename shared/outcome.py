"""How the current message ended, when that is not visible to Dramatiq (a skipped duplicate).

The actor factory marks it; middleware reads and clears it in `after_process_message`, so outcome
metrics and logs come from middleware and handlers stay free of bookkeeping.
"""

from __future__ import annotations

import threading

_state = threading.local()


def mark(outcome: str) -> None:
    _state.outcome = outcome


def take() -> str | None:
    """The outcome marked for this thread's message, cleared so the next message starts clean."""
    outcome: str | None = getattr(_state, "outcome", None)
    _state.outcome = None
    return outcome
