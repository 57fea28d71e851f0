"""Ports for the servers the demo, the bench and the tests start: clear of outgoing connections."""

from __future__ import annotations

from pathlib import Path

from workers.harness.demo.supervisor import free_port, free_port_block


def _ephemeral_range() -> range:
    low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    return range(low, high + 1)


def test_a_server_s_port_is_outside_the_range_outgoing_connections_take_theirs_from() -> None:
    ephemeral = _ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert not [port for port in ports if port in ephemeral]


def test_no_port_is_handed_out_twice() -> None:
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)


def test_a_block_is_consecutive_outside_the_ephemeral_range_and_not_handed_out_again() -> None:
    first = free_port_block(3)
    block = range(first, first + 3)
    assert first + 2 < _ephemeral_range().start
    assert not block.count(free_port()) and free_port_block(3) not in block
