"""What this host knows about itself, without sending a packet.

``ip -j route get`` asks the kernel which interface and source address it would
use toward a public address (a routing-table lookup: nothing is sent), ``ip -j -d
addr`` lists interfaces and their addresses, ``ip -j -6 route`` the IPv6 default
route. The three run concurrently. Without iproute2, /proc/net/route,
/proc/net/if_inet6 and a connected (never used) UDP socket give the same facts.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
from typing import Any

from checks.addresses import is_public
from checks.model import Ipv6Address, LocalInfo

# A public address only used as a routing-table key: `ip route get` sends nothing to it.
ROUTE_PROBE_V4 = "1.1.1.1"
ROUTE_PROBE_V6 = "2606:4700:4700::1111"

# Name prefixes of VPN / overlay interfaces. ppp* is deliberately absent: on a DSL host
# ppp0 is the PPPoE uplink itself, not a tunnel, and calling it a VPN would hide a real
# public address from the NAT verdict.
VPN_NAME_PREFIXES = (
    "wg",
    "tun",
    "tap",
    "tailscale",
    "utun",
    "zt",
    "nordlynx",
    "proton",
    "mullvad",
    "ipsec",
    "vti",
    "gpd",
    "nebula",
    "cscotun",
    "openvpn",
    "ovpn",
)
VPN_LINK_KINDS = frozenset({"wireguard", "tun", "ipip", "gre", "vti", "vti6", "xfrm", "sit"})

IFA_F_TEMPORARY = 0x01
IFA_F_DEPRECATED = 0x20


def is_vpn_interface(name: str, kind: str | None = None) -> bool:
    """A tunnel/VPN interface, by its name or its kernel link kind."""
    low = name.lower()
    return low.startswith(VPN_NAME_PREFIXES) or (kind or "").lower() in VPN_LINK_KINDS


async def _ip_json(*args: str, timeout_s: float) -> Any:
    proc = await asyncio.create_subprocess_exec(
        "ip",
        "-j",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip() or f"exit status {proc.returncode}"
        raise RuntimeError(message)
    return json.loads(out or b"[]")


def parse_route_get(data: Any) -> tuple[str | None, str | None, str | None]:
    """(interface, source address, gateway) from `ip -j route get` output."""
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None, None, None
    route = data[0]
    return route.get("dev"), route.get("prefsrc"), route.get("gateway")


def parse_addr(data: Any) -> tuple[dict[str, list[str]], list[Ipv6Address], list[str]]:
    """From `ip -j -d addr`: IPv4 addresses per interface, global IPv6 addresses, VPN interfaces up."""
    v4: dict[str, list[str]] = {}
    v6: list[Ipv6Address] = []
    vpns: list[str] = []
    if not isinstance(data, list):
        return v4, v6, vpns
    for link in data:
        if not isinstance(link, dict):
            continue
        name = str(link.get("ifname", ""))
        flags = link.get("flags") or []
        kind = (link.get("linkinfo") or {}).get("info_kind") if isinstance(link.get("linkinfo"), dict) else None
        up = "UP" in flags
        vpn = is_vpn_interface(name, kind)
        if vpn and up:
            vpns.append(name)
        for info in link.get("addr_info") or []:
            if not isinstance(info, dict) or "local" not in info:
                continue
            if info.get("family") == "inet":
                v4.setdefault(name, []).append(info["local"])
            # A VPN's addresses are the provider's, not this network's: never publish them.
            elif (
                info.get("family") == "inet6" and info.get("scope") == "global" and not vpn and is_public(info["local"])
            ):
                v6.append(
                    Ipv6Address(
                        info["local"],
                        name,
                        temporary=bool(info.get("temporary")),
                        deprecated=bool(info.get("deprecated")),
                    )
                )
    return v4, v6, vpns


def parse_v6_default(data: Any) -> str | None:
    if not isinstance(data, list):
        return None
    for route in data:
        if isinstance(route, dict) and route.get("dst") == "default" and route.get("gateway"):
            return str(route["gateway"])
    return None


async def _gather_with_ip(timeout_s: float) -> LocalInfo:
    results = await asyncio.gather(
        _ip_json("route", "get", ROUTE_PROBE_V4, timeout_s=timeout_s),
        _ip_json("-d", "addr", timeout_s=timeout_s),
        _ip_json("-6", "route", timeout_s=timeout_s),
        return_exceptions=True,
    )
    route_get, addr, route6 = results
    if isinstance(addr, BaseException):
        raise addr
    v4_by_if, v6, vpns = parse_addr(addr)
    error = None
    if isinstance(route_get, BaseException):
        # "Network is unreachable": no IPv4 default route; that is a finding, not a crash.
        interface = source = gateway = None
        error = f"no IPv4 route to the internet ({_short(route_get)})"
    else:
        interface, source, gateway = parse_route_get(route_get)
        if source is None and interface in v4_by_if:
            source = v4_by_if[interface][0]
    gateway6 = None if isinstance(route6, BaseException) else parse_v6_default(route6)
    via_vpn = bool(interface) and (interface in vpns or is_vpn_interface(interface or ""))
    return LocalInfo(
        interface=interface,
        ipv4=source,
        gateway_ipv4=gateway,
        ipv6_global=tuple(v6),
        gateway_ipv6=gateway6,
        vpn_interfaces=tuple(vpns),
        default_via_vpn=via_vpn,
        error=error,
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def parse_proc_route(text: str) -> tuple[str | None, str | None]:
    """(interface, gateway) of the lowest-metric IPv4 default route in /proc/net/route."""
    best: tuple[int, str, str | None] | None = None
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest, gateway_hex, flags, metric = fields[1], fields[2], int(fields[3], 16), int(fields[6])
            mask = fields[7]
        except ValueError:
            continue
        if dest != "00000000" or mask != "00000000" or not flags & 0x1:  # RTF_UP default
            continue
        gateway = None
        if flags & 0x2:  # RTF_GATEWAY
            try:
                gateway = socket.inet_ntoa(struct.pack("<I", int(gateway_hex, 16)))
            except (ValueError, struct.error):
                gateway = None
        if best is None or metric < best[0]:
            best = (metric, fields[0], gateway)
    return (best[1], best[2]) if best else (None, None)


def parse_proc_if_inet6(text: str) -> list[Ipv6Address]:
    out: list[Ipv6Address] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or len(fields[0]) != 32:
            continue
        try:
            address = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(fields[0]))
            scope, flags = int(fields[3], 16), int(fields[4], 16)
        except ValueError:
            continue
        name = fields[5]
        if scope != 0 or is_vpn_interface(name) or not is_public(address):
            continue
        out.append(
            Ipv6Address(
                address, name, temporary=bool(flags & IFA_F_TEMPORARY), deprecated=bool(flags & IFA_F_DEPRECATED)
            )
        )
    return out


def _source_address_v4() -> str | None:
    # connect() on UDP only selects the route and source address; no packet is sent.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((ROUTE_PROBE_V4, 53))
            return str(sock.getsockname()[0])
        except OSError:
            return None


def _gather_from_proc() -> LocalInfo:
    try:
        with open("/proc/net/route") as fh:
            interface, gateway = parse_proc_route(fh.read())
    except OSError as exc:
        return LocalInfo(None, None, None, error=f"cannot read the routing table: {exc.strerror}")
    try:
        with open("/proc/net/if_inet6") as fh:
            v6 = parse_proc_if_inet6(fh.read())
    except OSError:
        v6 = []
    try:
        names = sorted(os.listdir("/sys/class/net"))
    except OSError:
        names = []
    vpns = tuple(n for n in names if is_vpn_interface(n))
    source = _source_address_v4() if interface else None
    return LocalInfo(
        interface=interface,
        ipv4=source,
        gateway_ipv4=gateway,
        ipv6_global=tuple(v6),
        vpn_interfaces=vpns,
        default_via_vpn=bool(interface and is_vpn_interface(interface)),
        error=None if interface else "no IPv4 default route",
    )


async def gather_local(timeout_s: float = 1.0) -> LocalInfo:
    """Interface, addresses, gateways and VPNs of this host (never raises)."""
    try:
        async with asyncio.timeout(timeout_s):
            try:
                return await _gather_with_ip(timeout_s)
            except FileNotFoundError:  # no iproute2 (containers, minimal systems)
                return await asyncio.to_thread(_gather_from_proc)
    except TimeoutError:
        return LocalInfo(None, None, None, error=f"reading the routing table took longer than {timeout_s:g} s")
    except (OSError, RuntimeError, ValueError) as exc:
        try:
            return await asyncio.to_thread(_gather_from_proc)
        except Exception:
            return LocalInfo(None, None, None, error=f"cannot read interfaces: {_short(exc)}")
