"""PCP (RFC 6887): the wire format, the reply parser (fuzzed) and the client against a
loopback PCP server.

The loopback server is a stand-in written in the test, modelled on miniupnpd's
pcpserver.c (mappings keyed by client address + protocol + internal port, a delete
or renewal with another nonce is NOT_AUTHORIZED, an epoch that counts from its start).
The real miniupnpd's PCP is exercised in tests/lab/test_portmap_lab.py.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.portmap.pcp import (
    HEADER_LEN,
    MAP_LEN,
    OP_ANNOUNCE,
    OP_MAP,
    EpochTracker,
    PcpClient,
    PcpParseError,
    build_announce,
    build_map,
    describe_result,
    mapping_from_record,
    mapping_record,
    new_nonce,
    parse_reply,
    pcp_announce,
)


def map_response(
    request: bytes,
    *,
    result: int = 0,
    lifetime: int | None = None,
    epoch: int = 100,
    external_port: int | None = None,
    external_ip: str = "203.0.113.7",
    nonce: bytes | None = None,
) -> bytes:
    _v, _op, _r, req_lifetime = struct.unpack("!BBHI", request[:8])
    body = request[HEADER_LEN : HEADER_LEN + MAP_LEN]
    req_nonce = body[:12]
    proto, internal, ext = struct.unpack("!B3xHH", body[12:20])
    ip = ipaddress.ip_address(external_ip)
    packed = (b"\0" * 10 + b"\xff\xff" + ip.packed) if ip.version == 4 else ip.packed
    header = struct.pack("!BBBBII", 2, 0x81, 0, result, req_lifetime if lifetime is None else lifetime, epoch)
    return (
        header
        + b"\0" * 12
        + (nonce or req_nonce)
        + struct.pack("!B3xHH", proto, internal, external_port if external_port is not None else ext or internal)
        + packed
    )


# --------------------------------------------------------------------------- wire format


def test_announce_is_a_bare_header_with_the_client_address_ipv4_mapped() -> None:
    pkt = build_announce("192.168.1.20")
    assert len(pkt) == 24
    assert pkt[0] == 2 and pkt[1] == OP_ANNOUNCE
    assert pkt[8:24] == b"\0" * 10 + b"\xff\xff" + bytes([192, 168, 1, 20])


def test_map_request_layout() -> None:
    nonce = bytes(range(12))
    pkt = build_map(
        nonce=nonce,
        protocol="tcp",
        internal_port=8080,
        external_port=8081,
        lifetime=300,
        client_ip="10.0.0.5",
        external_ip="0.0.0.0",
    )
    assert len(pkt) == 60
    version, op, _res, lifetime = struct.unpack("!BBHI", pkt[:8])
    assert (version, op, lifetime) == (2, OP_MAP, 300)
    assert pkt[24:36] == nonce
    proto, internal, external = struct.unpack("!B3xHH", pkt[36:44])
    assert (proto, internal, external) == (6, 8080, 8081)
    assert pkt[44:60] == b"\0" * 10 + b"\xff\xff" + b"\0\0\0\0"  # ::ffff:0.0.0.0: "any IPv4"


def test_map_request_for_ipv6_carries_the_global_address() -> None:
    pkt = build_map(
        nonce=new_nonce(),
        protocol="udp",
        internal_port=51820,
        external_port=51820,
        lifetime=60,
        client_ip="2001:db8::10",
        external_ip="2001:db8::10",
    )
    assert pkt[8:24] == ipaddress.IPv6Address("2001:db8::10").packed
    assert pkt[36] == 17
    assert pkt[44:60] == ipaddress.IPv6Address("2001:db8::10").packed


def test_round_trip_map_reply() -> None:
    nonce = new_nonce()
    req = build_map(
        nonce=nonce, protocol="udp", internal_port=51820, external_port=0, lifetime=7200, client_ip="10.0.0.5"
    )
    reply = parse_reply(map_response(req, lifetime=3600, external_port=40000), OP_MAP, nonce=nonce)
    assert reply.ok and reply.result_code == 0
    assert (reply.protocol, reply.internal_port, reply.external_port) == ("udp", 51820, 40000)
    assert reply.external_address == "203.0.113.7"  # IPv4-mapped, given back as IPv4
    assert reply.lifetime == 3600 and reply.epoch == 100 and reply.nonce == nonce


def test_reply_with_another_nonce_is_not_ours() -> None:
    req = build_map(
        nonce=new_nonce(), protocol="tcp", internal_port=80, external_port=80, lifetime=60, client_ip="10.0.0.5"
    )
    with pytest.raises(PcpParseError, match="nonce"):
        parse_reply(map_response(req, nonce=b"x" * 12), OP_MAP, nonce=req[24:36])


def test_refusal_is_a_sentence() -> None:
    req = build_map(
        nonce=new_nonce(), protocol="tcp", internal_port=80, external_port=80, lifetime=60, client_ip="10.0.0.5"
    )
    reply = parse_reply(map_response(req, result=2), OP_MAP, nonce=req[24:36])
    assert not reply.ok and reply.result_code == 2
    assert "NOT_AUTHORIZED" in (reply.error or "") and "nonce" in (reply.error or "")
    assert "ADDRESS_MISMATCH (12)" in describe_result(12) and "another NAT" in describe_result(12)
    assert "unknown" in describe_result(99)


def test_natpmp_only_router_is_recognised() -> None:
    # miniupnpd/NAT-PMP servers answer a version they do not know with a version-0 reply, result 1.
    reply = parse_reply(struct.pack("!BBHI", 0, 128, 1, 5), OP_ANNOUNCE)
    assert not reply.ok and reply.natpmp_only and "NAT-PMP" in (reply.error or "")


@pytest.mark.parametrize(
    "data", [b"", b"\x02\x80", b"\x03" + b"\0" * 23, b"\x02\x81" + b"\0" * 22, b"\x02\x80" + b"\0" * 23]
)
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(PcpParseError):
        parse_reply(data, OP_ANNOUNCE)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([OP_ANNOUNCE, OP_MAP]))
def test_parser_never_crashes(data: bytes, op: int) -> None:
    try:
        parse_reply(data, op, nonce=b"n" * 12)
    except PcpParseError:
        pass


def test_record_round_trip() -> None:
    nonce = new_nonce()
    from checks.portmap.pcp import PcpMapping

    m = PcpMapping("192.168.1.1", "tcp", 8080, 8080, "203.0.113.7", 86400, nonce, "192.168.1.20", 5, 1000.0)
    back = mapping_from_record(mapping_record(m))
    assert back is not None and back.nonce == nonce and back.external_port == 8080 and back.granted_at == 1000.0
    assert back.renew_after == 1000.0 + 43200
    assert mapping_from_record({"nonce": "zz"}) is None
    assert mapping_from_record({**mapping_record(m), "nonce": "00"}) is None


# --------------------------------------------------------------------------- epoch (RFC 6887 §8.5)


def test_epoch_steady_is_fine() -> None:
    t = EpochTracker()
    assert not t.observe(1000, now=50.0)
    assert not t.observe(1030, now=80.0)
    assert not t.lost_state


def test_epoch_going_back_means_the_router_restarted() -> None:
    t = EpochTracker()
    t.observe(1000, now=50.0)
    assert t.observe(3, now=60.0)
    assert t.lost_state


def test_epoch_too_slow_means_lost_state() -> None:
    # The server counted 10 s while 600 s passed here: it restarted in between.
    t = EpochTracker()
    t.observe(1000, now=0.0)
    assert t.observe(1010, now=600.0)


# --------------------------------------------------------------------------- client vs loopback server


@dataclass
class FakePcpServer(asyncio.DatagramProtocol):
    """miniupnpd-like: a mapping belongs to (client, proto, internal port) and its nonce."""

    epoch_base: float = 0.0
    max_lifetime: int = 86400
    announce_only_natpmp: bool = False
    behind_nat: bool = False  # MAP answers ADDRESS_MISMATCH (ANNOUNCE does not check, like miniupnpd)
    mappings: dict[tuple[str, int, int], tuple[bytes, int]] = field(default_factory=dict)
    transport: asyncio.DatagramTransport | None = None
    requests: list[bytes] = field(default_factory=list)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def epoch(self) -> int:
        return int(asyncio.get_running_loop().time() - self.epoch_base) + 1

    def restart(self) -> None:
        self.mappings.clear()
        self.epoch_base = asyncio.get_running_loop().time()  # counts from 1 again

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        assert self.transport is not None
        self.requests.append(data)
        if self.announce_only_natpmp:
            self.transport.sendto(struct.pack("!BBHI", 0, 128 + data[1], 1, 7), addr)
            return
        op = data[1]
        client = str(ipaddress.IPv6Address(data[8:24]).ipv4_mapped or ipaddress.IPv6Address(data[8:24]))
        if client != addr[0] or (self.behind_nat and op == OP_MAP):
            self.transport.sendto(struct.pack("!BBBBII", 2, 0x80 | op, 0, 12, 0, self.epoch()) + b"\0" * 12, addr)
            return
        if op == OP_ANNOUNCE:
            self.transport.sendto(struct.pack("!BBBBII", 2, 0x80, 0, 0, 0, self.epoch()) + b"\0" * 12, addr)
            return
        lifetime = struct.unpack("!I", data[4:8])[0]
        nonce = data[24:36]
        proto, internal, ext = struct.unpack("!B3xHH", data[36:44])
        key = (client, proto, internal)
        held = self.mappings.get(key)
        if held is not None and held[0] != nonce:
            self.transport.sendto(map_response(data, result=2, lifetime=0, epoch=self.epoch()), addr)
            return
        if lifetime == 0:
            self.mappings.pop(key, None)
            self.transport.sendto(map_response(data, lifetime=0, epoch=self.epoch(), external_port=0), addr)
            return
        granted = min(lifetime, self.max_lifetime)
        port = ext or internal
        self.mappings[key] = (nonce, port)
        self.transport.sendto(map_response(data, lifetime=granted, epoch=self.epoch(), external_port=port), addr)


@pytest.fixture
async def server() -> AsyncIterator[tuple[FakePcpServer, int]]:
    loop = asyncio.get_running_loop()
    proto = FakePcpServer(epoch_base=loop.time() - 1000)
    transport, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    yield proto, port
    transport.close()


async def test_announce_finds_the_server(server: tuple[FakePcpServer, int]) -> None:
    _srv, port = server
    reply = await pcp_announce("127.0.0.1", port=port, timeout_s=1.0)
    assert reply.ok and reply.epoch is not None and reply.epoch >= 1000


async def test_map_renew_delete_keep_the_nonce(server: tuple[FakePcpServer, int]) -> None:
    srv, port = server
    client = PcpClient("127.0.0.1", port=port, timeout_s=1.0)
    mapping, reply = await client.map("tcp", 8080, external_port=8080, lifetime=7 * 86400)
    assert mapping is not None, reply.error
    assert mapping.lifetime == 86400  # the server capped it; the client says what was granted
    assert mapping.client_ip == "127.0.0.1" and mapping.external_port == 8080
    renewed, reply = await client.renew(mapping)
    assert renewed is not None and renewed.nonce == mapping.nonce, reply.error
    # A delete with a fresh nonce (what tailscale's Release sends) is refused and leaves the mapping:
    stranger = PcpClient("127.0.0.1", port=port, timeout_s=1.0)
    _m, refused = await stranger.map("tcp", 8080, lifetime=0)
    assert not refused.ok and refused.result_code == 2 and srv.mappings
    # ... while the delete with the mapping's own nonce removes it.
    deleted = await client.delete(mapping)
    assert deleted.ok and not srv.mappings
    nonces = {req[24:36] for req in srv.requests}
    assert len(nonces) == 2  # ours (map, renew, delete) and the stranger's


async def test_router_restart_is_noticed(server: tuple[FakePcpServer, int]) -> None:
    srv, port = server
    client = PcpClient("127.0.0.1", port=port, timeout_s=1.0)
    mapping, _ = await client.map("udp", 51820, lifetime=600)
    assert mapping is not None and not client.epoch.lost_state
    srv.restart()
    reply = await client.announce()
    assert reply.ok and client.epoch.lost_state


async def test_address_mismatch_is_reported(server: tuple[FakePcpServer, int]) -> None:
    _srv, port = server
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.connect(("127.0.0.1", port))
    try:
        # A request naming another client address (as when a NAT sits in between):
        await loop.sock_sendall(
            sock,
            build_map(
                nonce=new_nonce(), protocol="tcp", internal_port=1, external_port=1, lifetime=1, client_ip="10.9.9.9"
            ),
        )
        data = await asyncio.wait_for(loop.sock_recv(sock, 200), 1.0)
    finally:
        sock.close()
    reply = parse_reply(data, OP_MAP)
    assert reply.result_code == 12 and "another NAT" in (reply.error or "")


async def test_natpmp_only_router(server: tuple[FakePcpServer, int]) -> None:
    srv, port = server
    srv.announce_only_natpmp = True
    reply = await pcp_announce("127.0.0.1", port=port, timeout_s=1.0)
    assert not reply.ok and reply.natpmp_only


async def test_silence_and_refusal() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    try:
        silent = await pcp_announce("127.0.0.1", port=port, timeout_s=0.3)
    finally:
        sock.close()
    assert not silent.ok and "no PCP answer" in (silent.error or "")
    refused = await pcp_announce("127.0.0.1", port=port, timeout_s=0.5)
    assert not refused.ok and refused.refused
    bad = await pcp_announce("router.example", timeout_s=0.2)
    assert not bad.ok and "IP addresses" in (bad.error or "")


async def test_bad_ports_are_refused_before_sending() -> None:
    client = PcpClient("127.0.0.1", port=9, timeout_s=0.2)
    mapping, reply = await client.map("tcp", 70000)
    assert mapping is None and "bad internal port" in (reply.error or "")


async def test_carrier_pcp_codes(server: tuple[FakePcpServer, int]) -> None:
    from checks.portmap.pcp import ask_carrier_pcp

    srv, port = server
    code, detail = await ask_carrier_pcp("127.0.0.1", port=port, timeout_s=0.5)
    assert code == "answered" and "takes port-mapping requests from this computer" in detail
    assert not srv.mappings  # the test request was a delete: nothing made
    srv.behind_nat = True  # as when the home router's NAT sits in between
    code, detail = await ask_carrier_pcp("127.0.0.1", port=port, timeout_s=0.5)
    assert code == "address-mismatch" and "PCP proxy" in detail
    srv.announce_only_natpmp = True
    assert (await ask_carrier_pcp("127.0.0.1", port=port, timeout_s=0.5))[0] == "natpmp-only"
