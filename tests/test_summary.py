"""checks.summary.hosting_verdict: the headline every view shows first (issue 11: later facts
do not contradict the diagnosis; IPv6 "works" only once tested from outside)."""

from __future__ import annotations

from dataclasses import replace

from checks.findings import build_findings
from checks.model import ExternalInfo, Ipv6Address, LocalInfo, NatResult, Port6Result, UpnpInfo
from checks.summary import hosting_verdict
from tests.samples import PUBLIC_V6, home_diagnosis

CGNAT = NatResult("cgnat", "100.64.1.20", ("...",))


def test_cgnat_with_an_untested_ipv6_address_says_it_may_work_not_that_it_works() -> None:
    v = hosting_verdict(home_diagnosis(nat=CGNAT))
    assert v.answer == "no"
    assert "IPv6 works" not in v.reason
    assert "may work" in v.reason and "over IPv6" in v.reason and "--ipv6" not in v.reason


def test_ipv6_works_only_after_an_inbound_test_said_open() -> None:
    opened = (Port6Result(443, "tcp", "open", PUBLIC_V6, ("reached",)),)
    v = hosting_verdict(home_diagnosis(nat=CGNAT, ports_ipv6=opened))
    assert "IPv6 works here: 443/tcp tested open" in v.reason
    firewalled = (Port6Result(443, "tcp", "firewalled", PUBLIC_V6, ("dropped",)),)
    v = hosting_verdict(home_diagnosis(nat=CGNAT, ports_ipv6=firewalled))
    assert "IPv6 works" not in v.reason and "IPv6 firewall" in v.reason


def test_no_ipv6_address_says_nothing_about_ipv6() -> None:
    d = home_diagnosis(nat=CGNAT)
    d = replace(d, local=replace(d.local, ipv6_global=()))
    assert "IPv6" not in hosting_verdict(d).reason


def test_ds_lite_says_ipv4_shared_and_ipv6_native() -> None:
    v = hosting_verdict(home_diagnosis(nat=NatResult("cgnat", None, ("...",), ds_lite=True)))
    assert v.answer == "no" and "DS-Lite" in v.headline
    assert "IPv6 is native" in v.headline and "AFTR" in v.reason


def test_ds_lite_finding_names_both_families() -> None:
    local = LocalInfo("eth0", "192.168.1.100", "192.168.1.1", ipv6_global=(Ipv6Address(PUBLIC_V6, "eth0"),))
    fs = build_findings(
        "online",
        local,
        ExternalInfo("23.128.64.210", None, True),
        NatResult("cgnat", None, ("...",), ds_lite=True),
        UpnpInfo(available=False),
    )
    (f,) = [f for f in fs if f.id == "cgnat"]
    assert "DS-Lite" in f.title and "IPv6 is native" in f.detail and "23.128.64.210" in f.detail
    assert "dual stack" in f.fix and PUBLIC_V6 in f.fix


def test_offline_headline_says_no_network_plainly() -> None:
    """Issue 19: offline in a namespace with no route read "Could not tell which NAT"."""
    from checks.model import Diagnosis, UpnpInfo
    from checks.nat import decide_nat

    local = LocalInfo(None, None, None, error="no IPv4 route to the internet")
    none = ExternalInfo(None, None, True)
    nat = decide_nat(local, none, UpnpInfo(available=False, found=False), None)
    d = Diagnosis(
        generated_at="2026-01-01T00:00:00Z",
        duration_ms=5.0,
        connectivity="offline",
        local=local,
        external=none,
        nat=nat,
        upnp=UpnpInfo(available=False, found=False),
        findings=(),
    )
    v = hosting_verdict(d)
    assert v.headline.startswith("No network")
    assert "no route" in v.reason
    assert not any("UPnP" in e for e in nat.evidence) and "No network" in nat.evidence[-1]
