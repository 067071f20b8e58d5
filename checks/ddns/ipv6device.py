"""IPv6 for other devices: this network's current prefix + a device's fixed interface identifier.

A host entry may publish another LAN device's IPv6 address (a NAS, a camera, a console)
instead of this machine's: ``ipv6_suffix = "::1234:5678:9abc:def0"`` (the device's
interface identifier, the low 64 bits), or ``ipv6_mac = "00:11:22:33:44:55"`` for a
device that forms its address by modified EUI-64 (RFC 4291 appendix A: the MAC split
in two, ``ff:fe`` in the middle, the universal/local bit inverted).  When the ISP
renumbers the network, the prefix moves and the suffix stays: one updater keeps every
device's name right.

The prefix is the /64 of the public IPv6 address the quorum agreed on (checks/ddns/
updater.py), which is this machine's stable address: a temporary (RFC 4941) address
seen by the echo was already replaced by the stable one on the same /64, and Linux
sources new connections from a preferred, not a deprecated, address (RFC 6724 rule 3),
so after a renumbering it is the new prefix.  A ULA (fc00::/7) prefix or a link-local
one is never used: nobody outside can reach it.

Nothing here asks the network: the choice is a pure function, and ``explain`` says in
facts which address was chosen and why.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}([:-]?)[0-9a-fA-F]{2}(?:\1[0-9a-fA-F]{2}){4}$")


def eui64_interface_id(mac: str) -> int:
    """The modified EUI-64 interface identifier of a 48-bit MAC (RFC 4291 appendix A)."""
    text = mac.strip()
    if not _MAC_RE.match(text):
        raise ValueError(f"{mac!r} is not a MAC address (six hex pairs, e.g. 00:11:22:33:44:55)")
    octets = bytes.fromhex(re.sub(r"[:-]", "", text))
    if octets == b"\x00" * 6 or octets == b"\xff" * 6:
        raise ValueError(f"{mac} is not a device's MAC address")
    eui = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:]
    return int.from_bytes(eui, "big")


def suffix_interface_id(suffix: str) -> int:
    """The interface identifier written as an IPv6 address with a zero prefix (``::1234:...``)."""
    text = suffix.strip()
    try:
        value = int(ipaddress.IPv6Address(text))
    except ValueError:
        raise ValueError(
            f"{suffix!r} is not an IPv6 interface identifier (write it like ::1234:5678:9abc:def0)"
        ) from None
    if value >> 64:
        raise ValueError(
            f"{suffix} sets bits of the prefix: an interface identifier is the last 64 bits only "
            "(e.g. ::1234:5678:9abc:def0)"
        )
    if value == 0:
        raise ValueError("the interface identifier :: is the subnet-router anycast address, not a device")
    return value


@dataclass(frozen=True)
class DeviceId:
    """Where a host's IPv6 interface identifier comes from."""

    value: int
    source: str  # "suffix" | "mac"
    given: str  # as configured

    def describe(self) -> str:
        iid = ipaddress.IPv6Address(self.value).compressed
        if self.source == "mac":
            return f"the EUI-64 identifier {iid} of the device's MAC {self.given}"
        return f"the fixed suffix {iid}"


def device_id(host: Any) -> DeviceId | None:
    """The host's device interface identifier, or None (it publishes this machine's address).
    Raises ValueError for a malformed value (``check_host`` words it)."""
    options = getattr(host, "options", {}) or {}
    suffix, mac = options.get("ipv6_suffix"), options.get("ipv6_mac")
    if suffix is None and mac is None:
        return None
    if suffix is not None and mac is not None:
        raise ValueError("give ipv6_suffix or ipv6_mac, not both")
    if suffix is not None:
        if not isinstance(suffix, str):
            raise ValueError('ipv6_suffix must be a string such as "::1234:5678:9abc:def0"')
        return DeviceId(suffix_interface_id(suffix), "suffix", suffix.strip())
    if not isinstance(mac, str):
        raise ValueError('ipv6_mac must be a string such as "00:11:22:33:44:55"')
    return DeviceId(eui64_interface_id(mac), "mac", mac.strip())


def check_host(host: Any) -> list[str]:
    """Configuration problems of the device keys, as sentences (empty: fine)."""
    try:
        device_id(host)
    except ValueError as exc:
        return [f"{host.hostname}: {exc}"]
    return []


def usable_prefix_problem(address: str) -> str | None:
    """Why the /64 of ``address`` must not carry a published device address, or None."""
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return f"{address} is not an IPv6 address"
    if ip in ipaddress.IPv6Network("fc00::/7"):
        return f"{address} is a unique local address (ULA, fc00::/7): it only works inside this network"
    if ip.is_link_local:
        return f"{address} is link-local: it only works on this link"
    if not ip.is_global:
        return f"{address} is not a global address"
    return None


@dataclass(frozen=True)
class DeviceChoice:
    address: str | None
    prefix: str | None
    why: str


def choose(host: Any, public_ipv6: str | None) -> DeviceChoice | None:
    """The device address to publish for ``host`` given the agreed public IPv6 address,
    with the reason; None when the host publishes this machine's own address."""
    try:
        dev = device_id(host)
    except ValueError as exc:
        return DeviceChoice(None, None, str(exc))
    if dev is None:
        return None
    if public_ipv6 is None:
        return DeviceChoice(
            None,
            None,
            "this network's IPv6 prefix is unknown (no IPv6 address was agreed on), "
            "so the device's address cannot be formed; AAAA left alone",
        )
    problem = usable_prefix_problem(public_ipv6)
    if problem:
        return DeviceChoice(None, None, f"{problem}; never published, so the device's AAAA is left alone")
    net = ipaddress.IPv6Network(f"{public_ipv6}/64", strict=False)
    address = ipaddress.IPv6Address(int(net.network_address) | dev.value).compressed
    return DeviceChoice(
        address,
        str(net),
        (
            f"IPv6: publishing {address} for the device: this network's current prefix {net} (from this machine's "
            f"stable address {public_ipv6}; temporary and deprecated addresses and ULA prefixes are never used) "
            f"+ {dev.describe()}."
        ),
    )


def target_ipv6(host: Any, public_ipv6: str | None) -> str | None:
    """The IPv6 address to publish for ``host``: the device's, or this machine's."""
    choice = choose(host, public_ipv6)
    return public_ipv6 if choice is None else choice.address
