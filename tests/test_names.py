"""checks/names.py: one family's addresses of a name, without the system resolver's thread.

A loopback UDP stand-in for the resolver (dnspython builds its answers) and a hosts
file in a temporary directory; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from checks.names import LookupFailed, lookup

NAME = "ifconfig.example.test"
RECORDS = {"A": ["23.128.64.21"], "AAAA": ["2a0c:b641:2::21"]}


class _Resolver(asyncio.DatagramProtocol):
    def __init__(self, behaviour: Callable[[dns.message.Message, int], dns.message.Message | None]) -> None:
        self.behaviour = behaviour
        self.seen: list[str] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = dns.message.from_wire(data)
        self.seen.append(dns.rdatatype.to_text(query.question[0].rdtype))
        reply = self.behaviour(query, len(self.seen))
        if reply is not None:
            self.transport.sendto(reply.to_wire(), addr)


def records(query: dns.message.Message, n: int) -> dns.message.Message:
    response = dns.message.make_response(query)
    question = query.question[0]
    if str(question.name).rstrip(".") != NAME:
        response.set_rcode(dns.rcode.NXDOMAIN)
        return response
    kind = dns.rdatatype.to_text(question.rdtype)
    if RECORDS.get(kind):
        response.answer.append(dns.rrset.from_text(question.name, 60, "IN", kind, *RECORDS[kind]))
    return response


async def start(behaviour) -> tuple[_Resolver, list[tuple[str, int]], Any]:  # type: ignore[no-untyped-def]
    transport, proto = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _Resolver(behaviour), local_addr=("127.0.0.1", 0)
    )
    return proto, [("127.0.0.1", transport.get_extra_info("sockname")[1])], transport


@pytest.fixture
def no_hosts(tmp_path: Path) -> Path:
    path = tmp_path / "hosts"
    path.write_text("127.0.0.1 localhost\n")
    return path


async def test_each_family_asks_for_its_own_record_only(no_hosts: Path) -> None:
    proto, servers, transport = await start(records)
    try:
        assert await lookup(NAME, 4, servers=servers, hosts_path=no_hosts) == ["23.128.64.21"]
        assert await lookup(NAME, 6, servers=servers, hosts_path=no_hosts) == ["2a0c:b641:2::21"]
    finally:
        transport.close()
    assert proto.seen == ["A", "AAAA"]


async def test_a_lost_question_costs_a_fraction_of_a_second_not_the_system_resolvers_five(no_hosts: Path) -> None:
    _proto, servers, transport = await start(lambda q, n: None if n == 1 else records(q, n))
    try:
        started = time.monotonic()
        assert await lookup(NAME, 4, servers=servers, hosts_path=no_hosts) == ["23.128.64.21"]
        elapsed = time.monotonic() - started
    finally:
        transport.close()
    assert elapsed < 2.0, elapsed  # the hedged copy at 0.3 s answered (a hang bound, not a target)


async def test_no_record_of_the_family_nxdomain_and_silence_are_said(no_hosts: Path) -> None:
    RECORDS_V4_ONLY = {"A": ["23.128.64.22"], "AAAA": []}

    def v4_only(query: dns.message.Message, n: int) -> dns.message.Message:
        response = dns.message.make_response(query)
        kind = dns.rdatatype.to_text(query.question[0].rdtype)
        if RECORDS_V4_ONLY[kind]:
            response.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", kind, *RECORDS_V4_ONLY[kind]))
        return response

    _, servers, transport = await start(v4_only)
    try:
        with pytest.raises(LookupFailed, match="has no IPv6 address"):
            await lookup(NAME, 6, servers=servers, hosts_path=no_hosts)
    finally:
        transport.close()
    _, servers, transport = await start(records)
    try:
        with pytest.raises(LookupFailed, match="does not exist"):
            await lookup("other.example.test", 4, servers=servers, hosts_path=no_hosts)
    finally:
        transport.close()
    _, servers, transport = await start(lambda q, n: None)
    try:
        started = time.monotonic()
        with pytest.raises(LookupFailed, match="no answer from the resolver"):
            await lookup(NAME, 4, servers=servers, hosts_path=no_hosts, timeout_s=0.5)
        assert time.monotonic() - started < 1.5
    finally:
        transport.close()


async def test_hosts_file_and_literals(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(f"# comment\n23.128.64.30 {NAME} alias\n2a0c:b641:2::30 {NAME}\n")
    assert await lookup(NAME, 4, servers=[("127.0.0.1", 9)], hosts_path=hosts) == ["23.128.64.30"]
    assert await lookup("alias", 4, servers=[("127.0.0.1", 9)], hosts_path=hosts) == ["23.128.64.30"]
    assert await lookup(NAME, 6, servers=[("127.0.0.1", 9)], hosts_path=hosts) == ["2a0c:b641:2::30"]
    assert await lookup("[2a0c:b641:2::5]", 6) == ["2a0c:b641:2::5"]
    with pytest.raises(LookupFailed, match="is an IPv6 address, not IPv4"):
        await lookup("2a0c:b641:2::5", 4)
