"""STUN: the binding-response parser (fuzzed) and the client against loopback responders.

The responders here are a loopback stand-in written in the test (a few lines of
RFC 5389 encoding); the real STUN server (coturn) and a real NAT are exercised in
tests/lab/test_probes_lab.py.
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
import zlib
from collections.abc import AsyncIterator, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.probes.stun import (
    MAGIC_COOKIE,
    StunParseError,
    build_binding_request,
    mapping_varies,
    parse_binding_response,
    stun_probe,
)

TXID = bytes(range(12))


def _attr(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def xor_mapped(ip: str, port: int, txid: bytes) -> bytes:
    addr = ipaddress.ip_address(ip)
    key = struct.pack("!I", MAGIC_COOKIE) + (txid if addr.version == 6 else b"")
    raw = bytes(a ^ b for a, b in zip(addr.packed, key, strict=True))
    return _attr(0x0020, struct.pack("!BBH", 0, 1 if addr.version == 4 else 2, port ^ 0x2112) + raw)


def plain_mapped(ip: str, port: int) -> bytes:
    addr = ipaddress.ip_address(ip)
    return _attr(0x0001, struct.pack("!BBH", 0, 1 if addr.version == 4 else 2, port) + addr.packed)


def message(txid: bytes, attrs: bytes, msg_type: int = 0x0101, fingerprint: bool = False) -> bytes:
    length = len(attrs) + (8 if fingerprint else 0)
    data = struct.pack("!HHI", msg_type, length, MAGIC_COOKIE) + txid + attrs
    if fingerprint:
        data += _attr(0x8028, struct.pack("!I", (zlib.crc32(data) ^ 0x5354554E) & 0xFFFFFFFF))
    return data


def test_request_is_a_20_byte_binding_request() -> None:
    req = build_binding_request(TXID)
    assert len(req) == 20
    assert struct.unpack("!HHI", req[:8]) == (0x0001, 0, MAGIC_COOKIE)
    assert req[8:] == TXID


def test_xor_mapped_v4_and_v6() -> None:
    assert parse_binding_response(message(TXID, xor_mapped("23.128.64.20", 40000, TXID)), TXID) == (
        "23.128.64.20",
        40000,
    )
    assert parse_binding_response(message(TXID, xor_mapped("2a0c:b641::5", 1234, TXID)), TXID) == ("2a0c:b641::5", 1234)


def test_mapped_address_fallback_and_xor_preferred() -> None:
    assert parse_binding_response(message(TXID, plain_mapped("23.128.64.20", 5)), TXID) == ("23.128.64.20", 5)
    both = plain_mapped("10.0.0.1", 1) + xor_mapped("23.128.64.20", 2, TXID)
    assert parse_binding_response(message(TXID, both), TXID) == ("23.128.64.20", 2)


def test_fingerprint_checked() -> None:
    good = message(TXID, xor_mapped("23.128.64.20", 7, TXID), fingerprint=True)
    assert parse_binding_response(good, TXID) == ("23.128.64.20", 7)
    corrupted = good[:-1] + bytes([good[-1] ^ 0xFF])
    with pytest.raises(StunParseError, match="FINGERPRINT"):
        parse_binding_response(corrupted, TXID)


def test_rejects_other_transaction_error_response_and_truncation() -> None:
    with pytest.raises(StunParseError, match="another transaction"):
        parse_binding_response(message(b"x" * 12, xor_mapped("1.2.3.4", 1, b"x" * 12)), TXID)
    err = _attr(0x0009, b"\0\0\x04\x00" + b"Bad Request")
    with pytest.raises(StunParseError, match="error 400 Bad Request"):
        parse_binding_response(message(TXID, err, msg_type=0x0111), TXID)
    with pytest.raises(StunParseError, match="no mapped address"):
        parse_binding_response(message(TXID, b""), TXID)
    with pytest.raises(StunParseError):
        parse_binding_response(message(TXID, xor_mapped("1.2.3.4", 1, TXID))[:-3], TXID)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_parser_never_crashes_on_garbage(data: bytes) -> None:
    try:
        ip, port = parse_binding_response(data, TXID)
    except StunParseError:
        return
    assert ipaddress.ip_address(ip) and 0 <= port < 65536


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=24)), max_size=6))
def test_parser_never_crashes_on_well_framed_random_attributes(attrs: list[tuple[int, bytes]]) -> None:
    body = b"".join(_attr(kind, value) for kind, value in attrs)
    try:
        parse_binding_response(message(TXID, body), TXID)
    except StunParseError:
        pass


Responder = Callable[[bytes, tuple[str, int]], list[bytes]]


class _LoopbackStun(asyncio.DatagramProtocol):
    """Loopback stand-in for a STUN server: answers through ``behaviour``."""

    def __init__(self, behaviour: Responder) -> None:
        self.behaviour = behaviour
        self.requests = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.requests += 1
        for reply in self.behaviour(data, addr):
            assert self.transport is not None
            self.transport.sendto(reply, addr)


PUBLIC_V4 = "23.128.64.20"  # what a server outside would see (loopback is never a public address)
PUBLIC_V6 = "2a0c:b641:100:1::100"


def echo_mapping(port_offset: int = 0, address: str | None = None) -> Responder:
    """Answers the querier's source port (plus ``port_offset``) at a public address."""

    def respond(data: bytes, addr: tuple[str, int]) -> list[bytes]:
        txid = data[8:20]
        mapped = address or (PUBLIC_V6 if ":" in addr[0] else PUBLIC_V4)
        return [message(txid, xor_mapped(mapped, addr[1] + port_offset, txid))]

    return respond


@pytest.fixture
async def start_responder() -> AsyncIterator[Callable[[Responder], asyncio.Future]]:
    transports: list[asyncio.DatagramTransport] = []

    async def start(behaviour: Responder) -> tuple[str, _LoopbackStun]:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            lambda: _LoopbackStun(behaviour), local_addr=("127.0.0.1", 0)
        )
        transports.append(transport)
        port = transport.get_extra_info("sockname")[1]
        return f"127.0.0.1:{port}", proto

    yield start  # type: ignore[misc]
    for t in transports:
        t.close()


async def test_client_reports_mapped_address_from_one_socket(start_responder) -> None:
    spec1, _ = await start_responder(echo_mapping())
    spec2, _ = await start_responder(echo_mapping())
    spec2 = spec2.replace("127.0.0.1", "localhost")  # host names are resolved (from /etc/hosts here)
    sources, varies = await stun_probe([spec1, spec2], timeout_s=1.0)
    assert [s.endpoint for s in sources] == [spec1, spec2]
    assert all(s.value == PUBLIC_V4 and s.error is None and s.method == "stun" for s in sources)
    # One local socket toward both: the same source port is seen by both servers.
    assert sources[0].mapped_port == sources[1].mapped_port
    assert varies is False


async def test_mapping_varies_when_servers_see_different_ports(start_responder) -> None:
    spec1, _ = await start_responder(echo_mapping(0))
    spec2, _ = await start_responder(echo_mapping(7))  # a symmetric NAT would look like this
    _, varies = await stun_probe([spec1, spec2], timeout_s=1.0)
    assert varies is True


async def test_stray_and_garbage_packets_ignored_then_real_answer_used(start_responder) -> None:
    def noisy(data: bytes, addr: tuple[str, int]) -> list[bytes]:
        txid = data[8:20]
        return [
            b"<html>not stun</html>",
            message(b"z" * 12, xor_mapped("6.6.6.6", 1, b"z" * 12)),
            message(txid, xor_mapped("23.128.64.20", 4242, txid)),
        ]

    spec, _ = await start_responder(noisy)
    sources, varies = await stun_probe([spec], timeout_s=1.0)
    assert (sources[0].value, sources[0].mapped_port) == ("23.128.64.20", 4242)
    assert varies is None


async def test_retransmits_after_a_lost_request(start_responder) -> None:
    seen = {"n": 0}

    def drop_first(data: bytes, addr: tuple[str, int]) -> list[bytes]:
        seen["n"] += 1
        return [] if seen["n"] == 1 else echo_mapping()(data, addr)

    spec, proto = await start_responder(drop_first)
    sources, _ = await stun_probe([spec], timeout_s=1.0)
    assert sources[0].value == PUBLIC_V4
    assert proto.requests >= 2


async def test_silent_server_garbage_server_and_bad_name_are_errors(start_responder) -> None:
    silent, _ = await start_responder(lambda d, a: [])
    garbage, _ = await start_responder(lambda d, a: [b"\x01\x01\x00\x00garbage-garbage-x"])
    broken, _ = await start_responder(lambda d, a: [message(d[8:20], b"")[:8] + b"\xff" + d[9:20] + b"abc"])
    # (No unresolvable name here: resolving it would ask this machine's real resolver.)
    sources, varies = await stun_probe([silent, garbage, "[::1", "host:99999", broken], timeout_s=0.5)
    assert sources[0].value is None and sources[0].error == "no answer within 0.5 s"
    assert sources[1].value is None and "not with a STUN reply" in (sources[1].error or "")
    assert sources[4].value is None and sources[4].error and "no answer" not in sources[4].error
    assert sources[2].value is None and sources[2].error
    assert sources[3].value is None and "bad port" in (sources[3].error or "")
    assert varies is None


async def test_error_response_is_reported(start_responder) -> None:
    def refuse(data: bytes, addr: tuple[str, int]) -> list[bytes]:
        return [message(data[8:20], _attr(0x0009, b"\0\0\x04\x14" + b"Unknown Attribute"), 0x0111)]

    spec, _ = await start_responder(refuse)
    sources, _ = await stun_probe([spec], timeout_s=0.5)
    assert sources[0].error == "server answered with error 420 Unknown Attribute"


def test_mapping_varies_needs_two_answers() -> None:
    from checks.model import ExternalSource

    one = ExternalSource("stun", "a", 4, "1.2.3.4", None, 1.0, mapped_port=1)
    failed = ExternalSource("stun", "b", 4, None, "no answer", 1.0)
    assert mapping_varies([one, failed]) is None
    assert mapping_varies([one, ExternalSource("stun", "b", 4, "1.2.3.4", None, 1.0, mapped_port=2)]) is True


async def test_each_family_is_asked_of_its_own_servers_only(start_responder) -> None:
    loop = asyncio.get_running_loop()
    try:
        transport6, _ = await loop.create_datagram_endpoint(
            lambda: _LoopbackStun(echo_mapping()), local_addr=("::1", 0)
        )
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    try:
        spec6 = f"[::1]:{transport6.get_extra_info('sockname')[1]}"
        spec4, _ = await start_responder(echo_mapping())
        v4, _ = await stun_probe([spec4, spec6], timeout_s=0.6)
        v6, _ = await stun_probe([spec4, spec6], timeout_s=0.6, family=6)
    finally:
        transport6.close()
    # The IPv4 question never goes to the IPv6 server and the other way round.
    assert (v4[0].value, v4[0].family) == (PUBLIC_V4, 4)
    assert v4[1].value is None and v4[1].family == 4 and "not an IPv4 server" in (v4[1].error or "")
    assert v6[0].value is None and v6[0].family == 6 and "not an IPv6 server" in (v6[0].error or "")
    assert (v6[1].value, v6[1].family, v6[1].error) == (PUBLIC_V6, 6, None)


@pytest.mark.parametrize(
    "mapped, words",
    [
        (PUBLIC_V6, "saw IPv6 2a0c:b641:100:1::100: discarded"),  # the other family
        ("127.0.0.1", "127.0.0.1 is a loopback address"),  # never a public address
        ("192.168.1.100", "private (RFC 1918)"),
    ],
)
async def test_a_mapped_address_that_is_no_public_ipv4_is_discarded(start_responder, mapped: str, words: str) -> None:
    spec, _ = await start_responder(echo_mapping(address=mapped))
    (source,), _ = await stun_probe([spec], timeout_s=0.5)
    assert source.value is None and source.family == 4 and words in (source.error or ""), source
