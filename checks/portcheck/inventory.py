"""The router's mapping inventory (``upnp list``): risky services and stale mappings."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from checks.addresses import parse_ip
from checks.model import PortMapping


@dataclass(frozen=True)
class MappingStatus:
    """One router mapping with what ``upnp list`` marks on it."""

    mapping: PortMapping
    risky_service: str | None  # e.g. "SSH" when the mapping exposes a risky service
    stale: bool  # the LAN host it points at does not answer
    note: str = ""  # how liveness was judged


def _arp_complete(host: str, arp_path: str = "/proc/net/arp") -> bool:
    """True when the kernel's ARP table holds a resolved entry for ``host`` (Linux only)."""
    try:
        with open(arp_path, encoding="ascii", errors="replace") as fh:
            next(fh, None)
            for line in fh:
                cols = line.split()
                if len(cols) >= 4 and cols[0] == host:
                    return int(cols[2], 16) & 0x2 != 0 and cols[3] != "00:00:00:00:00:00"
    except (OSError, ValueError):
        pass
    return False


async def host_answers(
    host: str, port: int, *, timeout_s: float = 0.8, arp_path: str = "/proc/net/arp"
) -> tuple[bool | None, str]:
    """Whether a LAN host is still there: a quick TCP connect, then the ARP table.

    (True, ...) when it accepted or refused the connection (a reset proves the host
    is up) or has a resolved ARP entry; (False, ...) when nothing answered; None when
    the address cannot be judged."""
    if parse_ip(host) is None:
        return None, f"{host!r} is not an address"
    try:
        async with asyncio.timeout(timeout_s):
            _r, writer = await asyncio.open_connection(host, port)
        writer.close()
        return True, f"{host}:{port} accepts connections"
    except ConnectionRefusedError:
        return True, f"{host} answers (port {port} closed)"
    except (TimeoutError, OSError):
        pass
    if _arp_complete(host, arp_path):
        return True, f"{host} answers ARP, but not on TCP port {port}"
    return False, f"{host} does not answer (no TCP answer within {timeout_s:g} s, no ARP entry)"


async def inspect_mappings(
    mappings: Sequence[PortMapping], *, timeout_s: float = 0.8, arp_path: str = "/proc/net/arp"
) -> tuple[MappingStatus, ...]:
    """Mark risky services and stale hosts, checking every distinct LAN host concurrently."""
    from checks.risky import risky_service

    targets = {(m.internal_host, m.internal_port) for m in mappings}
    keys = sorted(targets)
    answers = await asyncio.gather(*(host_answers(h, p, timeout_s=timeout_s, arp_path=arp_path) for h, p in keys))
    by_key = dict(zip(keys, answers, strict=True))
    out: list[MappingStatus] = []
    for m in mappings:
        proto = m.protocol.lower()
        service = risky_service(m.internal_port, proto) or risky_service(m.external_port, proto)
        alive, note = by_key[(m.internal_host, m.internal_port)]
        out.append(MappingStatus(m, service, alive is False, note))
    return tuple(out)
