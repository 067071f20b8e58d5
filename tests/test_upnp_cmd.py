"""`ddns-wizard upnp list|add|remove` against a fake miniupnpc object behind the real IgdClient.

The fake stands in for the router's IGD (miniupnpd itself is exercised in
tests/lab/test_ports_lab.py): it raises miniupnpc's own error texts, so the code
→ sentence path (606, 718, 725, 728, 729) is the real one. Liveness checks of LAN
hosts other than 127.0.0.1 are answered by a patched connect: no packet leaves
the machine.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from checks.probes.upnp import IgdClient
from wizard.cli import main
from wizard.commands import upnp as upnp_cmd


class FakeUPnP:
    """miniupnpc.UPnP look-alike with a mapping table."""

    def __init__(self, *, add_error: str | None = None, permanent_only: bool = False) -> None:
        self.lanaddr = "192.168.1.100"
        self.table: dict[tuple[int, str], tuple[str, int, str, int]] = {}
        self.add_error = add_error
        self.permanent_only = permanent_only
        self.add_calls: list[tuple[int, str, str, int, str, int]] = []

    def selectigd(self, url: str) -> str:
        return url

    def addportmapping(
        self, eport: int, proto: str, ihost: str, iport: int, desc: str, rhost: str, lease: int = 0
    ) -> bool:
        self.add_calls.append((eport, proto, ihost, iport, desc, lease))
        if self.add_error:
            raise Exception(self.add_error)
        if self.permanent_only and lease != 0:
            raise Exception("OnlyPermanentLeasesSupported")
        self.table[(eport, proto)] = (ihost, iport, desc, lease)
        return True

    def externalipaddress(self) -> str:
        return "23.128.64.20"

    def deleteportmapping(self, eport: int, proto: str, rhost: str = "") -> bool:
        if (eport, proto) not in self.table:
            raise Exception("NoSuchEntryInArray")
        del self.table[(eport, proto)]
        return True

    def getspecificportmapping(self, eport: int, proto: str) -> Any:
        entry = self.table.get((eport, proto))
        if entry is None:
            return None
        ihost, iport, desc, lease = entry
        return (ihost, iport, desc, True, lease)

    def getgenericportmapping(self, index: int) -> Any:
        items = sorted(self.table.items())
        if index >= len(items):
            return None
        (eport, proto), (ihost, iport, desc, lease) = items[index]
        return (eport, proto, (ihost, iport), desc, "1", "", lease)


@pytest.fixture
def listening_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def router(monkeypatch: pytest.MonkeyPatch) -> FakeUPnP:
    fake = FakeUPnP()

    async def connect() -> IgdClient:
        return await IgdClient.connect("http://192.168.1.1:5000/rootDesc.xml", factory=lambda: fake)

    monkeypatch.setattr(upnp_cmd, "_connect", connect)

    real_open = asyncio.open_connection

    async def lan_open(host: str, port: int, **kw: Any) -> Any:
        if host == "192.168.1.100":
            raise ConnectionRefusedError(111, "refused")  # the host is up, port closed
        if host == "192.168.1.77":
            await asyncio.sleep(30)  # the host is gone
        return await real_open(host, port, **kw)

    monkeypatch.setattr(asyncio, "open_connection", lan_open)
    return fake


def run_cli(*argv: str) -> int:
    return main(["upnp", *argv])


def test_list_json_marks_risky_and_stale(
    router: FakeUPnP, listening_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    router.table = {
        (22, "TCP"): ("192.168.1.100", 22, "ssh", 0),
        (8080, "TCP"): ("127.0.0.1", listening_port, "web", 3600),
        (5000, "UDP"): ("192.168.1.77", 5000, "old game", 0),
    }
    assert run_cli("list", "--json") == 0
    data = {d["external_port"]: d for d in json.loads(capsys.readouterr().out)}
    assert data[22]["risky"] is True and data[22]["risky_service"] == "SSH" and data[22]["stale"] is False
    assert data[8080]["risky"] is False and data[8080]["stale"] is False
    assert data[8080]["internal"] == f"127.0.0.1:{listening_port}" and data[8080]["lease_s"] == 3600
    assert data[5000]["stale"] is True and data[5000]["protocol"] == "UDP"


def test_list_human_output(router: FakeUPnP, capsys: pytest.CaptureFixture[str]) -> None:
    router.table = {(3389, "TCP"): ("192.168.1.77", 3389, "rdp", 0)}
    assert run_cli("list") == 0
    out = capsys.readouterr().out
    assert "risky: RDP" in out and "stale" in out and "VPN" in out


def test_add_defaults_to_this_machine_permanent(router: FakeUPnP, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("add", "8080") == 0
    assert router.table[(8080, "TCP")] == ("192.168.1.100", 8080, "ddns-wizard", 0)
    assert "Mapped 8080/tcp → 192.168.1.100:8080" in capsys.readouterr().out


def test_add_to_other_host_udp_with_lease(router: FakeUPnP) -> None:
    assert run_cli("add", "51820/udp", "--to", "192.168.1.50:51821", "--description", "wg", "--lease", "600") == 0
    assert router.table[(51820, "UDP")] == ("192.168.1.50", 51821, "wg", 600)


def test_add_risky_port_warns(router: FakeUPnP, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("add", "2222", "--to", "192.168.1.100:22") == 0
    err = capsys.readouterr().err
    assert "SSH" in err and "VPN" in err


def test_725_retries_with_permanent_lease_and_says_so(router: FakeUPnP, capsys: pytest.CaptureFixture[str]) -> None:
    router.permanent_only = True
    assert run_cli("add", "8443", "--lease", "3600") == 0
    assert [c[-1] for c in router.add_calls] == [3600, 0]
    assert router.table[(8443, "TCP")][3] == 0
    assert "only permanent" in capsys.readouterr().out


@pytest.mark.parametrize(
    "error,needle",
    [
        ("Action not authorized", "action not authorized"),
        ("ConflictInMappingEntry", "already mapped"),
        ("NoPortMapsAvailable", "table is full"),
        ("ConflictWithOtherMechanisms", "another mechanism"),
    ],
)
def test_add_errors_are_explained(
    router: FakeUPnP, capsys: pytest.CaptureFixture[str], error: str, needle: str
) -> None:
    router.add_error = error
    assert run_cli("add", "8080") == 1
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_remove(router: FakeUPnP, capsys: pytest.CaptureFixture[str]) -> None:
    router.table = {(8080, "TCP"): ("192.168.1.100", 8080, "x", 0)}
    assert run_cli("remove", "8080/tcp") == 0
    assert router.table == {}
    assert run_cli("remove", "8080/tcp") == 1
    assert "no mapping for 8080/tcp" in capsys.readouterr().err


def test_bad_arguments_are_usage_errors(router: FakeUPnP, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("add", "8080/icmp") == 2
    assert run_cli("add", "8080", "--to", "my-nas") == 2
    assert run_cli("add", "8080", "--lease", "-5") == 2


def test_no_igd_says_what_to_do_instead(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from checks.model import LocalInfo
    from checks.probes.natpmp import NatPmpReply

    async def local(*a: Any, **k: Any) -> LocalInfo:
        return LocalInfo(interface="eth0", ipv4="192.168.1.100", gateway_ipv4="192.168.1.1")

    async def nothing(*a: Any, **k: Any) -> None:
        return None

    async def natpmp(*a: Any, **k: Any) -> NatPmpReply:
        return NatPmpReply(True, 0, 1, "23.128.64.20", None, None, None, None, 1.0)

    monkeypatch.setattr("checks.probes.local.gather_local", local)
    monkeypatch.setattr("checks.probes.upnp.ssdp_discover", nothing)
    monkeypatch.setattr("checks.probes.natpmp.natpmp_external_address", natpmp)
    assert run_cli("list") == 1
    err = capsys.readouterr().err
    assert "no UPnP IGD answered" in err and "NAT-PMP" in err and "Port forwarding" in err


def test_lease_is_shown_in_words() -> None:
    from wizard.commands.upnp import lease_text

    assert [lease_text(s) for s in (0, 45, 725, 7260, 604799)] == ["permanent", "45 s", "12m 5s", "2h 1m", "6d 23h"]


def test_added_forwards_are_listed_as_ours_with_kept_pcp_ones(
    router: FakeUPnP, capsys: pytest.CaptureFixture[str]
) -> None:
    from checks.portmap.lasting import ForwardsLedger, LastingForward

    router.table = {(22, "TCP"): ("192.168.1.50", 22, "nas", 0)}
    assert run_cli("add", "8080") == 0
    ForwardsLedger.default().record(
        LastingForward("pcp", 9000, "udp", "192.168.1.100", 9000, lease_s=86400, pcp={"nonce": "00" * 12})
    )
    capsys.readouterr()
    assert run_cli("list", "--json") == 0
    data = {(d["external_port"], d["via"]): d for d in json.loads(capsys.readouterr().out)}
    assert data[(8080, "upnp")]["ours"] is True and data[(22, "upnp")]["ours"] is False
    assert data[(9000, "pcp")]["ours"] is True and data[(9000, "pcp")]["family"] == 4
    assert run_cli("list") == 0
    out = capsys.readouterr().out
    assert "ours" in out and "9000/udp" in out


def test_remove_forgets_the_forward(router: FakeUPnP) -> None:
    from checks.portmap.lasting import ForwardsLedger

    assert run_cli("add", "8080") == 0
    assert ForwardsLedger.default().find(8080, "tcp") is not None
    assert run_cli("remove", "8080") == 0
    assert ForwardsLedger.default().find(8080, "tcp") is None


def test_remove_ipv6_without_a_kept_pinhole_is_an_error(router: FakeUPnP, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("remove", "8443", "--ipv6") == 1
    assert "keeps no IPv6 firewall opening" in capsys.readouterr().err


def test_718_for_another_host_is_the_routers_secure_mode_not_a_conflict(
    router: FakeUPnP, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 19: `upnp add 22 --to OTHER` said "already mapped … run `upnp list`" while the list
    was empty: miniupnpd's secure mode answers 718 to a mapping for another host."""
    router.add_error = "ConflictInMappingEntry"
    assert run_cli("add", "22", "--to", "192.168.1.50:22") == 1
    err = capsys.readouterr().err
    assert "refused to forward to another computer" in err and "secure mode" in err
    assert "upnp list" not in err and "already mapped" not in err
    assert run_cli("add", "8080") == 1  # for this host it is still a conflict, with a full stop
    err = capsys.readouterr().err
    assert "conflict" in err and "718" in err and "upnp list" in err
    assert ". Run `ddns-wizard upnp list`" in err
