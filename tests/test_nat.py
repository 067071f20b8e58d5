"""decide_nat on hand-built evidence: one test per path through the verdict."""

from __future__ import annotations

from checks.model import ExternalInfo, ExternalSource, LocalInfo, UpnpInfo
from checks.nat import decide_nat, hops_would_help

PUBLIC = "23.128.64.20"
HOME = LocalInfo(interface="eth0", ipv4="192.168.1.100", gateway_ipv4="192.168.1.1")
NO_ROUTER = UpnpInfo(available=False, found=False, error="no IGD answered", natpmp_error="NAT-PMP: no answer in time")


def ext(ipv4: str | None, *, n: int = 2) -> ExternalInfo:
    sources = tuple(
        ExternalSource("http", f"https://echo{i}/", 4, ipv4, None if ipv4 else "refused", 3.0) for i in range(n)
    )
    return ExternalInfo(ipv4=ipv4, ipv6=None, agreement=True, sources=sources)


def igd(wan: str | None, *, natpmp: str | None = None, natpmp_error: str | None = None) -> UpnpInfo:
    from checks.addresses import is_public

    return UpnpInfo(
        available=bool(wan and is_public(wan)),
        found=True,
        location="http://192.168.1.1:5000/rootDesc.xml",
        wan_ipv4=wan,
        status="Connected",
        natpmp_available=natpmp is not None,
        natpmp_wan_ipv4=natpmp,
        natpmp_error=natpmp_error,
    )


def text(result) -> str:  # type: ignore[no-untyped-def]
    return " ".join(result.evidence)


def test_public_host_seen_as_itself_is_no_nat() -> None:
    local = LocalInfo(interface="eth0", ipv4=PUBLIC, gateway_ipv4="23.128.64.1")
    r = decide_nat(local, ext(PUBLIC), NO_ROUTER, None)
    assert r.verdict == "none"
    assert "a public address" in text(r)


def test_public_host_seen_as_another_address_is_not_called_no_nat() -> None:
    local = LocalInfo(interface="eth0", ipv4=PUBLIC, gateway_ipv4="23.128.64.1")
    r = decide_nat(local, ext("23.128.64.99"), NO_ROUTER, None)
    assert r.verdict == "unknown"
    assert "23.128.64.99" in text(r)


def test_router_with_public_wan_equal_to_external_is_one_nat() -> None:
    r = decide_nat(HOME, ext(PUBLIC), igd(PUBLIC), None)
    assert r.verdict == "nat"
    assert r.router_wan_ipv4 == PUBLIC
    assert "private (RFC 1918)" in text(r)  # the interface address class is evidence
    assert "exactly one NAT" in text(r)


def test_natpmp_alone_is_enough_for_the_router_wan() -> None:
    upnp = UpnpInfo(available=False, found=False, natpmp_available=True, natpmp_wan_ipv4=PUBLIC)
    r = decide_nat(HOME, ext(PUBLIC), upnp, None)
    assert r.verdict == "nat" and r.router_wan_ipv4 == PUBLIC
    assert "NAT-PMP" in text(r)


def test_router_wan_in_shared_space_is_cgnat() -> None:
    r = decide_nat(HOME, ext(PUBLIC), igd("100.64.1.20"), None)
    assert r.verdict == "cgnat"
    assert "100.64.0.0/10" in text(r) and "RFC 6598" in text(r)


def test_router_wan_in_192_168_is_double_nat() -> None:
    r = decide_nat(HOME, ext(PUBLIC), igd("192.168.100.2"), None)
    assert r.verdict == "double-nat"
    assert "192.168.100.2" in text(r)


def test_ambiguous_10x_wan_says_both_possibilities() -> None:
    r = decide_nat(HOME, ext(PUBLIC), igd("10.0.0.2"), None)
    assert r.verdict == "double-nat"
    t = text(r)
    assert "ambiguous" in t and "carrier-grade NAT" in t and "bridge mode" in t


def test_10x_wan_with_a_shared_space_hop_is_cgnat() -> None:
    r = decide_nat(HOME, ext(PUBLIC), igd("10.0.0.2"), ("192.168.1.1", "100.70.0.1", "23.128.64.1"))
    assert r.verdict == "cgnat"
    assert "100.70.0.1" in text(r)


def test_public_wan_claim_the_outside_does_not_see_is_not_cgnat_on_its_word_alone() -> None:
    """A router that claims a public WAN the outside does not see: without the path, both
    readings stand (the ISP translates again, or the claim is stale/configured)."""
    r = decide_nat(HOME, ext("23.128.64.200"), igd(PUBLIC), None)
    assert r.verdict == "unknown"
    t = text(r)
    assert "23.128.64.200" in t and PUBLIC in t
    assert "carrier-grade NAT" in t and "stale" in t  # both readings


def test_public_wan_claim_with_a_private_hop_after_the_router_is_double_nat() -> None:
    """miniupnpd's ext_ip (or a stale value) claims a public WAN; the path shows a private router
    after ours and the outside sees another public address: the claim is wrong, second NAT."""
    hops = ("192.168.1.1", "192.168.100.1", "23.128.64.1")
    r = decide_nat(HOME, ext("23.128.64.30"), igd("23.128.64.99"), hops)
    assert r.verdict == "double-nat"
    t = text(r)
    assert "192.168.100.1" in t and "23.128.64.99" in t and "not carrier-grade NAT" in t
    assert r.router_wan_ipv4 == "23.128.64.99"  # what the router said stays on record
    assert not r.ds_lite


def test_public_wan_claim_with_a_public_hop_after_the_router_stays_unknown() -> None:
    hops = ("192.168.1.1", "23.128.64.1", "11.1.0.10")
    r = decide_nat(HOME, ext("23.128.64.200"), igd(PUBLIC), hops)
    assert r.verdict == "unknown"
    assert "23.128.64.1" in text(r)


def test_public_wan_claim_with_a_shared_space_hop_is_cgnat() -> None:
    hops = ("192.168.1.1", "100.64.1.1", "11.1.0.10")
    r = decide_nat(HOME, ext("23.128.64.200"), igd(PUBLIC), hops)
    assert r.verdict == "cgnat"
    assert "100.64.1.1" in text(r)


def test_outside_confirming_the_router_beats_a_private_or_shared_hop() -> None:
    """ISPs number their own routers from private or shared space: when the outside sees the
    router's own WAN address, that is one NAT whatever the hop after it holds."""
    for hop in ("10.20.0.1", "100.64.9.1", "192.168.100.1"):
        r = decide_nat(HOME, ext(PUBLIC), igd(PUBLIC), ("192.168.1.1", hop, "11.1.0.10"))
        assert r.verdict == "nat", (hop, text(r))


def test_ds_lite_wan_is_carrier_nat_with_native_ipv6() -> None:
    r = decide_nat(HOME, ext("23.128.64.210"), igd("192.0.0.2"), None)
    assert r.verdict == "cgnat" and r.ds_lite
    t = text(r)
    assert "DS-Lite" in t and "IPv6 is native" in t and "IPv4 is shared" in t


def test_ds_lite_next_hop_is_carrier_nat_without_upnp() -> None:
    r = decide_nat(HOME, ext("23.128.64.210"), NO_ROUTER, ("192.168.1.1", "192.0.0.1", "11.1.0.10"))
    assert r.verdict == "cgnat" and r.ds_lite
    assert "192.0.0.1" in text(r) and "AFTR" in text(r)


def test_ds_lite_next_hop_wins_over_an_igd_without_wan() -> None:
    r = decide_nat(HOME, ext("23.128.64.210"), igd(None), ("192.168.1.1", "192.0.0.1"))
    assert r.verdict == "cgnat" and r.ds_lite


def test_address_just_outside_the_ds_lite_range_is_not_ds_lite() -> None:
    r = decide_nat(HOME, ext(PUBLIC), NO_ROUTER, ("192.168.1.1", "192.0.0.9", "11.1.0.10"))
    assert not r.ds_lite and r.verdict != "cgnat"


def test_shared_space_next_hop_without_upnp_is_cgnat() -> None:
    r = decide_nat(HOME, ext("23.128.64.200"), NO_ROUTER, ("192.168.1.1", "100.64.1.1", "11.1.0.10"))
    assert r.verdict == "cgnat" and not r.ds_lite
    assert "100.64.1.1" in text(r)


def test_igd_reporting_no_external_address_is_evidence_of_an_upstream_nat() -> None:
    r = decide_nat(HOME, ext(PUBLIC), igd(None), None)
    assert r.verdict == "double-nat"
    assert "reports no external address" in text(r)
    assert "carrier-grade NAT" in text(r)  # says it could also be the ISP's
    with_hop = decide_nat(HOME, ext(PUBLIC), igd(None), ("192.168.1.1", "100.64.1.1", "11.0.0.1"))
    assert with_hop.verdict == "cgnat"


def test_natpmp_network_failure_is_evidence_of_an_upstream_nat() -> None:
    upnp = UpnpInfo(
        available=False,
        found=False,
        natpmp_error="the router refused: Network Failure (3): the router has no working WAN",
    )
    r = decide_nat(HOME, ext(PUBLIC), upnp, ("192.168.1.1", "192.168.100.1", "23.128.64.1"))
    assert r.verdict == "double-nat"
    assert "network failure" in text(r).lower()


def test_no_router_answer_and_a_public_second_hop_is_one_nat() -> None:
    r = decide_nat(HOME, ext(PUBLIC), NO_ROUTER, ("192.168.1.1", "23.128.64.1", "11.0.0.1"))
    assert r.verdict == "nat"
    assert r.traceroute_hops == ("192.168.1.1", "23.128.64.1", "11.0.0.1")
    assert "does not answer UPnP or NAT-PMP" in text(r)


def test_no_router_answer_and_no_hops_is_unknown() -> None:
    r = decide_nat(HOME, ext(PUBLIC), NO_ROUTER, None)
    assert r.verdict == "unknown"
    assert r.router_wan_ipv4 is None


def test_no_router_answer_and_a_private_second_hop_is_double_nat() -> None:
    """Issue 11: a private router after ours and a public address outside → a second NAT, also
    when the router offers no UPnP."""
    r = decide_nat(HOME, ext("23.128.64.30"), NO_ROUTER, ("192.168.1.1", "192.168.100.1", "23.128.64.1"))
    assert r.verdict == "double-nat"
    assert "192.168.100.1" in text(r) and "23.128.64.30" in text(r)


def test_a_10x_second_hop_is_double_nat_and_says_the_other_readings() -> None:
    r = decide_nat(HOME, ext(PUBLIC), NO_ROUTER, ("192.168.1.1", "10.20.0.1", "23.128.64.1"))
    assert r.verdict == "double-nat"
    assert "10.0.0.0/8" in text(r) and "only one NAT" in text(r)


def test_private_second_hop_without_an_outside_answer_is_unknown() -> None:
    r = decide_nat(HOME, ext(None), NO_ROUTER, ("192.168.1.1", "192.168.100.1"))
    assert r.verdict == "unknown"


def test_igd_without_wan_and_a_private_192_168_hop_is_double_nat_for_sure() -> None:
    r = decide_nat(HOME, ext(PUBLIC), igd(None), ("192.168.1.1", "192.168.100.1", "23.128.64.1"))
    assert r.verdict == "double-nat"
    assert "second router in your home" in text(r)


def test_tailscale_default_route_is_not_cgnat() -> None:
    local = LocalInfo(
        interface="tailscale0",
        ipv4="100.101.102.103",
        gateway_ipv4=None,
        vpn_interfaces=("tailscale0",),
        default_via_vpn=True,
    )
    # The VPN exit is seen from outside; the router's own WAN is public: one NAT at home.
    r = decide_nat(local, ext("185.65.134.1"), igd(PUBLIC), None)
    assert r.verdict == "nat"
    t = text(r)
    assert "VPN" in t and "not your ISP's carrier-grade NAT" in t


def test_vpn_default_route_without_router_facts_is_unknown_not_cgnat() -> None:
    local = LocalInfo(
        interface="wg0", ipv4="10.2.0.2", gateway_ipv4=None, vpn_interfaces=("wg0",), default_via_vpn=True
    )
    r = decide_nat(local, ext("185.65.134.1"), NO_ROUTER, None)
    assert r.verdict == "unknown"
    assert "VPN" in text(r)


def test_tailscale_interface_that_is_not_the_default_route_changes_nothing() -> None:
    local = LocalInfo(
        interface="eth0", ipv4="192.168.1.100", gateway_ipv4="192.168.1.1", vpn_interfaces=("tailscale0",)
    )
    assert decide_nat(local, ext(PUBLIC), igd(PUBLIC), None).verdict == "nat"


def test_host_itself_in_shared_space_without_vpn_is_cgnat() -> None:
    local = LocalInfo(interface="wwan0", ipv4="100.72.5.9", gateway_ipv4="100.72.5.1")
    r = decide_nat(local, ext(PUBLIC), NO_ROUTER, None)
    assert r.verdict == "cgnat"
    assert "not on a VPN interface" in text(r)


def test_no_local_address_is_unknown() -> None:
    r = decide_nat(LocalInfo(None, None, None, error="no IPv4 route"), ext(None), NO_ROUTER, None)
    assert r.verdict == "unknown"
    assert "no IPv4 address" in text(r)


def test_hops_only_matter_when_the_router_did_not_settle_it() -> None:
    assert not hops_would_help(HOME, igd(PUBLIC))
    assert not hops_would_help(HOME, igd(PUBLIC), PUBLIC)  # confirmed from outside
    assert hops_would_help(HOME, igd(PUBLIC), "23.128.64.30")  # contradicted: the path decides
    assert hops_would_help(HOME, igd(PUBLIC), confirm_claim=True)  # port check: outside not known yet
    assert not hops_would_help(HOME, igd("100.64.1.20"))
    assert not hops_would_help(HOME, igd("192.0.0.2"))
    assert not hops_would_help(HOME, igd("192.168.100.2"))
    assert hops_would_help(HOME, igd("10.0.0.2"))
    assert hops_would_help(HOME, igd(None))
    assert hops_would_help(HOME, NO_ROUTER)
    assert not hops_would_help(LocalInfo("eth0", PUBLIC, "23.128.64.1"), NO_ROUTER)


# --- any evidence at all: a verdict from the contract, with reasons, never an exception ---

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from checks.findings import build_findings  # noqa: E402

_ADDRESSES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "192.168.1.100",
            "10.0.0.2",
            "100.64.1.20",
            "100.101.102.103",
            "172.16.5.5",
            PUBLIC,
            "23.128.64.200",
            "192.0.0.1",
            "192.0.0.2",
            "169.254.1.1",
            "127.0.0.1",
            "192.0.2.1",
            "0.0.0.0",
            "::1",
            "2a0c:b641:100:1::100",
            "",
            "garbage",
            "999.1.1.1",
        ]
    ),
    st.text(max_size=20),
)
_HOPS = st.one_of(st.none(), st.lists(_ADDRESSES.map(lambda a: a or "*"), max_size=5).map(tuple))


@settings(max_examples=300, deadline=None)
@given(
    local_ip=_ADDRESSES,
    iface=st.sampled_from([None, "eth0", "wg0", "tailscale0", "ppp0"]),
    via_vpn=st.booleans(),
    ext_ip=_ADDRESSES,
    wan=_ADDRESSES,
    natpmp=_ADDRESSES,
    found=st.booleans(),
    natpmp_error=st.sampled_from([None, "the router refused: Network Failure (3): ...", "no answer"]),
    hops=_HOPS,
)
def test_any_evidence_gives_a_contract_verdict_with_reasons(
    local_ip,
    iface,
    via_vpn,
    ext_ip,
    wan,
    natpmp,  # type: ignore[no-untyped-def]
    found,
    natpmp_error,
    hops,
) -> None:
    local = LocalInfo(
        interface=iface,
        ipv4=local_ip,
        gateway_ipv4="192.168.1.1",
        vpn_interfaces=(iface,) if via_vpn and iface else (),
        default_via_vpn=via_vpn,
    )
    external = ExternalInfo(ipv4=ext_ip, ipv6=None, agreement=True)
    upnp = UpnpInfo(
        available=False,
        found=found,
        wan_ipv4=wan,
        natpmp_wan_ipv4=natpmp,
        natpmp_available=natpmp is not None,
        natpmp_error=natpmp_error,
    )
    r = decide_nat(local, external, upnp, hops)
    assert r.verdict in ("none", "nat", "double-nat", "cgnat", "unknown")
    assert not r.ds_lite or r.verdict == "cgnat"
    assert r.evidence and all(isinstance(e, str) and e for e in r.evidence)
    if r.verdict == "none":
        assert local_ip == ext_ip  # "none" only when confirmed from outside
    for connectivity in ("online", "limited", "offline"):
        findings = build_findings(connectivity, local, external, r, upnp)  # type: ignore[arg-type]
        assert len({f.id for f in findings}) == len(findings)  # one finding per id
        assert all(f.severity in ("ok", "info", "warning", "error") and f.title for f in findings)
        if connectivity == "offline":
            assert findings[0].id == "offline"


def test_hops_without_our_router_first_are_not_trusted() -> None:
    """icmplib leaves silent hops out; when our router's rate-limited reply is missing, the
    first address shown is not "the hop after the router" and must not decide anything."""
    r = decide_nat(HOME, ext(PUBLIC), NO_ROUTER, ("192.168.100.1", "23.128.64.1", "11.1.0.10"))
    assert r.verdict == "unknown"
    assert "hops are not used" in text(r)
