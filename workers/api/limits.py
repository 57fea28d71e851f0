"""Request body size limit, enforced before the body is read into memory.

Checks `Content-Length` up front and counts streamed chunks for requests without one, so a
client cannot make the API buffer more than `max_bytes`. A chunked body that crosses the limit
is noticed inside the route's body read, where the framework would turn any exception into a 400;
so the limit also remembers that it tripped and replaces whatever the app answers with the 413.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workers.api.errors import send_error


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        received = 0
        tripped = answered = False

        async def limited_receive() -> Message:
            nonlocal received, tripped
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                tripped = True
                raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if tripped:  # the app's answer to the aborted read (a 400) is replaced by the 413
                if not answered:
                    answered = True
                    await self._reject(send)
                return
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _TooLarge:
            if not answered:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        message = f"request bodies are limited to {self.max_bytes} bytes"
        await send_error(send, 413, "payload_too_large", message)


class _TooLarge(Exception):
    pass
