"""build_findings on hand-built evidence: the ids, severities and fixes a user relies on."""

from __future__ import annotations

from checks.findings import build_findings, risky_mappings
from checks.model import (
    ExternalInfo,
    ExternalSource,
    Finding,
    Ipv6Address,
    LocalInfo,
    NatResult,
    PortMapping,
    UpnpInfo,
)

PUBLIC = "23.128.64.20"
HOME = LocalInfo(interface="eth0", ipv4="192.168.1.100", gateway_ipv4="192.168.1.1")
V6_HOME = LocalInfo(
    interface="eth0",
    ipv4="192.168.1.100",
    gateway_ipv4="192.168.1.1",
    ipv6_global=(
        Ipv6Address("2a0c:b641:100:1::100", "eth0"),
        Ipv6Address("2a0c:b641:100:1:d00d::1", "eth0", temporary=True),
    ),
)
ROUTER = UpnpInfo(available=True, found=True, wan_ipv4=PUBLIC, status="Connected")
NO_ROUTER = UpnpInfo(available=False, found=False, error="no IGD answered within 600 ms")


def ext(*answers: tuple[str, str, str | None]) -> ExternalInfo:
    sources = tuple(ExternalSource(m, e, 4, v, None if v else "refused", 4.0) for m, e, v in answers)  # type: ignore[arg-type]
    values = {v for _, _, v in answers if v}
    return ExternalInfo(
        ipv4=next(iter(sorted(values)), None) if values else None,
        ipv6=None,
        agreement=len(values) <= 1,
        sources=sources,
    )


AGREED = ext(("http", "https://e1/", PUBLIC), ("http", "https://e2/", PUBLIC), ("dns", "opendns", PUBLIC))


def ids(findings: tuple[Finding, ...]) -> list[str]:
    return [f.id for f in findings]


def by_id(findings: tuple[Finding, ...], fid: str) -> Finding:
    (f,) = [f for f in findings if f.id == fid]
    return f


def test_offline_without_a_default_route() -> None:
    local = LocalInfo(None, None, None, error="no IPv4 route to the internet")
    fs = build_findings("offline", local, ext(), NatResult("unknown", None), NO_ROUTER)
    f = by_id(fs, "offline")
    assert f.severity == "error"
    assert "no default route" in f.detail
    assert fs[0].id == "offline"  # the most serious comes first
    assert "no-upnp" not in ids(fs)  # not a router problem when there is no network


def test_offline_behind_a_router_that_answers_points_at_the_wan() -> None:
    fs = build_findings(
        "offline",
        HOME,
        ext(("http", "https://e1/", None)),
        NatResult("unknown", None),
        UpnpInfo(available=False, found=True, wan_ipv4=None),
    )
    f = by_id(fs, "offline")
    assert "router answers" in f.detail and "192.168.1.1" in f.fix


def test_single_nat_with_upnp_is_good_news() -> None:
    fs = build_findings("online", HOME, AGREED, NatResult("nat", PUBLIC), ROUTER)
    f = by_id(fs, "port-forward-possible")
    assert f.severity == "ok"
    assert "UPnP" in f.detail and "map-and-test" in f.actions and "--upnp" not in f.detail
    assert "no-upnp" not in ids(fs)


def test_public_host_needs_only_its_firewall() -> None:
    local = LocalInfo("eth0", PUBLIC, "23.128.64.1")
    fs = build_findings("online", local, AGREED, NatResult("none", None), NO_ROUTER)
    assert ids(fs) == ["public-address"]  # no router, but nothing to complain about
    assert "firewall" in by_id(fs, "public-address").fix


def test_cgnat_fix_lists_the_real_alternatives_without_ipv6() -> None:
    fs = build_findings("online", HOME, AGREED, NatResult("cgnat", "100.64.1.20"), ROUTER)
    f = by_id(fs, "cgnat")
    assert f.severity == "error"
    for needle in ("public IPv4", "Cloudflare Tunnel", "Tailscale Funnel", "static public address"):
        assert needle in f.fix
    assert "AAAA" not in f.fix  # no IPv6 here: do not suggest it
    assert "ipv6-available" not in ids(fs)


def test_cgnat_with_global_ipv6_recommends_an_aaaa_record_and_the_ipv6_firewall() -> None:
    fs = build_findings("online", V6_HOME, AGREED, NatResult("cgnat", "100.64.1.20"), ROUTER)
    assert "AAAA" in by_id(fs, "cgnat").fix
    six = by_id(fs, "ipv6-available")
    assert "AAAA" in six.title + six.fix
    assert "2a0c:b641:100:1::100" in six.fix  # the stable address, not the temporary one
    assert "2a0c:b641:100:1:d00d::1" not in six.fix
    assert "IPv6 firewall" in six.fix


def test_ipv6_with_only_temporary_addresses_says_they_will_not_do() -> None:
    local = LocalInfo(
        "eth0",
        "192.168.1.100",
        "192.168.1.1",
        ipv6_global=(Ipv6Address("2a0c:b641:100:1:d00d::1", "eth0", temporary=True),),
    )
    six = by_id(build_findings("online", local, AGREED, NatResult("cgnat", None), ROUTER), "ipv6-available")
    assert "temporary" in six.title and "stable" in six.fix


def test_double_nat_fix_is_bridge_mode_or_dmz() -> None:
    fs = build_findings(
        "online",
        HOME,
        AGREED,
        NatResult("double-nat", "192.168.100.2"),
        UpnpInfo(available=False, found=True, wan_ipv4="192.168.100.2"),
    )
    f = by_id(fs, "double-nat")
    assert "bridge mode" in f.fix and "DMZ" in f.fix and "192.168.100.2" in f.fix
    assert "upnp-no-wan" in ids(fs)


def test_no_upnp_is_reported_behind_a_silent_router() -> None:
    fs = build_findings("online", HOME, AGREED, NatResult("unknown", None), NO_ROUTER)
    assert {"nat-unknown", "no-upnp"} <= set(ids(fs))
    assert by_id(fs, "no-upnp").severity == "info"
    assert PUBLIC in by_id(fs, "nat-unknown").fix  # "if the router's WAN is <this>, one NAT"


def test_risky_mappings_raise_exposed_service() -> None:
    maps = (
        PortMapping(22, "TCP", "192.168.1.50", 22, "ssh"),
        PortMapping(13389, "TCP", "192.168.1.60", 3389, "rdp"),
        PortMapping(8000, "TCP", "192.168.1.70", 8000, "ipcam"),
        PortMapping(443, "TCP", "192.168.1.100", 443, "web"),
        PortMapping(25565, "TCP", "192.168.1.100", 25565, "minecraft"),
    )
    upnp = UpnpInfo(available=True, found=True, wan_ipv4=PUBLIC, mappings=maps)
    f = by_id(build_findings("online", HOME, AGREED, NatResult("nat", PUBLIC), upnp), "exposed-service")
    assert f.severity == "warning"
    assert "192.168.1.50:22" in f.detail and "192.168.1.60:3389" in f.detail and "192.168.1.70:8000" in f.detail
    assert ":443" not in f.detail and "25565" not in f.detail
    assert "VPN" in f.fix
    assert [m.external_port for m, _ in risky_mappings(maps)] == [22, 13389, 8000]


def test_disabled_or_harmless_mappings_raise_nothing() -> None:
    maps = (
        PortMapping(22, "TCP", "192.168.1.50", 22, "ssh", enabled=False),
        PortMapping(443, "TCP", "192.168.1.100", 443, "web"),
    )
    upnp = UpnpInfo(available=True, found=True, wan_ipv4=PUBLIC, mappings=maps)
    assert "exposed-service" not in ids(build_findings("online", HOME, AGREED, NatResult("nat", PUBLIC), upnp))


def test_http_sources_disagreeing_is_ip_disagreement() -> None:
    e = ext(("http", "https://e1/", PUBLIC), ("http", "https://e2/", "23.128.64.21"))
    fs = build_findings("online", HOME, e, NatResult("nat", PUBLIC), ROUTER)
    f = by_id(fs, "ip-disagreement")
    assert "23.128.64.21" in f.detail and PUBLIC in f.detail


def test_dns_answers_differing_from_http_is_dns_interception() -> None:
    e = ext(("http", "https://e1/", PUBLIC), ("http", "https://e2/", PUBLIC), ("dns", "opendns", "10.9.9.9"))
    fs = build_findings("online", HOME, e, NatResult("nat", PUBLIC), ROUTER)
    assert "dns-interception" in ids(fs) and "ip-disagreement" not in ids(fs)


def test_vpn_default_route_is_explained() -> None:
    local = LocalInfo("wg0", "10.2.0.2", None, vpn_interfaces=("wg0",), default_via_vpn=True)
    fs = build_findings("online", local, AGREED, NatResult("unknown", None), NO_ROUTER)
    f = by_id(fs, "vpn-default-route")
    assert "wg0" in f.detail and "port forwarding" in f.fix


def test_symmetric_nat_is_information_only() -> None:
    e = ExternalInfo(PUBLIC, None, True, AGREED.sources, mapping_varies=True)
    f = by_id(build_findings("online", HOME, e, NatResult("nat", PUBLIC), ROUTER), "symmetric-nat")
    assert f.severity == "info"


def test_private_address_published_in_dns_is_an_error() -> None:
    fs = build_findings(
        "online",
        HOME,
        AGREED,
        NatResult("nat", PUBLIC),
        ROUTER,
        published={"home.example.org": ["192.168.1.100"], "ok.example.org": [PUBLIC]},
    )
    f = by_id(fs, "private-ip-published")
    assert f.severity == "error" and "home.example.org" in f.detail and "ok.example.org" not in f.detail


def test_limited_connectivity_names_what_answered() -> None:
    e = ext(("http", "https://e1/", None), ("dns", "opendns", PUBLIC))
    f = by_id(build_findings("limited", HOME, e, NatResult("nat", PUBLIC), ROUTER), "limited-connectivity")
    assert "dns" in f.detail and "http" in f.detail


def test_limited_connectivity_from_https_timeouts_suggests_a_slow_line_before_a_firewall() -> None:
    from dataclasses import replace

    e = ext(("http", "https://e1/", None), ("http", "https://e2/", None), ("dns", "opendns", PUBLIC))
    slow = replace(
        e, sources=tuple(replace(s, error="no answer within 3 s") if s.method == "http" else s for s in e.sources)
    )
    f = by_id(build_findings("limited", HOME, slow, NatResult("nat", PUBLIC), ROUTER), "limited-connectivity")
    assert "slow or lossy line" in f.detail and "more time" in f.fix and f.actions == ("diagnose-longer",)
    # A refusal is no slowness: then the firewall comes first again.
    f = by_id(build_findings("limited", HOME, e, NatResult("nat", PUBLIC), ROUTER), "limited-connectivity")
    assert "slow" not in f.detail and "firewall" in f.fix


def test_findings_come_most_serious_first() -> None:
    maps = (PortMapping(3389, "TCP", "192.168.1.60", 3389, "rdp"),)
    fs = build_findings(
        "online",
        V6_HOME,
        AGREED,
        NatResult("cgnat", "100.64.1.20"),
        UpnpInfo(available=False, found=True, wan_ipv4="100.64.1.20", mappings=maps),
    )
    order = {"error": 0, "warning": 1, "info": 2, "ok": 3}
    ranks = [order[f.severity] for f in fs]
    assert ranks == sorted(ranks) and fs[0].id == "cgnat"


# --- issue 11: slow lines, and what "offline" rests on ---


def timed(*answers: tuple[str, str, str | None, float]) -> ExternalInfo:
    sources = tuple(
        ExternalSource(m, e, 4, v, None if v else "no answer within 4 s", ms)  # type: ignore[arg-type]
        for m, e, v, ms in answers
    )
    return ExternalInfo(ipv4=PUBLIC, ipv6=None, agreement=True, sources=sources)


def test_a_line_whose_first_answer_takes_800_ms_gets_a_slow_line_finding() -> None:
    e = timed(
        ("stun", "11.1.0.40:3478", PUBLIC, 810.0),
        ("dns", "opendns", PUBLIC, 830.0),
        ("http", "https://e1/", PUBLIC, 2500.0),
    )
    f = by_id(build_findings("online", HOME, e, NatResult("nat", PUBLIC), ROUTER), "slow-line")
    assert f.severity == "warning"
    assert "810 ms" in f.detail and "stun 11.1.0.40:3478" in f.detail
    assert "3–4 round trips" in f.detail  # what it means for hosting
    assert "more time" in f.fix and "diagnose-longer" in f.actions


def test_an_https_echo_counts_three_round_trips() -> None:
    slow = timed(("http", "https://e1/", PUBLIC, 2400.0))
    assert "slow-line" in ids(build_findings("online", HOME, slow, NatResult("nat", PUBLIC), ROUTER))
    fast = timed(("http", "https://e1/", PUBLIC, 1200.0))  # 400 ms a round trip: not slow
    assert "slow-line" not in ids(build_findings("online", HOME, fast, NatResult("nat", PUBLIC), ROUTER))


def test_one_fast_answer_is_enough_to_call_the_line_fast() -> None:
    e = timed(("stun", "s1", PUBLIC, 40.0), ("dns", "opendns", PUBLIC, 900.0))
    assert "slow-line" not in ids(build_findings("online", HOME, e, NatResult("nat", PUBLIC), ROUTER))


def test_offline_by_silence_names_the_budget_and_how_to_give_more_time() -> None:
    e = timed(("http", "https://e1/", None, 4000.0))
    f = by_id(build_findings("offline", HOME, e, NatResult("unknown", None), NO_ROUTER, budget_s=4.0), "offline")
    assert "within 4 s" in f.detail and "larger budget" in f.detail and f.actions == ("diagnose-longer",)


def test_offline_with_a_no_route_error_says_the_network_reported_it() -> None:
    e = ExternalInfo(
        None,
        None,
        True,
        (ExternalSource("http", "https://e1/", 4, None, "network unreachable (no route to the service)", 3.0),),
    )
    f = by_id(build_findings("offline", HOME, e, NatResult("unknown", None), NO_ROUTER, budget_s=4.0), "offline")
    assert "no route" in f.detail and "--budget" not in f.detail


def test_double_nat_behind_a_router_claiming_a_public_wan_never_names_the_claim_to_forward_to() -> None:
    e = ext(("http", "https://e1/", "23.128.64.30"), ("dns", "opendns", "23.128.64.30"))
    f = by_id(build_findings("online", HOME, e, NatResult("double-nat", "23.128.64.99"), ROUTER), "double-nat")
    assert "claims 23.128.64.99" in f.detail and "23.128.64.30" in f.detail
    assert "23.128.64.99" not in f.fix and "status page" in f.fix
    private = by_id(
        build_findings("online", HOME, AGREED, NatResult("double-nat", "192.168.100.2"), ROUTER), "double-nat"
    )
    assert "(192.168.100.2)" in private.fix


def test_no_finding_names_a_cli_command_or_flag() -> None:
    """The engine's sentences are for every view: commands are the views' words (Finding.actions)."""
    import re

    from checks.model import Ipv6Address as A

    local = LocalInfo("eth0", "192.168.1.100", "192.168.1.1", ipv6_global=(A("2a0c:b641:100:1::100", "eth0"),))
    cases = [
        build_findings(
            c, local, AGREED, NatResult(v, PUBLIC), r, budget_s=4.0, published={"h.example": ["192.168.1.100"]}
        )
        for c in ("online", "limited", "offline")
        for v in ("none", "nat", "cgnat", "double-nat", "unknown")
        for r in (ROUTER, NO_ROUTER)
    ]
    for fs in cases:
        for f in fs:
            text = f.title + f.detail + f.fix
            assert "ddns-wizard" not in text and not re.search(r"(^|\s)--[a-z]", text), (f.id, text)
