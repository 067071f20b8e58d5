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
from checks.portcheck.ipv6 import check_ipv6_ports, stable_ipv6
from checks.portcheck.spec import PortSpec

PROBER = ["ddnsw+https://prober.test"]


def local_with(*addresses: Ipv6Address) -> LocalInfo:
    return LocalInfo("eth0", "192.168.1.100", "192.168.1.1", ipv6_global=addresses)


def free_port() -> int:
    from tests.samples import unused_port

    return unused_port(socket.AF_INET6)


def prober(*, dial: bool) -> httpx.MockTransport:
    # No "ip" in these answers: the prober would name ::1, and a loopback address is never
    # taken as what the internet sees (test_a_prober_naming_a_non_public_address_...).
    async def handler(request: httpx.Request) -> httpx.Response:
        port = int(request.url.path.rsplit("/", 1)[1])
        if not dial:  # a firewall dropped the dial-back
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
    (result,) = await check_ipv6_ports(
        [PortSpec(port)],
        probers_v6=PROBER,
        local=local_with(Ipv6Address("::1", "lo")),
        make_client=client_for(prober(dial=dial)),
    )
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

    (result,) = await check_ipv6_ports(
        [PortSpec(free_port())],
        probers_v6=PROBER,
        local=local_with(Ipv6Address("::1", "lo")),
        make_client=client_for(httpx.MockTransport(handler)),
    )
    assert result.verdict == "unknown" and "not ::1" in result.evidence[0]


@pytest.mark.parametrize("named", ["::1", "fe80::1%eth0", "23.128.64.20"])
async def test_a_prober_naming_a_non_public_or_other_family_address_decides_nothing(named: str) -> None:
    """A prober that tested a loopback/link-local address (it runs on this host or LAN) or
    an IPv4 address (the request went out over IPv4) said nothing about this host's IPv6."""

    async def handler(request: httpx.Request) -> httpx.Response:
        port = int(request.url.path.rsplit("/", 1)[1])
        return httpx.Response(200, json={"ip": named, "port": port, "result": "connected", "banner": "x"})

    (result,) = await check_ipv6_ports(
        [PortSpec(free_port())],
        probers_v6=PROBER,
        local=local_with(Ipv6Address("::1", "lo")),
        make_client=client_for(httpx.MockTransport(handler)),
    )
    assert result.verdict == "unknown", result
    assert result.reason == "no-prober-answered" and "not this line's public IPv6 address" in result.evidence[0]


async def test_no_stable_address_means_no_ipv6_without_asking_anyone() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(500)

    results = await check_ipv6_ports(
        [PortSpec(443), PortSpec(51820, "udp")],
        probers_v6=PROBER,
        local=local_with(Ipv6Address("2001:db8::aaaa", "eth0", temporary=True)),
        make_client=client_for(httpx.MockTransport(handler)),
    )
    assert [r.verdict for r in results] == ["no-ipv6", "no-ipv6"] and asked == []


class FakePinholer:
    """Stands in for the router's IPv6 firewall service (the real ones — miniupnpd's IGDv2 and
    PCP — are exercised in tests/lab/test_portmap_lab.py): records opens and closes; the
    "firewall" lets the prober in only while a pinhole is open."""

    via = "upnp"
    name = "UPnP IGDv2"

    def __init__(self, *, fail_close: bool = False) -> None:
        self.open_now: set[int] = set()
        self.log: list[tuple[str, int]] = []
        self.fail_close = fail_close

    async def open(self, port: int, protocol: str, lease_s: int) -> int:
        self.open_now.add(port)
        self.log.append(("open", port))
        return port

    async def close(self, handle: int) -> None:
        self.log.append(("close", handle))
        if self.fail_close:
            raise OSError("the router did not answer")
        self.open_now.discard(handle)

    @staticmethod
    def describe(handle: int) -> str:
        return "pinhole 1, 300 s"


def gated_prober(firewall: FakePinholer) -> httpx.MockTransport:
    async def handler(request: httpx.Request) -> httpx.Response:
        port = int(request.url.path.rsplit("/", 1)[1])
        if port not in firewall.open_now:
            return httpx.Response(200, json={"port": port, "result": "timeout"})
        reader, writer = await asyncio.open_connection("::1", port)
        banner = (await reader.read(200)).decode()
        writer.close()
        return httpx.Response(200, json={"port": port, "result": "connected", "banner": banner})

    return httpx.MockTransport(handler)


async def test_upnp_opens_a_pinhole_for_the_test_and_closes_it() -> None:
    port = free_port()
    firewall = FakePinholer()

    async def find(address: str, local: LocalInfo) -> tuple[FakePinholer, str]:
        assert address == "::1"
        return firewall, "UPnP IGDv2 (fake)"

    (closed,) = await check_ipv6_ports(
        [PortSpec(port)],
        probers_v6=PROBER,
        local=local_with(Ipv6Address("::1", "lo")),
        make_client=client_for(gated_prober(firewall)),
    )
    assert closed.verdict == "firewalled" and closed.pinhole == "none" and closed.pinhole_via is None
    (r,) = await check_ipv6_ports(
        [PortSpec(port)],
        probers_v6=PROBER,
        local=local_with(Ipv6Address("::1", "lo")),
        make_client=client_for(gated_prober(firewall)),
        use_upnp=True,
        pinholer=find,
    )
    assert r.verdict == "open" and r.pinhole == "temporary" and r.pinhole_via == "upnp"
    assert "Opened the router's IPv6 firewall" in r.evidence[0] and "closed afterwards" in r.evidence[0]
    assert firewall.log == [("open", port), ("close", port)] and not firewall.open_now


async def test_keep_leaves_the_pinhole_and_records_it() -> None:
    from checks.portmap.lasting import ForwardsLedger

    port = free_port()
    firewall = FakePinholer()
    firewall.client = type("C", (), {"control_url": "http://[::1]:5000/ctl"})()  # type: ignore[attr-defined]

    async def find(address: str, local: LocalInfo) -> tuple[FakePinholer, str]:
        return firewall, "fake"

    class Handle:
        unique_id, lease_s = 4, 86400

    async def open_(port_: int, protocol: str, lease_s: int) -> Handle:
        firewall.open_now.add(port_)
        return Handle()

    firewall.open = open_  # type: ignore[method-assign]
    (r,) = await check_ipv6_ports(
        [PortSpec(port)],
        probers_v6=PROBER,
        local=local_with(Ipv6Address("::1", "lo")),
        make_client=client_for(gated_prober(firewall)),
        use_upnp=True,
        keep=True,
        pinholer=find,
    )
    assert r.verdict == "open" and r.pinhole == "kept" and port in firewall.open_now
    fwd = ForwardsLedger.default().find(port, "tcp", family=6)
    assert fwd is not None and fwd.via == "upnp-pinhole" and fwd.pinhole_id == 4 and fwd.lease_s == 86400


async def test_a_pinhole_that_cannot_be_closed_is_reported() -> None:
    port = free_port()
    firewall = FakePinholer(fail_close=True)

    async def find(address: str, local: LocalInfo) -> tuple[FakePinholer, str]:
        return firewall, "fake"

    leftovers: list[tuple[str, str]] = []
    (r,) = await check_ipv6_ports(
        [PortSpec(port)],
        probers_v6=PROBER,
        local=local_with(Ipv6Address("::1", "lo")),
        make_client=client_for(gated_prober(firewall)),
        use_upnp=True,
        pinholer=find,
        leftovers=leftovers,
    )
    assert leftovers and "did not answer" in leftovers[0][1]
    assert "FAILED" in r.evidence[0]


async def test_no_way_to_open_the_firewall_is_said() -> None:
    port = free_port()

    async def none(address: str, local: LocalInfo) -> tuple[None, str]:
        return None, "no UPnP IGD answered; PCP over IPv6: no answer"

    (r,) = await check_ipv6_ports(
        [PortSpec(port)],
        probers_v6=PROBER,
        local=local_with(Ipv6Address("::1", "lo")),
        make_client=client_for(prober(dial=False)),
        use_upnp=True,
        pinholer=none,
    )
    assert r.verdict == "firewalled" and r.pinhole == "failed" and "no way to open" in r.evidence[0]


def test_cli_keep_needs_upnp_with_ipv6_too(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from wizard.cli import main

    config = tmp_path / "config.toml"
    config.write_text("")
    assert main(["--config", str(config), "ports", "check", "443", "--ipv6", "--keep"]) == 2
    assert "--keep" in capsys.readouterr().err
