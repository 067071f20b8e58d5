"""Which router is this? Its UPnP device description, else its MAC vendor.

The UPnP root description (the LOCATION an SSDP answer names) carries the
router's ``manufacturer``, ``modelName``, ``friendlyName`` and often a
``presentationURL``: its admin page, where port forwarding and DDNS are set up.
miniupnpd fills them from its ``manufacturer_name``, ``model_name``,
``friendly_name`` and ``presentation_url`` options. tailscale logs the same two
fields (``root.Device.FriendlyName, root.Device.Manufacturer`` in
net/portmapper/upnp.go ``selectBestService``).

Without UPnP, the gateway's MAC address (the ARP table) names the maker through
the IEEE OUI registry, read offline from the ``netaddr`` package's bundled copy
(never a web lookup).

The description is also where the WAN services sit (``services``): the IGDv2
``WANIPv6FirewallControl`` service for IPv6 pinholes (checks/portmap/pinhole.py)
is found there. Router XML is untrusted: bounded in size, no DTDs (entity
expansion), fields cut to a sane length, the presentation URL kept only when it
is http(s) on the router itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

MAX_DESCRIPTION_BYTES = 128 * 1024
FIELD_LIMIT = 120


@dataclass(frozen=True)
class UpnpService:
    service_type: str
    control_url: str  # absolute
    device_type: str = ""


@dataclass(frozen=True)
class RouterIdentity:
    """``diagnose --json`` ``upnp.router``: nulls when unknown."""

    manufacturer: str | None = None
    model: str | None = None
    friendly_name: str | None = None
    presentation_url: str | None = None
    source: str | None = None  # "upnp" | "mac-vendor" | None
    device_type: str | None = None  # the root device's type (IGD:1 / IGD:2)

    @property
    def known(self) -> bool:
        return any((self.manufacturer, self.model, self.friendly_name, self.presentation_url))

    def name(self) -> str | None:
        """'Maker Model' as people say it (no repeated maker), or the friendly name."""
        maker, model = self.manufacturer or "", self.model or ""
        if maker and model.lower().startswith(maker.lower()):
            maker = ""
        text = " ".join(p for p in (maker, model) if p)
        return text or self.friendly_name

    def as_json(self) -> dict[str, Any]:
        return {
            "manufacturer": self.manufacturer,
            "model": self.model,
            "friendly_name": self.friendly_name,
            "presentation_url": self.presentation_url,
        }


@dataclass(frozen=True)
class DeviceDescription:
    identity: RouterIdentity
    services: tuple[UpnpService, ...] = ()
    igd_version: int | None = None  # 1 or 2 from the root device type, None when not an IGD

    def service(self, kind: str) -> UpnpService | None:
        """The first service whose type contains ``kind`` (e.g. 'WANIPv6FirewallControl')."""
        return next((s for s in self.services if kind in s.service_type), None)


class DescriptionError(ValueError):
    pass


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(el: ET.Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    text = " ".join(el.text.split())
    text = "".join(ch for ch in text if ch.isprintable())
    return text[:FIELD_LIMIT] or None


def _child(el: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in el if _local(c.tag) == name), None)


def _presentation(url: str | None, base: str) -> str | None:
    """The admin page URL, absolute, only http(s) and only on the router's own address."""
    if not url:
        return None
    absolute = urljoin(base, url)
    try:
        parts, base_parts = urlsplit(absolute), urlsplit(base)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.hostname != base_parts.hostname:
        try:
            ip = ipaddress.ip_address(parts.hostname)
        except ValueError:
            return None  # a name: could point anywhere
        if not (ip.is_private or ip.is_link_local):
            return None  # never send the user to a public address the router names
    return absolute[:300]


def parse_description(data: bytes, location: str) -> DeviceDescription:
    """The root device's identity and every service with an absolute control URL."""
    if len(data) > MAX_DESCRIPTION_BYTES:
        raise DescriptionError(f"the description is larger than {MAX_DESCRIPTION_BYTES // 1024} KB")
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise DescriptionError("the description declares a DTD (refused: entity expansion)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise DescriptionError(f"the description is not XML ({exc})") from None
    if _local(root.tag) != "root":
        raise DescriptionError("the description is not a UPnP root description")
    base = _text(_child(root, "URLBase")) or location
    device = _child(root, "device")
    if device is None:
        raise DescriptionError("the description has no device")
    device_type = _text(_child(device, "deviceType")) or ""
    igd_version = None
    if "InternetGatewayDevice:" in device_type:
        tail = device_type.rsplit(":", 1)[-1]
        igd_version = int(tail) if tail.isascii() and tail.isdigit() else None
    identity = RouterIdentity(
        manufacturer=_text(_child(device, "manufacturer")),
        model=_text(_child(device, "modelName")),
        friendly_name=_text(_child(device, "friendlyName")),
        presentation_url=_presentation(_text(_child(device, "presentationURL")), location),
        source="upnp",
        device_type=device_type[:FIELD_LIMIT] or None,
    )
    services: list[UpnpService] = []

    def walk(dev: ET.Element, depth: int) -> None:
        if depth > 6 or len(services) > 32:
            return
        dtype = _text(_child(dev, "deviceType")) or ""
        slist = _child(dev, "serviceList")
        for svc in slist if slist is not None else []:
            stype, ctl = _text(_child(svc, "serviceType")), _text(_child(svc, "controlURL"))
            if stype and ctl:
                url = urljoin(base, ctl)
                if urlsplit(url).scheme == "http":
                    services.append(UpnpService(stype, url, dtype))
        dlist = _child(dev, "deviceList")
        for sub in dlist if dlist is not None else []:
            walk(sub, depth + 1)

    walk(device, 0)
    return DeviceDescription(identity, tuple(services), igd_version)


async def fetch_description(location: str, *, timeout_s: float = 1.5, client: Any = None) -> DeviceDescription:
    """GET and parse the description at ``location``. Raises DescriptionError."""
    import httpx

    own = client is None
    client = client or httpx.AsyncClient(timeout=timeout_s, trust_env=False, follow_redirects=False)
    try:
        async with asyncio.timeout(timeout_s):
            async with client.stream("GET", location) as resp:
                if resp.status_code != 200:
                    raise DescriptionError(f"the router answered HTTP {resp.status_code} for its description")
                body = b""
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DESCRIPTION_BYTES:
                        raise DescriptionError("the description is too large")
    except TimeoutError:
        raise DescriptionError(f"the router did not send its description within {timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise DescriptionError(f"could not fetch the description: {type(exc).__name__}: {exc}") from None
    finally:
        if own:
            await client.aclose()
    return parse_description(body, location)


# --------------------------------------------------------------------------- MAC vendor


def gateway_mac(gateway: str, arp_path: str = "/proc/net/arp") -> str | None:
    """The gateway's MAC from the kernel's ARP table (IPv4), or None."""
    try:
        with open(arp_path, encoding="ascii", errors="replace") as fh:
            lines = fh.read(256 * 1024).splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 4 and parts[0] == gateway and parts[3] != "00:00:00:00:00:00":
            return parts[3].lower()
    return None


def mac_vendor(mac: str) -> str | None:
    """The OUI registrant for ``mac`` from netaddr's bundled IEEE registry (offline), or None.

    Locally administered addresses (bit 1 of the first octet: randomised or set by
    software) belong to no vendor."""
    try:
        from netaddr import EUI
        from netaddr.core import AddrFormatError, NotRegisteredError
    except ImportError:
        return None
    try:
        eui = EUI(mac)
        if int(str(eui).split("-")[0], 16) & 0x02:
            return None
        org = eui.oui.registration()["org"]
    except (AddrFormatError, NotRegisteredError, ValueError, TypeError, IndexError, AttributeError):
        return None
    text = " ".join(str(org).split())
    return text[:FIELD_LIMIT] or None


def identity_from_mac(gateway: str | None, arp_path: str = "/proc/net/arp") -> RouterIdentity:
    """The fallback identity: only the maker, from the gateway's MAC (nulls when unknown)."""
    if not gateway:
        return RouterIdentity()
    mac = gateway_mac(gateway, arp_path)
    vendor = mac_vendor(mac) if mac else None
    return RouterIdentity(manufacturer=vendor, source="mac-vendor") if vendor else RouterIdentity()


async def router_identity(
    location: str | None, gateway: str | None, *, timeout_s: float = 1.5, arp_path: str = "/proc/net/arp"
) -> tuple[RouterIdentity, DeviceDescription | None, str | None]:
    """(identity, the description when fetched, why the description could not be read). Never raises."""
    description, problem = None, None
    if location:
        try:
            description = await fetch_description(location, timeout_s=timeout_s)
        except DescriptionError as exc:
            problem = str(exc)
        except Exception as exc:  # a probe failure is data
            problem = f"{type(exc).__name__}: {exc}"
    if description is not None and description.identity.known:
        identity = description.identity
        if not identity.manufacturer:
            fallback = identity_from_mac(gateway, arp_path)
            if fallback.manufacturer:
                from dataclasses import replace

                identity = replace(identity, manufacturer=fallback.manufacturer)
        return identity, description, problem
    return identity_from_mac(gateway, arp_path), description, problem
