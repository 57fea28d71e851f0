"""The fault proxy against a local echo server: each mode does what the chaos scenarios rely on."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from workers.harness.fault_proxy import FaultProxy

pytestmark = pytest.mark.timeout(30)


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[0], int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo: tuple[str, int]) -> Iterator[FaultProxy]:
    with FaultProxy(*echo) as running:
        yield running


def _connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=5)


def _round_trip(sock: socket.socket, payload: bytes = b"ping") -> bytes:
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def _wait_for_links(proxy: FaultProxy, count: int) -> None:
    while proxy.live_connections() < count:
        time.sleep(0.01)


def test_pass_forwards_both_ways(proxy: FaultProxy) -> None:
    with _connect(proxy) as sock:
        assert _round_trip(sock, b"hello through the proxy") == b"hello through the proxy"
    assert proxy.stats["connections_accepted"] == 1


def test_cut_closes_live_connections_and_refuses_new_ones_until_passed_again(proxy: FaultProxy) -> None:
    live = _connect(proxy)
    assert _round_trip(live) == b"ping"
    proxy.cut()
    assert live.recv(4096) == b""  # closed by the proxy
    live.close()
    with pytest.raises(ConnectionRefusedError):
        _connect(proxy)
    proxy.pass_through()
    with _connect(proxy) as again:
        assert _round_trip(again) == b"ping"
    assert proxy.stats["connections_cut"] == 1


def test_delay_holds_each_direction_back(proxy: FaultProxy) -> None:
    proxy.delay(150)
    with _connect(proxy) as sock:
        started = time.monotonic()
        assert _round_trip(sock) == b"ping"
        # A lower bound only: the two legs cannot arrive sooner than their delays.
        assert time.monotonic() - started >= 0.3
    assert proxy.stats["chunks_delayed"] >= 2


def test_reset_sends_rst_to_live_connections(proxy: FaultProxy) -> None:
    live = _connect(proxy)
    assert _round_trip(live) == b"ping"
    proxy.reset()
    with pytest.raises(ConnectionResetError):
        live.sendall(b"x")
        live.recv(4096)
    live.close()
    assert proxy.stats["connections_reset"] == 1
    with _connect(proxy) as again:  # new connections still pass
        assert _round_trip(again) == b"ping"


def test_black_hole_accepts_and_never_answers(proxy: FaultProxy) -> None:
    live = _connect(proxy)
    assert _round_trip(live) == b"ping"
    proxy.black_hole()
    fresh = _connect(proxy)
    _wait_for_links(proxy, 2)
    for sock in (live, fresh):
        sock.settimeout(0.5)
        sock.sendall(b"anyone there?")
        with pytest.raises(TimeoutError):
            sock.recv(4096)
        sock.close()
    assert proxy.stats["bytes_swallowed"] == 2 * len(b"anyone there?")
