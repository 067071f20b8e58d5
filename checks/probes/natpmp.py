"""A small NAT-PMP client (RFC 6886): the router's external address and port mappings.

NAT-PMP is two UDP packets to gateway:5351, so an own client is simpler and faster
than a library. Failures (no answer, refusal, garbage) come back as a NatPmpReply
with ``ok=False`` and a readable ``error``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
import time
from dataclasses import dataclass
from typing import Any, Literal

NATPMP_PORT = 5351
OP_EXTERNAL_ADDRESS = 0
OP_MAP_UDP = 1
OP_MAP_TCP = 2
# RFC 6886 3.1: first retransmission after 250 ms, doubling.
RETRANSMIT_AT = (0.0, 0.25, 0.75, 1.75)

RESULT_CODES: dict[int, tuple[str, str]] = {
    0: ("Success", "the router did what was asked"),
    1: ("Unsupported Version", "the router speaks another NAT-PMP version (perhaps only PCP)"),
    2: ("Not Authorized/Refused", "the router has NAT-PMP switched off or refuses this host"),
    3: (
        "Network Failure",
        "the router has no working WAN connection or no usable external address"
        " (miniupnpd answers this when its own WAN address is private)",
    ),
    4: ("Out of resources", "the router cannot create more mappings"),
    5: ("Unsupported opcode", "the router does not support this request"),
}


@dataclass(frozen=True)
class NatPmpReply:
    ok: bool
    result_code: int | None
    epoch: int | None
    external_ipv4: str | None
    internal_port: int | None
    external_port: int | None
    lifetime: int | None
    error: str | None
    ms: float


class NatPmpParseError(ValueError):
    """A datagram that is not a NAT-PMP reply to our request."""


def describe_result(code: int) -> str:
    name, meaning = RESULT_CODES.get(code, (f"result code {code}", "unknown to RFC 6886"))
    return f"{name} ({code}): {meaning}"


def build_request(op: int, internal_port: int = 0, external_port: int = 0, lifetime: int = 0) -> bytes:
    if op == OP_EXTERNAL_ADDRESS:
        return b"\x00\x00"
    return struct.pack("!BBHHHI", 0, op, 0, internal_port, external_port, lifetime)


def parse_reply(data: bytes, op: int, *, ms: float = 0.0) -> NatPmpReply:
    """Decode a reply to request ``op``. Raises NatPmpParseError when it is not one."""
    if len(data) < 8:
        raise NatPmpParseError(f"reply too short ({len(data)} bytes)")
    version, reply_op, result, epoch = struct.unpack("!BBHI", data[:8])
    if version != 0:
        raise NatPmpParseError(f"reply has version {version}, not NAT-PMP (0)")
    if reply_op != 128 + op:
        raise NatPmpParseError(f"reply is for opcode {reply_op}, expected {128 + op}")
    if result != 0:
        return NatPmpReply(
            False, result, epoch, None, None, None, None, f"the router refused: {describe_result(result)}", ms
        )
    if op == OP_EXTERNAL_ADDRESS:
        if len(data) < 12:
            raise NatPmpParseError("external-address reply too short")
        address = str(ipaddress.IPv4Address(data[8:12]))
        return NatPmpReply(True, 0, epoch, address, None, None, None, None, ms)
    if len(data) < 16:
        raise NatPmpParseError("mapping reply too short")
    internal, external, lifetime = struct.unpack("!HHI", data[8:16])
    return NatPmpReply(True, 0, epoch, None, internal, external, lifetime, None, ms)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, op: int, gateway: str) -> None:
        self.op = op
        self.gateway = gateway
        self.started = time.monotonic()
        self.future: asyncio.Future[NatPmpReply] = asyncio.get_running_loop().create_future()
        self.last_bad: str | None = None
        self.refused = False

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if addr[0] != self.gateway or self.future.done():
            return  # RFC 6886: only the gateway's answers count
        ms = (time.monotonic() - self.started) * 1000
        try:
            self.future.set_result(parse_reply(data, self.op, ms=round(ms, 1)))
        except NatPmpParseError as exc:
            self.last_bad = str(exc)

    def error_received(self, exc: Exception) -> None:
        # Connected UDP socket, so the error is about the gateway: an ICMP port-unreachable
        # means nothing listens on 5351; others (no route, host unreachable) are final too.
        if self.future.done():
            return
        if isinstance(exc, ConnectionRefusedError):
            self.refused = True
            message = "connection refused: the router does not run NAT-PMP"
        else:
            message = f"cannot reach {self.gateway}: {getattr(exc, 'strerror', None) or exc}"
        ms = (time.monotonic() - self.started) * 1000
        self.future.set_result(NatPmpReply(False, None, None, None, None, None, None, message, round(ms, 1)))


async def _request(gateway: str, op: int, payload: bytes, timeout_s: float, port: int) -> NatPmpReply:
    loop = asyncio.get_running_loop()
    started = time.monotonic()

    def failed(message: str) -> NatPmpReply:
        return NatPmpReply(
            False, None, None, None, None, None, None, message, round((time.monotonic() - started) * 1000, 1)
        )

    try:
        ipaddress.IPv4Address(gateway)
    except ValueError:
        return failed(f"NAT-PMP needs the gateway's IPv4 address, got {gateway!r}")
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _Protocol(op, gateway), remote_addr=(gateway, port)
        )
    except OSError as exc:
        return failed(f"cannot reach {gateway}: {exc.strerror or exc}")
    try:
        for index, at in enumerate(RETRANSMIT_AT):
            wait = (RETRANSMIT_AT[index + 1] if index + 1 < len(RETRANSMIT_AT) else timeout_s) - at
            wait = min(wait, timeout_s - (time.monotonic() - started))
            if wait <= 0:
                break
            try:
                transport.sendto(payload)
            except OSError as exc:
                return failed(f"cannot send to {gateway}: {exc.strerror or exc}")
            try:
                return await asyncio.wait_for(asyncio.shield(protocol.future), wait)
            except TimeoutError:
                continue
        if protocol.future.done():
            return protocol.future.result()
        if protocol.last_bad:
            return failed(f"the gateway answered garbage: {protocol.last_bad}")
        return failed(f"no answer within {timeout_s:g} s (the router does not speak NAT-PMP)")
    finally:
        transport.close()


async def natpmp_external_address(gateway: str, *, timeout_s: float = 0.6, port: int = NATPMP_PORT) -> NatPmpReply:
    """Ask the gateway for its external IPv4 address (opcode 0)."""
    payload = build_request(OP_EXTERNAL_ADDRESS)
    return await _request(gateway, OP_EXTERNAL_ADDRESS, payload, timeout_s, port)


async def natpmp_map(
    gateway: str,
    protocol: Literal["tcp", "udp"],
    internal_port: int,
    external_port: int,
    lifetime: int,
    *,
    timeout_s: float = 1.0,
    port: int = NATPMP_PORT,
) -> NatPmpReply:
    """Create (or with lifetime 0 delete) a mapping; the reply says which port was granted."""
    op = OP_MAP_TCP if protocol.lower() == "tcp" else OP_MAP_UDP
    for value, name in ((internal_port, "internal port"), (external_port, "external port")):
        if not 0 <= value <= 65535:
            return NatPmpReply(False, None, None, None, None, None, None, f"bad {name} {value}", 0.0)
    payload = build_request(op, internal_port, external_port, max(0, min(lifetime, 0xFFFFFFFF)))
    return await _request(gateway, op, payload, timeout_s, port)
