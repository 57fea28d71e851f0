"""W3C trace context carried in the envelope, from the API request to every follow-up message.

No collector is needed: the `traceparent` travels in each envelope and appears in the logs, so
one trace id ties an order's HTTP request to every message it caused. An OpenTelemetry SDK, where
one is deployed, can adopt the same header unchanged.
"""

from __future__ import annotations

import random
import re

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_traceparent() -> str:
    return f"00-{_random_hex(128)}-{_random_hex(64)}-01"


def _random_hex(bits: int) -> str:
    """A random, never all-zero id of `bits` bits in lower-case hex.

    Trace and span ids need to be unique, not secret (W3C trace context asks for randomness, not
    for a cryptographic source): the module's generator, reseeded in every forked worker process,
    instead of `secrets`, whose system call per id was 4 % of a worker's CPU on the order path.
    """
    return f"{random.getrandbits(bits) or 1:0{bits // 4}x}"


def accept_traceparent(header: str | None) -> str:
    """The caller's trace context if well formed (and not all zeros), otherwise a new trace."""
    if header:
        match = _TRACEPARENT.match(header.strip().lower())
        if match and set(match.group(1)) != {"0"} and set(match.group(2)) != {"0"}:
            return match.group(0)
    return new_traceparent()


def child_of(traceparent: str | None) -> str:
    """A new span in the same trace: what a follow-up message carries."""
    match = _TRACEPARENT.match(traceparent or "")
    if not match:
        return new_traceparent()
    return f"00-{match.group(1)}-{_random_hex(64)}-{match.group(3)}"


def trace_id(traceparent: str | None) -> str | None:
    match = _TRACEPARENT.match(traceparent or "")
    return match.group(1) if match else None
