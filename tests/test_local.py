"""Local facts: parsing iproute2's JSON and /proc, VPN detection, and gather_local end to end.

gather_local runs against a fake `ip` program put first on PATH (canned JSON
standing in for machines with a VPN or without IPv4 routes, which this test
machine is not); the real iproute2 inside namespaces is used by the lab tests.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from checks.probes.local import (
    gather_local,
    is_vpn_interface,
    parse_addr,
    parse_proc_if_inet6,
    parse_proc_route,
    parse_route_get,
    parse_v6_default,
)

ADDR_JSON = [
    {
        "ifname": "lo",
        "flags": ["LOOPBACK", "UP"],
        "link_type": "loopback",
        "addr_info": [{"family": "inet", "local": "127.0.0.1", "scope": "host"}],
    },
    {
        "ifname": "eth0",
        "flags": ["BROADCAST", "UP", "LOWER_UP"],
        "link_type": "ether",
        "addr_info": [
            {"family": "inet", "local": "192.168.1.100", "prefixlen": 24, "scope": "global"},
            {"family": "inet6", "local": "2a0c:b641:100:1::100", "scope": "global", "prefixlen": 64},
            {
                "family": "inet6",
                "local": "2a0c:b641:100:1:aaaa::1",
                "scope": "global",
                "temporary": True,
                "dynamic": True,
            },
            {
                "family": "inet6",
                "local": "2a0c:b641:100:1:bbbb::1",
                "scope": "global",
                "temporary": True,
                "deprecated": True,
            },
            {"family": "inet6", "local": "fd00::5", "scope": "global"},
            {"family": "inet6", "local": "fe80::1", "scope": "link"},
        ],
    },
    {
        "ifname": "wg0",
        "flags": ["POINTOPOINT", "NOARP", "UP", "LOWER_UP"],
        "link_type": "none",
        "linkinfo": {"info_kind": "wireguard"},
        "addr_info": [
            {"family": "inet", "local": "10.8.0.2", "scope": "global"},
            {"family": "inet6", "local": "2a0c:dead::2", "scope": "global"},
        ],
    },
    {
        "ifname": "office",
        "flags": ["POINTOPOINT", "UP"],
        "link_type": "none",
        "linkinfo": {"info_kind": "tun"},
        "addr_info": [],
    },
    {"ifname": "tun9", "flags": ["POINTOPOINT"], "addr_info": []},  # down: not listed
]


def test_vpn_interface_by_name_and_kind() -> None:
    for name in ("wg0", "tun0", "tailscale0", "utun3", "zt7nnig26", "nordlynx", "proton0", "tap1"):
        assert is_vpn_interface(name)
    assert is_vpn_interface("office", "wireguard")
    for name in ("eth0", "enp3s0", "wlan0", "ppp0", "br-lan", "docker0"):
        assert not is_vpn_interface(name)


def test_parse_addr_global_ipv6_and_vpns() -> None:
    v4, v6, vpns = parse_addr(ADDR_JSON)
    assert v4["eth0"] == ["192.168.1.100"]
    # Public only (no ULA, no link-local), never a VPN's addresses; temporary ones flagged.
    assert [(a.address, a.temporary, a.deprecated) for a in v6] == [
        ("2a0c:b641:100:1::100", False, False),
        ("2a0c:b641:100:1:aaaa::1", True, False),
        ("2a0c:b641:100:1:bbbb::1", True, True),
    ]
    assert vpns == ["wg0", "office"]


def test_parse_route_get_and_v6_default() -> None:
    assert parse_route_get(
        [{"dst": "1.1.1.1", "gateway": "192.168.1.1", "dev": "eth0", "prefsrc": "192.168.1.100"}]
    ) == ("eth0", "192.168.1.100", "192.168.1.1")
    assert parse_route_get([]) == (None, None, None)
    assert parse_route_get("garbage") == (None, None, None)
    assert (
        parse_v6_default([{"dst": "2a0c::/64", "dev": "eth0"}, {"dst": "default", "gateway": "fe80::1", "dev": "eth0"}])
        == "fe80::1"
    )
    assert parse_v6_default([{"dst": "default", "dev": "wg0"}]) is None


def test_parse_proc_route_picks_lowest_metric_default() -> None:
    text = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
        "eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
        "eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
        "broken line\n"
    )
    assert parse_proc_route(text) == ("eth0", "192.168.2.1")
    assert parse_proc_route("Iface\n") == (None, None)


def test_parse_proc_if_inet6() -> None:
    text = (
        "2a0cb641010000010000000000000100 02 40 00 80     eth0\n"
        "2a0cb6410100000100000000aaaa0001 02 40 00 01     eth0\n"
        "fe800000000000000000000000000001 02 40 20 80     eth0\n"
        "2a0cdead000000000000000000000002 05 40 00 80      wg0\n"
        "garbage\n"
    )
    addrs = parse_proc_if_inet6(text)
    assert [(a.address, a.temporary) for a in addrs] == [
        ("2a0c:b641:100:1::100", False),
        ("2a0c:b641:100:1::aaaa:1", True),
    ]


def fake_ip(tmp_path: Path, route_get: object, *, route_get_fails: bool = False) -> Path:
    """A stand-in `ip` program answering the three queries gather_local makes."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (tmp_path / "route_get.json").write_text(json.dumps(route_get))
    (tmp_path / "addr.json").write_text(json.dumps(ADDR_JSON))
    (tmp_path / "route6.json").write_text(json.dumps([{"dst": "default", "gateway": "fe80::1", "dev": "eth0"}]))
    fail = (
        'echo "RTNETLINK answers: Network is unreachable" >&2; exit 2'
        if route_get_fails
        else f"cat {tmp_path}/route_get.json"
    )
    script = bindir / "ip"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f'  *"route get"*) {fail} ;;\n'
        f"  *addr*) cat {tmp_path}/addr.json ;;\n"
        f'  *"-6 route"*) cat {tmp_path}/route6.json ;;\n'
        "  *) exit 1 ;;\n"
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bindir


async def test_gather_local_plain_lan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = fake_ip(
        tmp_path, [{"dst": "1.1.1.1", "gateway": "192.168.1.1", "dev": "eth0", "prefsrc": "192.168.1.100"}]
    )
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    info = await gather_local(timeout_s=2.0)
    assert (info.interface, info.ipv4, info.gateway_ipv4, info.gateway_ipv6) == (
        "eth0",
        "192.168.1.100",
        "192.168.1.1",
        "fe80::1",
    )
    assert info.vpn_interfaces == ("wg0", "office") and not info.default_via_vpn
    assert info.error is None and len(info.ipv6_global) == 3


async def test_gather_local_default_route_through_vpn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = fake_ip(tmp_path, [{"dst": "1.1.1.1", "dev": "wg0", "table": "51820", "prefsrc": "10.8.0.2"}])
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    info = await gather_local(timeout_s=2.0)
    assert info.interface == "wg0" and info.default_via_vpn and info.gateway_ipv4 is None


async def test_gather_local_without_ipv4_route(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = fake_ip(tmp_path, [], route_get_fails=True)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    info = await gather_local(timeout_s=2.0)
    assert info.interface is None and info.ipv4 is None
    assert info.error == "no IPv4 route to the internet (RTNETLINK answers: Network is unreachable)"
    assert len(info.ipv6_global) == 3  # the rest is still reported


async def test_gather_local_without_iproute2_reads_proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `ip` anywhere
    info = await gather_local(timeout_s=2.0)
    expected_if, expected_gw = parse_proc_route(Path("/proc/net/route").read_text())
    assert (info.interface, info.gateway_ipv4) == (expected_if, expected_gw)
    if expected_if:
        assert info.ipv4 is not None and info.error is None
