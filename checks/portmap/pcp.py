"""A small asyncio PCP client (RFC 6887, Port Control Protocol): ANNOUNCE and MAP.

PCP is NAT-PMP's successor on the same UDP port (5351). Routers that dropped UPnP
for security often still speak it (miniupnpd answers it whenever NAT-PMP is on), and
it is the one protocol a carrier-grade NAT may offer its customers. It also opens
IPv6 firewall pinholes: a MAP for this host's own global IPv6 address, sent from
that address, asks the router's firewall to let the port in.

What this client does, with the behaviour of real clients studied:

- **Wire format** (RFC 6887 §7, §11.1): a 24-byte common header (version 2, opcode,
  requested lifetime, the client's address as 16 bytes; IPv4 as an IPv4-mapped IPv6
  address ``::ffff:a.b.c.d``) and, for MAP, 36 more bytes: a 96-bit nonce, the
  protocol (6 TCP, 17 UDP), the internal port, a suggested external port and address.
  Same layout as tailscale's ``buildPCPRequestMappingPacket`` (net/portmapper/pcp.go).
- **The nonce is kept.** RFC 6887 §11.2: a renewal or delete must carry the nonce of
  the mapping, otherwise the server answers NOT_AUTHORIZED — miniupnpd's
  ``DeletePCPMap`` (pcpserver.c) compares it and refuses. tailscale's ``Release``
  draws a fresh random nonce for its delete (pcp.go), so its deletes are refused by
  such servers and the mapping lingers until its lifetime ends; here ``PcpMapping``
  carries the nonce and ``delete``/``renew`` reuse it. A reply whose nonce is not
  ours is ignored (§11.4), as are datagrams from anyone but the server (§8.3).
- **Lifetimes** (§11.2.1, §15): the server may grant less than asked; renew at half
  the granted lifetime (tailscale: ``renewAfter = lifetime/2``). Lifetime 0 deletes.
- **Epoch** (§8.5): every reply carries the server's seconds since its state began; a
  jump backwards (more than the allowed slack) means the router rebooted or restarted
  its PCP server and lost every mapping: ``EpochTracker`` notices it so the caller
  re-makes the mapping or says so.
- **Result codes** (§7.4) come back as sentences; a NAT-PMP-only server answers a
  version-2 request with a version-0 UNSUPP_VERSION (RFC 6887 §9), said as such.
- **Retransmission**: RFC 6887 §8.1.1 starts at 3 s, far too slow for a diagnosis;
  like the NAT-PMP client (and tailscale, which sends once and waits ~250 ms per
  probe) the first retransmission is after 250 ms, doubling, within a deadline.

Failures (no answer, refusal, garbage) come back as a ``PcpReply`` with ``ok=False``
and a readable ``error``; nothing here raises for network trouble.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

PCP_PORT = 5351
PCP_VERSION = 2
OP_ANNOUNCE = 0
OP_MAP = 1
REPLY_BIT = 0x80
HEADER_LEN = 24
MAP_LEN = 36
NONCE_LEN = 12
PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17}
PROTOCOL_NAMES = {6: "tcp", 17: "udp"}
RETRANSMIT_AT = (0.0, 0.25, 0.75, 1.75)
# A lasting PCP mapping asks for this much; servers cap it (miniupnpd: max_lifetime,
# 86400 s by default) and it is renewed at half of what was granted.
LONGEST_LIFETIME_S = 7 * 86400

RESULT_CODES: dict[int, tuple[str, str]] = {
    0: ("SUCCESS", "the router did what was asked"),
    1: ("UNSUPP_VERSION", "the router speaks another version of the protocol (NAT-PMP only, not PCP)"),
    2: (
        "NOT_AUTHORIZED",
        "the router refuses: PCP is switched off for this host, the port is not allowed, "
        "or the request did not carry the mapping's nonce",
    ),
    3: ("MALFORMED_REQUEST", "the router could not parse the request"),
    4: ("UNSUPP_OPCODE", "the router does not support this request"),
    5: ("UNSUPP_OPTION", "the router does not support an option the request needs"),
    6: ("MALFORMED_OPTION", "the router could not parse an option of the request"),
    7: ("NETWORK_FAILURE", "the router has no working WAN connection or no usable external address"),
    8: ("NO_RESOURCES", "the router cannot create more mappings right now"),
    9: ("UNSUPP_PROTOCOL", "the router does not map this protocol"),
    10: ("USER_EX_QUOTA", "this host has as many mappings as the router allows it"),
    11: ("CANNOT_PROVIDE_EXTERNAL", "the router cannot give the external port or address asked for"),
    12: (
        "ADDRESS_MISMATCH",
        "the router saw the request come from another address than it names: another "
        "NAT sits between this host and the PCP server",
    ),
    13: ("EXCESSIVE_REMOTE_PEERS", "the router cannot create more filters for this mapping"),
}


def describe_result(code: int) -> str:
    name, meaning = RESULT_CODES.get(code, (f"result code {code}", "unknown to RFC 6887"))
    return f"{name} ({code}): {meaning}"


def new_nonce() -> bytes:
    """A random 96-bit mapping nonce (RFC 6887 §11.1)."""
    return os.urandom(NONCE_LEN)


def _addr16(address: str) -> bytes:
    """An address as PCP's 16-byte field: IPv6 as is, IPv4 IPv4-mapped (::ffff:a.b.c.d)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 4:
        return b"\x00" * 10 + b"\xff\xff" + ip.packed
    return ip.packed


def _from16(data: bytes) -> str:
    ip = ipaddress.IPv6Address(data)
    return str(ip.ipv4_mapped) if ip.ipv4_mapped is not None else str(ip)


def _header(op: int, lifetime: int, client_ip: str) -> bytes:
    return struct.pack("!BBHI", PCP_VERSION, op, 0, max(0, min(lifetime, 0xFFFFFFFF))) + _addr16(client_ip)


def build_announce(client_ip: str) -> bytes:
    """ANNOUNCE (opcode 0): a bare header; the answer says the server is there and its epoch."""
    return _header(OP_ANNOUNCE, 0, client_ip)


def build_map(
    *,
    nonce: bytes,
    protocol: Literal["tcp", "udp"],
    internal_port: int,
    external_port: int,
    lifetime: int,
    client_ip: str,
    external_ip: str | None = None,
) -> bytes:
    """MAP (opcode 1). ``external_ip`` is the suggestion (None: all zeros, "any"; IPv4 callers
    pass "0.0.0.0" as ``::ffff:0.0.0.0`` so the server knows the family, RFC 6887 §11.1)."""
    if len(nonce) != NONCE_LEN:
        raise ValueError("a PCP nonce is 12 bytes")
    suggested = _addr16(external_ip) if external_ip else b"\x00" * 16
    body = nonce + struct.pack("!B3xHH", PROTOCOL_NUMBERS[protocol], internal_port, external_port) + suggested
    return _header(OP_MAP, lifetime, client_ip) + body


@dataclass(frozen=True)
class PcpReply:
    ok: bool
    opcode: int | None = None
    result_code: int | None = None
    lifetime: int | None = None
    epoch: int | None = None
    nonce: bytes | None = None
    protocol: str | None = None
    internal_port: int | None = None
    external_port: int | None = None
    external_address: str | None = None
    error: str | None = None
    ms: float = 0.0
    natpmp_only: bool = False  # the server answered in NAT-PMP (version 0)
    refused: bool = False  # ICMP port unreachable: nothing listens on 5351


class PcpParseError(ValueError):
    """A datagram that is not a PCP reply to our request."""


def parse_reply(data: bytes, op: int, *, nonce: bytes | None = None, ms: float = 0.0) -> PcpReply:
    """Decode a reply to request ``op``; for MAP, ``nonce`` must match. Raises PcpParseError."""
    if len(data) >= 4 and data[0] == 0 and data[1] >= REPLY_BIT:
        # A NAT-PMP server answers a request of a version it does not know with a NAT-PMP
        # reply, result 1 (RFC 6886 §3.5, RFC 6887 §9): the router speaks NAT-PMP only.
        result = struct.unpack("!H", data[2:4])[0]
        return PcpReply(
            False,
            opcode=op,
            result_code=result,
            natpmp_only=True,
            ms=ms,
            error="the router answers NAT-PMP, not PCP (it speaks the older protocol only)",
        )
    if len(data) < HEADER_LEN:
        raise PcpParseError(f"reply too short ({len(data)} bytes)")
    if len(data) > 1100 or len(data) % 4:
        raise PcpParseError(f"reply of {len(data)} bytes is not a PCP message (RFC 6887 §7)")
    version, rop, _reserved, result, lifetime, epoch = struct.unpack("!BBBBII", data[:12])
    if version != PCP_VERSION:
        raise PcpParseError(f"reply has version {version}, not PCP ({PCP_VERSION})")
    if rop != REPLY_BIT | op:
        raise PcpParseError(f"reply is for opcode {rop}, expected {REPLY_BIT | op}")
    if op != OP_MAP:
        return PcpReply(
            result == 0,
            opcode=op,
            result_code=result,
            lifetime=lifetime,
            epoch=epoch,
            ms=ms,
            error=None if result == 0 else f"the router refused: {describe_result(result)}",
        )
    if len(data) < HEADER_LEN + MAP_LEN:
        if result == 0:
            raise PcpParseError("MAP reply too short")
        # Errors may come back without the opcode body (RFC 6887 §8.3 allows a truncated copy).
        return PcpReply(
            False,
            opcode=op,
            result_code=result,
            lifetime=lifetime,
            epoch=epoch,
            ms=ms,
            error=f"the router refused: {describe_result(result)}",
        )
    body = data[HEADER_LEN : HEADER_LEN + MAP_LEN]
    got_nonce = body[:NONCE_LEN]
    if nonce is not None and got_nonce != nonce:
        raise PcpParseError("reply carries another mapping's nonce")
    proto, internal, external = struct.unpack("!B3xHH", body[12:20])
    address = _from16(body[20:36])
    return PcpReply(
        result == 0,
        opcode=op,
        result_code=result,
        lifetime=lifetime,
        epoch=epoch,
        nonce=got_nonce,
        protocol=PROTOCOL_NAMES.get(proto, str(proto)),
        internal_port=internal,
        external_port=external,
        external_address=address,
        ms=ms,
        error=None if result == 0 else f"the router refused: {describe_result(result)}",
    )


# --------------------------------------------------------------------------- epoch


@dataclass
class EpochTracker:
    """RFC 6887 §8.5: did the server lose its state (reboot, restart) since the last reply?"""

    server_epoch: int | None = None
    client_time: float | None = None
    lost_state: bool = False  # noticed at least once

    def observe(self, epoch: int, now: float | None = None) -> bool:
        """Record a reply's epoch; True when it shows the server lost its mappings."""
        now = time.monotonic() if now is None else now
        lost = False
        if self.server_epoch is not None and self.client_time is not None:
            if epoch < self.server_epoch - 1:
                lost = True
            else:
                client_delta = now - self.client_time
                server_delta = epoch - self.server_epoch
                if (
                    client_delta + 2 < server_delta - server_delta / 16
                    or server_delta + 2 < client_delta - client_delta / 16
                ):
                    lost = True
        self.server_epoch, self.client_time = epoch, now
        self.lost_state = self.lost_state or lost
        return lost


# --------------------------------------------------------------------------- transport


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, op: int, server: str, nonce: bytes | None) -> None:
        self.op = op
        self.server = ipaddress.ip_address(server.split("%", 1)[0])
        self.nonce = nonce
        self.started = time.monotonic()
        self.future: asyncio.Future[PcpReply] = asyncio.get_running_loop().create_future()
        self.last_bad: str | None = None

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            source = ipaddress.ip_address(str(addr[0]).split("%", 1)[0])
        except ValueError:
            return
        if source != self.server or self.future.done():
            return  # RFC 6887 §8.3: only the server's answers count
        ms = round((time.monotonic() - self.started) * 1000, 1)
        try:
            self.future.set_result(parse_reply(data, self.op, nonce=self.nonce, ms=ms))
        except PcpParseError as exc:
            self.last_bad = str(exc)

    def error_received(self, exc: Exception) -> None:
        if self.future.done():
            return
        ms = round((time.monotonic() - self.started) * 1000, 1)
        if isinstance(exc, ConnectionRefusedError):
            self.future.set_result(
                PcpReply(
                    False,
                    opcode=self.op,
                    refused=True,
                    ms=ms,
                    error="connection refused: nothing answers PCP on port 5351",
                )
            )
        else:
            self.future.set_result(
                PcpReply(
                    False,
                    opcode=self.op,
                    ms=ms,
                    error=f"cannot reach {self.server}: {getattr(exc, 'strerror', None) or exc}",
                )
            )


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


async def _exchange(
    server: str,
    op: int,
    build: Callable[[str], bytes],
    *,
    nonce: bytes | None,
    timeout_s: float,
    port: int,
    source: str | None,
) -> tuple[PcpReply, str | None]:
    """Send the request (built once the source address is known) until answered or out of time.

    Returns (reply, the client address the request carried)."""
    loop = asyncio.get_running_loop()
    started = time.monotonic()

    def failed(message: str) -> PcpReply:
        return PcpReply(False, opcode=op, error=message, ms=round((time.monotonic() - started) * 1000, 1))

    try:
        ipaddress.ip_address(server.split("%", 1)[0])
        if source is not None:
            ipaddress.ip_address(source.split("%", 1)[0])
    except ValueError:
        return failed(f"PCP needs IP addresses, got {server!r}" + (f" from {source!r}" if source else "")), None
    family = _family(server)
    if source is not None and _family(source) != family:
        return failed(f"cannot ask {server} from {source}: the addresses are of different families"), None
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _Protocol(op, server, nonce),
            remote_addr=(server, port),
            family=family,
            local_addr=(source, 0) if source else None,
        )
    except OSError as exc:
        return failed(f"cannot reach {server}: {exc.strerror or exc}"), None
    try:
        # The PCP client address must be the one the server sees the request come from (else
        # ADDRESS_MISMATCH, RFC 6887 §8.1): the connected socket's own address is exactly that.
        client_ip = str(transport.get_extra_info("sockname")[0]).split("%", 1)[0]
        payload = build(client_ip)
        for index, at in enumerate(RETRANSMIT_AT):
            wait = (RETRANSMIT_AT[index + 1] if index + 1 < len(RETRANSMIT_AT) else timeout_s) - at
            wait = min(wait, timeout_s - (time.monotonic() - started))
            if wait <= 0:
                break
            try:
                transport.sendto(payload)
            except OSError as exc:
                return failed(f"cannot send to {server}: {exc.strerror or exc}"), client_ip
            try:
                return await asyncio.wait_for(asyncio.shield(protocol.future), wait), client_ip
            except TimeoutError:
                continue
        if protocol.future.done():
            return protocol.future.result(), client_ip
        if protocol.last_bad:
            return failed(f"{server} answered something that is not a PCP reply: {protocol.last_bad}"), client_ip
        return failed(f"no PCP answer from {server} within {timeout_s:g} s"), client_ip
    finally:
        transport.close()


async def pcp_announce(
    server: str, *, timeout_s: float = 0.6, port: int = PCP_PORT, source: str | None = None
) -> PcpReply:
    """ANNOUNCE: is a PCP server there (and what is its epoch)? Never raises."""
    reply, _ = await _exchange(
        server, OP_ANNOUNCE, build_announce, nonce=None, timeout_s=timeout_s, port=port, source=source
    )
    return reply


# --------------------------------------------------------------------------- mappings


@dataclass
class PcpMapping:
    """One mapping the server granted, with what is needed to renew or delete it."""

    server: str
    protocol: Literal["tcp", "udp"]
    internal_port: int
    external_port: int
    external_address: str | None
    lifetime: int  # granted, seconds
    nonce: bytes
    client_ip: str  # the address the mapping points at
    epoch: int | None = None
    granted_at: float = field(default_factory=time.time)

    @property
    def renew_after(self) -> float:
        """Wall-clock time at which to renew: half the granted lifetime (RFC 6887 §11.2.1)."""
        return self.granted_at + self.lifetime / 2

    @property
    def good_until(self) -> float:
        return self.granted_at + self.lifetime

    @property
    def is_pinhole(self) -> bool:
        """An IPv6 firewall opening (the server forwards to the same address), not a NAT mapping."""
        return ":" in self.client_ip


class PcpClient:
    """Talks to one PCP server (the default gateway, or a carrier's PCP server).

    ``source`` pins the local address (an IPv6 pinhole must be asked from the address
    being opened). The client keeps an ``EpochTracker``: ``lost_state`` says whether the
    server restarted since its first answer."""

    def __init__(self, server: str, *, port: int = PCP_PORT, source: str | None = None, timeout_s: float = 1.5) -> None:
        self.server = server
        self.port = port
        self.source = source
        self.timeout_s = timeout_s
        self.epoch = EpochTracker()

    def _seen(self, reply: PcpReply) -> bool:
        return self.epoch.observe(reply.epoch) if reply.epoch is not None else False

    async def announce(self) -> PcpReply:
        reply = await pcp_announce(self.server, timeout_s=self.timeout_s, port=self.port, source=self.source)
        self._seen(reply)
        return reply

    async def map(
        self,
        protocol: Literal["tcp", "udp"],
        internal_port: int,
        *,
        external_port: int = 0,
        lifetime: int = 7200,
        nonce: bytes | None = None,
        external_ip: str | None = None,
    ) -> tuple[PcpMapping | None, PcpReply]:
        """Ask for a mapping (a new nonce unless renewing one). (mapping, reply); mapping is None
        when refused or unanswered."""
        for value, name in ((internal_port, "internal port"), (external_port, "external port")):
            if not 0 <= value <= 65535:
                return None, PcpReply(False, opcode=OP_MAP, error=f"bad {name} {value}")
        if protocol not in PROTOCOL_NUMBERS:
            return None, PcpReply(False, opcode=OP_MAP, error=f"PCP maps tcp or udp, not {protocol!r}")
        nonce = nonce or new_nonce()

        def build(client_ip: str) -> bytes:
            hint = external_ip or ("0.0.0.0" if ":" not in client_ip else None)
            return build_map(
                nonce=nonce,
                protocol=protocol,
                internal_port=internal_port,
                external_port=external_port,
                lifetime=lifetime,
                client_ip=client_ip,
                external_ip=hint,
            )

        reply, client_ip = await _exchange(
            self.server, OP_MAP, build, nonce=nonce, timeout_s=self.timeout_s, port=self.port, source=self.source
        )
        self._seen(reply)
        if not reply.ok or client_ip is None:
            return None, reply
        if reply.protocol != protocol or reply.internal_port != internal_port:
            return None, replace(reply, ok=False, error="the router answered for another mapping")
        mapping = PcpMapping(
            self.server,
            protocol,
            internal_port,
            int(reply.external_port or 0),
            reply.external_address,
            int(reply.lifetime or 0),
            nonce,
            client_ip,
            reply.epoch,
        )
        return mapping, reply

    async def renew(self, mapping: PcpMapping, lifetime: int | None = None) -> tuple[PcpMapping | None, PcpReply]:
        """Ask again with the same nonce and the granted external port (RFC 6887 §11.2.1)."""
        return await self.map(
            mapping.protocol,
            mapping.internal_port,
            external_port=mapping.external_port,
            lifetime=mapping.lifetime if lifetime is None else lifetime,
            nonce=mapping.nonce,
            external_ip=mapping.external_address if mapping.is_pinhole else None,
        )

    async def delete(self, mapping: PcpMapping) -> PcpReply:
        """Delete with the mapping's own nonce (a fresh one is refused: NOT_AUTHORIZED)."""
        _, reply = await self.map(
            mapping.protocol,
            mapping.internal_port,
            external_port=0,
            lifetime=0,
            nonce=mapping.nonce,
            external_ip=mapping.external_address if mapping.is_pinhole else None,
        )
        return reply


def mapping_from_record(record: dict[str, Any]) -> PcpMapping | None:
    """A PcpMapping from what ``mapping_record`` wrote (the lasting-forwards ledger), else None."""
    try:
        nonce = bytes.fromhex(str(record["nonce"]))
        words = str(record["protocol"]).lower()
        protocol: Literal["tcp", "udp"] | None = "tcp" if words == "tcp" else "udp" if words == "udp" else None
        if len(nonce) != NONCE_LEN or protocol is None:
            return None
        return PcpMapping(
            str(record["server"]),
            protocol,
            int(record["internal_port"]),
            int(record["external_port"]),
            str(record["external_address"]) if record.get("external_address") else None,
            int(record.get("lifetime") or 0),
            nonce,
            str(record["client_ip"]),
            granted_at=float(record.get("granted_at") or 0),
        )
    except (KeyError, TypeError, ValueError):
        return None


def mapping_record(m: PcpMapping) -> dict[str, object]:
    return {
        "server": m.server,
        "protocol": m.protocol,
        "internal_port": m.internal_port,
        "external_port": m.external_port,
        "external_address": m.external_address,
        "lifetime": m.lifetime,
        "nonce": m.nonce.hex(),
        "client_ip": m.client_ip,
        "granted_at": m.granted_at,
    }


# --------------------------------------------------------------------------- the carrier's PCP


async def ask_carrier_pcp(hop: str, *, timeout_s: float = 1.0, port: int = PCP_PORT) -> tuple[str, str]:
    """Ask the hop after the home router (a carrier-grade NAT may run a PCP server) for PCP.

    Returns (code, detail): "answered" | "address-mismatch" | "natpmp-only" | "refused" |
    "no-answer". Under CGNAT a carrier PCP server is the only way in without a tunnel. A request
    from behind the home router reaches it with the router's WAN address as source, so a MAP is
    answered ADDRESS_MISMATCH (RFC 6887 §8.3): it is there, but only a router that relays PCP (a
    PCP proxy, RFC 7648) could use it. miniupnpd answers ANNOUNCE whatever the source (seen in the
    lab), so after an ANNOUNCE a MAP *delete* (lifetime 0, a fresh nonce: it can remove nothing)
    tells the two apart without creating anything on the carrier's NAT."""
    started = time.monotonic()
    reply = await pcp_announce(hop, timeout_s=timeout_s, port=port)
    if reply.ok:
        left = max(0.2, timeout_s - (time.monotonic() - started))
        probe = PcpClient(hop, timeout_s=left, port=port)
        _m, mapped = await probe.map("udp", 1 + int.from_bytes(os.urandom(2), "big") % 65535, lifetime=0)
        if mapped.result_code == 12:
            return "address-mismatch", (
                f"{hop} (the hop after your router) answers PCP, but sees your router's "
                "NAT in between (ADDRESS_MISMATCH): only a router that relays PCP (a PCP "
                "proxy) could ask it for a port"
            )
        return "answered", (
            f"{hop} (the hop after your router) answers PCP (epoch {reply.epoch})"
            + (
                ": it takes port-mapping requests from this computer"
                if mapped.ok
                else f"; a test request was answered: {mapped.error or 'no reply'}"
            )
        )
    if reply.result_code == 12:
        return "address-mismatch", (
            f"{hop} answers PCP, but sees your router's NAT in between (ADDRESS_MISMATCH): "
            "only a router that relays PCP (a PCP proxy) could ask it for a port"
        )
    if reply.natpmp_only:
        return "natpmp-only", f"{hop} answers NAT-PMP, not PCP"
    if reply.result_code is not None:
        return "answered", f"{hop} answers PCP but refused: {describe_result(reply.result_code)}"
    if reply.refused:
        return "refused", f"{hop} has no PCP server (port 5351 unreachable)"
    return "no-answer", f"{hop} did not answer PCP ({reply.error or 'no reply'})"
