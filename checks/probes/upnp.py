"""The router through UPnP IGD (miniupnpc) and NAT-PMP.

miniupnpc's ``discover()`` never waits less than a second, so discovery is our
own SSDP M-SEARCH burst (several search targets at once, multicast and, when the
gateway is known, unicast to it as tailscale's portmapper does); the first IGD
answer's LOCATION is handed to ``UPnP.selectigd(url)``, which only fetches that
description.

miniupnpc blocks: every call runs in ``asyncio.to_thread`` under a deadline. A
thread cannot be killed, so a call abandoned at its deadline keeps running until
miniupnpc's own socket timeouts end it (a few seconds at most); the calls of one
IgdClient are serialised with a lock inside the thread so an abandoned call never
runs concurrently with the next one on the same (not thread-safe) UPnP object.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from operator import methodcaller
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from checks.addresses import classify, describe_class, is_public, parse_ip
from checks.errors import UpnpError
from checks.model import PortMapping, UpnpInfo
from checks.portmap.upnp_errors import UPNP_ERRORS, code_of, upnp_error_text
from checks.probes.natpmp import natpmp_external_address

SSDP_GROUP = ("239.255.255.250", 1900)
SEARCH_TARGETS = (
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
    # Every UPnP root device answers this one: when none is an IGD, the answers say what is
    # there instead ("UPnP not found": devices answered, none is a gateway).
    "upnp:rootdevice",
)
IGD_MARKERS = ("InternetGatewayDevice", "WANIPConnection", "WANPPPConnection")

T = TypeVar("T")


@dataclass(frozen=True)
class SsdpReply:
    st: str
    location: str
    usn: str = ""
    server: str = ""

    @property
    def is_igd(self) -> bool:
        return any(m in self.st or m in self.usn for m in IGD_MARKERS)


def build_msearch(st: str, mx: int = 1) -> bytes:
    return (
        "M-SEARCH * HTTP/1.1\r\n"
        f"HOST: {SSDP_GROUP[0]}:{SSDP_GROUP[1]}\r\n"
        'MAN: "ssdp:discover"\r\n'
        f"MX: {mx}\r\n"
        f"ST: {st}\r\n"
        "\r\n"
    ).encode("ascii")


def parse_ssdp_reply(data: bytes) -> SsdpReply | None:
    """An M-SEARCH answer (``HTTP/1.1 200 OK`` + headers) with an http LOCATION, else None."""
    try:
        text = data[:4096].decode("utf-8", "replace")
    except Exception:
        return None
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or not lines[0].upper().startswith("HTTP/1.") or " 200" not in lines[0]:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    location = headers.get("location", "")
    try:
        parts = urlsplit(location)
        valid = parts.scheme == "http" and bool(parts.hostname) and (parts.port or 80) > 0
    except ValueError:
        valid = False
    if not valid:
        return None
    return SsdpReply(headers.get("st", ""), location, headers.get("usn", ""), headers.get("server", ""))


class _SsdpProtocol(asyncio.DatagramProtocol):
    """Collects M-SEARCH answers; the first IGD wins, except that the gateway's own IGD is
    preferred over another LAN device's (a mesh node, a second router) for a short grace."""

    GRACE_S = 0.05

    def __init__(self, prefer_host: str | None = None) -> None:
        self.found: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.prefer_host = prefer_host
        self.fallback: str | None = None
        self.others: dict[str, str] = {}  # answering address -> what it says it is (non-IGD)
        self.odd_port: dict[str, int] = {}  # IGDs answering from a port other than 1900

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        reply = parse_ssdp_reply(data)
        if reply is not None and not reply.is_igd and len(self.others) < 16:
            what = " ".join((reply.server or "a UPnP device").split())[:80]
            self.others.setdefault(str(addr[0]), what)
        if reply is None or not reply.is_igd or self.found.done():
            return
        self.others.pop(str(addr[0]), None)
        if len(addr) > 1 and addr[1] != SSDP_GROUP[1]:
            # Answered from another port than 1900: a host firewall that lets in SSDP replies only
            # from port 1900 drops these (a common "UPnP not found" in other programs).
            self.odd_port[str(addr[0])] = int(addr[1])
        host = urlsplit(reply.location).hostname
        if self.prefer_host is None or self.prefer_host in (host, addr[0]):
            self.found.set_result(reply.location)
        elif self.fallback is None:
            self.fallback = reply.location
            asyncio.get_running_loop().call_later(self.GRACE_S, self._use_fallback)

    def _use_fallback(self) -> None:
        if not self.found.done() and self.fallback is not None:
            self.found.set_result(self.fallback)

    def error_received(self, exc: Exception) -> None:
        pass  # e.g. ICMP unreachable for the unicast copy: the multicast copy may still work


async def ssdp_discover(
    *,
    timeout_s: float = 0.6,
    bind_addr: str | None = None,
    gateway: str | None = None,
    seen: dict[str, str] | None = None,
) -> str | None:
    """LOCATION URL of the first IGD answering our M-SEARCH burst, None when none answers in time.

    ``seen`` (when given) receives the devices that answered but are not IGDs: address -> its
    SERVER header."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
        if bind_addr:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(bind_addr))
        sock.bind((bind_addr or "0.0.0.0", 0))
    except OSError:
        sock.close()
        return None
    transport, protocol = await loop.create_datagram_endpoint(lambda: _SsdpProtocol(gateway), sock=sock)
    try:
        targets = [SSDP_GROUP]
        if gateway and parse_ip(gateway) is not None and ":" not in gateway:
            targets.append((gateway, SSDP_GROUP[1]))
        sent = 0
        for dest in targets:
            for st in SEARCH_TARGETS:
                try:
                    # On the socket itself: the transport would swallow the OSError.
                    sock.sendto(build_msearch(st), dest)
                    sent += 1
                except OSError:
                    pass  # e.g. no multicast route
        if not sent:
            return None  # nothing went out (no network at all): do not wait for answers
        try:
            return await asyncio.wait_for(asyncio.shield(protocol.found), timeout_s)
        except TimeoutError:
            return protocol.fallback  # another device's IGD, if only that one answered
    finally:
        if seen is not None:
            seen.update(protocol.others)
            for addr, port in protocol.odd_port.items():
                seen[addr] = f"the gateway's UPnP answers from port {port}, not 1900"
        transport.close()


def upnp_error_from(exc: BaseException, action: str) -> UpnpError:
    """A UpnpError with the UPnP code and a plain sentence from miniupnpc's exception text
    (the one table: checks/portmap/upnp_errors.py)."""
    text = str(exc).strip()
    code = code_of(exc)
    if code is not None and code in UPNP_ERRORS:
        return UpnpError(f"{action}: {upnp_error_text(exc)}", code=code)
    if "HTTP" in text or "Invalid response" in text:
        return UpnpError(f"{action}: the router's UPnP service did not answer properly ({text})", code=code)
    return UpnpError(f"{action}: {text or type(exc).__name__}", code=code)


class IgdClient:
    """One router's IGD, through a miniupnpc.UPnP object; every call bounded by a deadline."""

    def __init__(self, upnp: Any, location: str, *, timeout_s: float = 2.0) -> None:
        self._upnp = upnp
        self.location = location
        self.timeout_s = timeout_s
        self._lock = threading.Lock()

    @classmethod
    async def connect(
        cls, location: str, *, timeout_s: float = 2.0, factory: Callable[[], Any] | None = None
    ) -> IgdClient:
        """Fetch the description at ``location`` and select its WAN service. Raises UpnpError.

        ``factory`` makes the UPnP object (default miniupnpc.UPnP; tests inject a fake).
        """
        if factory is None:
            import miniupnpc

            factory = miniupnpc.UPnP
        client = cls(factory(), location, timeout_s=timeout_s)
        try:
            await client._call(lambda u: u.selectigd(location), timeout_s=timeout_s)
        except UpnpError as exc:
            raise UpnpError(f"the router at {location} has no usable IGD description: {exc}", code=exc.code) from None
        return client

    async def _call(self, fn: Callable[[Any], T], *, timeout_s: float | None = None, action: str = "UPnP request") -> T:
        def run() -> T:
            with self._lock:
                return fn(self._upnp)

        limit = self.timeout_s if timeout_s is None else timeout_s
        try:
            return await asyncio.wait_for(asyncio.to_thread(run), limit)
        except TimeoutError:
            raise UpnpError(f"{action}: the router did not answer within {limit:g} s") from None
        except UpnpError:
            raise
        except Exception as exc:  # miniupnpc raises bare Exception with strupnperror text
            raise upnp_error_from(exc, action) from None

    async def _answers(self, action: str) -> None:
        """Raise UpnpError unless the router answers a mandatory action (a UPnP fault is an
        answer too; only silence or transport trouble counts as not answering)."""
        try:
            await self._call(lambda u: u.externalipaddress(), action=action)
        except UpnpError as exc:
            if exc.code is None:
                detail = str(exc).removeprefix(f"{action}: ")
                raise UpnpError(f"{action}: the router did not answer ({detail})") from None

    @property
    def lan_address(self) -> str | None:
        """Our LAN address as the IGD sees it (miniupnpc's lanaddr after selectigd)."""
        value = getattr(self._upnp, "lanaddr", "") or ""
        return value or None

    async def external_ip(self) -> str | None:
        """The WAN address the IGD reports: its text as given (check it with ``wan_problem``), or None."""
        value = await self._call(lambda u: u.externalipaddress(), action="reading the WAN address")
        return (value.strip()[:64] or None) if isinstance(value, str) else None

    async def status(self) -> tuple[str, int, str]:
        info = await self._call(lambda u: u.statusinfo(), action="reading the status")
        try:
            status, uptime, last_error = info
            seconds = _lease(uptime if uptime is not None else 0)
        except (TypeError, ValueError):
            raise UpnpError(f"reading the status: the router's answer is not a status ({str(info)[:40]!r})") from None
        return str(status)[:64], seconds or 0, str(last_error)[:64]

    async def connection_type(self) -> str | None:
        value = await self._call(lambda u: u.connectiontype(), action="reading the connection type")
        return str(value)[:64] if value not in (None, "") else None

    async def mappings(self, limit: int = 256, *, deadline: float | None = None) -> tuple[PortMapping, ...]:
        """The router's mapping table (index by index, stops at the first empty slot or the deadline)."""
        out: list[PortMapping] = []
        for index in range(limit):
            if deadline is not None and time.monotonic() >= deadline:
                break
            try:
                entry = await self._call(
                    methodcaller("getgenericportmapping", index), action="reading the mapping table"
                )
            except UpnpError as exc:
                # 713/714: past the end on some routers; otherwise keep what was read.
                if exc.code in (713, 714) or out:
                    break
                raise
            if entry is None:
                break
            mapping = _mapping_from_generic(entry)
            if mapping is not None:
                out.append(mapping)
        return tuple(out)

    async def add_mapping(
        self,
        external_port: int,
        protocol: Literal["TCP", "UDP", "tcp", "udp"],
        internal_host: str,
        internal_port: int,
        description: str,
        lease_s: int = 0,
    ) -> None:
        proto = protocol.upper()
        action = f"adding {external_port}/{proto.lower()} -> {internal_host}:{internal_port}"

        def add(lease: int) -> Callable[[Any], Any]:
            return lambda u: u.addportmapping(
                external_port, proto, internal_host, internal_port, description, "", lease
            )

        try:
            await self._call(add(lease_s), action=action)
        except UpnpError as exc:
            if exc.code == 725 and lease_s != 0:
                await self._call(add(0), action=action)  # only permanent leases supported
                return
            raise

    async def delete_mapping(self, external_port: int, protocol: Literal["TCP", "UDP", "tcp", "udp"]) -> bool:
        """True when a mapping was removed, False when there was none."""
        # miniupnpc's deleteportmapping reports success even when nothing was mapped
        # (seen with miniupnpd 2.3), so ask first.  But getspecificportmapping also
        # answers None when the router did not answer at all (miniupnpd restarting):
        # then the delete below fails loudly instead of a leak passing as "nothing there".
        existed = await self.get_mapping(external_port, protocol) is not None
        try:
            await self._call(
                lambda u: u.deleteportmapping(external_port, protocol.upper(), ""),
                action=f"removing {external_port}/{protocol.lower()}",
            )
        except UpnpError as exc:
            if exc.code == 714:
                return False
            raise
        return existed

    async def get_mapping(
        self, external_port: int, protocol: Literal["TCP", "UDP", "tcp", "udp"]
    ) -> PortMapping | None:
        proto = protocol.upper()
        try:
            entry = await self._call(
                lambda u: u.getspecificportmapping(external_port, proto),
                action=f"reading mapping {external_port}/{proto.lower()}",
            )
        except UpnpError as exc:
            if exc.code == 714:
                return None
            raise
        if not entry:
            # miniupnpc's getspecificportmapping answers None for "no such mapping" and for
            # "the router did not answer" alike (seen with miniupnpd killed): only a router
            # that still answers another call makes the None mean "none".
            await self._answers(f"reading mapping {external_port}/{proto.lower()}")
            return None
        try:
            ihost, iport, desc, enabled, lease = entry[:5]
            return PortMapping(
                int(external_port),
                "TCP" if proto == "TCP" else "UDP",
                str(ihost),
                int(iport),
                str(desc or ""),
                int(lease or 0),
                bool(enabled),
            )
        except (TypeError, ValueError):
            return None


def _port(value: Any) -> int | None:
    """A port number 1-65535 from what miniupnpc hands over (an int or the router's text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not (value.isascii() and value.isdigit() and len(value) <= 5):
            return None
    try:
        port = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return port if 1 <= port <= 65535 else None


def _mapping_from_generic(entry: Any) -> PortMapping | None:
    """One row of the router's mapping table, or None when it is not a usable one.

    The values come from the router's XML through miniupnpc, unchecked: a port outside
    1-65535, an internal host that is not an IPv4 address or a lease that is not a
    number make the row unusable (it is left out, not shown as a mapping).
    """
    # miniupnpc: (eport, proto, (ihost, iport), desc, enabled, rhost, lease)
    try:
        eport, proto, (ihost, iport), desc, enabled, rhost, lease = entry
    except (TypeError, ValueError):
        return None
    raw_protocol = str(proto).upper()
    protocol: Literal["TCP", "UDP"] | None = (
        "TCP" if raw_protocol == "TCP" else "UDP" if raw_protocol == "UDP" else None
    )
    external, internal = _port(eport), _port(iport)
    host = parse_ip(ihost) if isinstance(ihost, str) else None
    if protocol is None or external is None or internal is None or host is None or host.version != 4:
        return None
    lease_s = 0 if lease in (None, "") else _lease(lease)
    if lease_s is None:
        return None
    on = str(enabled).strip()
    return PortMapping(
        external,
        protocol,
        str(host),
        internal,
        str(desc or "")[:256],
        lease_s,
        on not in ("0", "False", "false", ""),
        str(rhost or "")[:64],
    )


def _lease(value: Any) -> int | None:
    """Lease seconds (0 = permanent) within the 32-bit range UPnP uses, else None."""
    if isinstance(value, bool):
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        return None
    lease = int(text)
    return lease if lease < 2**32 else None


def wan_problem(wan: str | None) -> str | None:
    """Why a router WAN address makes the IGD unusable for hosting, or None when it is public."""
    if not wan:
        return (
            "the router's UPnP reports no external address (miniupnpd does this when its own WAN "
            "address is private): another NAT sits upstream"
        )
    if parse_ip(wan) is None:
        return f"the router's UPnP reports an external address that is not an IP address: {wan[:40]!r}"
    if not is_public(wan):
        return (
            f"the router's WAN address {wan} is {describe_class(classify(wan))}: another NAT sits "
            "upstream, so mappings on this router alone cannot make a server reachable"
        )
    return None


async def probe_router(
    gateway: str | None,
    *,
    budget_s: float = 1.2,
    factory: Callable[[], Any] | None = None,
    pcp: bool = True,
    arp_path: str = "/proc/net/arp",
) -> UpnpInfo:
    """SSDP, NAT-PMP and PCP at once (NAT-PMP and PCP ANNOUNCE to gateway:5351); then, if an
    IGD answered, its WAN address, status and mappings, and the router's identity from its
    description (else its maker from the gateway's MAC). When no usable IGD is found,
    ``not_found`` says why as far as can be told.

    Never raises; always returns within about ``budget_s``.
    """
    from dataclasses import replace

    from checks.model import RouterInfo
    from checks.portmap.pcp import pcp_announce
    from checks.probes.router import identity_from_mac, router_identity

    started = time.monotonic()
    deadline = started + budget_s
    ssdp_s = min(0.6, budget_s * 0.5)
    v4_gateway = gateway if gateway and parse_ip(gateway) is not None and ":" not in gateway else None
    natpmp_task = (
        asyncio.ensure_future(natpmp_external_address(v4_gateway, timeout_s=min(0.6, budget_s))) if v4_gateway else None
    )
    pcp_task = (
        asyncio.ensure_future(pcp_announce(v4_gateway, timeout_s=min(0.6, budget_s))) if v4_gateway and pcp else None
    )
    seen: dict[str, str] = {}
    try:
        location = await ssdp_discover(timeout_s=ssdp_s, gateway=gateway, seen=seen)
    except Exception:
        location = None
    ident_task = (
        asyncio.ensure_future(
            router_identity(location, v4_gateway, timeout_s=max(0.1, deadline - time.monotonic()), arp_path=arp_path)
        )
        if location
        else None
    )
    if location:
        info = await _igd_info(location, deadline, factory)
        odd = tuple(f"{addr}: {what}" for addr, what in sorted(seen.items()) if "answers from port" in what)
        if odd:
            # Found here, but a host firewall allowing SSDP replies only from port 1900 would drop
            # them: other programs on this network may say "UPnP not found".
            info = replace(info, ssdp_seen=odd)
    elif seen:
        listed = "; ".join(f"{addr}: {what}" for addr, what in sorted(seen.items()))
        info = UpnpInfo(
            available=False,
            found=False,
            not_found="no-igd",
            ssdp_seen=tuple(f"{addr}: {what}" for addr, what in sorted(seen.items())),
            error=f"no UPnP IGD answered: UPnP devices answered, but none is an Internet Gateway Device ({listed}): the "
            "router's UPnP is off, or it is not the device answering",
        )
    else:
        info = UpnpInfo(
            available=False,
            found=False,
            not_found="no-ssdp-answer",
            error=f"no UPnP IGD answered: nothing answered UPnP discovery (SSDP) within {ssdp_s * 1000:.0f} ms: UPnP is off "
            "on the router, or the router has none",
        )
    natpmp_available = False
    natpmp_wan: str | None = None
    natpmp_error: str | None = "NAT-PMP not tried (no IPv4 gateway)"
    if natpmp_task is not None:
        try:
            reply = await asyncio.wait_for(natpmp_task, max(0.05, deadline - time.monotonic()))
            natpmp_available, natpmp_wan, natpmp_error = reply.ok, reply.external_ipv4, reply.error
        except Exception:
            natpmp_error = "NAT-PMP: no answer in time"
    pcp_available, pcp_epoch, pcp_error = False, None, ("PCP not tried (no IPv4 gateway)" if pcp else None)
    if pcp_task is not None:
        try:
            answer = await asyncio.wait_for(pcp_task, max(0.05, deadline - time.monotonic()))
            pcp_available, pcp_epoch, pcp_error = answer.ok, answer.epoch, answer.error
        except Exception:
            pcp_error = "PCP: no answer in time"
    router, igd_version = RouterInfo(), None
    try:
        if ident_task is not None:
            ident, desc, _problem = await asyncio.wait_for(ident_task, max(0.05, deadline - time.monotonic() + 0.3))
            igd_version = desc.igd_version if desc is not None else None
        else:
            ident = identity_from_mac(v4_gateway, arp_path)
        router = RouterInfo(ident.manufacturer, ident.model, ident.friendly_name, ident.presentation_url, ident.source)
    except Exception:
        pass  # the identity is a nicety: never a failure of the probe
    not_found = info.not_found
    if info.found and not info.available and not_found is None:
        not_found = (
            "description-failed"
            if info.status is None and info.wan_ipv4 is None and info.error and "description" in info.error
            else "wan-not-connected"
            if info.status not in (None, "Connected")
            else None
        )
    return replace(
        info,
        natpmp_available=natpmp_available,
        natpmp_wan_ipv4=natpmp_wan,
        natpmp_error=natpmp_error,
        pcp_available=pcp_available,
        pcp_epoch=pcp_epoch,
        pcp_error=pcp_error,
        router=router,
        igd_version=igd_version,
        not_found=not_found,
    )


async def _igd_info(location: str, deadline: float, factory: Callable[[], Any] | None) -> UpnpInfo:
    try:
        client = await IgdClient.connect(location, timeout_s=max(0.05, deadline - time.monotonic()), factory=factory)
    except UpnpError as exc:
        return UpnpInfo(available=False, found=True, location=location, error=str(exc))
    errors: list[str] = []

    async def step(call: Callable[[], Any]) -> Any:
        """One bounded IGD call with what is left of the budget; None (and a note) on failure."""
        left = deadline - time.monotonic()
        if left <= 0:
            if "out of time" not in " ".join(errors):
                errors.append("UPnP: out of time before every question was answered")
            return None
        client.timeout_s = left
        try:
            return await call()
        except UpnpError as exc:
            errors.append(str(exc))
            return None

    wan_errors = len(errors)
    wan = await step(client.external_ip)
    wan_failed = len(errors) > wan_errors
    status_info = await step(client.status)
    status = status_info[0] if status_info else None
    ctype = await step(client.connection_type)
    mappings = await step(lambda: client.mappings(deadline=deadline)) or ()
    problem = None if wan_failed else wan_problem(wan)
    wan_ip = parse_ip(wan) if wan is not None else None
    if wan is not None and (wan_ip is None or wan_ip.version != 4):
        # Said in `problem`; never kept as the router's address.
        problem = problem or f"the router's UPnP reports an external address that is not IPv4: {wan[:40]!r}"
        wan = None
    elif wan_ip is not None:
        wan = str(wan_ip)
    if status is not None and status != "Connected":
        problem = problem or f"the router says its WAN connection is {status!r}"
    if problem:
        errors.insert(0, problem)
    available = wan is not None and is_public(wan) and status in (None, "Connected")
    return UpnpInfo(
        available=available,
        found=True,
        location=location,
        wan_ipv4=wan,
        status=status,
        connection_type=ctype,
        mappings=tuple(mappings),
        error="; ".join(errors) or None,
    )
