"""A TCP proxy that misbehaves on request: what Toxiproxy does, in one small asyncio module.

Clients connect to the proxy's port instead of the service's; every connection is forwarded to
the upstream until a test (or the chaos runner) switches the proxy into a fault:

    pass        forward both directions untouched (the default)
    cut         close every live connection and refuse new ones (the port stops listening)
    delay       forward, but each chunk `delay_ms` later, in each direction
    reset       RST every live connection at once (SO_LINGER 0), then pass again
    black_hole  accept and read, never forward and never answer: a peer that vanished silently

The event loop runs in a thread of its own, so a synchronous test or runner drives it with plain
method calls. `stats` counts what each fault did (connections cut or reset, chunks delayed, bytes
swallowed), so a scenario can prove its fault fired rather than assume it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")
CHUNK = 65536


class Mode(Enum):
    PASS = "pass"
    CUT = "cut"
    DELAY = "delay"
    BLACK_HOLE = "black_hole"


@dataclass(eq=False)
class _Link:
    """One client connection and, unless black-holed, its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client, self.upstream) if w is not None]


class FaultProxy:
    """Listens on 127.0.0.1:`port` (a free one by default) and forwards to `upstream_host:upstream_port`."""

    def __init__(self, upstream_host: str, upstream_port: int, *, port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = port
        self.mode = Mode.PASS
        self.delay_s = 0.0
        self.stats: Counter[str] = Counter()
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    # -- faults (call from any thread) ------------------------------------------------------------

    def pass_through(self) -> None:
        """Back to normal: listen again if cut, forward without delay."""
        self._call(self._set_pass())

    def cut(self) -> None:
        """Close every live connection and stop listening, so new connections are refused."""
        self._call(self._cut())

    def delay(self, milliseconds: float) -> None:
        """Forward every chunk `milliseconds` late in each direction (new and live connections)."""
        self._call(self._set_delay(milliseconds / 1000))

    def reset(self) -> None:
        """Send RST on every live connection (both sides), then keep forwarding new ones."""
        self._call(self._reset())

    def black_hole(self) -> None:
        """Keep connections open and read them, but forward and answer nothing, old or new."""
        self._call(self._set_mode(Mode.BLACK_HOLE))

    def live_connections(self) -> int:
        return self._call(self._count())

    # -- inside the loop --------------------------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    async def _count(self) -> int:
        return len(self._links)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _set_mode(self, mode: Mode) -> None:
        self.mode = mode

    async def _set_pass(self) -> None:
        self.mode, self.delay_s = Mode.PASS, 0.0
        if self._server is None:
            await self._listen()

    async def _set_delay(self, seconds: float) -> None:
        self.mode, self.delay_s = Mode.DELAY, seconds
        if self._server is None:
            await self._listen()

    async def _cut(self) -> None:
        self.mode = Mode.CUT
        await self._stop_listening()
        for link in list(self._links):
            self.stats["connections_cut"] += 1
            await self._drop(link, rst=False)

    async def _reset(self) -> None:
        for link in list(self._links):
            self.stats["connections_reset"] += 1
            await self._drop(link, rst=True)

    async def _shutdown(self) -> None:
        await self._stop_listening()
        for link in list(self._links):
            await self._drop(link, rst=False)

    async def _drop(self, link: _Link, *, rst: bool) -> None:
        self._links.discard(link)
        for task in link.tasks:
            task.cancel()
        for writer in link.writers():
            if rst:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
        for writer in link.writers():
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        self.stats["connections_accepted"] += 1
        if self.mode is Mode.CUT:  # accepted in the instant before the listener closed
            client.close()
            return
        upstream_reader: asyncio.StreamReader | None = None
        upstream: asyncio.StreamWriter | None = None
        if self.mode is not Mode.BLACK_HOLE:
            try:
                upstream_reader, upstream = await asyncio.open_connection(*self.upstream)
            except OSError:
                self.stats["upstream_refused"] += 1
                client.close()
                return
        link = _Link(client, upstream)
        self._links.add(link)
        if upstream_reader is None or upstream is None:
            link.tasks = [asyncio.create_task(self._pump(client_reader, None, link))]
        else:
            link.tasks = [
                asyncio.create_task(self._pump(client_reader, upstream, link)),
                asyncio.create_task(self._pump(upstream_reader, client, link)),
            ]

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None, link: _Link
    ) -> None:
        """Copy one direction; chunks are queued with the time they may leave, so a delay adds
        latency without throttling, and order is kept."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send(queue, writer)) if writer is not None else None
        try:
            while data := await reader.read(CHUNK):
                if self.mode is Mode.BLACK_HOLE or writer is None:
                    self.stats["bytes_swallowed"] += len(data)
                    continue
                if self.mode is Mode.DELAY:
                    self.stats["chunks_delayed"] += 1
                queue.put_nowait((time.monotonic() + self.delay_s, data))
            await queue.join()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if sender is not None:
                sender.cancel()
            if link in self._links and self.mode is not Mode.BLACK_HOLE:
                # One side hung up: hang up the other, as a transparent proxy must.
                self._links.discard(link)
                for other in link.writers():
                    other.close()

    async def _send(self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter) -> None:
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                writer.write(data)
                await writer.drain()
            except OSError:
                # The peer is gone: let whoever waits for the queue to drain stop waiting.
                queue.task_done()
                while not queue.empty():
                    queue.get_nowait()
                    queue.task_done()
                return
            queue.task_done()
