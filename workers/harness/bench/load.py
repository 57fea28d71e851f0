"""Open-loop load: requests sent on a schedule whatever the answers, and their percentiles.

A closed loop (a fixed number of clients, each waiting for its answer before the next request)
slows down with the server it measures and hides the queueing a real stream of orders meets. Here
request `i` is due at `start + i / rate` and is sent then even if earlier ones are still waiting,
and its latency counts from when it was due, so a stalled server shows up in every later request
instead of in none (no coordinated omission).

The generator has its own HTTP/1.1 client (`KeepAliveClient`): httpx costs milliseconds of CPU
per request on this machine, enough at a few hundred requests per second for the generator, not
the server, to set the latency it reports.

Orders are fresh each time: new order and listing ids, a recent `placed_at`, two people of one
market, so every request is a new order all the way through the pipeline.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

_T = TypeVar("_T")


@dataclass(frozen=True)
class Outcome:
    """One request: its answer's status (0: no answer), latency from when it was due, wall time."""

    index: int
    status: int
    latency_s: float
    #: `time.time()` when the answer arrived, to compare with timestamps PostgreSQL wrote later.
    answered_at: float


async def offer(send: Callable[[int], Awaitable[int]], *, rate: float, duration_s: float) -> list[Outcome]:
    """Call `send(i)` at `rate` per second for `duration_s`; `send` returns the HTTP status."""
    count = max(1, round(rate * duration_s))
    start = time.perf_counter()

    async def one(index: int, due: float) -> Outcome:
        try:
            status = await send(index)
        except Exception:  # a refused or timed-out request is an outcome too, not a crash
            status = 0
        return Outcome(index, status, time.perf_counter() - due, time.time())

    tasks = []
    for index in range(count):
        due = start + index / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(index, due)))
    return list(await asyncio.gather(*tasks))


class KeepAliveClient:
    """POSTs JSON over `connections` keep-alive connections; a request waits for a free one.

    Just enough HTTP/1.1 for the servers measured here (a status line, headers, a body with a
    Content-Length or chunked); a connection that fails is reopened for the next request.
    """

    def __init__(self, url: str, *, connections: int, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.connections = connections
        self.headers = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        # Last in, first out: the connections in use stay warm, the spare ones are the idle ones.
        self._idle: asyncio.LifoQueue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = (
            asyncio.LifoQueue()
        )

    async def __aenter__(self) -> KeepAliveClient:
        for _ in range(self.connections):
            self._idle.put_nowait(None)  # opened on first use
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        while not self._idle.empty():
            if (connection := self._idle.get_nowait()) is not None:
                connection[1].close()

    async def post_json(self, path: str, body: Any, headers: dict[str, str] | None = None) -> int:
        """The response's status; the connection goes back to the pool unless it failed.

        A kept connection the server has closed meanwhile (uvicorn closes idle ones after 5 s)
        answers with an empty read: the request is sent again once on a new connection. The
        server read nothing there, and the orders sent here carry an Idempotency-Key anyway.
        """
        payload = json.dumps(body).encode()
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n{self.headers}{extra}\r\n"
        ).encode("latin-1") + payload
        connection = await self._idle.get()
        try:
            if connection is not None:
                status = await _exchange(connection, request)
            if connection is None or status == 0:
                if connection is not None:
                    connection[1].close()
                connection = await asyncio.open_connection(self.host, self.port)
                status = await _exchange(connection, request)
        except BaseException:
            if connection is not None:
                connection[1].close()
            self._idle.put_nowait(None)
            raise
        self._idle.put_nowait(connection if status else None)
        return status


async def _exchange(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes) -> int:
    """Send `request` and read its response; 0 when the server had closed the connection."""
    reader, writer = connection
    writer.write(request)
    try:
        await writer.drain()
        first = await reader.readline()
    except ConnectionError:
        return 0
    return 0 if not first else await _read_response(first, reader)


async def _read_response(status_line: bytes, reader: asyncio.StreamReader) -> int:
    status = int(status_line.split()[1])
    length, chunked = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return status
    while size := int((await reader.readline()).strip(), 16):
        await reader.readexactly(size + 2)
    await reader.readline()
    return status


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """`asyncio.run` on uvloop when it is installed: the generator's own overhead, kept low."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (`share` in 0..100) of `values`; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50, p95 and p99 in milliseconds, rounded to 0.1 ms."""
    return {f"p{p}_ms": round(1000 * percentile(latencies_s, p), 1) for p in (50, 95, 99)}


def fresh_order(index: int) -> dict[str, Any]:
    """A new, valid `PlaceOrder` body (FR, EUR) that goes all the way to a bought label."""

    def person(role: str) -> dict[str, Any]:
        return {
            "id": f"{role}_{index}_{uuid.uuid4().hex[:8]}",
            "email": f"{role}.{index}@example.com",
            "name": "Camille Dubois",
            "address": {"line1": "12 rue Victor Hugo", "city": "Lyon", "postcode": "69002", "country": "FR"},
        }

    return {
        "order_id": str(uuid.uuid4()),
        "listing_id": str(uuid.uuid4()),
        "buyer": person("buyer"),
        "seller": person("seller"),
        "market": "FR",
        "currency": "EUR",
        "item_price_minor": 4500,
        "shipping_price_minor": 449,
        "placed_at": datetime.now(UTC).isoformat(),
    }
