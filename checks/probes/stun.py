"""A small asyncio STUN client (RFC 5389 Binding) for the public address and NAT mapping behaviour.

Why our own: the STUN packages on PyPI are RFC 3489-era or fragile, and a binding
request is a 20-byte packet.  One local UDP socket (per address family) asks every
server, so comparing the mapped ports tells whether the NAT maps by destination
("symmetric" NAT, bad for peer-to-peer and a hint of carrier-grade NAT).

Every failure is data: a server that does not answer, answers garbage or answers
for another transaction becomes that source's ``error``.

Families are never mixed: ``stun_probe(..., family=4)`` (the default) resolves the
servers' A records only and asks from an IPv4 socket; a mapped address of the other
family (or a zoned / non-global one) is discarded with the reason, never counted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import struct
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from checks.model import AddressFamily, ExternalSource

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111
ATTR_MAPPED_ADDRESS = 0x0001
ATTR_ERROR_CODE = 0x0009
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_FINGERPRINT = 0x8028
DEFAULT_PORT = 3478
# Send times (s after start) of the request; tailscale's netcheck uses a similar schedule.
RETRANSMIT_AT = (0.0, 0.1, 0.2, 0.4)


class StunParseError(ValueError):
    """A datagram that is not a usable Binding success response for our transaction."""


class StunErrorResponse(StunParseError):
    """The server answered our transaction with a Binding error response (final)."""


def build_binding_request(txid: bytes) -> bytes:
    """A Binding Request with no attributes (20 bytes)."""
    if len(txid) != 12:
        raise ValueError("a STUN transaction id is 12 bytes")
    return struct.pack("!HHI", BINDING_REQUEST, 0, MAGIC_COOKIE) + txid


def _decode_address(value: bytes, txid: bytes, *, xored: bool) -> tuple[str, int]:
    if len(value) < 4:
        raise StunParseError("address attribute too short")
    family = value[1]
    port = struct.unpack("!H", value[2:4])[0]
    raw = value[4:]
    if xored:
        port ^= MAGIC_COOKIE >> 16
    if family == 0x01:
        if len(raw) != 4:
            raise StunParseError("IPv4 address attribute has the wrong length")
        if xored:
            raw = bytes(a ^ b for a, b in zip(raw, struct.pack("!I", MAGIC_COOKIE), strict=True))
        return str(ipaddress.IPv4Address(raw)), port
    if family == 0x02:
        if len(raw) != 16:
            raise StunParseError("IPv6 address attribute has the wrong length")
        if xored:
            raw = bytes(a ^ b for a, b in zip(raw, struct.pack("!I", MAGIC_COOKIE) + txid, strict=True))
        return str(ipaddress.IPv6Address(raw)), port
    raise StunParseError(f"unknown address family {family}")


def parse_binding_response(data: bytes, txid: bytes) -> tuple[str, int]:
    """(mapped address, mapped port) from a Binding success response.

    Prefers XOR-MAPPED-ADDRESS, falls back to MAPPED-ADDRESS (old servers).
    Raises StunParseError for anything else: wrong transaction, error response,
    truncated or inconsistent message, bad FINGERPRINT.
    """
    if len(data) < 20:
        raise StunParseError(f"reply too short for STUN ({len(data)} bytes)")
    msg_type, length, cookie = struct.unpack("!HHI", data[:8])
    if msg_type & 0xC000 or cookie != MAGIC_COOKIE:
        raise StunParseError("not a STUN message")
    if data[8:20] != txid:
        raise StunParseError("reply for another transaction")
    if length % 4 or 20 + length > len(data):
        raise StunParseError("STUN message length does not match the datagram")
    body = data[20 : 20 + length]
    attrs: dict[int, bytes] = {}
    pos = 0
    while pos + 4 <= len(body):
        attr_type, attr_len = struct.unpack("!HH", body[pos : pos + 4])
        value = body[pos + 4 : pos + 4 + attr_len]
        if len(value) != attr_len:
            raise StunParseError("truncated STUN attribute")
        if attr_type == ATTR_FINGERPRINT:
            if attr_len != 4:
                raise StunParseError("bad FINGERPRINT attribute")
            # CRC over the message up to the FINGERPRINT attribute, with the length as sent.
            expected = (zlib.crc32(data[: 20 + pos]) ^ 0x5354554E) & 0xFFFFFFFF
            if struct.unpack("!I", value)[0] != expected:
                raise StunParseError("FINGERPRINT does not match (corrupted reply)")
        attrs.setdefault(attr_type, value)
        pos += 4 + attr_len + (-attr_len % 4)
    if msg_type == BINDING_ERROR:
        err = attrs.get(ATTR_ERROR_CODE, b"")
        if len(err) >= 4:
            code = (err[2] & 0x7) * 100 + err[3]
            reason = err[4:].decode("utf-8", "replace")[:60]
            raise StunErrorResponse(f"server answered with error {code} {reason}".rstrip())
        raise StunErrorResponse("server answered with an error")
    if msg_type != BINDING_SUCCESS:
        raise StunParseError(f"unexpected STUN message type 0x{msg_type:04x}")
    if ATTR_XOR_MAPPED_ADDRESS in attrs:
        return _decode_address(attrs[ATTR_XOR_MAPPED_ADDRESS], txid, xored=True)
    if ATTR_MAPPED_ADDRESS in attrs:
        return _decode_address(attrs[ATTR_MAPPED_ADDRESS], txid, xored=False)
    raise StunParseError("reply carries no mapped address")


@dataclass
class _Query:
    spec: str
    addr: tuple[str, int] | None = None  # resolved (ip, port)
    family: AddressFamily = 4
    txid: bytes = field(default_factory=lambda: os.urandom(12))
    started: float = 0.0
    result: tuple[str, int] | None = None
    error: str | None = None
    last_bad: str | None = None  # a garbage reply, reported if nothing better comes
    done: asyncio.Event = field(default_factory=asyncio.Event)
    ms: float = 0.0


class _StunProtocol(asyncio.DatagramProtocol):
    def __init__(self, queries: list[_Query]) -> None:
        self.by_txid = {q.txid: q for q in queries}

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        query = self.by_txid.get(data[8:20]) if len(data) >= 20 else None
        if query is None:
            # Not our transaction: a stray packet, or a server speaking something else.
            # Only remember it (for the error text) when it came from a server we asked.
            for q in self.by_txid.values():
                if q.addr is not None and (q.addr[0], q.addr[1]) == (addr[0], addr[1]) and not q.done.is_set():
                    q.last_bad = "the server answered, but not with a STUN reply to our request"
            return
        if query.done.is_set():
            return  # a late duplicate
        try:
            query.result = parse_binding_response(data, query.txid)
        except StunErrorResponse as exc:  # a real STUN error answer is final
            query.error = str(exc)
        except StunParseError as exc:  # garbage: keep waiting for a good one
            query.last_bad = f"unusable reply: {exc}"
            return
        query.ms = (time.monotonic() - query.started) * 1000
        query.done.set()

    def error_received(self, exc: Exception) -> None:
        # An unconnected UDP socket cannot say which server an ICMP error was for
        # (Linux does not even report them); the affected queries simply time out.
        pass


async def _resolve(query: _Query, loop: asyncio.AbstractEventLoop, family: AddressFamily, timeout_s: float) -> None:
    query.family = family
    from checks.addresses import parse_ip, split_host_port

    try:
        host, port = split_host_port(query.spec, default_port=DEFAULT_PORT, what="STUN server")
    except ValueError as exc:  # AddressError: a bad server in the configuration is this query's error
        query.error = str(exc)
        return

    literal = parse_ip(host)
    if literal is not None and literal.version != family:
        query.error = f"{host} is not an IPv{family} server: the IPv{family} question must go to one"
        return
    from checks.names import lookup

    try:
        addresses = await lookup(host, family, timeout_s=timeout_s)
    except (UnicodeError, OSError) as exc:
        query.error = f"cannot resolve {host} over IPv{family}: {getattr(exc, 'strerror', None) or exc}"
        return
    query.addr = (addresses[0], port)


async def _exchange(queries: list[_Query], family: int, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    local = "0.0.0.0" if family == 4 else "::"
    try:
        sock = socket.socket(socket.AF_INET if family == 4 else socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((local, 0))
            transport, _ = await loop.create_datagram_endpoint(lambda: _StunProtocol(queries), sock=sock)
        except BaseException:
            sock.close()
            raise
    except OSError as exc:
        for q in queries:
            q.error = f"cannot open a UDP socket: {exc.strerror or exc}"
        return
    try:
        start = time.monotonic()
        for q in queries:
            q.started = start

        async def send_schedule(q: _Query) -> None:
            addr = q.addr
            if addr is None:  # only resolved queries are exchanged; nothing to send to
                return
            for at in RETRANSMIT_AT:
                delay = start + at - time.monotonic()
                if delay > 0:
                    try:
                        await asyncio.wait_for(q.done.wait(), delay)
                        return
                    except TimeoutError:
                        pass
                if q.done.is_set() or time.monotonic() >= deadline:
                    return
                try:
                    # On the socket itself: the transport would swallow the OSError
                    # (e.g. "Network is unreachable") and we would wait out the deadline.
                    sock.sendto(build_binding_request(q.txid), addr)
                except BlockingIOError:
                    pass  # socket buffer full: the next retransmission will go
                except OSError as exc:
                    q.error = f"cannot send to {addr[0]}: {exc.strerror or exc}"
                    q.done.set()
                    return
            await q.done.wait()

        remaining = deadline - time.monotonic()
        tasks = [asyncio.ensure_future(send_schedule(q)) for q in queries]
        try:
            await asyncio.wait(tasks, timeout=max(remaining, 0))
        finally:
            for task in tasks:
                task.cancel()
    finally:
        transport.close()


async def stun_probe(
    servers: Sequence[str], *, timeout_s: float = 1.5, family: int = 4
) -> tuple[tuple[ExternalSource, ...], bool | None]:
    """Ask every STUN server for our mapped address of ``family`` from one local socket.

    Returns one ExternalSource per server (in the order given) and whether the
    mapped port (or address) varies by destination: None with fewer than two answers.
    """
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout_s
    queries = [_Query(spec) for spec in servers]
    if not queries:
        return (), None
    t0 = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(_resolve(q, loop, 6 if family == 6 else 4, timeout_s) for q in queries))
    except TimeoutError:
        pass
    for q in queries:
        if q.addr is None and q.error is None:
            q.error = f"could not resolve the server name within {timeout_s:g} s"
    groups = {
        family: [q for q in queries if q.addr is not None and q.family == family and q.error is None]
        for family in (4, 6)
    }
    await asyncio.gather(*(_exchange(group, family, deadline) for family, group in groups.items() if group))
    sources: list[ExternalSource] = []
    from checks.probes.publicip import accept_answer

    for q in queries:
        if q.result is not None and q.error is None:
            value, why = accept_answer(q.result[0], q.family)
            if value is not None:
                sources.append(
                    ExternalSource("stun", q.spec, q.family, value, None, round(q.ms, 1), mapped_port=q.result[1])
                )
                continue
            q.error = f"the server {why}"
        error = q.error or q.last_bad or f"no answer within {timeout_s:g} s"
        ms = q.ms or (time.monotonic() - t0) * 1000
        sources.append(ExternalSource("stun", q.spec, q.family, None, error, round(ms, 1)))
    return tuple(sources), mapping_varies(sources)


def mapping_varies(sources: Sequence[ExternalSource]) -> bool | None:
    """True when one local socket got different mappings from different servers."""
    for family in (4, 6):
        mapped = {(s.value, s.mapped_port) for s in sources if s.value and s.family == family}
        answers = [s for s in sources if s.value and s.family == family]
        if len(answers) >= 2:
            return len(mapped) > 1
    return None
