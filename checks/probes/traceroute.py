"""A short traceroute (a few hops) as optional NAT evidence.

Hops in 100.64.0.0/10 right after the home router hint at carrier-grade NAT.

Two ways, both returning the answering hops in order:

- as root: icmplib's ICMP traceroute (raw socket);
- as an ordinary user on Linux: UDP probes with a growing TTL on ordinary sockets
  with ``IP_RECVERR`` set, the way ``tracepath`` works: the kernel hands the
  "time exceeded" and "port unreachable" ICMP errors to the socket's error queue
  with the address of the router that sent them, no privilege needed.  Without
  this, an unprivileged run behind a router that will not name its WAN address
  (miniupnpd stays silent about a private or shared WAN) could not tell the
  ISP's carrier-grade NAT from a second router at home.

Elsewhere (no root, not Linux) it returns None (no evidence) rather than an error.
Each runs in a thread, bounded by the deadline; with at most ``max_hops`` hops the
thread itself also ends within about ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import struct
import sys
import time

from checks.addresses import parse_ip

# linux/in.h and linux/errqueue.h (Python's socket module does not name these).
IP_RECVERR = 11
SO_EE_ORIGIN_ICMP = 2
ICMP_DEST_UNREACH = 3
ICMP_TIME_EXCEEDED = 11
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # struct sock_extended_err
# Traditional traceroute destination ports: unlikely to have a listener, so the
# destination answers "port unreachable".
BASE_PORT = 33434


def _privileged() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _trace_icmp(target: str, max_hops: int, per_hop_s: float) -> tuple[str, ...]:
    import icmplib

    hops = icmplib.traceroute(
        target, count=1, interval=0.01, timeout=per_hop_s, max_hops=max_hops, fast=True
    )  # always a raw (privileged) socket
    return tuple(str(hop.address) for hop in hops)


def parse_icmp_error(cmsg_level: int, cmsg_type: int, data: bytes) -> tuple[int, int, str] | None:
    """(ICMP type, code, address of the sender) from one IP_RECVERR control message,
    or None when it is not an ICMP error with an IPv4 sender."""
    if cmsg_level != socket.SOL_IP or cmsg_type != IP_RECVERR or len(data) < _EXTENDED_ERR.size + 8:
        return None
    _errno, origin, icmp_type, icmp_code, _pad, _info, _data = _EXTENDED_ERR.unpack_from(data)
    if origin != SO_EE_ORIGIN_ICMP:
        return None
    # SO_EE_OFFENDER: a sockaddr_in right after the struct.
    family = struct.unpack_from("=H", data, _EXTENDED_ERR.size)[0]
    if family != socket.AF_INET:
        return None
    offset = _EXTENDED_ERR.size + 4
    return icmp_type, icmp_code, socket.inet_ntoa(data[offset : offset + 4])


def _trace_udp(target: str, max_hops: int, timeout_s: float) -> tuple[str, ...]:
    """UDP probes with TTL 1..max_hops, all sent at once, each on its own socket so
    every ICMP error is attributed to its TTL."""
    socks: dict[socket.socket, int] = {}
    try:
        for ttl in range(1, max_hops + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks[s] = ttl
            s.setblocking(False)
            s.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
            s.setsockopt(socket.SOL_IP, socket.IP_TTL, ttl)
            s.connect((target, BASE_PORT + ttl))
            try:
                s.send(b"ddns-wizard hop probe")
            except OSError:
                pass  # an error already queued (no route...): read below
        hops: dict[int, str] = {}
        reached_at: int | None = None
        deadline = time.monotonic() + timeout_s
        waiting = set(socks)
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # A pending error makes a socket readable.
            ready, _, _ = select.select(list(waiting), [], [], left)
            for s in ready:
                try:
                    _data, ancdata, _flags, _addr = s.recvmsg(512, 512, socket.MSG_ERRQUEUE)
                except BlockingIOError:
                    continue
                except OSError:
                    waiting.discard(s)
                    continue
                for level, kind, cdata in ancdata:
                    parsed = parse_icmp_error(level, kind, cdata)
                    if parsed is None:
                        continue
                    icmp_type, _code, sender = parsed
                    hops[socks[s]] = sender
                    if icmp_type == ICMP_DEST_UNREACH:  # the destination (or a router giving up)
                        reached_at = socks[s] if reached_at is None else min(reached_at, socks[s])
                waiting.discard(s)
            if reached_at is not None and all(socks[s] > reached_at for s in waiting):
                break  # what is still out lies beyond the end of the path
        last = reached_at if reached_at is not None else max_hops
        return tuple(hops[t] for t in sorted(hops) if t <= last)
    finally:
        for s in socks:
            s.close()


def unprivileged_possible() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "MSG_ERRQUEUE")


async def trace_hops(target: str, *, max_hops: int = 4, timeout_s: float = 1.0) -> tuple[str, ...] | None:
    """Addresses of the first ``max_hops`` routers toward ``target`` (an IP) that
    answered, in order, or None when no trace is possible here."""
    ip = parse_ip(target)
    if ip is None or max_hops < 1:
        return None
    if _privileged():
        per_hop = max(0.05, timeout_s / max_hops)
        work = asyncio.to_thread(_trace_icmp, target, max_hops, per_hop)
    elif ip.version == 4 and unprivileged_possible():
        work = asyncio.to_thread(_trace_udp, target, max_hops, timeout_s)
    else:
        return None
    try:
        return await asyncio.wait_for(work, timeout_s + 0.2)
    except Exception:  # no permission after all, no route, timeout: just no evidence
        return None


def _route_error(target: str, timeout_s: float) -> tuple[int, int, str] | None:
    """Send one UDP datagram toward ``target`` and return the first ICMP error it earned
    (type, code, sender), or None when none came within ``timeout_s``."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setblocking(False)
        s.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
        s.connect((target, BASE_PORT))
        try:
            s.send(b"ddns-wizard route check")
        except OSError:
            pass  # the error is queued: read below
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([s], [], [], left)
            if not ready:
                return None
            try:
                _data, ancdata, _flags, _addr = s.recvmsg(512, 512, socket.MSG_ERRQUEUE)
            except BlockingIOError:
                continue
            except OSError:
                return None
            for level, kind, cdata in ancdata:
                parsed = parse_icmp_error(level, kind, cdata)
                if parsed is not None:
                    return parsed
    finally:
        s.close()


async def gateway_has_no_route(target: str, gateway: str | None, *, timeout_s: float = 0.5) -> str | None:
    """Whether the router itself says it has no route toward ``target`` (an IPv4 address).

    One UDP datagram with ``IP_RECVERR`` (no privilege needed, Linux): a router without an
    uplink answers it with ICMP "network/host unreachable" from its own address. Returns
    that sentence, or None (no such answer, not Linux, or the error came from further away,
    which says nothing about the router)."""
    ip = parse_ip(target)
    if ip is None or ip.version != 4 or not gateway or not unprivileged_possible():
        return None
    try:
        found = await asyncio.wait_for(asyncio.to_thread(_route_error, target, timeout_s), timeout_s + 0.2)
    except Exception:
        return None
    if found is None:
        return None
    icmp_type, code, sender = found
    if icmp_type != ICMP_DEST_UNREACH or sender != gateway or code not in (0, 1, 6, 7, 11, 12):
        return None  # port unreachable (3) would mean the target itself answered: the route works
    return f'your router {gateway} answered "{"network" if code in (0, 6, 11) else "host"} unreachable": it has no route to the internet'
