"""The unprivileged traceroute's reading of the kernel's error queue (IP_RECVERR).

The bytes are built the way Linux lays them out (struct sock_extended_err, then the
sender's sockaddr_in); the probes themselves run for real in the lab
(tests/lab/test_diagnose_lab.py, as user nobody).
"""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from checks.probes import traceroute
from checks.probes.traceroute import IP_RECVERR, parse_icmp_error


def extended_err(origin: int, icmp_type: int, code: int, sender: str, family: int = socket.AF_INET) -> bytes:
    err = struct.pack("=IBBBBII", 113, origin, icmp_type, code, 0, 0, 0)
    return err + struct.pack("=HH", family, 0) + socket.inet_aton(sender) + b"\0" * 8


def test_time_exceeded_names_the_router_that_sent_it() -> None:
    data = extended_err(traceroute.SO_EE_ORIGIN_ICMP, 11, 0, "100.64.1.1")
    assert parse_icmp_error(socket.SOL_IP, IP_RECVERR, data) == (11, 0, "100.64.1.1")


def test_port_unreachable_is_the_destination() -> None:
    data = extended_err(traceroute.SO_EE_ORIGIN_ICMP, 3, 3, "11.1.0.10")
    assert parse_icmp_error(socket.SOL_IP, IP_RECVERR, data) == (3, 3, "11.1.0.10")


def test_errors_that_are_not_icmp_from_an_ipv4_sender_are_ignored() -> None:
    local = extended_err(1, 0, 0, "0.0.0.0")  # SO_EE_ORIGIN_LOCAL (e.g. EMSGSIZE)
    assert parse_icmp_error(socket.SOL_IP, IP_RECVERR, local) is None
    v6 = extended_err(traceroute.SO_EE_ORIGIN_ICMP, 11, 0, "1.2.3.4", family=socket.AF_INET6)
    assert parse_icmp_error(socket.SOL_IP, IP_RECVERR, v6) is None
    assert parse_icmp_error(socket.SOL_IP, 99, extended_err(2, 11, 0, "1.2.3.4")) is None  # another cmsg
    assert parse_icmp_error(socket.SOL_IP, IP_RECVERR, b"\x00" * 10) is None  # cut short


def test_a_trace_to_loopback_ends_at_the_destination_without_root() -> None:
    # Loopback is one hop away: the first probe reaches it and gets "port unreachable".
    # (Run unprivileged on purpose: this is the path ordinary users take.)
    hops = asyncio.run(asyncio.wait_for(asyncio.to_thread(traceroute._trace_udp, "127.0.0.1", 3, 1.0), 3))
    assert hops == ("127.0.0.1",)


async def test_route_check_ignores_a_port_unreachable_from_the_target_itself() -> None:
    """127.0.0.1 answers the datagram with "port unreachable": the route works, so even with the
    sender as "gateway" this is no evidence of a missing route."""
    from checks.probes.traceroute import gateway_has_no_route, unprivileged_possible

    if not unprivileged_possible():
        pytest.skip("IP_RECVERR is Linux-only")
    assert await gateway_has_no_route("127.0.0.1", "127.0.0.1", timeout_s=0.5) is None
    assert await gateway_has_no_route("not-an-ip", "127.0.0.1") is None
    assert await gateway_has_no_route("127.0.0.1", None) is None
