"""Request body size limit, enforced before the body is read into memory (`workers.api.edge`).

`Content-Length` is checked up front, and streamed chunks are counted for requests without one,
so a client cannot make the API buffer more than `max_bytes`. Past the limit the answer is a 413
in the error shape, whatever the route would have said.
"""

from __future__ import annotations

from starlette.types import Scope, Send

from workers.api.errors import send_error

_CONTENT_LENGTH = b"content-length"


def declared_too_large(scope: Scope, max_bytes: int) -> bool:
    """The request declares a `Content-Length` over `max_bytes`."""
    for name, value in scope["headers"]:
        if name == _CONTENT_LENGTH:
            return bool(value.isdigit() and int(value) > max_bytes)
    return False


async def reject(send: Send, max_bytes: int) -> None:
    await send_error(send, 413, "payload_too_large", f"request bodies are limited to {max_bytes} bytes")


class TooLarge(Exception):
    """Raised by the counting `receive` when a streamed body crosses the limit."""
