"""A short traceroute (a few hops) as optional NAT evidence.

Hops in 100.64.0.0/10 right after the home router hint at carrier-grade NAT.
Raw ICMP sockets need root, so without it this returns None (no evidence) rather
than an error. icmplib's traceroute is synchronous: it runs in a thread, bounded
by the deadline; with at most ``max_hops`` hops and a per-hop timeout of
``timeout_s / max_hops`` the thread itself also ends within about ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import os

from .addresses import parse_ip


def _privileged() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _trace(target: str, max_hops: int, per_hop_s: float) -> tuple[str, ...]:
    import icmplib

    hops = icmplib.traceroute(target, count=1, interval=0.01, timeout=per_hop_s, max_hops=max_hops,
                              fast=True)   # always a raw (privileged) socket
    return tuple(str(hop.address) for hop in hops)


async def trace_hops(target: str, *, max_hops: int = 4, timeout_s: float = 1.0) -> tuple[str, ...] | None:
    """Addresses of the first ``max_hops`` routers toward ``target`` (an IP), or None."""
    if not _privileged() or parse_ip(target) is None or max_hops < 1:
        return None
    per_hop = max(0.05, timeout_s / max_hops)
    try:
        return await asyncio.wait_for(asyncio.to_thread(_trace, target, max_hops, per_hop), timeout_s + 0.2)
    except Exception:       # no permission after all, no route, timeout: just no evidence
        return None
