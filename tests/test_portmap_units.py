"""Port mapping pieces without a router: the UPnP description (router identity, IGDv2
services), the MAC vendor fallback, the IGDv2 pinhole SOAP, the PCP mapper and the
lasting-forwards ledger.

Mocked here, and why: the router's HTTP answers (httpx.MockTransport with bodies
shaped like miniupnpd 2.3.1's, as seen in the lab) to reach error paths a real
miniupnpd will not produce on demand (606 from another address, a full table); the
PCP server is the miniupnpd-like loopback stand-in of tests/test_pcp.py. The real
miniupnpd is exercised in tests/lab/test_portmap_lab.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from checks.errors import MappingError
from checks.portmap.lasting import ForwardsLedger, LastingForward, renew_due
from checks.portmap.pcp import PcpClient
from checks.portmap.pcpmapper import PcpMapper
from checks.portmap.pinhole import (
    FIREWALL_SERVICE,
    PinholeClient,
    PinholeError,
    build_envelope,
    control_url_for,
    parse_soap_reply,
)
from checks.probes.router import (
    DescriptionError,
    RouterIdentity,
    identity_from_mac,
    mac_vendor,
    parse_description,
    router_identity,
)
from tests.test_pcp import FakePcpServer

LOCATION = "http://192.168.1.1:43103/rootDesc.xml"

MINIUPNPD_DESC = b"""<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0" configId="1337"><specVersion><major>1</major><minor>1</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType>
<friendlyName>ddns-wizard lab router</friendlyName><manufacturer>Lab Networks</manufacturer>
<manufacturerURL>http://miniupnp.free.fr/</manufacturerURL><modelDescription>MiniUPnP daemon</modelDescription>
<modelName>LR-1000 Home Gateway</modelName><modelNumber>20221221</modelNumber>
<UDN>uuid:e6a5721b</UDN>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>
<serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId><controlURL>/ctl/L3F</controlURL></service></serviceList>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType>
<serviceList>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><controlURL>/ctl/IPConn</controlURL></service>
<service><serviceType>urn:schemas-upnp-org:service:WANIPv6FirewallControl:1</serviceType><controlURL>/ctl/IP6FCtl</controlURL></service>
</serviceList></device></deviceList></device></deviceList>
<presentationURL>http://192.168.1.1/</presentationURL></device></root>"""


# --------------------------------------------------------------------------- router identity


def test_identity_and_services_from_miniupnpd_description() -> None:
    d = parse_description(MINIUPNPD_DESC, LOCATION)
    assert d.identity.as_json() == {
        "manufacturer": "Lab Networks",
        "model": "LR-1000 Home Gateway",
        "friendly_name": "ddns-wizard lab router",
        "presentation_url": "http://192.168.1.1/",
    }
    assert d.identity.name() == "Lab Networks LR-1000 Home Gateway"
    assert d.igd_version == 2
    fw = d.service("WANIPv6FirewallControl")
    assert fw is not None and fw.control_url == "http://192.168.1.1:43103/ctl/IP6FCtl"


def test_name_does_not_repeat_the_maker() -> None:
    assert RouterIdentity("AVM", "AVM FRITZ!Box 7590").name() == "AVM FRITZ!Box 7590"
    assert RouterIdentity(None, None, "Living room").name() == "Living room"
    assert RouterIdentity().name() is None and not RouterIdentity().known


@pytest.mark.parametrize(
    "url, kept",
    [
        ("http://192.168.1.1/", "http://192.168.1.1/"),
        ("/admin", "http://192.168.1.1:43103/admin"),
        ("javascript:alert(1)", None),
        ("http://evil.example/", None),  # a name could point anywhere
        ("http://8.8.8.8/", None),  # never a public address
        ("http://192.168.1.254/", "http://192.168.1.254/"),
    ],
)
def test_presentation_url_is_kept_only_on_the_lan(url: str, kept: str | None) -> None:
    doc = MINIUPNPD_DESC.replace(b"http://192.168.1.1/</presentationURL>", url.encode() + b"</presentationURL>")
    assert parse_description(doc, LOCATION).identity.presentation_url == kept


def test_hostile_descriptions_are_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><root><device/></root>'
    with pytest.raises(DescriptionError, match="DTD"):
        parse_description(bomb, LOCATION)
    with pytest.raises(DescriptionError):
        parse_description(b"<html>router</html>", LOCATION)
    with pytest.raises(DescriptionError):
        parse_description(b"\x00garbage", LOCATION)
    with pytest.raises(DescriptionError, match="larger"):
        parse_description(b"<root>" + b" " * 200_000 + b"</root>", LOCATION)
    odd = MINIUPNPD_DESC.replace(b"Lab Networks", b"Lab&#x202E; Networks" + b"x" * 500)
    maker = parse_description(odd, LOCATION).identity.manufacturer or ""
    assert "\u202e" not in maker and maker.startswith("Lab Networks") and len(maker) <= 120


def test_mac_vendor_from_the_offline_oui_registry(tmp_path: Path) -> None:
    assert mac_vendor("00:1b:2f:aa:bb:cc") == "NETGEAR"
    assert mac_vendor("02:00:00:00:00:01") is None  # locally administered: no vendor
    assert mac_vendor("not a mac") is None
    arp = tmp_path / "arp"
    arp.write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "192.168.1.1      0x1         0x2         00:1b:2f:aa:bb:cc     *        eth0\n"
        "192.168.1.7      0x1         0x0         00:00:00:00:00:00     *        eth0\n"
    )
    ident = identity_from_mac("192.168.1.1", str(arp))
    assert ident.manufacturer == "NETGEAR" and ident.source == "mac-vendor" and ident.model is None
    assert not identity_from_mac("192.168.1.7", str(arp)).known
    assert not identity_from_mac(None, str(arp)).known


async def test_router_identity_without_upnp_falls_back_to_the_mac(tmp_path: Path) -> None:
    arp = tmp_path / "arp"
    arp.write_text("h\n10.0.0.1 0x1 0x2 dc:a6:32:00:00:01 * eth0\n")
    ident, desc, problem = await router_identity(None, "10.0.0.1", arp_path=str(arp))
    assert ident.manufacturer == "Raspberry Pi Trading Ltd" and desc is None and problem is None


# --------------------------------------------------------------------------- IGDv2 pinholes


def soap_ok(action: str, inner: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        f'<u:{action}Response xmlns:u="{FIREWALL_SERVICE}">{inner}</u:{action}Response></s:Body></s:Envelope>'
    ).encode()


def soap_fault(code: int, desc: str) -> bytes:
    return (
        '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>"
        '<UPnPError xmlns="urn:schemas-upnp-org:control-1-0">'
        f"<errorCode>{code}</errorCode><errorDescription>{desc}</errorDescription></UPnPError>"
        "</detail></s:Fault></s:Body></s:Envelope>"
    ).encode()


def test_control_url_is_aimed_at_the_router_over_ipv6() -> None:
    assert (
        control_url_for("http://192.168.1.1:43103/ctl/IP6FCtl", "2a0c:b641:100:1::1")
        == "http://[2a0c:b641:100:1::1]:43103/ctl/IP6FCtl"
    )
    assert control_url_for("http://192.168.1.1/ctl", "fe80::1%eth0") == "http://[fe80::1%25eth0]/ctl"


async def test_add_update_delete_pinhole_wire_format() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        action = request.headers["SOAPAction"].strip('"').split("#")[1]
        inner = "<UniqueID>7</UniqueID>" if action == "AddPinhole" else ""
        return httpx.Response(200, content=soap_ok(action, inner))

    client = PinholeClient("http://[2a0c::1]:5000/ctl/IP6FCtl", "2a0c::100", transport=httpx.MockTransport(handler))
    hole = await client.add(8443, "tcp", 0)  # 0: the longest a pinhole may last
    assert (hole.unique_id, hole.lease_s, hole.port) == (7, 86400, 8443)
    body = seen[0].content.decode()
    for part in (
        "<InternalClient>2a0c::100</InternalClient>",
        "<InternalPort>8443</InternalPort>",
        "<Protocol>6</Protocol>",
        "<LeaseTime>86400</LeaseTime>",
        "<RemoteHost></RemoteHost>",
        "<RemotePort>0</RemotePort>",
    ):
        assert part in body
    assert seen[0].headers["SOAPAction"] == f'"{FIREWALL_SERVICE}#AddPinhole"'
    updated = await client.update(hole, 3600)
    assert updated.lease_s == 3600 and "<NewLeaseTime>3600</NewLeaseTime>" in seen[1].content.decode()
    assert await client.delete(hole) is True
    assert "<UniqueID>7</UniqueID>" in seen[2].content.decode()


async def test_pinhole_faults_are_sentences() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, content=soap_fault(606, "Action not authorized"))

    client = PinholeClient("http://[2a0c::1]:5000/c", "2a0c::100", transport=httpx.MockTransport(handler))
    with pytest.raises(PinholeError) as err:
        await client.add(8443, "tcp", 600)
    assert err.value.code == 606 and "may only be opened by the computer it opens to" in str(err.value)
    with pytest.raises(PinholeError, match="switched off"):
        parse_soap_reply(500, soap_fault(703, "InboundPinholeNotAllowed"), "AddPinhole")


async def test_pinhole_delete_of_an_unknown_id_is_false() -> None:
    client = PinholeClient(
        "http://[2a0c::1]:5000/c",
        "2a0c::100",
        transport=httpx.MockTransport(lambda r: httpx.Response(500, content=soap_fault(704, "NoSuchEntry"))),
    )
    assert await client.delete(3) is False


async def test_pinhole_garbage_and_silence() -> None:
    client = PinholeClient(
        "http://[2a0c::1]:5000/c",
        "2a0c::100",
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=b"<html>ok</html>")),
    )
    with pytest.raises(PinholeError, match="no AddPinholeResponse"):
        await client.add(8443, "tcp", 600)

    def bad_uid(r: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=soap_ok("AddPinhole", "<UniqueID>-1; rm</UniqueID>"))

    client = PinholeClient("http://[2a0c::1]:5000/c", "2a0c::100", transport=httpx.MockTransport(bad_uid))
    with pytest.raises(PinholeError, match="UniqueID"):
        await client.add(8443, "tcp", 600)

    def down(r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    client = PinholeClient("http://[2a0c::1]:5000/c", "2a0c::100", transport=httpx.MockTransport(down))
    with pytest.raises(PinholeError, match="could not reach"):
        await client.status()
    with pytest.raises(PinholeError, match="IPv6"):
        PinholeClient("http://x/", "192.168.1.5")


def test_envelope_escapes() -> None:
    assert b"&lt;x&gt;" in build_envelope("AddPinhole", [("RemoteHost", "<x>")])


# --------------------------------------------------------------------------- PCP mapper


@pytest.fixture
async def pcp_server() -> asyncio.AsyncIterator[tuple[FakePcpServer, int]]:  # type: ignore[name-defined]
    loop = asyncio.get_running_loop()
    proto = FakePcpServer(epoch_base=loop.time() - 1000)
    transport, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", 0))
    yield proto, transport.get_extra_info("sockname")[1]
    transport.close()


async def test_pcp_mapper_maps_keeps_and_removes(pcp_server: tuple[FakePcpServer, int]) -> None:
    srv, port = pcp_server
    mapper = PcpMapper("127.0.0.1", "127.0.0.1", client=PcpClient("127.0.0.1", port=port, timeout_s=1.0))
    assert mapper.via == "pcp"
    granted = await mapper.add(8080, "tcp", "127.0.0.1", 8080, 0, "ddns-wizard")  # 0: lasting
    assert granted == 8080 and mapper.lifetimes[(8080, "tcp")] == 86400  # capped by the router
    assert (await mapper.existing(8080, "tcp")) is not None
    with pytest.raises(MappingError, match="only to the computer that asks"):
        await mapper.add(8081, "tcp", "192.168.1.50", 8081, 60, "x")
    await mapper.remove(8080, "tcp", 8080)
    assert not srv.mappings
    with pytest.raises(MappingError, match="nonce is unknown"):
        await mapper.remove(8080, "tcp", 8080)


async def test_pcp_mapper_remakes_after_router_restart(pcp_server: tuple[FakePcpServer, int]) -> None:
    srv, port = pcp_server
    mapper = PcpMapper("127.0.0.1", "127.0.0.1", client=PcpClient("127.0.0.1", port=port, timeout_s=1.0))
    await mapper.add(51820, "udp", "127.0.0.1", 51820, 600, "x")
    srv.restart()
    assert not srv.mappings
    renewed, what = await mapper.renew(51820, "udp")
    assert renewed is not None and "restarted" in what and srv.mappings


async def test_pcp_mapper_refusal_created_nothing(pcp_server: tuple[FakePcpServer, int]) -> None:
    _srv, port = pcp_server
    other = PcpMapper("127.0.0.1", "127.0.0.1", client=PcpClient("127.0.0.1", port=port, timeout_s=1.0))
    await other.add(9000, "tcp", "127.0.0.1", 9000, 600, "x")
    mapper = PcpMapper("127.0.0.1", "127.0.0.1", client=PcpClient("127.0.0.1", port=port, timeout_s=1.0))
    with pytest.raises(MappingError) as err:
        await mapper.add(9000, "tcp", "127.0.0.1", 9000, 600, "x")  # another nonce holds it
    assert err.value.code == 606 and "NOT_AUTHORIZED" in str(err.value)


# --------------------------------------------------------------------------- lasting forwards


def test_ledger_round_trip_and_damage(tmp_path: Path) -> None:
    path = tmp_path / "state" / "forwards.json"
    ledger = ForwardsLedger(path)
    ledger.record(LastingForward("pcp", 8080, "tcp", "192.168.1.100", 8080, lease_s=86400, pcp={"nonce": "00" * 12}))
    ledger.record(LastingForward("upnp", 443, "tcp", "192.168.1.100", 443))
    ledger.record(LastingForward("upnp", 443, "tcp", "192.168.1.100", 8443))  # replaces the first 443
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = ForwardsLedger(path).load()
    assert [(f.via, f.external_port, f.internal_port) for f in again] == [("pcp", 8080, 8080), ("upnp", 443, 8443)]
    assert ForwardsLedger(path).is_ours(443, "TCP", "192.168.1.100")
    assert not ForwardsLedger(path).is_ours(443, "tcp", "192.168.1.7")
    path.write_text("{not json")
    broken = ForwardsLedger(path)
    assert broken.load() == [] and "damaged" in (broken.problem or "")
    path.write_text(json.dumps({"forwards": [{"via": "evil", "external_port": 1}, {"via": "upnp"}]}))
    assert ForwardsLedger(path).load() == []


async def test_renew_due_renews_leases_and_says_failures() -> None:
    ledger = ForwardsLedger(None)
    ledger.record(LastingForward("pcp", 8080, "tcp", "h", 8080, lease_s=100, created_at=1000.0))
    ledger.record(LastingForward("upnp", 443, "tcp", "h", 443, lease_s=0, created_at=1000.0))  # permanent
    ledger.record(LastingForward("upnp-pinhole", 8443, "tcp", "2a0c::100", 8443, lease_s=100, created_at=1000.0))
    assert [f.via for f in ledger.due(now=1049.0)] == []
    assert [f.via for f in ledger.due(now=1051.0)] == ["pcp", "upnp-pinhole"]

    async def ok(f: LastingForward) -> tuple[int | None, str]:
        return 200, "renewed"

    async def fails(f: LastingForward) -> tuple[int | None, str]:
        raise OSError("no route")

    notes = await renew_due(ledger, {"pcp": ok, "upnp-pinhole": fails}, now=1051.0)
    assert any("8080/tcp" in n and "renewed" in n for n in notes)
    assert any("could not renew" in n and "no route" in n for n in notes)
    pcp = ledger.find(8080, "tcp")
    assert pcp is not None and pcp.lease_s == 200 and pcp.renew_at == 1151.0
    assert [f.via for f in ledger.due(now=1052.0)] == ["upnp-pinhole"]  # kept for the next round


# --------------------------------------------------------------------------- ports check over PCP


async def _pcp_port_check(
    srv: FakePcpServer, pcp_port: int, *, keep: bool = False, restart_while_probing: bool = False
) -> tuple[object, int]:
    from checks.config import Endpoints
    from checks.model import LocalInfo, UpnpInfo
    from checks.portcheck.run import NetworkFacts, run_port_check
    from checks.portcheck.spec import PortSpec
    from tests.test_ports import dial_back, free_port, mock_client

    facts = NetworkFacts(
        local=LocalInfo(interface="lo", ipv4="127.0.0.1", gateway_ipv4=None), upnp=UpnpInfo(available=False), hops=()
    )

    async def opener(_facts: NetworkFacts) -> tuple[PcpMapper, str]:
        return PcpMapper("127.0.0.1", "127.0.0.1", client=PcpClient("127.0.0.1", port=pcp_port, timeout_s=1.0)), "PCP"

    async def prober(request: httpx.Request) -> httpx.Response:
        if restart_while_probing:
            srv.restart()
        return await dial_back(request)

    port = free_port()
    async with mock_client(prober) as client:
        report = await run_port_check(
            [PortSpec(port)],
            endpoints=Endpoints(port_check=("ddnsw+https://probe.test",)),
            client=client,
            use_upnp=True,
            facts=facts,
            mapper_opener=opener,
            listen_host="127.0.0.1",
            keep=keep,
        )
    return report, port


async def test_ports_check_over_pcp_says_mapped_via_and_leaves_nothing(pcp_server: tuple[FakePcpServer, int]) -> None:
    srv, pcp_port = pcp_server
    report, _port = await _pcp_port_check(srv, pcp_port)
    (r,) = report.results  # type: ignore[attr-defined]
    assert r.verdict == "open" and r.mapped_via == "pcp" and r.mapping == "temporary"
    assert not srv.mappings and report.leftovers == ()  # type: ignore[attr-defined]


async def test_ports_check_over_pcp_keep_records_the_nonce(pcp_server: tuple[FakePcpServer, int]) -> None:
    srv, pcp_port = pcp_server
    report, port = await _pcp_port_check(srv, pcp_port, keep=True)
    (r,) = report.results  # type: ignore[attr-defined]
    assert r.mapping == "kept" and r.mapped_via == "pcp"
    fwd = ForwardsLedger.default().find(port, "tcp")
    assert fwd is not None and fwd.via == "pcp" and fwd.pcp and len(fwd.pcp["nonce"]) == 24
    assert fwd.lease_s == 86400  # what the router granted
    assert ("127.0.0.1", 6, port) in srv.mappings


async def test_ports_check_over_pcp_reports_a_router_restart(pcp_server: tuple[FakePcpServer, int]) -> None:
    srv, pcp_port = pcp_server
    report, _port = await _pcp_port_check(srv, pcp_port, restart_while_probing=True)
    (r,) = report.results  # type: ignore[attr-defined]
    assert any("restarted during the test" in e for e in r.evidence), r.evidence
