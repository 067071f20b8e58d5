"""NAT-PMP: the reply parser (fuzzed) and the client against a loopback UDP responder.

The responder is a loopback stand-in for a router written in the test; the real
miniupnpd's NAT-PMP is exercised in tests/lab/test_probes_lab.py.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.probes.natpmp import (
    NatPmpParseError,
    build_request,
    describe_result,
    natpmp_external_address,
    natpmp_map,
    parse_reply,
)


def ext_reply(address: str, result: int = 0, epoch: int = 77) -> bytes:
    return struct.pack("!BBHI", 0, 128, result, epoch) + socket.inet_aton(address)


def map_reply(op: int, internal: int, external: int, lifetime: int, result: int = 0) -> bytes:
    return struct.pack("!BBHIHHI", 0, 128 + op, result, 5, internal, external, lifetime)


def test_requests_on_the_wire() -> None:
    assert build_request(0) == b"\x00\x00"
    assert build_request(2, 8080, 80, 3600) == struct.pack("!BBHHHI", 0, 2, 0, 8080, 80, 3600)


def test_parse_external_address_and_mapping() -> None:
    reply = parse_reply(ext_reply("23.128.64.20"), 0)
    assert reply.ok and reply.external_ipv4 == "23.128.64.20" and reply.epoch == 77
    mapped = parse_reply(map_reply(1, 5000, 5001, 7200), 1)
    assert (mapped.ok, mapped.internal_port, mapped.external_port, mapped.lifetime) == (True, 5000, 5001, 7200)


def test_result_codes_are_named_and_explained() -> None:
    refused = parse_reply(ext_reply("0.0.0.0", result=2), 0)
    assert not refused.ok and refused.result_code == 2
    assert "Not Authorized/Refused (2)" in (refused.error or "")
    assert "Network Failure (3)" in describe_result(3)
    assert "result code 99" in describe_result(99)


def test_parse_rejects_wrong_version_op_and_length() -> None:
    with pytest.raises(NatPmpParseError, match="version"):
        parse_reply(b"\x02" + ext_reply("1.2.3.4")[1:], 0)
    with pytest.raises(NatPmpParseError, match="opcode"):
        parse_reply(map_reply(2, 1, 1, 1), 1)
    with pytest.raises(NatPmpParseError, match="too short"):
        parse_reply(ext_reply("1.2.3.4")[:10], 0)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=40), st.sampled_from([0, 1, 2]))
def test_parser_never_crashes(data: bytes, op: int) -> None:
    try:
        reply = parse_reply(data, op)
    except NatPmpParseError:
        return
    assert reply.ok == (reply.error is None)


class _Router(asyncio.DatagramProtocol):
    """Loopback stand-in for a NAT-PMP router."""

    def __init__(self, behaviour: Callable[[bytes], list[bytes]]) -> None:
        self.behaviour = behaviour
        self.requests: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.requests.append(data)
        for reply in self.behaviour(data):
            self.transport.sendto(reply, addr)


@pytest.fixture
async def router() -> AsyncIterator[Callable]:
    transports = []

    async def start(behaviour: Callable[[bytes], list[bytes]]) -> tuple[int, _Router]:
        transport, proto = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Router(behaviour), local_addr=("127.0.0.1", 0)
        )
        transports.append(transport)
        return transport.get_extra_info("sockname")[1], proto

    yield start
    for t in transports:
        t.close()


async def test_external_address_from_router(router) -> None:
    port, proto = await router(lambda data: [ext_reply("23.128.64.20")])
    reply = await natpmp_external_address("127.0.0.1", port=port, timeout_s=0.5)
    assert reply.ok and reply.external_ipv4 == "23.128.64.20" and reply.error is None
    assert proto.requests == [b"\x00\x00"]


async def test_map_and_delete(router) -> None:
    def respond(data: bytes) -> list[bytes]:
        _, op, _, internal, external, lifetime = struct.unpack("!BBHHHI", data)
        return [map_reply(op, internal, external + 1 if lifetime else 0, lifetime)]

    port, proto = await router(respond)
    made = await natpmp_map("127.0.0.1", "tcp", 8080, 8080, 3600, port=port, timeout_s=0.5)
    assert made.ok and made.external_port == 8081 and made.lifetime == 3600
    deleted = await natpmp_map("127.0.0.1", "udp", 8080, 0, 0, port=port, timeout_s=0.5)
    assert deleted.ok and deleted.lifetime == 0
    assert [r[1] for r in proto.requests] == [2, 1]


async def test_garbage_then_silence_is_reported_as_garbage(router) -> None:
    port, _ = await router(lambda data: [b"<html>"])
    reply = await natpmp_external_address("127.0.0.1", port=port, timeout_s=0.4)
    assert not reply.ok and "garbage" in (reply.error or "")


async def test_refusal_code_is_data(router) -> None:
    port, _ = await router(lambda data: [ext_reply("0.0.0.0", result=3)])
    reply = await natpmp_external_address("127.0.0.1", port=port, timeout_s=0.4)
    assert not reply.ok and reply.result_code == 3 and "Network Failure" in (reply.error or "")


async def test_silent_router_times_out_and_retransmits(router) -> None:
    port, proto = await router(lambda data: [])
    reply = await natpmp_external_address("127.0.0.1", port=port, timeout_s=0.4)
    assert not reply.ok and reply.error == "no answer within 0.4 s (the router does not speak NAT-PMP)"
    assert len(proto.requests) == 2  # sent at 0 and 250 ms


async def test_closed_port_and_bad_gateway() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    reply = await natpmp_external_address("127.0.0.1", port=free_port, timeout_s=0.5)
    assert not reply.ok and "connection refused" in (reply.error or "")
    reply = await natpmp_external_address("router.local", timeout_s=0.5)
    assert not reply.ok and "IPv4 address" in (reply.error or "")
