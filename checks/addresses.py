"""Address classification: which addresses can be reached from the internet.

The NAT verdict, the refusal to publish a private address and the report's
redaction all rest on these few functions, so they are exhaustive about the
special-purpose ranges (IANA IPv4/IPv6 special-purpose registries).
"""

from __future__ import annotations

import ipaddress
from enum import Enum

from checks.errors import AddressError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressClass(str, Enum):  # noqa: UP042  (StrEnum would change str() and format() of its members)
    """What kind of address this is, as far as hosting goes."""

    PUBLIC = "public"  # globally routable
    PRIVATE = "private"  # RFC 1918 (10/8, 172.16/12, 192.168/16)
    CGNAT = "cgnat"  # RFC 6598 shared address space 100.64.0.0/10
    LOOPBACK = "loopback"  # 127/8, ::1
    LINK_LOCAL = "link-local"  # 169.254/16, fe80::/10
    UNIQUE_LOCAL = "unique-local"  # fc00::/7
    DOCUMENTATION = "documentation"  # 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32
    BENCHMARK = "benchmark"  # 198.18.0.0/15
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"  # 0.0.0.0, ::
    RESERVED = "reserved"  # anything else that is not globally routable


_V4_RANGES: list[tuple[str, AddressClass]] = [
    ("0.0.0.0/8", AddressClass.UNSPECIFIED),
    ("10.0.0.0/8", AddressClass.PRIVATE),
    ("100.64.0.0/10", AddressClass.CGNAT),
    ("127.0.0.0/8", AddressClass.LOOPBACK),
    ("169.254.0.0/16", AddressClass.LINK_LOCAL),
    ("172.16.0.0/12", AddressClass.PRIVATE),
    ("192.0.0.0/24", AddressClass.RESERVED),  # IETF protocol assignments
    ("192.0.2.0/24", AddressClass.DOCUMENTATION),
    ("192.31.196.0/24", AddressClass.RESERVED),  # AS112-v4
    ("192.52.193.0/24", AddressClass.RESERVED),  # AMT
    ("192.88.99.0/24", AddressClass.RESERVED),  # deprecated 6to4 relay anycast
    ("192.168.0.0/16", AddressClass.PRIVATE),
    ("192.175.48.0/24", AddressClass.RESERVED),  # direct delegation AS112
    ("198.18.0.0/15", AddressClass.BENCHMARK),
    ("198.51.100.0/24", AddressClass.DOCUMENTATION),
    ("203.0.113.0/24", AddressClass.DOCUMENTATION),
    ("224.0.0.0/4", AddressClass.MULTICAST),
    ("240.0.0.0/4", AddressClass.RESERVED),  # includes 255.255.255.255
]

_V6_RANGES: list[tuple[str, AddressClass]] = [
    ("::/128", AddressClass.UNSPECIFIED),
    ("::1/128", AddressClass.LOOPBACK),
    ("::ffff:0:0/96", AddressClass.RESERVED),  # IPv4-mapped: classified by its v4 part
    ("64:ff9b::/96", AddressClass.RESERVED),  # NAT64 well-known prefix
    ("64:ff9b:1::/48", AddressClass.RESERVED),
    ("100::/64", AddressClass.RESERVED),  # discard-only
    ("2001::/23", AddressClass.RESERVED),  # IETF protocol assignments (Teredo, ...)
    ("2001:db8::/32", AddressClass.DOCUMENTATION),
    ("2002::/16", AddressClass.RESERVED),  # 6to4
    ("3fff::/20", AddressClass.DOCUMENTATION),
    ("5f00::/16", AddressClass.RESERVED),  # SRv6 SIDs
    ("fc00::/7", AddressClass.UNIQUE_LOCAL),
    ("fe80::/10", AddressClass.LINK_LOCAL),
    ("fec0::/10", AddressClass.RESERVED),  # deprecated site-local
    ("ff00::/8", AddressClass.MULTICAST),
]

_V4_NETS = [(ipaddress.ip_network(n), c) for n, c in _V4_RANGES]
_V6_NETS = [(ipaddress.ip_network(n), c) for n, c in _V6_RANGES]
# Globally routable exceptions inside 2001::/23 (RFC 6890 and later updates).
_V6_GLOBAL_EXCEPTIONS = [
    ipaddress.ip_network(n)
    for n in (
        "2001:1::1/128",
        "2001:1::2/128",
        "2001:3::/32",
        "2001:4:112::/48",
        "2001:20::/28",
        "2001:30::/28",
    )
]


def parse_ip(value: str) -> IPAddress | None:
    """Parse an IPv4/IPv6 address from text; ``None`` for anything else.

    Tolerates surrounding whitespace and IPv6 brackets, nothing more: a body like
    ``"1.2.3.4 garbage"`` is not an address, and neither is an IPv6 address with a
    zone (``fe80::1%eth0``, which ``ipaddress`` accepts): a zone names an interface of
    the machine that wrote it, so it never belongs in what a server tells us or in DNS.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text or len(text) > 64 or "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def classify(address: str | IPAddress) -> AddressClass:
    """Classify an address. Raises ``ValueError`` for text that is not an address."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return classify(mapped)
        if any(ip in net for net in _V6_GLOBAL_EXCEPTIONS):
            return AddressClass.PUBLIC
        for net, cls in _V6_NETS:
            if ip in net:
                return cls
        # Only 2000::/3 is allocated global unicast today.
        if ip in ipaddress.ip_network("2000::/3"):
            return AddressClass.PUBLIC
        return AddressClass.RESERVED
    for net, cls in _V4_NETS:
        if ip in net:
            return cls
    return AddressClass.PUBLIC


def is_public(address: str | IPAddress) -> bool:
    """True when the address is globally routable (could be reached from the internet)."""
    try:
        return classify(address) is AddressClass.PUBLIC
    except ValueError:
        return False


def public_address(text: str, family: int) -> tuple[str | None, str | None]:
    """(the address in canonical form, None) when ``text`` is a public address of
    ``family`` (4 or 6), else (None, why not) — the one rule every source of "our
    public address" (HTTP and DNS echoes, STUN, port probers) passes through.

    Refused: anything that is not a bare address, an address with a zone
    (``fe80::1%eth0``: a zone only means something on this host), the other family
    (an IPv4-mapped IPv6 address counts as IPv4: it is no IPv6 fact), and every
    non-global class (private, CGNAT, link-local, loopback, unique-local,
    documentation...)."""
    raw = text.strip()
    if "%" in raw:
        return None, f"{raw[:64]!r} carries a zone (an interface name): that is no public address"
    ip = parse_ip(raw)
    if ip is None:
        return None, f"{raw[:64]!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version != family:
        return None, f"{ip} is an IPv{ip.version} address, not IPv{family}"
    cls = classify(ip)
    if cls is not AddressClass.PUBLIC:
        return None, f"{ip} is {describe_class(cls)}, not a public address"
    return str(ip), None


def describe_class(cls: AddressClass) -> str:
    """A short phrase for evidence sentences: 'a private (RFC 1918) address'."""
    return {
        AddressClass.PUBLIC: "a public address",
        AddressClass.PRIVATE: "a private (RFC 1918) address",
        AddressClass.CGNAT: "a carrier-grade NAT (RFC 6598, 100.64.0.0/10) address",
        AddressClass.LOOPBACK: "a loopback address",
        AddressClass.LINK_LOCAL: "a link-local address",
        AddressClass.UNIQUE_LOCAL: "a unique-local (fc00::/7) address",
        AddressClass.DOCUMENTATION: "a documentation-only address",
        AddressClass.BENCHMARK: "a benchmarking (198.18.0.0/15) address",
        AddressClass.MULTICAST: "a multicast address",
        AddressClass.UNSPECIFIED: "an unspecified address",
        AddressClass.RESERVED: "a reserved, non-routable address",
    }[cls]


def split_host_port(
    text: str, *, default_port: int | None = None, what: str = "address", require_ip: bool = False
) -> tuple[str, int]:
    """The one parser for ``host[:port]``: ``"host"``, ``"host:53"``, ``"192.0.2.1:53"``,
    ``"[2001:db8::1]:53"``, ``"[2001:db8::1]"`` or a bare ``"2001:db8::1"`` -> (host, port).

    An IPv6 address with a port needs its brackets (``2001:db8::1:53`` is an address).
    Without a port the result has ``default_port``; with ``default_port=None`` a port is
    required.  ``require_ip``: the host must be an IP address literal.  Ports are ASCII
    digits 1-65535 (``"²".isdigit()`` is true).  Raises ``AddressError`` (a ``UsageError``
    and a ``ValueError``) naming ``what`` and the text.
    """
    s = text.strip()
    port_text: str | None = None
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise AddressError(f"{what} {text!r}: '[' without ']' (an IPv6 address with a port is [ADDRESS]:PORT)")
        host, rest = s[1:end], s[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise AddressError(f"{what} {text!r}: expected [ADDRESS]:PORT")
            port_text = rest[1:]
        if parse_ip(host) is None or ":" not in host:
            raise AddressError(f"{what} {text!r}: only an IPv6 address goes in brackets")
    elif s.count(":") == 1:
        host, port_text = s.split(":")
    else:
        host = s  # a name, an IPv4 address or an unbracketed IPv6 address
    if not host or any(ch.isspace() for ch in host):
        raise AddressError(f"{what} {text!r}: expected HOST or HOST:PORT")
    if port_text is None:
        if default_port is None:
            raise AddressError(f"{what} {text!r}: expected HOST:PORT, e.g. 192.0.2.1:8080 or [2001:db8::1]:8080")
        port = default_port
    elif port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise AddressError(f"{what} {text!r}: bad port (a port is a number 1-65535)")
    if require_ip and parse_ip(host) is None:
        raise AddressError(f"{what} {text!r}: not an IP address")
    return host, port
