"""Each rule alone: the findings rules (checks.findings.RULES) and the NAT rules
(checks.nat.NAT_RULES), fed hand-built facts, say what they say and nothing else."""

from __future__ import annotations

from dataclasses import replace

import pytest

from checks import findings as F
from checks import nat as N
from checks.model import (
    ExternalInfo,
    ExternalSource,
    Ipv6Address,
    LocalInfo,
    NatResult,
    PortMapping,
    UpnpInfo,
)

PUBLIC = "23.128.64.20"
HOME = LocalInfo("eth0", "192.168.1.100", "192.168.1.1")
AGREED = ExternalInfo(
    PUBLIC,
    None,
    True,
    (
        ExternalSource("http", "https://e1/", 4, PUBLIC, None, 30.0),
        ExternalSource("dns", "opendns", 4, PUBLIC, None, 20.0),
    ),
)
IGD = UpnpInfo(True, found=True, wan_ipv4=PUBLIC)
SILENT = UpnpInfo(False, found=False)


def facts(**kw) -> F.Facts:  # type: ignore[no-untyped-def]
    base = dict(connectivity="online", local=HOME, external=AGREED, nat=NatResult("nat", PUBLIC), upnp=IGD)
    base.update(kw)
    return F.Facts(**base)  # type: ignore[arg-type]


def ids(rule, f: F.Facts) -> list[str]:  # type: ignore[no-untyped-def]
    return [x.id for x in rule(f)]


# --- findings rules -------------------------------------------------------------------------


def test_every_rule_is_named_and_listed_once() -> None:
    names = [r.__name__ for r in F.RULES]
    assert len(names) == len(set(names)) == 16
    assert all(r.__doc__ for r in F.RULES)


def test_offline_rule() -> None:
    assert ids(F.offline, facts(connectivity="offline")) == ["offline"]
    assert ids(F.offline, facts()) == []


def test_limited_connectivity_rule() -> None:
    assert ids(F.limited_connectivity, facts(connectivity="limited")) == ["limited-connectivity"]
    assert ids(F.limited_connectivity, facts()) == []


def test_slow_line_rule() -> None:
    slow = replace(AGREED, sources=(ExternalSource("stun", "s:3478", 4, PUBLIC, None, 900.0),))
    assert ids(F.slow_line, facts(external=slow)) == ["slow-line"]
    assert ids(F.slow_line, facts()) == []
    assert ids(F.slow_line, facts(external=slow, connectivity="offline")) == []


def test_public_address_rule() -> None:
    (f,) = F.public_address(facts(nat=NatResult("none", None), local=LocalInfo("eth0", PUBLIC, "23.128.64.1")))
    assert f.id == "public-address" and "keep-updated" in f.actions
    assert ids(F.public_address, facts()) == []


def test_port_forward_possible_rule_offers_what_the_router_can_do() -> None:
    (f,) = F.port_forward_possible(facts())
    assert f.actions[:2] == ("map-port", "map-and-test")
    (g,) = F.port_forward_possible(facts(upnp=SILENT))
    assert "map-port" not in g.actions and "web page" in g.detail
    assert ids(F.port_forward_possible, facts(nat=NatResult("cgnat", None))) == []


def test_cgnat_rule_plain_and_ds_lite() -> None:
    (f,) = F.cgnat(facts(nat=NatResult("cgnat", "100.64.1.2")))
    assert "CGNAT" in f.title
    (g,) = F.cgnat(facts(nat=NatResult("cgnat", None, ds_lite=True)))
    assert "DS-Lite" in g.title
    assert ids(F.cgnat, facts()) == []


def test_double_nat_rule_never_names_a_public_claim_to_forward_to() -> None:
    (f,) = F.double_nat(facts(nat=NatResult("double-nat", "23.128.64.99")))
    assert "23.128.64.99" not in f.fix
    (g,) = F.double_nat(facts(nat=NatResult("double-nat", "192.168.0.2")))
    assert "192.168.0.2" in g.fix


def test_nat_unknown_rule() -> None:
    (f,) = F.nat_unknown(facts(nat=NatResult("unknown", None, ("last sentence",))))
    assert f.detail == "last sentence" and f.actions == ("test-port",)
    assert ids(F.nat_unknown, facts(nat=NatResult("unknown", None), connectivity="offline")) == []


def test_no_upnp_rule() -> None:
    assert ids(F.no_upnp, facts(upnp=SILENT)) == ["no-upnp"]
    assert ids(F.no_upnp, facts(upnp=SILENT, connectivity="offline")) == []
    assert ids(F.no_upnp, facts()) == []


def test_upnp_no_wan_rule() -> None:
    found = UpnpInfo(False, found=True, wan_ipv4="192.168.0.2")
    assert ids(F.upnp_no_wan, facts(upnp=found, nat=NatResult("double-nat", "192.168.0.2"))) == ["upnp-no-wan"]
    assert ids(F.upnp_no_wan, facts(upnp=found)) == []


def test_address_disagreement_rule() -> None:
    split = replace(
        AGREED,
        sources=(
            ExternalSource("http", "a", 4, PUBLIC, None, 1.0),
            ExternalSource("http", "b", 4, "23.128.64.21", None, 1.0),
        ),
    )
    assert ids(F.address_disagreement, facts(external=split)) == ["ip-disagreement"]
    assert ids(F.address_disagreement, facts()) == []


def test_vpn_default_route_rule() -> None:
    assert ids(F.vpn_default_route, facts(local=replace(HOME, default_via_vpn=True))) == ["vpn-default-route"]
    assert ids(F.vpn_default_route, facts()) == []


def test_symmetric_nat_rule() -> None:
    assert ids(F.symmetric_nat, facts(external=replace(AGREED, mapping_varies=True))) == ["symmetric-nat"]
    assert ids(F.symmetric_nat, facts()) == []


def test_ipv6_available_rule() -> None:
    v6 = replace(HOME, ipv6_global=(Ipv6Address("2a0c:b641:100:1::100", "eth0"),))
    (f,) = F.ipv6_available(facts(local=v6))
    assert "test-port-ipv6" in f.actions
    assert ids(F.ipv6_available, facts()) == []


def test_exposed_service_rule() -> None:
    risky = replace(IGD, mappings=(PortMapping(22, "TCP", "192.168.1.5", 22, "ssh"),))
    (f,) = F.exposed_service(facts(upnp=risky))
    assert "SSH" in f.detail and f.actions == ("remove-mapping",)
    assert ids(F.exposed_service, facts()) == []


def test_private_ip_published_rule() -> None:
    (f,) = F.private_ip_published(facts(published={"h.example": ["192.168.1.100"]}))
    assert "h.example → 192.168.1.100" in f.detail and f.actions == ("update",)
    assert ids(F.private_ip_published, facts(published={"h.example": [PUBLIC]})) == []


# --- NAT rules ------------------------------------------------------------------------------


def obs(
    local: LocalInfo = HOME,
    external: ExternalInfo = AGREED,
    upnp: UpnpInfo = SILENT,
    hops: tuple[str, ...] | None = None,
) -> N.Observations:
    return N.Observations.from_probes(local, external, upnp, hops)


def test_nat_rules_are_named_and_the_last_always_decides() -> None:
    assert all(r.__doc__ for r in N.NAT_RULES)
    assert N.NAT_RULES[-1] is N.path_only
    assert N.path_only(obs()) is not None


def test_no_network_rule() -> None:
    call = N.no_network(obs(local=LocalInfo(None, None, None)))
    assert call is not None and call.verdict == "unknown" and "No network" in call.evidence[0]
    assert N.no_network(obs()) is None


def test_vpn_route_rule() -> None:
    vpn = LocalInfo("wg0", "10.8.0.2", "10.8.0.1", default_via_vpn=True)
    assert N.vpn_route(obs(local=vpn, upnp=IGD)).verdict == "nat"  # type: ignore[union-attr]
    assert N.vpn_route(obs()) is None


def test_public_host_rule() -> None:
    me = LocalInfo("eth0", PUBLIC, "23.128.64.1")
    assert N.public_host(obs(local=me)).verdict == "none"  # type: ignore[union-attr]
    other = replace(AGREED, ipv4="23.128.64.99")
    assert N.public_host(obs(local=me, external=other)).verdict == "unknown"  # type: ignore[union-attr]
    assert N.public_host(obs()) is None


def test_shared_host_address_rule() -> None:
    hotspot = LocalInfo("wlan0", "100.70.1.2", "100.70.1.1")
    assert N.shared_host_address(obs(local=hotspot)).verdict == "cgnat"  # type: ignore[union-attr]
    b4 = LocalInfo("eth0", "192.0.0.2", "192.0.0.1")
    assert N.shared_host_address(obs(local=b4)).ds_lite  # type: ignore[union-attr]
    assert N.shared_host_address(obs()) is None


def test_router_confirmed_rule() -> None:
    assert N.router_confirmed(obs(upnp=IGD)).verdict == "nat"  # type: ignore[union-attr]
    assert N.router_confirmed(obs()) is None


def test_ds_lite_and_carrier_rules() -> None:
    assert N.ds_lite_line(obs(upnp=UpnpInfo(False, found=True, wan_ipv4="192.0.0.2"))).ds_lite  # type: ignore[union-attr]
    assert N.carrier_wan(obs(upnp=UpnpInfo(False, found=True, wan_ipv4="100.64.1.2"))).verdict == "cgnat"  # type: ignore[union-attr]
    hop = obs(hops=("192.168.1.1", "100.64.0.1"))
    call = N.carrier_next_hop(hop)
    assert call is not None and call.verdict == "cgnat" and call.evidence[0].startswith("Traceroute")
    assert N.ds_lite_line(obs()) is None and N.carrier_wan(obs()) is None and N.carrier_next_hop(obs()) is None


def test_claimed_public_wan_rule() -> None:
    liar = UpnpInfo(True, found=True, wan_ipv4="23.128.64.99")
    assert N.claimed_public_wan(obs(upnp=liar)).verdict == "unknown"  # type: ignore[union-attr]
    behind = N.claimed_public_wan(obs(upnp=liar, hops=("192.168.1.1", "192.168.0.1")))
    assert behind is not None and behind.verdict == "double-nat"
    assert sum("Traceroute" in e for e in behind.evidence) == 1  # the path said once
    assert N.claimed_public_wan(obs()) is None


def test_private_wan_rules() -> None:
    assert N.private_wan(obs(upnp=UpnpInfo(False, found=True, wan_ipv4="192.168.0.2"))).verdict == "double-nat"  # type: ignore[union-attr]
    ten = N.private_wan(
        obs(upnp=UpnpInfo(False, found=True, wan_ipv4="10.0.0.2"), hops=("192.168.1.1", "10.0.0.1", "100.64.0.1"))
    )
    assert ten is not None and ten.verdict == "cgnat"
    assert N.private_wan(obs()) is None


def test_upstream_signalled_rule() -> None:
    no_wan = UpnpInfo(False, found=True, wan_ipv4=None)
    assert N.upstream_signalled(obs(upnp=no_wan)).verdict == "double-nat"  # type: ignore[union-attr]
    assert N.upstream_signalled(obs()) is None


@pytest.mark.parametrize(
    "hops,verdict",
    [
        (("192.168.1.1", "23.128.64.1"), "nat"),
        (("192.168.1.1", "192.168.0.1"), "double-nat"),
        (None, "unknown"),
    ],
)
def test_path_only_rule(hops, verdict) -> None:  # type: ignore[no-untyped-def]
    assert N.path_only(obs(hops=hops)).verdict == verdict


@pytest.mark.parametrize(
    "module",
    [
        "checks/findings.py",
        "checks/nat.py",
        "checks/summary.py",
        "checks/portcheck/verdict.py",
        "checks/portcheck/run.py",
        "checks/portcheck/ipv6.py",
        "checks/portmap/upnp_errors.py",
        "checks/dns/verify.py",
        "checks/reach.py",
    ],
)
def test_engine_sentences_name_no_cli_command_or_flag(module: str) -> None:
    """Issue 14: the views word the engine's next steps; its sentences never name a command or a
    flag (docstrings may)."""
    import io
    import re
    import tokenize
    from pathlib import Path

    source = (Path(__file__).resolve().parents[1] / module).read_text()
    offenders = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.STRING or tok.string.lstrip("rbfuRBFU").startswith(('"""', "'''")):
            continue
        if re.search(
            r"`ddns-wizard|ddns-wizard (diagnose|ports|upnp|update|verify|watch|probe-server)"
            r"|(^|[\s(`])--(upnp|keep|budget|ipv6|force|wait)\b",
            tok.string,
        ):
            offenders.append(f"{module}:{tok.start[0]}: {tok.string[:80]}")
    assert not offenders, "\n".join(offenders)
