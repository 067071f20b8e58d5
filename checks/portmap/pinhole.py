"""UPnP IGDv2 IPv6 pinholes: the WANIPv6FirewallControl:1 service, spoken directly.

miniupnpc's Python binding has no pinhole calls (only the C library has
``UPNP_AddPinhole``...), so the four SOAP actions are sent here with httpx:

- ``GetFirewallStatus`` → FirewallEnabled, InboundPinholeAllowed
- ``AddPinhole(RemoteHost, RemotePort, InternalClient, InternalPort, Protocol,
  LeaseTime)`` → UniqueID
- ``UpdatePinhole(UniqueID, NewLeaseTime)``, ``DeletePinhole(UniqueID)``

Rules from the service spec (UPnP-gw-WANIPv6FirewallControl-v1) and miniupnpd's
upnpsoap.c ``AddPinhole``/``UpdatePinhole``/``PinholeVerification``:

- The request must come *from* the address being opened: miniupnpd compares the
  HTTP client's address with InternalClient and answers 606 otherwise (an
  unauthenticated control point may only open holes to itself). So the HTTP client
  here binds the stable global IPv6 address (``source``) and talks to the router
  over IPv6.
- LeaseTime is 1..86400 s (402 outside): there is no permanent pinhole; a lasting
  one is renewed with UpdatePinhole (``watch``).
- InternalPort 0 is refused (706); RemoteHost "" / RemotePort 0 are the wildcards
  ("anyone may connect"); Protocol is the IP protocol number (6 TCP, 17 UDP).
- Errors 701-709 are the service's own (table below), as sentences.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

FIREWALL_SERVICE = "urn:schemas-upnp-org:service:WANIPv6FirewallControl:1"
MAX_LEASE_S = 86400
PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17}
MAX_REPLY_BYTES = 64 * 1024

PINHOLE_ERRORS: dict[int, str] = {
    401: "the router does not offer this action",
    402: "the router rejected the request's arguments",
    501: "the router could not perform the action",
    606: "the router refused: a pinhole may only be opened by the computer it opens to (the request did "
    "not come from that IPv6 address), or pinholes are not authorised",
    701: "the router's pinhole table is full",
    702: "the router's IPv6 firewall is switched off (nothing to open: inbound IPv6 is already let through)",
    703: "the router does not allow inbound pinholes (switched off in its IPv6 firewall settings)",
    704: "no such pinhole on the router (it expired or was removed)",
    705: "the router does not open pinholes for this protocol",
    706: "the router requires a specific internal port",
    707: "the router requires a specific protocol",
    708: "the router requires a specific internal address",
    709: "no traffic went through the pinhole",
}


class PinholeError(Exception):
    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class FirewallStatus:
    enabled: bool
    inbound_allowed: bool


@dataclass(frozen=True)
class Pinhole:
    unique_id: int
    address: str
    port: int
    protocol: Literal["tcp", "udp"]
    lease_s: int


def build_envelope(action: str, args: list[tuple[str, str]], service: str = FIREWALL_SERVICE) -> bytes:
    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    body = "".join(f"<{name}>{esc(value)}</{name}>" for name, value in args)
    return (
        '<?xml version="1.0"?>\r\n'
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
        f'<u:{action} xmlns:u="{service}">{body}</u:{action}>'
        "</s:Body></s:Envelope>\r\n"
    ).encode()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_soap_reply(status: int, data: bytes, action: str) -> dict[str, str]:
    """The response arguments of ``action``; PinholeError (with the UPnP code) for a fault."""
    if len(data) > MAX_REPLY_BYTES or b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise PinholeError(f"{action}: the router's answer is not a SOAP reply")
    try:
        root = ET.fromstring(data) if data.strip() else None
    except ET.ParseError:
        root = None
    if root is None:
        raise PinholeError(f"{action}: the router answered HTTP {status} without a SOAP reply")
    fault_code = next((el.text for el in root.iter() if _local(el.tag) == "errorCode"), None)
    if fault_code is not None or status >= 400:
        code = int(fault_code) if fault_code and fault_code.strip().isascii() and fault_code.strip().isdigit() else None
        desc = next((el.text for el in root.iter() if _local(el.tag) == "errorDescription"), None)
        meaning = PINHOLE_ERRORS.get(code or -1) or (desc or f"HTTP {status}")
        raise PinholeError(f"{action}: {meaning} (UPnP error {code})" if code else f"{action}: {meaning}", code=code)
    response = next((el for el in root.iter() if _local(el.tag) == f"{action}Response"), None)
    if response is None:
        raise PinholeError(f"{action}: the router's reply has no {action}Response")
    return {_local(el.tag): (el.text or "").strip() for el in response}


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def control_url_for(control_url: str, router_v6: str) -> str:
    """The firewall service's control URL aimed at the router's IPv6 address (same port and path).

    A description fetched over IPv4 names IPv4 URLs; the pinhole request must travel over
    IPv6 from the address being opened, so the host is swapped for the router's IPv6 address
    (miniupnpd serves its HTTP on IPv6 at the same port)."""
    parts = urlsplit(control_url)
    host = router_v6.split("%", 1)[0]
    zone = router_v6.split("%", 1)[1] if "%" in router_v6 else ""
    netloc = f"[{host}{'%25' + zone if zone else ''}]" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


class PinholeClient:
    """One router's WANIPv6FirewallControl service, asked from ``source`` (the address to open)."""

    def __init__(self, control_url: str, source: str, *, timeout_s: float = 3.0, transport: Any = None) -> None:
        ip = ipaddress.ip_address(source)
        if ip.version != 6:
            raise PinholeError(f"a pinhole opens an IPv6 address, not {source}")
        self.control_url = control_url
        self.source = source
        self.timeout_s = timeout_s
        self._transport = transport  # tests inject httpx.MockTransport

    async def _soap(self, action: str, args: list[tuple[str, str]]) -> dict[str, str]:
        import httpx

        transport = self._transport or httpx.AsyncHTTPTransport(local_address=self.source, retries=0)
        headers = {"Content-Type": 'text/xml; charset="utf-8"', "SOAPAction": f'"{FIREWALL_SERVICE}#{action}"'}
        try:
            async with httpx.AsyncClient(
                transport=transport, timeout=self.timeout_s, trust_env=False, follow_redirects=False
            ) as client:
                async with asyncio.timeout(self.timeout_s):
                    resp = await client.post(self.control_url, content=build_envelope(action, args), headers=headers)
        except TimeoutError:
            raise PinholeError(f"{action}: the router did not answer within {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise PinholeError(
                f"{action}: could not reach the router's IPv6 firewall service "
                f"({type(exc).__name__}: {exc or 'no detail'})"
            ) from None
        return parse_soap_reply(resp.status_code, resp.content[: MAX_REPLY_BYTES + 1], action)

    async def status(self) -> FirewallStatus:
        out = await self._soap("GetFirewallStatus", [])
        return FirewallStatus(_bool(out.get("FirewallEnabled")), _bool(out.get("InboundPinholeAllowed")))

    async def add(self, port: int, protocol: Literal["tcp", "udp"], lease_s: int) -> Pinhole:
        lease = max(1, min(int(lease_s) or MAX_LEASE_S, MAX_LEASE_S))
        out = await self._soap(
            "AddPinhole",
            [
                ("RemoteHost", ""),
                ("RemotePort", "0"),
                ("InternalClient", self.source),
                ("InternalPort", str(port)),
                ("Protocol", str(PROTOCOL_NUMBERS[protocol])),
                ("LeaseTime", str(lease)),
            ],
        )
        uid = out.get("UniqueID", "")
        if not re.fullmatch(r"\d{1,5}", uid) or int(uid) > 65535:
            raise PinholeError(f"AddPinhole: the router's UniqueID {uid[:20]!r} is not a number 0-65535")
        return Pinhole(int(uid), self.source, port, protocol, lease)

    async def update(self, pinhole: Pinhole, lease_s: int | None = None) -> Pinhole:
        lease = max(1, min(int(lease_s or pinhole.lease_s), MAX_LEASE_S))
        await self._soap("UpdatePinhole", [("UniqueID", str(pinhole.unique_id)), ("NewLeaseTime", str(lease))])
        return Pinhole(pinhole.unique_id, pinhole.address, pinhole.port, pinhole.protocol, lease)

    async def delete(self, pinhole: Pinhole | int) -> bool:
        """True when removed, False when the router had no such pinhole (704)."""
        uid = pinhole.unique_id if isinstance(pinhole, Pinhole) else int(pinhole)
        try:
            await self._soap("DeletePinhole", [("UniqueID", str(uid))])
        except PinholeError as exc:
            # 704 NoSuchEntry per the spec; miniupnpd 2.3.1 answers 402 "Invalid Args" for a
            # UniqueID it does not hold (seen in the lab: the second delete of the same pinhole).
            if exc.code in (704, 402):
                return False
            raise
        return True


# --------------------------------------------------------------------------- openers


class UpnpPinholer:
    """IPv6 firewall openings over UPnP IGDv2 (WANIPv6FirewallControl)."""

    via = "upnp"
    name = "UPnP IGDv2"

    def __init__(self, client: PinholeClient) -> None:
        self.client = client

    async def open(self, port: int, protocol: Literal["tcp", "udp"], lease_s: int) -> Pinhole:
        return await self.client.add(port, protocol, lease_s)

    async def close(self, handle: Pinhole) -> None:
        await self.client.delete(handle)  # False: gone already (expired), which is fine

    async def renew(self, handle: Pinhole, lease_s: int) -> Pinhole:
        return await self.client.update(handle, lease_s)

    @staticmethod
    def describe(handle: Pinhole) -> str:
        return f"pinhole {handle.unique_id}, {handle.lease_s} s"


class PcpPinholer:
    """IPv6 firewall openings over PCP: a MAP for this host's own address (RFC 6887 §11),
    sent from that address to the router."""

    via = "pcp"
    name = "PCP"

    def __init__(self, client: Any, address: str) -> None:
        self.client = client  # checks.portmap.pcp.PcpClient with source=address
        self.address = address

    async def open(self, port: int, protocol: Literal["tcp", "udp"], lease_s: int) -> Any:
        mapping, reply = await self.client.map(
            protocol, port, external_port=port, lifetime=lease_s or 86400, external_ip=self.address
        )
        if mapping is None:
            raise PinholeError(f"PCP: {reply.error or 'no reply'}", code=reply.result_code)
        return mapping

    async def close(self, handle: Any) -> None:
        reply = await self.client.delete(handle)
        if not reply.ok:
            raise PinholeError(f"PCP refused to close it: {reply.error or 'no reply'}", code=reply.result_code)

    async def renew(self, handle: Any, lease_s: int) -> Any:
        mapping, reply = await self.client.renew(handle, lease_s)
        if mapping is None:
            raise PinholeError(f"PCP: {reply.error or 'no reply'}", code=reply.result_code)
        return mapping

    @staticmethod
    def describe(handle: Any) -> str:
        return f"PCP lifetime {handle.lifetime} s"


def scoped(address: str, interface: str | None) -> str:
    """A link-local address needs its interface (fe80::1%eth0); others are used as they are."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.version == 6 and ip.is_link_local and "%" not in address and interface:
        return f"{address}%{interface}"
    return address


async def open_pinholer(
    address: str,
    *,
    router_v6: str | None,
    interface: str | None = None,
    igd_location: str | None = None,
    timeout_s: float = 2.0,
) -> tuple[Any, str]:
    """A way to open the router's IPv6 firewall for ``address``: UPnP IGDv2 first, then PCP.

    (opener, "what it is") or (None, why neither). Never raises."""
    reasons: list[str] = []
    if not router_v6:
        return None, "this host has no IPv6 default router to ask"
    router = scoped(router_v6, interface)
    if igd_location:
        from checks.probes.router import DescriptionError, fetch_description

        try:
            desc = await fetch_description(igd_location, timeout_s=timeout_s)
            svc = desc.service("WANIPv6FirewallControl")
            if svc is None:
                reasons.append(
                    f"the router's UPnP IGD{'v' + str(desc.igd_version) if desc.igd_version else ''} "
                    "has no IPv6 firewall service (IGDv1, or IGDv2 without WANIPv6FirewallControl)"
                )
            else:
                client = PinholeClient(control_url_for(svc.control_url, router), address, timeout_s=timeout_s)
                status = await client.status()
                if not status.enabled:
                    reasons.append("the router says its IPv6 firewall is off (inbound IPv6 is not filtered)")
                elif not status.inbound_allowed:
                    reasons.append(
                        "the router's UPnP does not allow inbound pinholes (switched off in its IPv6 firewall settings)"
                    )
                else:
                    return UpnpPinholer(client), f"UPnP IGDv2 IPv6 firewall at {client.control_url}"
        except (DescriptionError, PinholeError) as exc:
            reasons.append(f"UPnP IGDv2: {exc}")
        except Exception as exc:  # a probe failure is data
            reasons.append(f"UPnP IGDv2: {type(exc).__name__}: {exc}")
    else:
        reasons.append("no UPnP IGD answered")
    from checks.portmap.pcp import PcpClient

    pcp = PcpClient(router, source=address, timeout_s=min(timeout_s, 1.5))
    reply = await pcp.announce()
    if reply.ok:
        return PcpPinholer(pcp, address), f"PCP at {router_v6}"
    reasons.append(f"PCP over IPv6: {reply.error or 'no answer'}")
    return None, "; ".join(reasons)
