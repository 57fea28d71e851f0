"""W3C trace context carried in the envelope, from the API request to every follow-up message.

No collector is needed: the `traceparent` travels in each envelope and appears in the logs, so
one trace id ties an order's HTTP request to every message it caused. An OpenTelemetry SDK, where
one is deployed, can adopt the same header unchanged.
"""

from __future__ import annotations

import re
import secrets

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


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
    return f"00-{match.group(1)}-{secrets.token_hex(8)}-{match.group(3)}"


def trace_id(traceparent: str | None) -> str | None:
    match = _TRACEPARENT.match(traceparent or "")
    return match.group(1) if match else None
