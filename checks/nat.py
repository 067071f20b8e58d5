"""The NAT verdict: how many address translators sit between this host and the internet.

``decide_nat`` is pure: it reads what the other probes found once (``Observations``),
says what was observed, and asks the small named rules in ``NAT_RULES`` in order; the
first that decides gives the verdict and its sentences (each rule is testable alone:
tests/test_rules.py).  The strongest evidence
decides, in this order (issue 11):

1. **What the outside sees** (the public IPv4 the echo services agree on), next to
   this host's own address (public, RFC 1918, RFC 6598): a router WAN address the
   outside confirms is one NAT, whatever else the path looks like.
2. **The path**: the hop right after the router (traceroute, trusted only when the
   first hop that answered is our own gateway).  In 100.64.0.0/10 → the ISP's
   carrier-grade NAT; in DS-Lite's 192.0.0.0/29 → the ISP's AFTR (IPv4 shared,
   IPv6 native); private (RFC 1918) while the outside sees a public address → a
   second NAT (for 10/8 we also say that some ISPs number their own routers so).
3. **What the router claims** (UPnP IGD / NAT-PMP): a WAN in 100.64.0.0/10 or
   192.0.0.0/29 → carrier NAT; RFC 1918 → a second private NAT (10/8: possibly the
   ISP's CGNAT — we say both); an IGD without an external address or a NAT-PMP
   "network failure" → another NAT upstream.  A *public* claim the outside does not
   see is not believed on its own: with a private hop after the router it was a
   stale or configured value (miniupnpd's ``ext_ip``) and the verdict is double
   NAT; with nothing else to go on it is ``unknown`` with both readings.

VPNs are excluded: a default route through a VPN explains a public address that
differs from the router's, and Tailscale's 100.64.0.0/10 addresses are not CGNAT.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from checks.addresses import AddressClass, classify, describe_class, parse_ip
from checks.model import ExternalInfo, LocalInfo, NatResult, NatVerdictName, UpnpInfo
from checks.probes.local import is_vpn_interface as _is_vpn_name

_DS_LITE_NET = ipaddress.ip_network("192.0.0.0/29")


def is_vpn_interface(name: str | None, local: LocalInfo | None = None) -> bool:
    """A VPN/overlay interface: listed as one by checks.probes.local, or named like one."""
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
            'Your router\'s NAT-PMP service answers "network failure" when asked for its public '
            "address, which it does when it has no public address of its own."
        )
    return out


def in_ds_lite_range(address: str | None) -> bool:
    """192.0.0.0/29: the addresses DS-Lite (RFC 6333) gives the tunnel between the home
    router (B4, usually 192.0.0.2) and the ISP's AFTR (192.0.0.1), which does the NAT."""
    ip = parse_ip(address) if address else None
    return ip is not None and ip.version == 4 and ip in _DS_LITE_NET


def _carrier_address(address: str | None) -> bool:
    """An address that by itself shows the ISP's NAT: 100.64.0.0/10 or DS-Lite's 192.0.0.0/29."""
    return _cls(address) is AddressClass.CGNAT or in_ds_lite_range(address)


def hops_would_help(
    local: LocalInfo, upnp: UpnpInfo, external_ipv4: str | None = None, *, confirm_claim: bool = False
) -> bool:
    """Whether traceroute hops could change the verdict (so the runner waits for them).

    The router's word settles nothing when the outside contradicts it: a router that claims a
    public WAN address (``external_ipv4`` differs from it) needs the path to be judged.
    ``confirm_claim``: the outside's view is not known yet (a port check asks it at the same
    time), so a public claim still needs the path."""
    lcls = _cls(local.ipv4)
    if lcls is AddressClass.PUBLIC and not local.default_via_vpn:
        return False
    wan, _ = router_wan(upnp)
    wcls = _cls(wan)
    if wcls is AddressClass.PUBLIC:
        if external_ipv4 and parse_ip(external_ipv4) is not None:
            return external_ipv4 != wan
        return confirm_claim
    if _carrier_address(wan):
        return False
    if wcls is AddressClass.PRIVATE and wan and not _in_net_10(wan):
        return False
    return True


@dataclass(frozen=True)
class _Path:
    """What a traceroute shows right after the router."""

    trusted: bool  # the first hop that answered is our own gateway
    shown: str  # "a → b → c" for the evidence
    next_hop: str | None = None  # the first router after ours that answered
    carrier_hop: str | None = None  # a 100.64.0.0/10 hop anywhere after our router

    @property
    def next_cls(self) -> AddressClass | None:
        return _cls(self.next_hop)

    @property
    def next_private(self) -> bool:
        return self.next_cls is AddressClass.PRIVATE


def _path(hops: tuple[str, ...], gateway: str | None) -> _Path | None:
    """Hops come back without the ones that stayed silent, and routers rate-limit their ICMP
    replies, so positions are only trusted when the first hop that answered is our own
    gateway: then the next address is the first router beyond it that answered."""
    if not hops:
        return None
    shown = " → ".join(h if _cls(h) is not None else "*" for h in hops)
    if gateway is None or hops[0] != gateway:
        return _Path(False, shown)
    after = [h for h in hops[1:] if _cls(h) is not None]
    carrier = next((h for h in after if _cls(h) is AddressClass.CGNAT), None)
    return _Path(True, shown, after[0] if after else None, carrier)


def _path_sentence(path: _Path, gateway: str | None) -> str:
    if not path.trusted:
        return (
            f"Traceroute ({path.shown}) got no answer from your router {gateway or ''}".rstrip()
            + " (routers limit these replies), so its hops are not used."
        )
    nxt = path.next_hop
    if nxt is None:
        return f"Traceroute ({path.shown}) shows nothing useful after your router."
    if in_ds_lite_range(nxt):
        return (
            f"Traceroute ({path.shown}): the next router after yours, {nxt}, is in 192.0.0.0/29, the "
            "range DS-Lite (RFC 6333) uses for the tunnel from your router to the ISP's AFTR, the "
            "carrier-grade NAT all of the ISP's DS-Lite customers share for IPv4."
        )
    cls = path.next_cls
    if cls is None:  # not an IPv4 address (_path keeps only those): nothing to say about it
        return f"Traceroute ({path.shown}) shows nothing useful after your router."
    if cls is AddressClass.CGNAT:
        return (
            f"Traceroute ({path.shown}): the next router after yours, {nxt}, is in 100.64.0.0/10, the "
            "range reserved for carrier-grade NAT (RFC 6598)."
        )
    if cls is AddressClass.PUBLIC:
        return (
            f"Traceroute ({path.shown}): the next router after yours, {nxt}, is public, so your "
            "router's internet side is connected directly to the ISP."
        )
    if cls is AddressClass.PRIVATE:
        return f"Traceroute ({path.shown}): the next router after yours, {nxt}, holds a private (RFC 1918) address."
    return f"Traceroute ({path.shown}): the next router after yours is {nxt}, {describe_class(cls)}."


_TEN_CAVEAT = (
    "A 10.x address is what many ISP modem-routers use at home, but some ISPs number their "
    "carrier-grade NAT or their own first router from 10.0.0.0/8 too: if your router's status page "
    "shows {ext} as its internet (WAN) address, there is only one NAT after all."
)


@dataclass(frozen=True)
class Observations:
    """What the probes saw, read once for every NAT rule: addresses and their classes, the
    router's claim, the path after the router and the router's own hints of an upstream NAT."""

    local: LocalInfo
    external: ExternalInfo
    upnp: UpnpInfo
    hops: tuple[str, ...]
    wan: str | None  # the router's WAN IPv4 (IGD first, then NAT-PMP)
    wan_source: str | None  # "UPnP" or "NAT-PMP"
    ext: str | None  # the public IPv4 the outside agreed on
    via_vpn: bool  # the default route goes through a VPN
    path: _Path | None  # what a traceroute shows after the router
    upstream: tuple[str, ...]  # the router's behaviour that only fits another NAT upstream

    @classmethod
    def from_probes(
        cls, local: LocalInfo, external: ExternalInfo, upnp: UpnpInfo, hops: tuple[str, ...] | None
    ) -> Observations:
        hops_t = tuple(hops or ())
        wan, wan_source = router_wan(upnp)
        ext = external.ipv4 if external.ipv4 and parse_ip(external.ipv4) is not None else None
        lcls = _cls(local.ipv4)
        via_vpn = local.default_via_vpn or (
            is_vpn_interface(local.interface, local) and lcls is not AddressClass.PUBLIC
        )
        path = _path(hops_t, local.gateway_ipv4) if hops_t else None
        return cls(
            local, external, upnp, hops_t, wan, wan_source, ext, via_vpn, path, tuple(upstream_nat_signalled(upnp))
        )

    @property
    def wcls(self) -> AddressClass | None:
        return _cls(self.wan)

    @property
    def lcls(self) -> AddressClass | None:
        return _cls(self.local.ipv4)

    @property
    def nxt(self) -> str | None:
        """The first router after ours that answered, when the path can be trusted."""
        return self.path.next_hop if self.path is not None and self.path.trusted else None

    @property
    def no_network(self) -> bool:
        return self.local.gateway_ipv4 is None and self.local.ipv4 is None

    def path_lines(self) -> list[str]:
        """The traceroute sentence, for the rule that leans on the path (said once per run)."""
        return [_path_sentence(self.path, self.local.gateway_ipv4)] if self.path is not None else []


@dataclass(frozen=True)
class Call:
    """A NAT rule's decision: the verdict and the sentences that led to it."""

    verdict: NatVerdictName
    evidence: tuple[str, ...] = ()
    ds_lite: bool = False


NatRule = Callable[[Observations], "Call | None"]


def observed(o: Observations) -> list[str]:
    """The sentences every verdict starts with: this host, the outside's view, the router's claim."""
    evidence: list[str] = []
    local, external, upnp = o.local, o.external, o.upnp
    if local.ipv4 is None or o.lcls is None:
        evidence.append(
            "This host has no IPv4 address on a route to the internet"
            + (f" ({local.error})" if local.error else "")
            + "."
        )
    elif o.via_vpn:
        evidence.append(
            f"This host reaches the internet through the VPN interface {local.interface or '?'} "
            f"({local.ipv4}); the address outside services see is the VPN's exit, not your "
            "network's, so it says nothing about your router."
        )
        if o.lcls is AddressClass.CGNAT:
            evidence.append(
                f"{local.ipv4} lies in 100.64.0.0/10, but on a VPN interface (Tailscale and others "
                "number their networks from this range); it is not your ISP's carrier-grade NAT."
            )
    else:
        where = f" on {local.interface}" if local.interface else ""
        evidence.append(f"This host uses {local.ipv4}{where}, {describe_class(o.lcls)}.")
    if o.ext:
        answered = [s for s in external.sources if s.family == 4 and s.value]
        srcs = [s for s in answered if s.value == o.ext]
        evidence.append(
            f"Outside services see your public IPv4 as {o.ext}"
            + (f" ({len(srcs)} of {len(answered)} answers agree)" if srcs else "")
            + "."
        )
    else:
        evidence.append("No outside service told us your public IPv4 address.")
    if o.wan:
        wcls = o.wcls
        evidence.append(
            f"Your router reports its internet-side (WAN) address over {o.wan_source} as {o.wan}, "
            f"{describe_class(wcls) if wcls else 'not an IPv4 address'}."
        )
        if upnp.wan_ipv4 and upnp.natpmp_wan_ipv4 and upnp.wan_ipv4 != upnp.natpmp_wan_ipv4:
            evidence.append(
                f"UPnP and NAT-PMP disagree on the router's WAN address ({upnp.wan_ipv4} vs {upnp.natpmp_wan_ipv4})."
            )
    evidence.extend(o.upstream)
    if not o.no_network and not upnp.found and not upnp.natpmp_available and not o.wan and not o.upstream:
        evidence.append("Your router does not answer UPnP or NAT-PMP, so it cannot tell us its WAN address.")
    return evidence


# --- the rules, strongest evidence first; the first that decides wins ---


def no_network(o: Observations) -> Call | None:
    """No address and no default route: no router to ask, nothing outside to reach."""
    if not o.no_network:
        return None
    # Saying the router "does not answer" would mislead: there is none to ask (issue 19).
    return Call(
        "unknown",
        ("No network: without an address and a default route there is no router to ask and nothing outside to reach.",),
    )


def vpn_route(o: Observations) -> Call | None:
    """The default route goes through a VPN: only the router's own word says anything."""
    if not o.via_vpn:
        return None
    ev = o.path_lines() if o.nxt is not None else []
    wcls = o.wcls
    if wcls is AddressClass.PUBLIC:
        return Call(
            "nat", (*ev, "Your router itself holds a public address: one NAT between your LAN and the internet.")
        )
    if wcls is AddressClass.CGNAT:
        return Call("cgnat", (*ev, "The router's WAN address is in the carrier-grade NAT range."))
    if in_ds_lite_range(o.wan):
        return Call(
            "cgnat",
            (*ev, "The router's WAN address is DS-Lite's (192.0.0.0/29): the ISP's AFTR NATs its IPv4."),
            ds_lite=True,
        )
    if wcls is AddressClass.PRIVATE:
        return Call("double-nat", (*ev, "The router's WAN address is private: another NAT sits in front of it."))
    return Call(
        "unknown", (*ev, "With the VPN carrying your traffic, nothing else here shows what your own network does.")
    )


def public_host(o: Observations) -> Call | None:
    """This host holds a public address: no NAT if the outside sees that same address."""
    if o.lcls is not AddressClass.PUBLIC:
        return None
    local, ext = o.local, o.ext
    if ext == local.ipv4:
        return Call("none", ("That is the address this host holds: no NAT between it and the internet.",))
    if ext:
        return Call(
            "unknown",
            (
                f"This host holds a public address, yet its traffic leaves from {ext}: a firewall, "
                f"proxy or NAT further on translates it. Connections to {local.ipv4} may still arrive; only a "
                "test from outside can tell.",
            ),
        )
    return Call("unknown", ("No outside service confirmed that this public address is not translated further on.",))


def shared_host_address(o: Observations) -> Call | None:
    """This host itself sits on shared address space (a phone hotspot, an ISP box in routing mode)."""
    local = o.local
    if o.lcls is AddressClass.CGNAT and o.wcls is not AddressClass.PUBLIC:
        return Call(
            "cgnat",
            (
                f"{local.ipv4} is in 100.64.0.0/10, the shared range ISPs use behind carrier-grade "
                "NAT, and it is not on a VPN interface.",
            ),
        )
    if in_ds_lite_range(local.ipv4):
        return Call(
            "cgnat",
            (
                f"{local.ipv4} is in 192.0.0.0/29, the range of a DS-Lite tunnel (RFC 6333): this host is the "
                "tunnel's end, and its IPv4 traffic leaves through the ISP's carrier-grade NAT (AFTR).",
            ),
            ds_lite=True,
        )
    return None


def no_host_address(o: Observations) -> Call | None:
    """Without an IPv4 address of its own, nothing below can be weighed."""
    return Call("unknown") if o.local.ipv4 is None else None


def router_confirmed(o: Observations) -> Call | None:
    """The outside sees the router's public WAN address: one NAT, whatever the hops look like."""
    if o.wcls is AddressClass.PUBLIC and o.ext == o.wan:
        return Call(
            "nat",
            ("The router's WAN address is the public address outside services see: exactly one NAT, your router's.",),
        )
    return None


def ds_lite_line(o: Observations) -> Call | None:
    """The router's WAN address or the next hop is DS-Lite's: IPv4 shared, IPv6 native."""
    wan, nxt, ext = o.wan, o.nxt, o.ext
    if not (in_ds_lite_range(wan) or in_ds_lite_range(nxt)):
        return None
    if in_ds_lite_range(wan):
        ev = o.path_lines()
        where = f"Your router's WAN address {wan}"
    else:
        ev = []
        where = f"Traceroute ({o.path.shown if o.path else nxt}): the hop after your router, {nxt},"
    ev.append(
        f"{where} is DS-Lite's (RFC 6333): your line carries IPv4 inside IPv6 to the ISP's AFTR, "
        "which translates it for many customers at once"
        + (f" (yours is seen as {ext})" if ext else "")
        + ". IPv4 is shared and cannot be forwarded to you; IPv6 is native: your devices hold "
        "their own public IPv6 addresses, with no NAT in the way."
    )
    return Call("cgnat", tuple(ev), ds_lite=True)


def carrier_wan(o: Observations) -> Call | None:
    """The router's WAN address is in 100.64.0.0/10: the ISP's carrier-grade NAT."""
    if o.wcls is not AddressClass.CGNAT:
        return None
    return Call(
        "cgnat",
        (
            "100.64.0.0/10 is reserved for carrier-grade NAT (RFC 6598): your ISP shares one public "
            "address among many customers" + (f" (yours is seen as {o.ext})" if o.ext else "") + ".",
        ),
    )


def carrier_next_hop(o: Observations) -> Call | None:
    """The router right after ours is in 100.64.0.0/10 (and ours does not admit a private WAN)."""
    if not (o.nxt is not None and _cls(o.nxt) is AddressClass.CGNAT and o.wcls is not AddressClass.PRIVATE):
        return None
    return Call(
        "cgnat",
        (
            *o.path_lines(),
            "The router right after yours sits in the carrier-grade NAT range: your ISP translates "
            "your traffic a second time and shares the public address"
            + (f" {o.ext}" if o.ext else "")
            + " among many customers.",
        ),
    )


def claimed_public_wan(o: Observations) -> Call | None:
    """The router claims a public WAN the outside does not see: the path decides."""
    if o.wcls is not AddressClass.PUBLIC:
        return None
    wan, ext, nxt, path = o.wan, o.ext, o.nxt, o.path
    if ext is None:
        return Call("nat", ("The router's WAN address is public (not confirmed from outside).",))
    ev = [
        f"But outside services see {ext}, not the {wan} your router claims: the claim and the "
        "outside disagree, and the outside is the stronger evidence."
    ]
    if nxt is not None and path is not None and path.next_private:
        ev += o.path_lines()
        ev.append(
            f"With a private router right after yours, the claimed {wan} is not your router's real "
            "internet-side address (a stale or configured value, e.g. miniupnpd's ext_ip): your router "
            f"sits behind another NAT, which the outside sees as {ext}. That is double NAT, not "
            "carrier-grade NAT on the router's word alone."
        )
        if _in_net_10(nxt):
            ev.append(_TEN_CAVEAT.format(ext=ext))
        return Call("double-nat", tuple(ev))
    ev += o.path_lines()
    ev.append(
        "Two readings fit: your ISP translates again after your router (carrier-grade NAT on "
        "public-looking addresses, or a VPN running on the router), or the router's claim is stale "
        "or configured and it may be the only NAT. Your router's status page, or a test of a port "
        "from outside, settles it."
    )
    return Call("unknown", tuple(ev))


def private_wan(o: Observations) -> Call | None:
    """The router admits a private WAN: double NAT, except that 10/8 may be the ISP's CGNAT."""
    wan, path = o.wan, o.path
    if not (o.wcls is AddressClass.PRIVATE and wan):
        return None
    if not _in_net_10(wan):
        ev = [
            f"A private WAN address like {wan} means your router is plugged into another router "
            "(usually the ISP's modem-router), which translates a second time: double NAT."
        ]
        if path is not None and path.carrier_hop:
            ev += o.path_lines()
        return Call("double-nat", tuple(ev))
    # 10/8: a modem-router at home, or the ISP's CGNAT numbered from RFC 1918.
    ev = o.path_lines()
    if path is not None and path.trusted and path.carrier_hop:
        ev.append(
            f"A 10.x WAN address ({wan}) can be an upstream router at home or the ISP's carrier-grade "
            f"NAT; the 100.64.0.0/10 hop ({path.carrier_hop}) points at the ISP."
        )
        return Call("cgnat", tuple(ev))
    ev.append(
        f"A 10.x WAN address ({wan}) is ambiguous: it is what many ISP modem-routers hand out "
        "(double NAT in your home: fixable with bridge mode), but some ISPs number their "
        "carrier-grade NAT from 10.0.0.0/8 too (not fixable at home). Check whether a second box "
        "sits between your router and the line; if not, it is your ISP's CGNAT."
    )
    return Call("double-nat", tuple(ev))


def non_public_wan(o: Observations) -> Call | None:
    """Any other non-public WAN address: another device translates again."""
    if o.wan and o.wcls is not None:
        return Call(
            "double-nat",
            (f"{o.wan} is not a public address, so another device translates your router's traffic again.",),
        )
    return None


def upstream_signalled(o: Observations) -> Call | None:
    """The router admits it has no public address, but not which kind of NAT sits upstream."""
    if not o.upstream:
        return None
    path, nxt = o.path, o.nxt
    ev = o.path_lines()
    if path is not None and path.trusted and path.carrier_hop:
        ev.append(
            f"The path passes {path.carrier_hop}, in the range reserved for carrier-grade NAT: the NAT "
            "in front of your router is most likely your ISP's."
        )
        return Call("cgnat", tuple(ev))
    if nxt is not None and path is not None and path.next_private and not _in_net_10(nxt):
        ev.append(
            f"The private router right after yours ({nxt}) is the NAT in front of it: a second router "
            "in your home (usually the ISP's modem-router), i.e. double NAT."
        )
        return Call("double-nat", tuple(ev))
    ev.append(
        "That upstream NAT is either a second router in your home (double NAT) or your ISP's "
        "carrier-grade NAT; nothing here tells them apart"
        + (
            ", but the private hop after your router fits a box in your home better."
            if nxt is not None and path is not None and path.next_private
            else "."
        )
    )
    return Call("double-nat", tuple(ev))


def path_only(o: Observations) -> Call:
    """No word from the router: the outside and the path decide, or nothing does."""
    ev = o.path_lines()
    nxt, path, ext = o.nxt, o.path, o.ext
    if nxt is not None and _cls(nxt) is AddressClass.PUBLIC:
        return Call("nat", tuple(ev))
    if nxt is not None and path is not None and path.next_private:
        if ext:
            ev.append(
                f"The router after yours holds a private address while the outside sees the public {ext}: "
                "another NAT sits between your router and the internet (a second router, usually the "
                "ISP's modem-router): double NAT."
            )
            if _in_net_10(nxt):
                ev.append(_TEN_CAVEAT.format(ext=ext))
            return Call("double-nat", tuple(ev))
        ev.append("No outside service answered, so the private hop after your router cannot be weighed.")
        return Call("unknown", tuple(ev))
    ev.append("Without the router's WAN address we cannot tell whether your router is the only NAT.")
    return Call("unknown", tuple(ev))


# Strongest evidence first (module docstring): the first rule that decides gives the verdict.
NAT_RULES: tuple[NatRule, ...] = (
    no_network,
    vpn_route,
    public_host,
    shared_host_address,
    no_host_address,
    router_confirmed,
    ds_lite_line,
    carrier_wan,
    carrier_next_hop,
    claimed_public_wan,
    private_wan,
    non_public_wan,
    upstream_signalled,
    path_only,
)


def decide_nat(
    local: LocalInfo,
    external: ExternalInfo,
    upnp: UpnpInfo,
    hops: tuple[str, ...] | None,
) -> NatResult:
    """The NAT verdict with its evidence. Pure: no I/O.

    What was observed, then the sentences of the first rule in ``NAT_RULES`` that decides:
    what the outside sees, then the path (the hop right after the router), then what the
    router claims about itself."""
    o = Observations.from_probes(local, external, upnp, hops)
    evidence = observed(o)
    for rule in NAT_RULES:
        call = rule(o)
        if call is not None:
            break
    else:  # pragma: no cover - path_only always decides
        call = Call("unknown")
    return NatResult(
        verdict=call.verdict,
        router_wan_ipv4=o.wan,
        evidence=tuple(evidence) + call.evidence,
        traceroute_hops=o.hops,
        ds_lite=call.ds_lite,
    )
