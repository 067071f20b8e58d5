"""Outbound block test: can this network open connections to port N out there?

Connect to ``[endpoints] outbound_target`` (a host that accepts TCP on every port,
like portquiz.net) on each port, concurrently, each with its own deadline:

- ``open``: the TCP handshake completed;
- ``blocked``: the connection timed out or was refused/reset — since the target
  accepts every port, something on the way (this host's firewall, the router,
  the ISP) dropped or rejected it;
- ``unknown``: the test says nothing about the port: the target's name does not
  resolve, the network is unreachable, or *no* port reached the target at all
  (not even the reference port 443, tested alongside even when not asked for):
  then the target is down or this machine is offline, and calling every port
  "blocked" would be a lie.

UDP (``51820/udp``) cannot be confirmed against a TCP-only target: a UDP datagram
that gets through earns no reply, so it is reported ``unknown`` with that reason.

Port 25 blocked outbound is normal on residential lines (ISPs stop spam bots
that way): the result says so rather than raising an alarm.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Sequence
from typing import Literal

from checks.model import OutboundResult

DEFAULT_OUTBOUND_PORTS: tuple[tuple[int, Literal["tcp", "udp"]], ...] = (
    (25, "tcp"),
    (53, "tcp"),
    (80, "tcp"),
    (443, "tcp"),
    (465, "tcp"),
    (587, "tcp"),
    (993, "tcp"),
    (1194, "tcp"),
    (8080, "tcp"),
    (51820, "udp"),
)
REFERENCE_PORTS = (443, 80)  # tested alongside: proves the target is reachable at all

PORT25_NOTE = (
    "Port 25 (SMTP) blocked outbound is normal on residential lines: ISPs block it against "
    "spam. Send mail through your mail provider's submission port (587 or 465) instead."
)
_UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN}

_Outcome = Literal["connected", "timeout", "refused", "unreachable", "error"]


async def _connect_once(address: str, port: int, family: int, timeout_s: float) -> tuple[_Outcome, float, str]:
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            _reader, writer = await asyncio.open_connection(address, port, family=family)
    except TimeoutError:
        return "timeout", (time.perf_counter() - start) * 1000, f"no answer within {timeout_s:g} s"
    except ConnectionRefusedError:
        return "refused", (time.perf_counter() - start) * 1000, "connection refused or reset"
    except OSError as exc:
        ms = (time.perf_counter() - start) * 1000
        if exc.errno == errno.EHOSTUNREACH:
            # An ICMP "host/admin prohibited" from a firewall looks like this too.
            return "unreachable", ms, "host unreachable (an ICMP error came back)"
        if exc.errno in _UNREACHABLE_ERRNOS:
            return "unreachable", ms, f"network unreachable ({exc.strerror})"
        return "error", ms, exc.strerror or str(exc)
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    except (OSError, TimeoutError):
        pass
    return "connected", (time.perf_counter() - start) * 1000, "connected"


async def _resolve(target: str, timeout_s: float) -> tuple[str, int] | str:
    """(address, family) or an error sentence."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            infos = await loop.getaddrinfo(target, None, type=socket.SOCK_STREAM)
    except TimeoutError:
        return f"could not resolve {target} within {timeout_s:g} s"
    except socket.gaierror as exc:
        return f"could not resolve {target}: {exc.strerror or exc}"
    except OSError as exc:
        return f"could not resolve {target}: {exc.strerror or exc}"
    for fam in (socket.AF_INET, socket.AF_INET6):
        for info in infos:
            if info[0] == fam:
                return str(info[4][0]), int(fam)
    return f"{target} has no usable address"


async def check_outbound(
    target: str,
    ports: Sequence[tuple[int, Literal["tcp", "udp"]]] = DEFAULT_OUTBOUND_PORTS,
    *,
    timeout_s: float = 3.0,
    resolve_timeout_s: float = 3.0,
    reference_ports: Sequence[int] = REFERENCE_PORTS,
) -> tuple[OutboundResult, ...]:
    """Test each port outbound against ``target``; results in the order asked."""
    if not target:
        return tuple(
            OutboundResult(p, proto, "unknown", None, "no outbound_target configured ([endpoints])")
            for p, proto in ports
        )
    resolved = await _resolve(target, resolve_timeout_s)
    if isinstance(resolved, str):
        return tuple(OutboundResult(p, proto, "unknown", None, resolved) for p, proto in ports)
    address, family = resolved

    tcp_ports = sorted({p for p, proto in ports if proto == "tcp"} | set(reference_ports))
    outcomes = await asyncio.gather(*(_connect_once(address, p, family, timeout_s) for p in tcp_ports))
    by_port = dict(zip(tcp_ports, outcomes, strict=True))
    any_connected = any(o[0] == "connected" for o in outcomes)

    results: list[OutboundResult] = []
    for port, proto in ports:
        if proto == "udp":
            results.append(
                OutboundResult(
                    port,
                    "udp",
                    "unknown",
                    None,
                    f"UDP outbound cannot be confirmed against {target}, which answers TCP only "
                    "(a datagram that gets through earns no reply)",
                )
            )
            continue
        outcome, ms, text = by_port[port]
        ms = round(ms, 1)
        if outcome == "connected":
            results.append(OutboundResult(port, "tcp", "open", ms, f"connected to {target} ({address})"))
        elif not any_connected:
            results.append(
                OutboundResult(
                    port,
                    "tcp",
                    "unknown",
                    None,
                    f"{text}; no port reached {target} at all (not even 443 or 80), so the target is "
                    "down or this network is offline: this says nothing about port blocking",
                )
            )
        elif outcome in ("timeout", "refused", "unreachable"):
            how = {
                "timeout": "dropped (timed out)",
                "refused": "refused or reset",
                "unreachable": "rejected with an ICMP error",
            }[outcome]
            detail = (
                f"connection to {target}:{port} was {how}, while other ports reach it: "
                "a firewall on the way (this host, the router or the ISP) blocks it"
            )
            if port == 25:
                detail += ". " + PORT25_NOTE
            results.append(OutboundResult(port, "tcp", "blocked", ms, detail))
        else:
            results.append(OutboundResult(port, "tcp", "unknown", None, text))
    return tuple(results)
