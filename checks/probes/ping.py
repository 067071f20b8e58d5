"""Is anything alive at an address?  ICMP echo if the system lets us, else a TCP connect.

Order of attempts (``PingResult.method`` says which one the result comes from):

1. ``icmp-unprivileged`` — icmplib's datagram ICMP socket; needs the user's group in
   ``net.ipv4.ping_group_range`` (disabled on many systems, even for root);
2. ``icmp-privileged`` — a raw socket, when that was refused and we are root;
3. ``tcp-connect`` — a timed TCP connect to 443, 80 and 22 at once, when ICMP could
   not be used, or when ICMP got no reply: many home routers drop ICMP echo, and a
   TCP answer (even a refusal, which is a reset sent by the host) proves the
   address is alive.

A failed ping is a fact, not an error: the result says what was tried and why a
silent address does not mean a broken DDNS name.
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from checks.model import PingMethod, PingResult

IcmpPing = Callable[..., Awaitable[Any]]  # icmplib.async_ping's signature; returns an icmplib Host

_NO_REPLY_HINT = (
    "many routers and firewalls drop ICMP echo and close unused ports, so this does not mean "
    "the name is wrong; the DNS verdict is what counts"
)


def _default_icmp() -> IcmpPing:
    from icmplib import async_ping  # imported here: tests inject a fake instead

    ping: IcmpPing = async_ping  # icmplib ships no type information
    return ping


async def ping_host(
    address: str,
    *,
    count: int = 3,
    timeout_s: float = 2.0,
    tcp_ports: Sequence[int] = (443, 80, 22),
    icmp_ping: IcmpPing | None = None,
    is_root: bool | None = None,
) -> PingResult:
    """Ping ``address`` (an IP address) within about ``timeout_s`` per method tried.

    ``icmp_ping`` replaces ``icmplib.async_ping`` and ``is_root`` the effective-uid
    check (both for tests).
    """
    from icmplib.exceptions import ICMPLibError, SocketPermissionError

    icmp = icmp_ping or _default_icmp()
    root = (os.geteuid() == 0) if is_root is None else is_root
    notes: list[str] = []
    icmp_method: PingMethod | None = None

    for privileged in (False, True):
        method: PingMethod = "icmp-privileged" if privileged else "icmp-unprivileged"
        if privileged and not root:
            notes.append("unprivileged ICMP is not allowed here (net.ipv4.ping_group_range) and we are not root")
            break
        try:
            host = await _bounded_icmp(icmp, address, count=count, timeout_s=timeout_s, privileged=privileged)
        except SocketPermissionError:
            if not privileged:
                continue  # try the raw socket if we are root
            notes.append("ICMP sockets are not permitted here")
            break
        except (ICMPLibError, OSError) as exc:
            notes.append(f"ICMP could not be sent ({type(exc).__name__}: {exc})")
            break
        icmp_method = method
        if host is not None and getattr(host, "is_alive", False):
            rtt = float(getattr(host, "avg_rtt", 0.0))
            return PingResult(
                method=method,
                alive=True,
                rtt_ms=round(rtt, 2),
                target=address,
                detail=f"{getattr(host, 'packets_received', '?')}/{getattr(host, 'packets_sent', count)} "
                f"ICMP echo replies, average {rtt:.1f} ms",
            )
        notes.append(f"no ICMP echo reply ({count} sent)")
        break

    if tcp_ports:
        tcp = await tcp_probe(address, tcp_ports, timeout_s=timeout_s)
        if tcp.alive or icmp_method is None:
            detail = "; ".join(notes + [tcp.detail])
            if not tcp.alive:
                detail += f"; {_NO_REPLY_HINT}"
            return PingResult(method="tcp-connect", alive=tcp.alive, rtt_ms=tcp.rtt_ms, target=address, detail=detail)
        notes.append(tcp.detail)
    if icmp_method is None:
        return PingResult(
            method="none",
            alive=False,
            rtt_ms=None,
            target=address,
            detail="; ".join(notes) or "no ping method available",
        )
    return PingResult(
        method=icmp_method, alive=False, rtt_ms=None, target=address, detail="; ".join(notes + [_NO_REPLY_HINT])
    )


async def _bounded_icmp(icmp: IcmpPing, address: str, *, count: int, timeout_s: float, privileged: bool) -> Any:
    """icmplib's ping under one deadline (its own timeout is per packet)."""
    per_packet = max(0.3, timeout_s / max(1, count))
    try:
        async with asyncio.timeout(timeout_s + 0.5):
            return await icmp(address, count=count, interval=0.2, timeout=per_packet, privileged=privileged)
    except TimeoutError:
        return None


async def tcp_probe(address: str, ports: Sequence[int], *, timeout_s: float = 2.0) -> PingResult:
    """Timed TCP connects to ``ports`` at once; the first that answers decides.

    A completed connect or a refusal (RST) both prove a host answers at ``address``.
    """

    async def one(port: int) -> tuple[int, str, float]:
        started = time.monotonic()
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout_s)
        except ConnectionRefusedError:
            return port, "refused", (time.monotonic() - started) * 1000
        except TimeoutError:
            return port, "timeout", (time.monotonic() - started) * 1000
        except OSError as exc:
            reason = (
                "unreachable" if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH) else (exc.strerror or str(exc))
            )
            return port, reason, (time.monotonic() - started) * 1000
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 0.5)
        except (OSError, TimeoutError):
            pass
        return port, "connected", (time.monotonic() - started) * 1000

    tasks = [asyncio.ensure_future(one(p)) for p in ports]
    outcomes: list[tuple[int, str, float]] = []
    try:
        for fut in asyncio.as_completed(tasks):
            port, outcome, ms = await fut
            outcomes.append((port, outcome, ms))
            if outcome in ("connected", "refused"):
                what = (
                    "accepted"
                    if outcome == "connected"
                    else "refused (a reset came back: the host, or a firewall in front of it, answered)"
                )
                return PingResult(
                    method="tcp-connect",
                    alive=True,
                    rtt_ms=round(ms, 2),
                    target=address,
                    detail=f"TCP connect to port {port} {what} in {ms:.1f} ms",
                )
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    tried = ", ".join(f"port {p}: {o}" for p, o, _ in sorted(outcomes))
    return PingResult(
        method="tcp-connect",
        alive=False,
        rtt_ms=None,
        target=address,
        detail=f"no TCP answer ({tried})" if tried else "no TCP port to try",
    )
