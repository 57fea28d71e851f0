"""The API's one middleware: everything done around every request, in a single pure-ASGI layer.

Five layers used to do this, each wrapping `receive` or `send` and each looking up the route
template on its own; every request paid for all of them. `RequestEdge` does, in this order:

1. the request's correlation id and trace (`workers.api.request_log.assign_ids`), bound for its
   duration so a route's own lines carry them;
2. the body limit (`workers.api.limits`): a declared `Content-Length` over it is a 413 before
   anything is read, a streamed body is counted as it is read;
3. control characters in the path or query (`workers.api.printable`): a 400 before routing;
4. the app (or a route's `Shortcut`), with an unhandled exception answered as a logged 500 in the
   error shape without re-raising (`workers.api.errors`), so uvicorn keeps the connection open;
5. once answered: the route template looked up once, the request's metrics
   (`workers.api.metrics`) and its log line (`workers.api.request_log`).

A `Shortcut` serves one hot route (method and exact path) without the framework's routing and
dependency resolution, inside this layer so every step above still applies to it; the app
(`workers.api.app.CirculateApi`) calls this layer directly for such a route, before the
framework's own outer layers. It may decline
a request (return False) after reading the body; the request then goes to the app with the body
replayed, so every answer other than the shortcut's own success is the framework's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.tracing import trace_id
from workers.api import errors, limits, metrics, printable, request_log

#: Serves a request and returns True, or returns False (having read at most the body through the
#: `BodyReader`, answered nothing) to hand it to the app, which gets what was read replayed.
Shortcut = Callable[[Scope, "BodyReader", Send], Awaitable[bool]]


class BodyReader:
    """The request's `receive`, remembering what was read, so a declined request can replay it."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._messages: list[Message] = []

    async def body(self) -> bytes | None:
        """The whole body, or None if the client went away first (the shortcut then declines)."""
        while True:
            message = await self._receive()
            self._messages.append(message)
            if message["type"] != "http.request":
                return None
            if not message.get("more_body", False):
                return b"".join(m.get("body", b"") for m in self._messages)

    def replay(self) -> Receive:
        """A `receive` giving the app what was already read, then the rest of the request."""
        pending, receive = list(self._messages), self._receive

        async def replaying() -> Message:
            return pending.pop(0) if pending else await receive()

        return replaying


class RequestEdge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int | None = None,
        shortcuts: dict[tuple[str, str], Shortcut] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.shortcuts = shortcuts or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        correlation_id, traceparent = request_log.assign_ids(scope)
        ids = {
            "correlation_id": correlation_id[: request_log.MAX_CORRELATION_ID],
            "trace_id": trace_id(traceparent),
        }
        exchange = _Exchange(send, self.max_bytes)
        tokens = structlog.contextvars.bind_contextvars(**ids)
        try:
            await self._answer(scope, receive, exchange)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
            route = metrics.route_template(scope)
            seconds = time.perf_counter() - started
            metrics.record(route, scope, exchange.status, seconds)
            request_log.log_request(route, scope, exchange.status, seconds, ids)

    async def _answer(self, scope: Scope, receive: Receive, exchange: _Exchange) -> None:
        if self.max_bytes is not None and limits.declared_too_large(scope, self.max_bytes):
            await limits.reject(exchange.send, self.max_bytes)
            return
        problem = printable.problem(scope)
        if problem is not None:
            await errors.send_error(exchange.send, 400, "invalid_characters", problem)
            return
        limited = exchange.limited(receive)
        try:
            shortcut = self.shortcuts.get((scope["method"], scope["path"]))
            if shortcut is None:
                await self.app(scope, limited, exchange.send)
                return
            reader = BodyReader(limited)
            if not await shortcut(scope, reader, exchange.send):
                await self.app(scope, reader.replay(), exchange.send)
        except limits.TooLarge:
            await exchange.reject_too_large()
        except errors.DATABASE_UNAVAILABLE as unavailable:  # a shortcut's; the app's have a handler
            if exchange.answered:
                raise
            errors.log_unavailable(scope, unavailable)
            await errors.database_unavailable_response()(scope, receive, exchange.send)
        except Exception:
            if exchange.tripped:
                await exchange.reject_too_large()
                return
            errors.log_unhandled(scope)
            if exchange.answered:
                raise  # half a response is on the wire; only closing the connection is honest
            message = "the server failed; the error was logged"
            await errors.send_error(exchange.send, 500, "internal_error", message)


class _Exchange:
    """The answer's side of one request: its status, and the 413 that replaces it once tripped.

    A chunked body that crosses the limit is noticed inside the route's body read, where the
    framework turns any exception into a 400; so whatever the app answers after the limit
    tripped is replaced by the 413.
    """

    def __init__(self, send: Send, max_bytes: int | None) -> None:
        self._send, self.max_bytes = send, max_bytes
        self.status = 500  # what the server answers when the app raises before responding
        self.answered = self.tripped = False

    async def send(self, message: Message) -> None:
        if self.tripped:
            await self.reject_too_large()
            return
        if message["type"] == "http.response.start":
            self.status, self.answered = int(message["status"]), True
        await self._send(message)

    async def reject_too_large(self) -> None:
        if not self.answered:
            assert self.max_bytes is not None
            self.status, self.answered = 413, True
            await limits.reject(self._send, self.max_bytes)

    def limited(self, receive: Receive) -> Receive:
        if self.max_bytes is None:
            return receive
        max_bytes, received = self.max_bytes, 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > max_bytes:
                self.tripped = True
                raise limits.TooLarge
            return message

        return limited_receive
