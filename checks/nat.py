"""The NAT verdict: how many address translators sit between this host and the internet.

``decide_nat`` is pure: it weighs what the other probes found and returns a
verdict with the evidence as sentences a user can follow.  The signals, strongest
first:

1. The address this host uses to reach the internet (public, RFC 1918, RFC 6598).
2. The router's own WAN address, as UPnP IGD or NAT-PMP report it: public means
   one NAT; 100.64.0.0/10 means the ISP's carrier-grade NAT; RFC 1918 means a
   second private NAT (or, for 10/8, possibly the ISP's CGNAT — we say both).
   An IGD that answers but reports no external address (miniupnpd does this when
   its own WAN is private), or a NAT-PMP "network failure", also means another NAT
   upstream.
3. The router's WAN address compared with the address outside services see.
4. Traceroute hops (weak: ISPs number their own routers from private space too).

VPNs are excluded: a default route through a VPN explains a public address that
differs from the router's, and Tailscale's 100.64.0.0/10 addresses are not CGNAT.
"""

from __future__ import annotations

from .addresses import AddressClass, classify, describe_class, parse_ip
from .local import is_vpn_interface as _is_vpn_name
from .model import ExternalInfo, LocalInfo, NatResult, NatVerdictName, UpnpInfo

def is_vpn_interface(name: str | None, local: LocalInfo | None = None) -> bool:
    """A VPN/overlay interface: listed as one by checks.local, or named like one."""
    if not name:
        return False
    if local is not None and name in local.vpn_interfaces:
        return True
    return _is_vpn_name(name)


def _cls(address: str | None) -> AddressClass | None:
    if not address:
        return None
    ip = parse_ip(address)
    if ip is None or ip.version != 4:
        return None
    return classify(ip)


def _in_net_10(address: str) -> bool:
    return address.startswith("10.")


def router_wan(upnp: UpnpInfo) -> tuple[str | None, str | None]:
    """The router's WAN IPv4 and which protocol said so (IGD first, then NAT-PMP)."""
    if upnp.wan_ipv4 and parse_ip(upnp.wan_ipv4) is not None:
        return upnp.wan_ipv4, "UPnP"
    if upnp.natpmp_wan_ipv4 and parse_ip(upnp.natpmp_wan_ipv4) is not None:
        return upnp.natpmp_wan_ipv4, "NAT-PMP"
    return None, None


def _natpmp_network_failure(upnp: UpnpInfo) -> bool:
    # RFC 6886 result code 3 "Network Failure": miniupnpd answers it when its own
    # WAN address is private or missing.
    text = (upnp.natpmp_error or "").lower()
    return "network failure" in text or "result 3" in text or "code 3" in text


def upstream_nat_signalled(upnp: UpnpInfo) -> list[str]:
    """Sentences for router behaviour that only makes sense with another NAT upstream."""
    out: list[str] = []
    wan, _ = router_wan(upnp)
    if upnp.found and not upnp.wan_ipv4 and wan is None:
        out.append(
            "Your router answers UPnP but reports no external address; routers do that when "
            "their own internet-side address is private, i.e. another NAT sits in front of them."
        )
    if _natpmp_network_failure(upnp) and wan is None:
        out.append(
            "Your router's NAT-PMP service answers \"network failure\" when asked for its public "
            "address, which it does when it has no public address of its own."
        )
    return out


def hops_would_help(local: LocalInfo, upnp: UpnpInfo) -> bool:
    """Whether traceroute hops could change the verdict (so the runner waits for them)."""
    lcls = _cls(local.ipv4)
    if lcls is AddressClass.PUBLIC and not local.default_via_vpn:
        return False
    wan, _ = router_wan(upnp)
    wcls = _cls(wan)
    if wcls is AddressClass.PUBLIC or wcls is AddressClass.CGNAT:
        return False
    if wcls is AddressClass.PRIVATE and wan and not _in_net_10(wan):
        return False
    return True


def _hop_evidence(hops: tuple[str, ...], gateway: str | None) -> tuple[str | None, list[str]]:
    """A hint (``"nat"``, ``"cgnat"``, ``"private-upstream"``) from traceroute hops, with sentences.

    Hops come back without the ones that stayed silent, and routers rate-limit their
    ICMP replies, so positions are only trusted when the first hop that answered is our
    own gateway: then the next address is the first router beyond it that answered.
    """
    if not hops:
        return None, []
    shown = " → ".join(h if _cls(h) is not None else "*" for h in hops)
    if gateway is None or hops[0] != gateway:
        return None, [
            f"Traceroute ({shown}) got no answer from your router {gateway or ''}".rstrip()
            + " (routers limit these replies), so its hops are not used."
        ]
    after_router = hops[1:]
    classes = [_cls(h) for h in after_router]
    cgnat_hops = [h for h, c in zip(after_router, classes) if c is AddressClass.CGNAT]
    if cgnat_hops:
        return "cgnat", [
            f"Traceroute ({shown}) passes {cgnat_hops[0]}, an address from 100.64.0.0/10 (the range "
            "reserved for carrier-grade NAT) after your router; on its own that is weak evidence."
        ]
    if not classes or classes[0] is None:
        return None, [f"Traceroute ({shown}) shows nothing useful after your router."]
    if classes[0] is AddressClass.PUBLIC:
        return "nat", [
            f"Traceroute ({shown}): the next router after yours, {after_router[0]}, is public, "
            "so your router's internet side is connected directly to the ISP."
        ]
    if classes[0] is AddressClass.PRIVATE:
        return "private-upstream", [
            f"Traceroute ({shown}): the next router after yours, {after_router[0]}, is private. That "
            "is either a second router in your home or the ISP's own internal numbering, which "
            "traceroute cannot tell apart (weak evidence)."
        ]
    return None, [f"Traceroute hops: {shown}."]


def decide_nat(
    local: LocalInfo,
    external: ExternalInfo,
    upnp: UpnpInfo,
    hops: tuple[str, ...] | None,
) -> NatResult:
    """The NAT verdict with its evidence. Pure: no I/O."""
    evidence: list[str] = []
    hops_t = tuple(hops or ())
    wan, wan_source = router_wan(upnp)
    wcls = _cls(wan)
    ext = external.ipv4 if external.ipv4 and parse_ip(external.ipv4) is not None else None
    lcls = _cls(local.ipv4)
    via_vpn = local.default_via_vpn or (
        is_vpn_interface(local.interface, local) and lcls is not AddressClass.PUBLIC
    )

    def result(verdict: NatVerdictName) -> NatResult:
        return NatResult(verdict=verdict, router_wan_ipv4=wan, evidence=tuple(evidence),
                         traceroute_hops=hops_t)

    # --- 1. this host's own address ---
    if local.ipv4 is None or lcls is None:
        evidence.append(
            "This host has no IPv4 address on a route to the internet"
            + (f" ({local.error})" if local.error else "") + "."
        )
    else:
        where = f" on {local.interface}" if local.interface else ""
        if via_vpn:
            evidence.append(
                f"This host reaches the internet through the VPN interface {local.interface or '?'} "
                f"({local.ipv4}); the address outside services see is the VPN's exit, not your "
                "network's, so it says nothing about your router."
            )
            if lcls is AddressClass.CGNAT:
                evidence.append(
                    f"{local.ipv4} lies in 100.64.0.0/10, but on a VPN interface (Tailscale and others "
                    "number their networks from this range); it is not your ISP's carrier-grade NAT."
                )
        else:
            evidence.append(f"This host uses {local.ipv4}{where}, {describe_class(lcls)}.")

    if ext:
        srcs = [s for s in external.sources if s.family == 4 and s.value == ext]
        evidence.append(
            f"Outside services see your public IPv4 as {ext}"
            + (f" ({len(srcs)} of {len([s for s in external.sources if s.family == 4 and s.value])} answers agree)"
               if srcs else "") + "."
        )
    else:
        evidence.append("No outside service told us your public IPv4 address.")

    if wan:
        evidence.append(f"Your router reports its internet-side (WAN) address over {wan_source} as {wan}, "
                        f"{describe_class(wcls) if wcls else 'not an IPv4 address'}.")
        if upnp.wan_ipv4 and upnp.natpmp_wan_ipv4 and upnp.wan_ipv4 != upnp.natpmp_wan_ipv4:
            evidence.append(f"UPnP and NAT-PMP disagree on the router's WAN address "
                            f"({upnp.wan_ipv4} vs {upnp.natpmp_wan_ipv4}).")
    upstream = upstream_nat_signalled(upnp)
    evidence.extend(upstream)
    if not upnp.found and not upnp.natpmp_available and not wan and not upstream:
        evidence.append("Your router does not answer UPnP or NAT-PMP, so it cannot tell us its WAN address.")

    hop_hint, hop_sentences = _hop_evidence(hops_t, local.gateway_ipv4) if hops_t else (None, [])

    # --- 2. default route through a VPN: judge the router only ---
    if via_vpn:
        evidence.extend(hop_sentences if hop_hint is not None else [])
        if wcls is AddressClass.PUBLIC:
            evidence.append("Your router itself holds a public address: one NAT between your LAN and the internet.")
            return result("nat")
        if wcls is AddressClass.CGNAT:
            evidence.append("The router's WAN address is in the carrier-grade NAT range.")
            return result("cgnat")
        if wcls is AddressClass.PRIVATE:
            evidence.append("The router's WAN address is private: another NAT sits in front of it.")
            return result("double-nat")
        evidence.append("With the VPN carrying your traffic, nothing else here shows what your own network does.")
        return result("unknown")

    # --- 3. this host holds a public address ---
    if lcls is AddressClass.PUBLIC:
        if ext == local.ipv4:
            evidence.append("That is the address this host holds: no NAT between it and the internet.")
            return result("none")
        if ext:
            evidence.append(
                f"This host holds a public address, yet its traffic leaves from {ext}: a firewall, "
                "proxy or NAT further on translates it. Connections to "
                f"{local.ipv4} may still arrive; only a test from outside can tell."
            )
            return result("unknown")
        evidence.append("No outside service confirmed that this public address is not translated further on.")
        return result("unknown")

    # --- 4. this host sits on shared address space itself (phone hotspot, ISP CPE in routing mode) ---
    if lcls is AddressClass.CGNAT and wcls is not AddressClass.PUBLIC:
        evidence.append(
            f"{local.ipv4} is in 100.64.0.0/10, the shared range ISPs use behind carrier-grade NAT, "
            "and it is not on a VPN interface."
        )
        return result("cgnat")

    if local.ipv4 is None:
        return result("unknown")

    # --- 5. a private host: what is the router's WAN? ---
    if wcls is AddressClass.PUBLIC:
        if ext is None or ext == wan:
            if ext == wan:
                evidence.append("The router's WAN address is the public address outside services see: "
                                "exactly one NAT, your router's.")
            else:
                evidence.append("The router's WAN address is public (not confirmed from outside).")
            return result("nat")
        evidence.append(
            f"But outside services see {ext}, not the router's {wan}: something past your router "
            "translates its traffic again. ISPs that run carrier-grade NAT on public-looking "
            "addresses do this; a VPN configured on the router itself would look the same."
        )
        return result("cgnat")

    if wcls is AddressClass.CGNAT:
        evidence.append(
            "100.64.0.0/10 is reserved for carrier-grade NAT (RFC 6598): your ISP shares one public "
            "address among many customers" + (f" (yours is seen as {ext})" if ext else "") + "."
        )
        return result("cgnat")

    if wcls is AddressClass.PRIVATE and wan:
        if not _in_net_10(wan):
            evidence.append(
                f"A private WAN address like {wan} means your router is plugged into another router "
                "(usually the ISP's modem-router), which translates a second time: double NAT."
            )
            if hop_hint == "cgnat":
                evidence.extend(hop_sentences)
            return result("double-nat")
        # 10/8: a modem-router at home, or the ISP's CGNAT numbered from RFC 1918.
        evidence.extend(hop_sentences)
        if hop_hint == "cgnat":
            evidence.append(
                f"A 10.x WAN address ({wan}) can be an upstream router at home or the ISP's carrier-grade "
                "NAT; the 100.64.0.0/10 hop points at the ISP."
            )
            return result("cgnat")
        evidence.append(
            f"A 10.x WAN address ({wan}) is ambiguous: it is what many ISP modem-routers hand out "
            "(double NAT in your home: fixable with bridge mode), but some ISPs number their "
            "carrier-grade NAT from 10.0.0.0/8 too (not fixable at home). Check whether a second box "
            "sits between your router and the line; if not, it is your ISP's CGNAT."
        )
        return result("double-nat")

    if wan and wcls is not None:
        evidence.append(
            f"{wan} is not a public address, so another device translates your router's traffic again."
        )
        return result("double-nat")

    if upstream:
        # The router admits it has no public address, but not which kind of NAT sits upstream.
        evidence.extend(hop_sentences)
        if hop_hint == "cgnat":
            return result("cgnat")
        evidence.append(
            "That upstream NAT is either a second router in your home (double NAT) or your ISP's "
            "carrier-grade NAT; nothing here tells them apart"
            + (", but the private hop after your router fits a box in your home better." if hop_hint == "private-upstream"
               else ".")
        )
        return result("double-nat")

    # --- 6. no word from the router: traceroute is all we have ---
    evidence.extend(hop_sentences)
    if hop_hint == "nat":
        return result("nat")
    if hop_hint == "cgnat":
        return result("cgnat")
    evidence.append(
        "Without the router's WAN address we cannot tell whether your router is the only NAT."
    )
    return result("unknown")
