"""UPnP: SSDP reply parsing (fuzzed) and the IgdClient's handling of router answers.

The IGD here is a fake miniupnpc.UPnP object injected through ``factory``: the
real miniupnpd cannot be made to answer every error code (606, 725, 728, 729) or a
hanging call on demand. The real miniupnpd (discovery, WAN address, add/list/
delete) is exercised in tests/lab/test_probes_lab.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import checks.probes.upnp as upnp
from checks.errors import UpnpError
from checks.model import PortMapping
from checks.probes.upnp import IgdClient, _SsdpProtocol, build_msearch, parse_ssdp_reply, probe_router, wan_problem

LOCATION = "http://192.168.1.1:5000/rootDesc.xml"

IGD_REPLY = (
    "HTTP/1.1 200 OK\r\n"
    "CACHE-CONTROL: max-age=120\r\n"
    "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
    "USN: uuid:1234::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
    "EXT:\r\n"
    "SERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.3\r\n"
    f"Location: {LOCATION}\r\n"
    "\r\n"
).encode()


def test_msearch_burst_packet() -> None:
    packet = build_msearch("urn:schemas-upnp-org:service:WANIPConnection:1").decode()
    assert packet.startswith("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n")
    assert 'MAN: "ssdp:discover"' in packet and packet.endswith("\r\n\r\n")


def test_parse_igd_reply() -> None:
    reply = parse_ssdp_reply(IGD_REPLY)
    assert reply is not None and reply.is_igd and reply.location == LOCATION
    assert "MiniUPnPd" in reply.server


def test_parse_rejects_non_igd_notify_and_bad_location() -> None:
    printer = IGD_REPLY.replace(b"InternetGatewayDevice", b"Printer")
    reply = parse_ssdp_reply(printer)
    assert reply is not None and not reply.is_igd
    assert parse_ssdp_reply(b"NOTIFY * HTTP/1.1\r\nLOCATION: http://x/\r\n\r\n") is None
    assert parse_ssdp_reply(IGD_REPLY.replace(b"http://", b"file://")) is None
    assert parse_ssdp_reply(IGD_REPLY.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found")) is None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_ssdp_parser_never_crashes(data: bytes) -> None:
    reply = parse_ssdp_reply(data)
    assert reply is None or reply.location.startswith("http://")


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["ST", "LOCATION", "USN", "SERVER", "X"]),
        st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=80),
    )
)
def test_ssdp_parser_never_crashes_on_header_soup(headers: dict[str, str]) -> None:
    data = "HTTP/1.1 200 OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    parse_ssdp_reply(data.encode("utf-8", "surrogatepass"))


async def test_first_igd_answer_wins_and_the_gateways_own_is_preferred() -> None:
    """The SSDP collector fed datagrams directly (no multicast leaves this machine in unit tests)."""
    mesh = IGD_REPLY.replace(b"192.168.1.1", b"192.168.1.2")
    printer = IGD_REPLY.replace(b"InternetGatewayDevice", b"Printer").replace(b"192.168.1.1", b"192.168.1.9")

    anyone = _SsdpProtocol(None)
    anyone.datagram_received(printer, ("192.168.1.9", 1900))
    anyone.datagram_received(mesh, ("192.168.1.2", 1900))
    anyone.datagram_received(IGD_REPLY, ("192.168.1.1", 1900))
    assert await anyone.found == "http://192.168.1.2:5000/rootDesc.xml"

    prefer = _SsdpProtocol("192.168.1.1")
    prefer.datagram_received(mesh, ("192.168.1.2", 1900))
    prefer.datagram_received(IGD_REPLY, ("192.168.1.1", 1900))
    assert await prefer.found == LOCATION

    only_mesh = _SsdpProtocol("192.168.1.1")
    only_mesh.datagram_received(mesh, ("192.168.1.2", 1900))
    assert await asyncio.wait_for(only_mesh.found, 1.0) == "http://192.168.1.2:5000/rootDesc.xml"


class FakeUPnP:
    """Stand-in for miniupnpc.UPnP: raises like the C module (bare Exception, strupnperror text)."""

    def __init__(
        self,
        *,
        wan: str = "23.128.64.20",
        add_errors: list[str] | None = None,
        hang_s: float = 0.0,
        status: str = "Connected",
    ) -> None:
        self.lanaddr = ""
        self.wan = wan
        self.add_errors = list(add_errors or [])
        self.hang_s = hang_s
        self.status_text = status
        self.table: dict[tuple[int, str], tuple[str, int, str, int]] = {(22, "TCP"): ("192.168.1.50", 22, "ssh", 0)}
        self.adds: list[tuple[Any, ...]] = []
        self.selected: str | None = None

    def selectigd(self, url: str) -> str:
        if "broken" in url:
            raise Exception("No UPnP device discovered")
        self.selected = url
        self.lanaddr = "192.168.1.100"
        return "WANIPConnection"

    def externalipaddress(self) -> str:
        time.sleep(self.hang_s)
        return self.wan

    def statusinfo(self) -> tuple[str, int, str]:
        return (self.status_text, 1234, "ERROR_NONE")

    def connectiontype(self) -> str:
        return "IP_Routed"

    def addportmapping(
        self, eport: int, proto: str, host: str, iport: int, desc: str, rhost: str, lease: int = 0
    ) -> bool:
        self.adds.append((eport, proto, host, iport, desc, lease))
        if self.add_errors:
            raise Exception(self.add_errors.pop(0))
        self.table[(eport, proto)] = (host, iport, desc, lease)
        return True

    def deleteportmapping(self, eport: int, proto: str, rhost: str = "") -> bool:
        if (eport, proto) not in self.table:
            raise Exception("NoSuchEntryInArray")
        del self.table[(eport, proto)]
        return True

    def getspecificportmapping(self, eport: int, proto: str) -> tuple | None:
        entry = self.table.get((eport, proto))
        return None if entry is None else (entry[0], entry[1], entry[2], True, entry[3])

    def getgenericportmapping(self, index: int) -> tuple | None:
        items = sorted(self.table.items())
        if index >= len(items):
            return None
        (eport, proto), (host, iport, desc, lease) = items[index]
        return (eport, proto, (host, iport), desc, "1", "", lease)


async def connect(fake: FakeUPnP, timeout_s: float = 1.0) -> IgdClient:
    return await IgdClient.connect(LOCATION, timeout_s=timeout_s, factory=lambda: fake)


async def test_connect_reads_wan_status_and_lan_address() -> None:
    fake = FakeUPnP()
    igd = await connect(fake)
    assert fake.selected == LOCATION and igd.lan_address == "192.168.1.100"
    assert await igd.external_ip() == "23.128.64.20"
    assert await igd.status() == ("Connected", 1234, "ERROR_NONE")
    assert await igd.connection_type() == "IP_Routed"


async def test_connect_failure_is_upnp_error() -> None:
    with pytest.raises(UpnpError, match="no usable IGD description"):
        await IgdClient.connect("http://192.168.1.1/broken.xml", factory=FakeUPnP)


async def test_empty_external_address_is_none() -> None:
    igd = await connect(FakeUPnP(wan=""))
    assert await igd.external_ip() is None


@pytest.mark.parametrize(
    ("text", "code", "phrase"),
    [
        ("Action not authorized", 606, "not authorized"),
        ("ConflictInMappingEntry", 718, "already mapped, perhaps to another device"),
        ("NoPortMapsAvailable", 728, "mapping table is full"),
        ("ConflictWithOtherMechanisms", 729, "conflict with another mechanism"),
    ],
)
async def test_add_mapping_error_codes(text: str, code: int, phrase: str) -> None:
    igd = await connect(FakeUPnP(add_errors=[text]))
    with pytest.raises(UpnpError) as info:
        await igd.add_mapping(8080, "TCP", "192.168.1.100", 8080, "test", lease_s=3600)
    assert info.value.code == code and phrase in str(info.value)
    assert f"UPnP error {code}" in str(info.value)


async def test_725_retries_with_permanent_lease() -> None:
    fake = FakeUPnP(add_errors=["OnlyPermanentLeasesSupported"])
    igd = await connect(fake)
    await igd.add_mapping(8080, "tcp", "192.168.1.100", 8080, "test", lease_s=3600)
    assert [a[-1] for a in fake.adds] == [3600, 0]
    assert await igd.get_mapping(8080, "TCP") == PortMapping(8080, "TCP", "192.168.1.100", 8080, "test", 0)


async def test_list_and_delete_mappings() -> None:
    fake = FakeUPnP()
    igd = await connect(fake)
    await igd.add_mapping(5000, "UDP", "192.168.1.100", 5001, "game")
    listed = await igd.mappings()
    assert [(m.external_port, m.protocol, m.internal) for m in listed] == [
        (22, "TCP", "192.168.1.50:22"),
        (5000, "UDP", "192.168.1.100:5001"),
    ]
    assert await igd.delete_mapping(5000, "udp") is True
    assert await igd.delete_mapping(5000, "udp") is False  # already gone: not an error
    assert await igd.get_mapping(5000, "UDP") is None


class DeadRouter(FakeUPnP):
    """What miniupnpc does once miniupnpd is gone (measured in the lab with miniupnpd
    SIGKILLed): getspecificportmapping returns None as if nothing were mapped, every
    other call raises "Miniupnpc HTTP error"."""

    def __init__(self) -> None:
        super().__init__()
        self.dead = False

    def _check(self) -> None:
        if self.dead:
            raise Exception("Miniupnpc HTTP error")

    def externalipaddress(self) -> str:
        self._check()
        return super().externalipaddress()

    def deleteportmapping(self, eport: int, proto: str, rhost: str = "") -> bool:
        self._check()
        return super().deleteportmapping(eport, proto, rhost)

    def getspecificportmapping(self, eport: int, proto: str) -> tuple | None:
        return None if self.dead else super().getspecificportmapping(eport, proto)


async def test_a_silent_router_is_never_read_as_having_no_mapping() -> None:
    fake = DeadRouter()
    igd = await connect(fake)
    await igd.add_mapping(8080, "TCP", "192.168.1.100", 8080, "test")
    fake.dead = True
    with pytest.raises(UpnpError, match="did not answer"):
        await igd.get_mapping(8080, "TCP")
    with pytest.raises(UpnpError):
        await igd.delete_mapping(8080, "TCP")
    fake.dead = False
    assert await igd.get_mapping(9999, "TCP") is None  # a live router's "none" is believed


async def test_hanging_router_call_is_bounded() -> None:
    igd = await connect(FakeUPnP(hang_s=1.0), timeout_s=0.2)
    with pytest.raises(UpnpError, match=r"did not answer within 0\.2 s"):
        await igd.external_ip()


def test_wan_problem_sentences() -> None:
    assert wan_problem("23.128.64.20") is None
    assert "carrier-grade NAT" in (wan_problem("100.64.1.20") or "")
    assert "private (RFC 1918)" in (wan_problem("192.168.100.2") or "")
    assert "no external address" in (wan_problem(None) or "")
    assert "not an IP address" in (wan_problem("<html>") or "")


@pytest.fixture
def igd_at(monkeypatch: pytest.MonkeyPatch):
    import checks.probes.router as router_mod
    from checks.probes.router import DeviceDescription, RouterIdentity

    def install(location: str | None, seen: dict[str, str] | None = None) -> None:
        async def fake_discover(**kwargs: Any) -> str | None:
            if seen and kwargs.get("seen") is not None:
                kwargs["seen"].update(seen)
            return location

        async def fake_identity(loc: str | None, gateway: str | None, **kw: Any) -> Any:
            # The description fetch is an HTTP GET on the LAN: never made from a unit test.
            ident = RouterIdentity("Lab Networks", "LR-1000", "lab router", "http://192.168.1.1/", "upnp")
            return ident, DeviceDescription(ident, (), 2), None

        monkeypatch.setattr(upnp, "ssdp_discover", fake_discover)
        monkeypatch.setattr(router_mod, "router_identity", fake_identity)

    return install


async def test_probe_router_public_wan_is_available(igd_at) -> None:
    igd_at(LOCATION)
    info = await probe_router(None, budget_s=1.0, factory=FakeUPnP)
    assert info.found and info.available and info.wan_ipv4 == "23.128.64.20"
    assert info.status == "Connected" and info.error is None
    assert [m.external_port for m in info.mappings] == [22]


@pytest.mark.parametrize("wan", ["100.64.1.20", "", "192.168.100.2"])
async def test_probe_router_reserved_wan_found_but_not_available(igd_at, wan: str) -> None:
    igd_at(LOCATION)
    info = await probe_router(None, budget_s=1.0, factory=lambda: FakeUPnP(wan=wan))
    assert info.found and not info.available
    assert info.wan_ipv4 == (wan or None)
    assert "upstream" in (info.error or "")


async def test_probe_router_no_igd(igd_at) -> None:
    igd_at(None)
    info = await probe_router(None, budget_s=0.5)
    assert not info.found and not info.available and "no UPnP IGD answered" in (info.error or "")
    assert info.natpmp_available is False
    assert info.not_found == "no-ssdp-answer" and info.router.manufacturer is None


async def test_probe_router_names_the_router_and_its_igd_version(igd_at) -> None:
    igd_at(LOCATION)
    info = await probe_router(None, budget_s=1.0, factory=FakeUPnP)
    assert (info.router.manufacturer, info.router.model, info.router.presentation_url) == (
        "Lab Networks",
        "LR-1000",
        "http://192.168.1.1/",
    )
    assert info.igd_version == 2 and info.not_found is None


async def test_probe_router_devices_but_no_gateway_says_what_answered(igd_at) -> None:
    igd_at(None, seen={"192.168.1.23": "Linux/5.10 UPnP/1.0 Sonos/70.3"})
    info = await probe_router(None, budget_s=0.5)
    assert info.not_found == "no-igd" and info.ssdp_seen == ("192.168.1.23: Linux/5.10 UPnP/1.0 Sonos/70.3",)
    assert "none is an Internet Gateway Device" in (info.error or "")


async def test_probe_router_igd_with_wan_down(igd_at) -> None:
    igd_at(LOCATION)
    info = await probe_router(None, budget_s=1.0, factory=lambda: FakeUPnP(status="Disconnected"))
    assert info.found and not info.available and info.not_found == "wan-not-connected"


def test_ssdp_protocol_keeps_non_igd_answers() -> None:
    async def run() -> dict[str, str]:
        proto = upnp._SsdpProtocol("192.168.1.1")
        tv = (
            b"HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nUSN: uuid:tv::upnp:rootdevice\r\n"
            b"SERVER: WebOS/4 UPnP/1.0\r\nLOCATION: http://192.168.1.40:1234/d.xml\r\n\r\n"
        )
        proto.datagram_received(tv, ("192.168.1.40", 1900))
        return proto.others

    assert asyncio.run(run()) == {"192.168.1.40": "WebOS/4 UPnP/1.0"}


async def test_probe_router_hanging_igd_stays_within_budget(igd_at) -> None:
    igd_at(LOCATION)
    info = await probe_router(None, budget_s=0.5, factory=lambda: FakeUPnP(hang_s=1.0))
    assert info.found and not info.available and "did not answer" in (info.error or "")


def test_ssdp_protocol_notes_an_igd_answering_from_an_unusual_port() -> None:
    async def run() -> tuple[str, dict[str, int]]:
        proto = upnp._SsdpProtocol("192.168.1.1")
        igd = (
            b"HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
            b"USN: uuid:gw::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
            b"LOCATION: http://192.168.1.1:5000/rootDesc.xml\r\n\r\n"
        )
        proto.datagram_received(igd, ("192.168.1.1", 49152))
        return await proto.found, proto.odd_port

    location, odd = asyncio.run(run())
    assert location == "http://192.168.1.1:5000/rootDesc.xml" and odd == {"192.168.1.1": 49152}
