"""The Dramatiq options a message may carry, each with a type and a range.

Options are set by producers as well as by Dramatiq's own middleware, so they are input like any
other: a negative `retries` once made a failing message retry without limit, a string `retries`
made a middleware raise after which the message was acked and gone, and an `eta` a week ahead on a
work queue pinned the workers' prefetch slots. Checked here when a body is decoded:

| option | type | range |
| --- | --- | --- |
| `retries` | integer | 0 .. `max_retries` |
| `eta` | integer or float (epoch ms) | 0 .. now + `schedule_max_delay_ms` |
| `requeue_timestamp` | integer (epoch ms) | >= 0 |
| `redelivered` | boolean | |
| `traceback` | string | cut to `TRACEBACK_MAX_CHARS` |

Any other option is dropped. A message with a bad option keeps its id, actor and queue; its
options are replaced by `{REJECTED: reason}`, and the actor factory dead-letters it with that
reason before the handler runs (`shared.actors`). Pure: no broker, no database.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.config import Settings

ALLOWED_OPTIONS = frozenset({"eta", "retries", "traceback", "requeue_timestamp", "redelivered"})

#: The option the decoder sets on a message whose options failed their checks (never accepted
#: from a producer: it is not in ALLOWED_OPTIONS).
REJECTED = "circulate_rejected"

TRACEBACK_MAX_CHARS = 20_000
_SHOWN_CHARS = 40


@dataclass(frozen=True)
class OptionLimits:
    max_retries: int = 5
    schedule_max_delay_ms: int = 90 * 24 * 3600 * 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> OptionLimits:
        return cls(max_retries=settings.max_retries, schedule_max_delay_ms=settings.schedule_max_delay_ms)


def checked(
    options: Mapping[str, Any], limits: OptionLimits, *, now_ms: float | None = None
) -> dict[str, Any]:
    """The allowed options if every one is valid, else `{REJECTED: reason}` naming each problem."""
    kept = {name: value for name, value in options.items() if name in ALLOWED_OPTIONS}
    now = time.time() * 1000 if now_ms is None else now_ms
    problems = [problem for name, value in kept.items() if (problem := _problem(name, value, limits, now))]
    if problems:
        return {REJECTED: "invalid message options: " + "; ".join(problems)}
    if isinstance(kept.get("traceback"), str):
        kept["traceback"] = kept["traceback"][-TRACEBACK_MAX_CHARS:]
    return kept


def _problem(name: str, value: Any, limits: OptionLimits, now_ms: float) -> str | None:
    if name == "retries":
        if not _is_int(value) or not 0 <= value <= limits.max_retries:
            return f"retries must be an integer from 0 to {limits.max_retries}, got {_show(value)}"
    elif name == "eta":
        latest = now_ms + limits.schedule_max_delay_ms
        if not _is_number(value) or not 0 <= value <= latest:
            return (
                f"eta must be epoch milliseconds no later than {limits.schedule_max_delay_ms} ms "
                f"from now, got {_show(value)}"
            )
    elif name == "requeue_timestamp":
        if not _is_int(value) or value < 0:
            return f"requeue_timestamp must be a non-negative integer, got {_show(value)}"
    elif name == "redelivered":
        if not isinstance(value, bool):
            return f"redelivered must be a boolean, got {_show(value)}"
    elif name == "traceback" and not isinstance(value, str):
        return f"traceback must be a string, got {_show(value)}"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_int(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
