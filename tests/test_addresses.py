"""Address classification: every special-purpose range, both families."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checks.addresses import AddressClass, classify, describe_class, is_public, parse_ip

CASES = [
    ("8.8.8.8", AddressClass.PUBLIC),
    ("11.1.0.10", AddressClass.PUBLIC),
    ("23.128.64.20", AddressClass.PUBLIC),
    ("0.0.0.0", AddressClass.UNSPECIFIED),
    ("0.1.2.3", AddressClass.UNSPECIFIED),
    ("10.0.0.1", AddressClass.PRIVATE),
    ("10.255.255.255", AddressClass.PRIVATE),
    ("172.16.0.1", AddressClass.PRIVATE),
    ("172.31.255.254", AddressClass.PRIVATE),
    ("172.32.0.1", AddressClass.PUBLIC),
    ("172.15.255.255", AddressClass.PUBLIC),
    ("192.168.1.1", AddressClass.PRIVATE),
    ("100.64.0.1", AddressClass.CGNAT),
    ("100.127.255.254", AddressClass.CGNAT),
    ("100.63.255.255", AddressClass.PUBLIC),
    ("100.128.0.0", AddressClass.PUBLIC),
    ("127.0.0.1", AddressClass.LOOPBACK),
    ("169.254.10.1", AddressClass.LINK_LOCAL),
    ("192.0.0.8", AddressClass.RESERVED),
    ("192.0.2.5", AddressClass.DOCUMENTATION),
    ("198.51.100.7", AddressClass.DOCUMENTATION),
    ("203.0.113.9", AddressClass.DOCUMENTATION),
    ("198.18.0.1", AddressClass.BENCHMARK),
    ("198.19.255.255", AddressClass.BENCHMARK),
    ("192.88.99.1", AddressClass.RESERVED),
    ("224.0.0.251", AddressClass.MULTICAST),
    ("239.255.255.250", AddressClass.MULTICAST),
    ("240.0.0.1", AddressClass.RESERVED),
    ("255.255.255.255", AddressClass.RESERVED),
    ("2a00:1450:4001::1", AddressClass.PUBLIC),
    ("2a0c:b641:100:1::100", AddressClass.PUBLIC),
    ("::", AddressClass.UNSPECIFIED),
    ("::1", AddressClass.LOOPBACK),
    ("fe80::1", AddressClass.LINK_LOCAL),
    ("fd12:3456::1", AddressClass.UNIQUE_LOCAL),
    ("fc00::1", AddressClass.UNIQUE_LOCAL),
    ("2001:db8::1", AddressClass.DOCUMENTATION),
    ("3fff::1", AddressClass.DOCUMENTATION),
    ("ff02::1", AddressClass.MULTICAST),
    ("2002:c000:204::1", AddressClass.RESERVED),  # 6to4
    ("2001::1", AddressClass.RESERVED),  # Teredo
    ("2001:4:112::1", AddressClass.PUBLIC),  # AS112-v6: globally routable exception
    ("64:ff9b::808:808", AddressClass.RESERVED),  # NAT64
    ("::ffff:192.168.1.1", AddressClass.PRIVATE),  # v4-mapped follows the v4 class
    ("::ffff:8.8.8.8", AddressClass.PUBLIC),
    ("100::1", AddressClass.RESERVED),
    ("4000::1", AddressClass.RESERVED),  # outside 2000::/3: unallocated
]


@pytest.mark.parametrize(("address", "expected"), CASES)
def test_classify(address: str, expected: AddressClass) -> None:
    assert classify(address) is expected
    assert is_public(address) is (expected is AddressClass.PUBLIC)
    assert describe_class(expected)


def test_is_public_rejects_non_addresses() -> None:
    assert is_public("not an ip") is False
    assert is_public("") is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4\n", "1.2.3.4"),
        ("  2a00::1 ", "2a00::1"),
        ("[2a00::1]", "2a00::1"),
        ("1.2.3.4 garbage", None),
        ("<html>", None),
        ("", None),
        ("999.1.1.1", None),
        ("1" * 100, None),
    ],
)
def test_parse_ip(text: str, expected: str | None) -> None:
    got = parse_ip(text)
    assert (str(got) if got else None) == expected


@given(st.ip_addresses())
def test_classify_agrees_with_stdlib_on_globality(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """Every address gets a class; ours never calls public what the stdlib calls private."""
    cls = classify(ip)
    if cls is AddressClass.PUBLIC and isinstance(ip, ipaddress.IPv4Address):
        assert ip.is_global
    if ip.is_private and not ip.is_global and isinstance(ip, ipaddress.IPv4Address):
        assert cls is not AddressClass.PUBLIC


@given(st.text(max_size=80))
def test_parse_ip_never_crashes(text: str) -> None:
    parse_ip(text)


# ------------------------------------------------------------------ the one host[:port] parser (issue 14)


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("stun.example.org", 3478, ("stun.example.org", 3478)),
        ("stun.l.google.com:19302", 3478, ("stun.l.google.com", 19302)),
        ("[::1]:3479", 3478, ("::1", 3479)),
        ("[2001:db8::53]", 53, ("2001:db8::53", 53)),
        ("::1", 3478, ("::1", 3478)),  # unbracketed IPv6: no port in it
        ("2001:db8::1:53", 53, ("2001:db8::1:53", 53)),  # ... so this is an address, not port 53
        (" 192.0.2.1:5353 ", 53, ("192.0.2.1", 5353)),
    ],
)
def test_split_host_port(text: str, default: int, expected: tuple[str, int]) -> None:
    from checks.addresses import split_host_port

    assert split_host_port(text, default_port=default) == expected


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("host:0", {"default_port": 53}, r"bad port \(a port is a number 1-65535\)"),
        ("host:65536", {"default_port": 53}, r"bad port \(a port is a number 1-65535\)"),
        ("host:²", {"default_port": 53}, r"bad port \(a port is a number 1-65535\)"),
        ("host:", {"default_port": 53}, r"bad port \(a port is a number 1-65535\)"),
        ("[::1", {"default_port": 53}, "without ']'"),
        ("[::1]x", {"default_port": 53}, r"expected \[ADDRESS\]:PORT"),
        ("[example.org]:53", {"default_port": 53}, "only an IPv6 address goes in brackets"),
        ("", {"default_port": 53}, "expected HOST or HOST:PORT"),
        (":53", {"default_port": 53}, "expected HOST or HOST:PORT"),
        ("not a host", {"default_port": 53}, "expected HOST or HOST:PORT"),
        ("0.0.0.0", {}, "expected HOST:PORT"),
        ("example.org:53", {"require_ip": True}, "not an IP address"),
    ],
)
def test_split_host_port_refuses_with_one_error(text: str, kwargs: dict[str, object], message: str) -> None:
    """Every host[:port] field fails the same way: an AddressError (a UsageError, so exit 2 at the
    command line, and a ValueError, so a probe records it as data) naming the field and the text."""
    from checks.addresses import split_host_port
    from checks.errors import AddressError, UsageError

    with pytest.raises(AddressError, match=message) as info:
        split_host_port(text, what="--listen", **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, UsageError) and isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"--listen {text!r}: ")
