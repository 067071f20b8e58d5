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
    ("2002:c000:204::1", AddressClass.RESERVED),      # 6to4
    ("2001::1", AddressClass.RESERVED),               # Teredo
    ("2001:4:112::1", AddressClass.PUBLIC),           # AS112-v6: globally routable exception
    ("64:ff9b::808:808", AddressClass.RESERVED),      # NAT64
    ("::ffff:192.168.1.1", AddressClass.PRIVATE),     # v4-mapped follows the v4 class
    ("::ffff:8.8.8.8", AddressClass.PUBLIC),
    ("100::1", AddressClass.RESERVED),
    ("4000::1", AddressClass.RESERVED),               # outside 2000::/3: unallocated
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
