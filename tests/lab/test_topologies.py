"""Each lab topology behaves as named, measured from inside the host namespace.

The observations use ordinary tools (curl, upnpc, ping, dig) and tiny Python
one-liners for STUN and NAT-PMP (tests/lab/_probes.py), never the product's own
probes, so these tests check the lab itself. Nothing is mocked: the services are
lab-services' real daemons in the lab's internet namespace.
"""

from __future__ import annotations

import json
import secrets

import pytest

from . import plan
from ._probes import Listener, curl, natpmp_external_address, ping_rtts, stun_binding, tcp_connect, upnp_status

pytestmark = pytest.mark.lab

NAT_TOPOLOGIES = ("home", "home-no-upnp", "double-nat", "cgnat")
SHARED = {
    "public": "lab_public",
    "home": "lab_home",
    "home-no-upnp": "lab_home_no_upnp",
    "double-nat": "lab_double_nat",
    "cgnat": "lab_cgnat",
    "offline": "lab_offline",
}


def shared_lab(request: pytest.FixtureRequest, topology: str):  # type: ignore[no-untyped-def]
    return request.getfixturevalue(SHARED[topology])


def port_check(lab, port: int) -> dict:  # type: ignore[no-untyped-def]
    """The port checker's verdict on ``port`` (echoip-style GET /port/N), asked from the host."""
    out = curl(lab, f"https://{plan.PROBE}/port/{port}", max_time=10)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# --------------------------------------------------------------------------- addresses
@pytest.mark.parametrize("topology", ["public", "home", "home-no-upnp", "double-nat", "cgnat"])
def test_echo_reports_the_expected_public_address(request: pytest.FixtureRequest, topology: str) -> None:
    lab = shared_lab(request, topology)
    for echo in (plan.ECHO1, plan.ECHO2):
        out = curl(lab, f"https://{echo}/")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == lab.expected_public_ipv4
    assert (
        lab.expected_public_ipv4
        == {
            "public": plan.PUBLIC_HOST_IP,
            "home": plan.ROUTER_WAN_IP,
            "home-no-upnp": plan.ROUTER_WAN_IP,
            "double-nat": plan.ISPBOX_WAN_IP,
            "cgnat": plan.CGNAT_POOL_IP,
        }[topology]
    )


@pytest.mark.parametrize("topology", ["public", "home", "double-nat", "cgnat"])
def test_stun_binding_returns_the_expected_mapping(request: pytest.FixtureRequest, topology: str) -> None:
    lab = shared_lab(request, topology)
    mapped = stun_binding(lab, plan.STUN1, plan.STUN_PORT)
    assert mapped is not None, "no STUN answer"
    address, mapped_port, local_port = mapped
    assert address == lab.expected_public_ipv4
    if topology == "public":
        assert mapped_port == local_port  # no NAT: the host's own socket is what the server sees


def test_host_addresses_match_the_lab_facts(lab_home, lab_public) -> None:  # type: ignore[no-untyped-def]
    for lab in (lab_home, lab_public):
        out = lab.run(["ip", "-4", "-o", "addr", "show", "scope", "global"])
        assert f" {lab.host_ipv4}/" in out.stdout
        route = lab.run(["ip", "-4", "route", "show", "default"])
        assert f"via {lab.gateway_ipv4} " in route.stdout


# --------------------------------------------------------------------------- UPnP / NAT-PMP
def test_home_router_offers_upnp_igd_and_nat_pmp_with_its_public_address(lab_home) -> None:  # type: ignore[no-untyped-def]
    status = upnp_status(lab_home)
    assert status.found and status.connected, status.output
    assert status.external_ip == plan.ROUTER_WAN_IP
    assert natpmp_external_address(lab_home, plan.HOME_GW) == (0, plan.ROUTER_WAN_IP)


@pytest.mark.parametrize("topology", ["double-nat", "cgnat"])
def test_upnp_behind_a_second_nat_reports_no_public_address(request: pytest.FixtureRequest, topology: str) -> None:
    lab = shared_lab(request, topology)
    status = upnp_status(lab)
    assert status.found, status.output
    assert not status.connected, status.output
    # miniupnpd will not report a private/shared WAN address as the external one.
    assert status.external_ip in (None, lab.router_wan_ipv4)
    assert status.external_ip != lab.expected_public_ipv4


@pytest.mark.parametrize("topology", ["home-no-upnp", "public"])
def test_no_upnp_igd_and_no_nat_pmp_without_miniupnpd(request: pytest.FixtureRequest, topology: str) -> None:
    lab = shared_lab(request, topology)
    status = upnp_status(lab)
    assert not status.found, status.output
    assert natpmp_external_address(lab, lab.gateway_ipv4) is None


def test_port_checker_sees_a_upnp_forwarded_port_with_a_listener_and_not_others(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("home")
    mapped, unmapped = 18080, 18081
    Listener(lab, mapped)
    Listener(lab, unmapped)
    added = lab.run(["upnpc", "-e", "lab test", "-a", plan.HOME_HOST, str(mapped), str(mapped), "TCP"])
    assert f"external {plan.ROUTER_WAN_IP}:{mapped} TCP is redirected" in added.stdout, added.stdout + added.stderr
    verdict = port_check(lab, mapped)
    assert verdict["reachable"] is True and verdict["ip"] == plan.ROUTER_WAN_IP
    assert port_check(lab, unmapped)["reachable"] is False
    # The mapping really forwards: the outside world reaches the listener's greeting.
    assert tcp_connect(lab, plan.ROUTER_WAN_IP, mapped, ns="inet").startswith("connected hello")
    removed = lab.run(["upnpc", "-d", str(mapped), "TCP"])
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert port_check(lab, mapped)["reachable"] is False


def test_manual_port_forward_reaches_the_host_and_not_when_it_points_elsewhere(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("home-no-upnp")
    Listener(lab, 18084)
    Listener(lab, 18085)
    assert port_check(lab, 18084)["reachable"] is False
    lab.forward_port(18084)  # to the host, as on a router's admin page
    lab.forward_port(18085, to=plan.HOME_OTHER)  # to another LAN device (nothing answers there)
    assert port_check(lab, 18084)["reachable"] is True
    assert port_check(lab, 18085)["reachable"] is False


def test_double_nat_needs_a_forward_on_both_boxes(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("double-nat", upnp=False)
    Listener(lab, 18086)
    lab.forward_port(18086)  # the user's own router: not enough
    assert port_check(lab, 18086)["reachable"] is False
    lab.forward_port(18086, on="ispbox")  # ...and the ISP box in front of it
    verdict = port_check(lab, 18086)
    assert verdict["reachable"] is True and verdict["ip"] == plan.ISPBOX_WAN_IP


def test_public_host_ports_are_reachable_directly(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("public")
    Listener(lab, 18082)
    assert port_check(lab, 18082) == {"ip": plan.PUBLIC_HOST_IP, "port": 18082, "reachable": True}
    assert port_check(lab, 18083)["reachable"] is False


# --------------------------------------------------------------------------- DNS through the lab
def test_dyndns2_update_changes_what_the_resolver_answers(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("home")
    account = lab.internet.accounts["dyndns2"]
    hostname = account["hostnames"][0]
    before = lab.run(["dig", "+short", "+norecurse", f"@{plan.AUTH}", hostname, "A"])
    assert before.stdout.split() != [plan.ROUTER_WAN_IP]
    # dyndns2 providers answer "badagent" to a library's default User-Agent: say who we are.
    out = lab.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "10",
            "--cacert",
            str(lab.ca_path),
            "-A",
            "ddns-wizard-lab-test/1.0 lab@example.org",
            "-u",
            f"{account['username']}:{account['password']}",
            f"{account['server']}/nic/update?hostname={hostname}",
        ]
    )
    assert out.stdout.split() == ["good", plan.ROUTER_WAN_IP], out.stdout + out.stderr
    # The host's resolv.conf points at the lab resolver (a recursive unbound).
    answer = lab.run(["dig", "+short", hostname, "A"])
    assert answer.stdout.split() == [plan.ROUTER_WAN_IP], answer.stdout + answer.stderr


def test_host_resolves_through_the_lab_resolver(lab_home) -> None:  # type: ignore[no-untyped-def]
    resolv = lab_home.run(["cat", "/etc/resolv.conf"])
    assert f"nameserver {plan.RESOLVER}" in resolv.stdout
    answer = lab_home.run(["dig", "+short", f"{plan.DYNDNS2_ZONE}", "SOA"])
    assert answer.returncode == 0 and answer.stdout.strip(), answer.stdout + answer.stderr


# --------------------------------------------------------------------------- ISP filters
def test_isp_inbound_filters_drop_chosen_tcp_and_udp_ports(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("public", block_inbound=("18090/tcp", "15000/udp"))
    for port in (18090, 18091):
        Listener(lab, port)
    for port in (15000, 15001):
        Listener(lab, port, udp=True)
    assert port_check(lab, 18090)["reachable"] is False
    assert port_check(lab, 18091)["reachable"] is True
    token = secrets.token_hex(4)
    blocked = json.loads(curl(lab, f"https://{plan.PROBE}/probe/udp/15000?token={token}", max_time=10).stdout)
    open_ = json.loads(curl(lab, f"https://{plan.PROBE}/probe/udp/15001?token={token}", max_time=10).stdout)
    assert blocked["result"] == "timeout"
    assert open_["result"] == "replied" and token in open_["banner"]
    # Outbound from the host is not affected by inbound filters.
    assert tcp_connect(lab, plan.ALLPORTS, 18090).startswith("connected")


def test_isp_outbound_filter_drops_chosen_tcp_port(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("home", block_outbound=("25/tcp",))
    assert tcp_connect(lab, plan.ALLPORTS, 25, timeout=2) == "timeout"
    assert tcp_connect(lab, plan.ALLPORTS, 587).startswith("connected")


def test_offline_host_reaches_its_router_but_not_the_internet(lab_offline) -> None:  # type: ignore[no-untyped-def]
    received, _ = ping_rtts(lab_offline, plan.HOME_GW, count=1)
    assert received == 1
    assert curl(lab_offline, f"https://{plan.ECHO1}/", max_time=3).returncode != 0
    assert ping_rtts(lab_offline, plan.INET_CORE, count=1, wait_s=1)[0] == 0
    assert stun_binding(lab_offline, plan.STUN1, plan.STUN_PORT) is None
    assert lab_offline.expected_public_ipv4 is None
    # The internet itself is up: its own namespace reaches the echo.
    assert curl(lab_offline, f"https://{plan.ECHO1}/", ns="inet").returncode == 0


# --------------------------------------------------------------------------- latency and loss
def test_latency_knob_adds_round_trip_time(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("home", latency_ms=150)
    received, rtts = ping_rtts(lab, plan.INET_CORE, count=4)
    assert received == 4
    # The relay never releases a frame early: every round trip carries the added delay.
    assert min(rtts) >= 150 * 0.95
    assert curl(lab, f"https://{plan.ECHO1}/").stdout.strip() == plan.ROUTER_WAN_IP


def test_lossy_link_loses_some_packets_but_still_passes_traffic(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("public", loss_pct=15)
    received, _ = ping_rtts(lab, plan.INET_CORE, count=40, interval=0.02, wait_s=1)
    assert 0 < received < 40
    out = curl(lab, f"https://{plan.ECHO1}/", max_time=30, extra=("--retry", "3"))
    assert out.stdout.strip() == plan.PUBLIC_HOST_IP, out.stderr


# --------------------------------------------------------------------------- changing the address
@pytest.mark.parametrize(
    "topology, new_address", [("home", "23.128.64.21"), ("cgnat", "23.128.64.201"), ("public", "23.128.64.11")]
)
def test_set_isp_address_changes_what_the_echo_sees(lab_factory, topology: str, new_address: str) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory(topology)
    assert curl(lab, f"https://{plan.ECHO1}/").stdout.strip() == lab.expected_public_ipv4
    lab.set_isp_address(new_address)
    assert lab.expected_public_ipv4 == new_address
    assert curl(lab, f"https://{plan.ECHO2}/").stdout.strip() == new_address
    if topology == "home":
        assert upnp_status(lab).external_ip == new_address


# --------------------------------------------------------------------------- IPv6
def test_ipv6_reaches_the_echo_even_behind_cgnat(lab_cgnat_v6) -> None:  # type: ignore[no-untyped-def]
    out = curl(lab_cgnat_v6, f"https://[{plan.ECHO1_V6}]/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == plan.HOME_V6_HOST == lab_cgnat_v6.host_ipv6
    assert curl(lab_cgnat_v6, f"https://{plan.ECHO1}/").stdout.strip() == plan.CGNAT_POOL_IP


@pytest.mark.parametrize("topology", ["public", "home", "home-no-upnp", "double-nat"])
def test_ipv6_is_routed_end_to_end_on_every_connected_topology(lab_factory, topology: str) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory(topology, ipv6=True)
    out = curl(lab, f"https://[{plan.ECHO1_V6}]/")
    assert out.stdout.strip() == plan.HOME_V6_HOST, out.stderr
    # IPv4 keeps working next to it.
    assert curl(lab, f"https://{plan.ECHO1}/").stdout.strip() == lab.expected_public_ipv4


def test_offline_with_ipv6_reaches_nothing_either(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("offline", ipv6=True)
    assert curl(lab, f"https://[{plan.ECHO1_V6}]/", max_time=3).returncode != 0
    assert ping_rtts(lab, plan.HOME_V6_ROUTER, count=1)[0] == 1


def test_inbound_ipv6_is_dropped_by_the_router_until_allowed(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("cgnat", ipv6=True)
    Listener(lab, 18443)
    # IPv4 inbound has nowhere to go behind CGNAT; IPv6 is routed to the host but firewalled.
    assert tcp_connect(lab, plan.CGNAT_POOL_IP, 18443, ns="inet") != "connected"
    assert tcp_connect(lab, plan.HOME_V6_HOST, 18443, ns="inet") == "timeout"
    lab.allow_inbound_v6(18443)
    assert tcp_connect(lab, plan.HOME_V6_HOST, 18443, ns="inet").startswith("connected hello")
    # Only that port was opened.
    Listener(lab, 18444)
    assert tcp_connect(lab, plan.HOME_V6_HOST, 18444, ns="inet") == "timeout"


def test_upnp_ipv6_pinhole_opens_the_router_firewall(lab_factory) -> None:  # type: ignore[no-untyped-def]
    """UPnP IGDv2 WANIPv6FirewallControl (miniupnpd) opens the v6 firewall for one port.

    The wildcard remote host is the empty string: miniupnpd's nftables backend
    takes "::" literally (a rule matching only source ::, i.e. nothing)."""
    lab = lab_factory("home", ipv6=True)
    Listener(lab, 18446)
    assert tcp_connect(lab, plan.HOME_V6_HOST, 18446, ns="inet") == "timeout"
    added = lab.run(["upnpc", "-6", "-A", "", "0", plan.HOME_V6_HOST, "18446", "TCP", "600"])
    assert "Pinhole ID" in added.stdout, added.stdout + added.stderr
    assert tcp_connect(lab, plan.HOME_V6_HOST, 18446, ns="inet").startswith("connected hello")


def test_public_ipv6_host_is_reachable_without_a_firewall(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("public", ipv6=True)
    Listener(lab, 18445)
    assert curl(lab, f"https://[{plan.ECHO1_V6}]/").stdout.strip() == plan.HOME_V6_HOST
    assert tcp_connect(lab, plan.HOME_V6_HOST, 18445, ns="inet").startswith("connected hello")


# --------------------------------------------------------------------------- the tool and its config
def test_lab_config_points_only_at_lab_services(lab_home) -> None:  # type: ignore[no-untyped-def]
    import ipaddress
    import tomllib
    from urllib.parse import urlsplit

    data = tomllib.loads(lab_home.config_path.read_text())
    assert data["endpoints"] == lab_home.internet.endpoints()
    assert oct(lab_home.config_path.stat().st_mode & 0o777) == "0o600"
    lab_nets = [ipaddress.ip_network("11.1.0.0/16"), ipaddress.ip_network("2a0c:b641:2::/48")]
    for key, value in data["endpoints"].items():
        for entry in value if isinstance(value, list) else [value]:
            if "://" in entry:
                host = urlsplit(entry.replace("{port}", "1")).hostname
            elif "@" in entry:  # dns_echo "method@server"
                host = entry.rsplit("@", 1)[1]
            else:  # "host:port" or a bare address
                host = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
            # a lab service name (A and AAAA in the lab's own zone) or a lab address
            for text in plan.SERVICE_NAMES.get(host or "", (host,)):
                address = ipaddress.ip_address((text or "").strip("[]"))
                assert any(address in net for net in lab_nets), f"endpoints.{key}: {entry} is not a lab service"


def test_lab_tool_runs_the_real_cli_in_the_host_namespace(lab_home) -> None:  # type: ignore[no-untyped-def]
    out = lab_home.tool("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    env = lab_home.tool_env
    assert env["DDNS_WIZARD_CONFIG"] == str(lab_home.config_path)
    assert env["SSL_CERT_FILE"] == str(lab_home.ca_path)
    where = lab_home.run(["ip", "-4", "-o", "addr", "show", "dev", "lan0"])
    assert plan.HOME_HOST in where.stdout


# --------------------------------------------------------------------------- issue 11: new models
def test_ds_lite_carries_ipv4_inside_ipv6_to_the_aftr(lab_factory) -> None:  # type: ignore[no-untyped-def]
    """The router's line is IPv6 only; IPv4 goes through the softwire (next header 4) to the
    ISP's AFTR, which NATs it to the pool address; IPv6 is native (the host's own address)."""
    lab = lab_factory("ds-lite")
    wan4 = lab.run(["ip", "-4", "-o", "addr", "show", "dev", "wan0"], ns="router").stdout
    assert wan4.strip() == ""  # no IPv4 on the access line
    tunnel = lab.run(["ip", "-4", "-o", "addr", "show", "dev", "dslite0"], ns="router").stdout
    assert f"{plan.DSLITE_B4}/29" in tunnel
    assert curl(lab, f"https://{plan.ECHO1}/").stdout.strip() == plan.DSLITE_POOL_IP
    assert curl(lab, f"https://[{plan.ECHO1_V6}]/").stdout.strip() == plan.HOME_V6_HOST
    # Unsolicited IPv4 to the AFTR's pool address dies there, as at any CGNAT.
    assert tcp_connect(lab, plan.DSLITE_POOL_IP, 8080, ns="inet", timeout=1.0) == "timeout"


def test_latency_of_800_ms_holds(lab_factory) -> None:  # type: ignore[no-untyped-def]
    """The relay handles a satellite-like line: every round trip carries the 800 ms, the first
    one included (ARP on the router's own segment is not delayed), and HTTPS still works."""
    lab = lab_factory("home", latency_ms=800)
    received, rtts = ping_rtts(lab, plan.INET_CORE, count=3, wait_s=3)
    assert received == 3 and min(rtts) >= 800 * 0.95 and max(rtts) < 800 * 1.5, rtts
    assert curl(lab, f"https://{plan.ECHO1}/", max_time=15).stdout.strip() == plan.ROUTER_WAN_IP


def test_a_router_can_claim_a_wan_address_it_does_not_hold(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("double-nat", router_ext_ip=plan.CLAIMED_WAN_IP)
    assert upnp_status(lab).external_ip == plan.CLAIMED_WAN_IP  # what the router says
    assert curl(lab, f"https://{plan.ECHO1}/").stdout.strip() == plan.ISPBOX_WAN_IP  # what the world sees
