"""`ports check --ipv6`: the verdicts from what the prober saw.

The prober is an httpx.MockTransport handler that really dials back the listener on
the IPv6 loopback address and reads its banner, as the project's probe server does;
the routed path (router IPv6 firewall, CGNAT) runs for real in tests/lab/test_ports_lab.py.
"""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from checks.model import Ipv6Address, LocalInfo
from checks.portcheck.spec import PortSpec
from checks.portcheck.ipv6 import check_ipv6_ports, stable_ipv6

PROBER = ["ddnsw+https://prober.test"]


def local_with(*addresses: Ipv6Address) -> LocalInfo:
    return LocalInfo("eth0", "192.168.1.100", "192.168.1.1", ipv6_global=addresses)


def free_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


def prober(*, dial: bool) -> httpx.MockTransport:
    # No "ip" in these answers: the prober would name ::1, and a loopback address is never
    # taken as what the internet sees (test_a_prober_naming_a_non_public_address_...).
    async def handler(request: httpx.Request) -> httpx.Response:
        port = int(request.url.path.rsplit("/", 1)[1])
        if not dial:                                  # a firewall dropped the dial-back
            return httpx.Response(200, json={"port": port, "result": "timeout"})
        reader, writer = await asyncio.open_connection("::1", port)
        banner = (await reader.read(200)).decode()
        writer.close()
        return httpx.Response(200, json={"port": port, "result": "connected", "banner": banner})
    return httpx.MockTransport(handler)


def client_for(transport: httpx.MockTransport):  # type: ignore[no-untyped-def]
    return lambda source: httpx.AsyncClient(transport=transport)


def test_the_stable_address_is_tested_never_a_temporary_one() -> None:
    temp = Ipv6Address("2001:db8::aaaa", "eth0", temporary=True)
    stable = Ipv6Address("2001:db8::10", "eth0")
    assert stable_ipv6(local_with(temp, stable)) == ("2001:db8::10", None)
    address, why = stable_ipv6(local_with(temp))
    assert address is None and "only temporary" in (why or "")
    address, why = stable_ipv6(local_with())
    assert address is None and "no global IPv6 address" in (why or "")


@pytest.mark.parametrize("dial, verdict", [(True, "open"), (False, "firewalled")])
async def test_verdict_follows_what_the_prober_reached(dial: bool, verdict: str) -> None:
    port = free_port()
    (result,) = await check_ipv6_ports([PortSpec(port)], probers_v6=PROBER,
                                        local=local_with(Ipv6Address("::1", "lo")),
                                        make_client=client_for(prober(dial=dial)))
    assert result.verdict == verdict and result.address == "::1"
    if verdict == "open":
        assert any("read this test's nonce" in e for e in result.evidence)
        assert result.fix == ""
    else:
        assert "timed out" in result.evidence[0] and "IPv6 firewall" in result.fix


async def test_a_prober_that_saw_another_address_decides_nothing() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        port = int(request.url.path.rsplit("/", 1)[1])
        return httpx.Response(200, json={"ip": "2a0c:b641:100:1::aaaa", "port": port, "result": "timeout"})
    (result,) = await check_ipv6_ports([PortSpec(free_port())], probers_v6=PROBER,
                                        local=local_with(Ipv6Address("::1", "lo")),
                                        make_client=client_for(httpx.MockTransport(handler)))
    assert result.verdict == "unknown" and "not ::1" in result.evidence[0]


@pytest.mark.parametrize("named", ["::1", "fe80::1%eth0", "23.128.64.20"])
async def test_a_prober_naming_a_non_public_or_other_family_address_decides_nothing(named: str) -> None:
    """A prober that tested a loopback/link-local address (it runs on this host or LAN) or
    an IPv4 address (the request went out over IPv4) said nothing about this host's IPv6."""
    async def handler(request: httpx.Request) -> httpx.Response:
        port = int(request.url.path.rsplit("/", 1)[1])
        return httpx.Response(200, json={"ip": named, "port": port, "result": "connected", "banner": "x"})
    (result,) = await check_ipv6_ports([PortSpec(free_port())], probers_v6=PROBER,
                                        local=local_with(Ipv6Address("::1", "lo")),
                                        make_client=client_for(httpx.MockTransport(handler)))
    assert result.verdict == "unknown", result
    assert result.reason == "no-prober-answered" and "not this line's public IPv6 address" in result.evidence[0]


async def test_no_stable_address_means_no_ipv6_without_asking_anyone() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(500)
    results = await check_ipv6_ports([PortSpec(443), PortSpec(51820, "udp")], probers_v6=PROBER,
                                     local=local_with(Ipv6Address("2001:db8::aaaa", "eth0", temporary=True)),
                                     make_client=client_for(httpx.MockTransport(handler)))
    assert [r.verdict for r in results] == ["no-ipv6", "no-ipv6"] and asked == []


def test_cli_refuses_upnp_with_ipv6(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from wizard.cli import main

    config = tmp_path / "config.toml"
    config.write_text("")
    assert main(["--config", str(config), "ports", "check", "443", "--ipv6", "--upnp"]) == 2
    assert "IPv6 needs no mapping" in capsys.readouterr().err
