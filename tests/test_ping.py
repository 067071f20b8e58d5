"""Ping method fallback: unprivileged ICMP → privileged ICMP (root) → timed TCP connect.

icmplib's outcomes (permission refused, no reply, socket errors) are simulated by
injecting the ping function, because the machine's ``ping_group_range`` and uid
decide which one a real run meets.  The TCP path uses real listeners on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass

import pytest
from icmplib.exceptions import ICMPSocketError, SocketPermissionError

from checks.probes.ping import ping_host


@dataclass
class FakeHost:
    is_alive: bool
    avg_rtt: float = 0.0
    packets_sent: int = 3
    packets_received: int = 0


class FakeIcmp:
    """Stands in for icmplib.async_ping; records the privileged flag of every call."""

    def __init__(self, unprivileged: object, privileged: object = None) -> None:
        self.outcomes = {False: unprivileged, True: privileged}
        self.calls: list[bool] = []

    async def __call__(self, address: str, *, count: int, interval: float, timeout: float, privileged: bool):  # type: ignore[no-untyped-def]
        self.calls.append(privileged)
        outcome = self.outcomes[privileged]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture
async def listener():
    """A TCP server on 127.0.0.1 that accepts and closes: a host that answers on one port."""

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_unprivileged_icmp_is_used_when_allowed() -> None:
    icmp = FakeIcmp(FakeHost(True, avg_rtt=0.42, packets_received=3))
    result = await ping_host("127.0.0.1", icmp_ping=icmp, is_root=False, tcp_ports=())
    assert (result.method, result.alive, result.rtt_ms) == ("icmp-unprivileged", True, 0.42)
    assert icmp.calls == [False]
    assert "3/3" in result.detail


async def test_permission_refused_as_root_switches_to_a_raw_socket() -> None:
    icmp = FakeIcmp(SocketPermissionError(False), FakeHost(True, avg_rtt=1.5, packets_received=2))
    result = await ping_host("127.0.0.1", icmp_ping=icmp, is_root=True, tcp_ports=())
    assert (result.method, result.alive) == ("icmp-privileged", True)
    assert icmp.calls == [False, True]


async def test_permission_refused_without_root_falls_back_to_tcp_connect(listener: int) -> None:
    icmp = FakeIcmp(SocketPermissionError(False))
    result = await ping_host("127.0.0.1", icmp_ping=icmp, is_root=False, tcp_ports=(closed_port(), listener))
    assert result.method == "tcp-connect" and result.alive
    assert icmp.calls == [False]  # never tries a raw socket without root
    assert "ping_group_range" in result.detail


async def test_no_icmp_reply_is_explained_and_tcp_is_tried(listener: int) -> None:
    icmp = FakeIcmp(FakeHost(False))
    answered = await ping_host("127.0.0.1", icmp_ping=icmp, is_root=False, tcp_ports=(listener,))
    assert (answered.method, answered.alive) == ("tcp-connect", True)
    assert "no ICMP echo reply" in answered.detail
    silent = await ping_host("127.0.0.1", icmp_ping=FakeIcmp(FakeHost(False)), is_root=False, tcp_ports=())
    assert (silent.method, silent.alive, silent.rtt_ms) == ("icmp-unprivileged", False, None)
    assert "many routers" in silent.detail  # not fatal: the DNS verdict is what counts


async def test_a_refused_connection_still_proves_the_host_answers() -> None:
    icmp = FakeIcmp(ICMPSocketError("no route"))
    result = await ping_host("127.0.0.1", icmp_ping=icmp, is_root=False, tcp_ports=(closed_port(),))
    assert (result.method, result.alive) == ("tcp-connect", True)
    assert "refused" in result.detail and "ICMP could not be sent" in result.detail


async def test_nothing_possible_says_so() -> None:
    result = await ping_host("127.0.0.1", icmp_ping=FakeIcmp(SocketPermissionError(False)), is_root=False, tcp_ports=())
    assert (result.method, result.alive) == ("none", False)
    assert "not root" in result.detail


async def test_a_hanging_icmp_call_is_cut_at_the_deadline() -> None:
    async def hangs(*_a, **_k):  # type: ignore[no-untyped-def]
        await asyncio.sleep(30)

    result = await asyncio.wait_for(
        ping_host("127.0.0.1", icmp_ping=hangs, is_root=False, timeout_s=0.3, tcp_ports=()), 5
    )
    assert not result.alive and result.method == "icmp-unprivileged"


@pytest.mark.skipif(os.geteuid() != 0, reason="a real ICMP echo needs root or ping_group_range here")
async def test_real_icmp_to_loopback_as_root() -> None:
    result = await ping_host("127.0.0.1", tcp_ports=(), timeout_s=2)
    assert result.alive and result.method in ("icmp-unprivileged", "icmp-privileged")
