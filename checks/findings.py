"""Findings: what a diagnosis means for someone who wants a server reachable by name.

``RULES`` is the list of small named rules, each a pure function of ``Facts`` (what the
probes found and the NAT verdict) returning the ``Finding`` objects it raises, with
stable ids (DESIGN.md), a severity, a plain title, the detail and the fix; each rule can
be tested alone (tests/test_rules.py). ``build_findings`` runs them all and sorts the
result, the most serious first.

The sentences never name a CLI command or flag: next steps a view can offer as a
command (or a key) are codes in ``Finding.actions`` (``ACTIONS``), which the CLI, the
TUI and the reports each word their own way.

Stable ids: ``offline``, ``limited-connectivity``, ``public-address``,
``port-forward-possible``, ``cgnat``, ``double-nat``, ``nat-unknown``, ``no-upnp``,
``upnp-no-wan``, ``ip-disagreement``, ``dns-interception``, ``vpn-default-route``,
``symmetric-nat``, ``ipv6-available``, ``private-ip-published``, ``exposed-service``,
``slow-line``.
The one-line answer every view shows first is checks.summary.hosting_verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from checks.addresses import is_public, parse_ip
from checks.model import (
    Connectivity,
    ExternalInfo,
    ExternalSource,
    Finding,
    Ipv6Address,
    LocalInfo,
    NatResult,
    PortMapping,
    UpnpInfo,
)
from checks.risky import risky_service

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2, "ok": 3}

# Next-step codes a finding (or a port verdict) can carry; the views word them.
ACTIONS = (
    "diagnose-longer",  # run the diagnosis again with a larger time budget
    "keep-updated",  # keep the DDNS name updated (a long-running updater)
    "map-port",  # let the router forward the port (UPnP / NAT-PMP)
    "map-and-test",  # test a port with a router mapping and keep it
    "test-port",  # test a port from outside
    "test-port-ipv6",  # test a port from outside over IPv6
    "remove-mapping",  # remove a router mapping
    "update",  # send the current public address to the provider
    "verify",  # ask the name's DNS servers and public resolvers again
    "diagnose",  # a full diagnosis: what sits between this network and the internet
    "list-mappings",  # the forwards the router holds
    "probe-server",  # run the project's probe server on a machine outside this network
)

# A line whose first answers take longer than this is slow (satellite, congested mobile).
SLOW_LINE_MS = 500.0


def line_rtt_ms(sources: Sequence[ExternalSource]) -> float | None:
    """The line's round trip as the fastest answer shows it, or None when nothing answered.

    A DNS or STUN answer is one round trip; an HTTPS echo needs about three (TCP, TLS,
    the request), so its time counts a third."""
    times = [s.ms if s.method in ("dns", "stun") else s.ms / 3 for s in sources if s.value and s.ms > 0]
    return min(times) if times else None


def _slow_line(external: ExternalInfo) -> Finding | None:
    rtt = line_rtt_ms(external.sources)
    if rtt is None or rtt <= SLOW_LINE_MS:
        return None
    fastest = min(
        (s for s in external.sources if s.value and s.ms > 0),
        key=lambda s: s.ms if s.method in ("dns", "stun") else s.ms / 3,
    )
    how = f"the fastest, from {fastest.method} {fastest.endpoint}, took {fastest.ms / 1000:.2f} s" + (
        "" if fastest.method in ("dns", "stun") else ", about three round trips"
    )
    return Finding(
        "slow-line",
        "warning",
        f"Your line is slow: about {rtt / 1000:.1f} s per round trip",
        f"Answers from the internet take about {rtt:.0f} ms per round trip: {how}. A typical wired line "
        "needs 10–50 ms. Satellite links in geostationary orbit (600 ms and more) and congested mobile "
        "networks look like this. Hosting still works, but everyone who connects pays this delay on "
        "every exchange: a web page over HTTPS needs 3–4 round trips before the first byte "
        f"(about {4 * rtt / 1000:.0f} s here), SSH typing lags, and games or calls are hardly usable. "
        "The DDNS updates themselves are not affected.",
        _bullets(
            [
                "If the line is normally fast, look for what loads it right now (uploads, backups, other "
                "devices) or for a weak mobile signal, and run the diagnosis again later.",
                "For hosting, prefer a wired line or a low-orbit satellite service (tens of ms); keep what "
                "you serve light, and give clients generous timeouts.",
                "Give this tool more time on such a line: run the diagnosis again with a larger time budget.",
            ]
        ),
        actions=("diagnose-longer",),
    )


# Camera web interfaces on ports that checks.risky leaves out because other things use them too;
# a UPnP mapping to them on a home network is nearly always a camera or DVR that opened it.
_CAMERA_PORTS: dict[int, str] = {8000: "camera/DVR web interface (Hikvision and others)"}

# The alternatives that do work when inbound IPv4 cannot reach this network.
_TUNNEL = (
    "Use a tunnel that connects outwards and needs no open port: Cloudflare Tunnel (for web "
    "sites), Tailscale Funnel, or ngrok."
)
_VPN_EXIT = (
    "Rent a VPN or a small cloud server with a static public address and forward from there "
    "(a VPN with port forwarding, or WireGuard to a VPS)."
)
_ASK_ISP = (
    "Ask your ISP for a public IPv4 address: many give one on request, some for a small fee "
    '(ask for "a public IP" or to be taken off CGNAT).'
)


def _stable_ipv6(local: LocalInfo) -> list[Ipv6Address]:
    return [a for a in local.ipv6_global if not a.temporary and not a.deprecated and is_public(a.address)]


def _any_global_ipv6(local: LocalInfo) -> list[Ipv6Address]:
    return [a for a in local.ipv6_global if is_public(a.address)]


def _bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def risky_mappings(mappings: Sequence[PortMapping]) -> list[tuple[PortMapping, str]]:
    """Enabled mappings whose internal (or external) port is a service that should not be exposed."""
    out: list[tuple[PortMapping, str]] = []
    for m in mappings:
        if not m.enabled:
            continue
        what = None
        for port in (m.internal_port, m.external_port):
            what = what or risky_service(port, m.protocol)
            if m.protocol.upper() == "TCP":
                what = what or _CAMERA_PORTS.get(port)
        if what:
            out.append((m, what))
    return out


def _ipv6_fix_line(local: LocalInfo) -> str | None:
    stable = _stable_ipv6(local)
    if not stable:
        return None
    return (
        f"Use IPv6: publish an AAAA record with {stable[0].address} and open the port in your router's "
        "IPv6 firewall (see the ipv6-available finding). Visitors need IPv6 too."
    )


def _offline(
    local: LocalInfo, upnp: UpnpInfo, external: ExternalInfo, budget_s: float | None, no_route: str | None = None
) -> Finding:
    actions: tuple[str, ...] = ()
    if local.interface is not None and local.ipv4 is None and not local.ipv6_global:
        detail = (
            f"This host has no IP address on {local.interface}: the network did not give it one "
            "(DHCP), so nothing outside can be reached from it."
        )
        fix = _bullets(
            [
                "Check the cable or Wi-Fi connection; reconnect, or renew the address (DHCP) in the network settings.",
                "If other devices on this network work, restart this computer's network connection; if none do, "
                "restart the router.",
            ]
        )
    elif local.gateway_ipv4 is None:
        detail = (
            "This host has no default route: it is not connected to any network that leads "
            "to the internet" + (f" ({local.error})" if local.error else "") + "."
        )
        fix = _bullets(
            [
                "Check the cable or Wi-Fi connection, and that the network gave this host an address (DHCP).",
                "If you use a VPN, check that it is connected or turn it off.",
            ]
        )
    else:
        router = "Your router answers on the local network, but n" if (upnp.found or upnp.natpmp_available) else "N"
        unreachable = [s for s in external.sources if not s.value and "unreachable" in (s.error or "").lower()]
        if no_route:
            why = f" The network itself reported that it has no route: {no_route}."
        elif unreachable:
            why = (
                f" The network itself reported that it has no route: {unreachable[0].endpoint} was "
                "unreachable (typical of a router whose internet connection is down)."
            )
        else:
            within = f" within {budget_s:g} s" if budget_s else ""
            why = (
                f" Nothing came back{within}, not even an error. If your line is very slow (satellite, "
                "a weak mobile signal), give it more time: run the diagnosis again with a larger budget."
            )
            actions = ("diagnose-longer",)
        detail = (
            f"{router}othing on the internet answered: no IP echo service, no DNS echo, no STUN "
            f"server. The default gateway is {local.gateway_ipv4}." + why
        )
        fix = _bullets(
            [
                f"Open your router's status page (usually http://{local.gateway_ipv4}/) and check that its "
                "internet (WAN) connection is up.",
                "Restart the modem and the router; check the line or the mobile signal.",
                "If only this computer is affected, check its firewall and any VPN or proxy settings.",
            ]
        )
    return Finding(
        "offline", "error", "No network: this computer cannot reach the internet", detail, fix, actions=actions
    )


@dataclass(frozen=True)
class Facts:
    """Everything the rules read: the probes' results and the NAT verdict. Pure data."""

    connectivity: Connectivity
    local: LocalInfo
    external: ExternalInfo
    nat: NatResult
    upnp: UpnpInfo
    published: Mapping[str, Sequence[str]] | None = None  # hostname -> what DNS serves now
    budget_s: float | None = None  # the time the diagnosis had
    no_route: str | None = None  # the router's own "no route" word

    @property
    def online(self) -> bool:
        return self.connectivity != "offline"

    @property
    def ext4(self) -> str | None:
        return self.external.ipv4

    @property
    def wan(self) -> str | None:
        return self.nat.router_wan_ipv4

    @property
    def verdict(self) -> str:
        return self.nat.verdict


Rule = Callable[[Facts], Iterable[Finding]]


def offline(f: Facts) -> Iterable[Finding]:
    """No network: what is missing (an address, a route, the router's uplink) and what to check."""
    if f.connectivity == "offline":
        yield _offline(f.local, f.upnp, f.external, f.budget_s, f.no_route)


def limited_connectivity(f: Facts) -> Iterable[Finding]:
    """Some kinds of outside service answered, others did not (firewall, portal, slow line)."""
    if f.connectivity != "limited":
        return
    external = f.external
    answered = sorted({s.method for s in external.sources if s.value})
    failed = sorted({s.method for s in external.sources if not s.value} - set(answered))
    http_errors = [s.error or "" for s in external.sources if s.method == "http" and not s.value]
    only_slow = bool(http_errors) and all(e.startswith("no answer within") for e in http_errors)
    actions: tuple[str, ...] = ()
    if only_slow:
        # Nothing refused or broke the HTTPS exchanges: they ran out of time, which a very
        # slow or lossy line does on its own (HTTPS needs several round trips, DNS one).
        detail = (
            f"Answers came over {', '.join(answered) or 'nothing'}, but the HTTPS echoes only timed "
            "out. A very slow or lossy line does that (an HTTPS exchange needs several round "
            "trips, a DNS answer one); so can a firewall or captive portal that silently drops "
            "HTTPS. A DDNS client needs outgoing HTTPS to reach its provider."
        )
        steps = [
            "If the line is slow (satellite, busy mobile network), run the diagnosis again with more time.",
            "If this is a guest or hotel network, open a browser and accept its login page.",
        ]
        actions = ("diagnose-longer",)
    else:
        detail = (
            f"Answers came over {', '.join(answered) or 'nothing'}, but not over "
            f"{', '.join(failed) or '-'}. A firewall, a captive portal (hotel or guest Wi-Fi login "
            "page) or a filtering ISP can do this; a DDNS client needs outgoing HTTPS to reach its "
            "provider."
        )
        steps = [
            "If this is a guest or hotel network, open a browser and accept its login page.",
            "Check firewall or security software that filters outgoing HTTPS.",
        ]
    yield Finding(
        "limited-connectivity",
        "warning",
        "Only part of the internet answered",
        detail,
        _bullets(steps),
        actions=actions,
    )


def slow_line(f: Facts) -> Iterable[Finding]:
    """The fastest answer took longer than SLOW_LINE_MS per round trip."""
    slow = _slow_line(f.external) if f.online else None
    if slow is not None:
        yield slow


def public_address(f: Facts) -> Iterable[Finding]:
    """No NAT: this host holds the public address; only its firewall stands in the way."""
    if f.verdict != "none" or not f.online:
        return
    local = f.local
    yield Finding(
        "public-address",
        "ok",
        "This host holds your public address",
        f"{local.ipv4} is public and outside services see the same address: no NAT in the way. "
        "A server here is reachable once this host's firewall lets the port in.",
        _bullets(
            [
                "Open the service's port in this host's firewall (ufw, firewalld, nftables, Windows Defender).",
                f"Point your DDNS name at {local.ipv4}, and keep it updated: dynamic addresses change.",
            ]
        ),
        actions=("keep-updated",),
    )


def port_forward_possible(f: Facts) -> Iterable[Finding]:
    """One NAT, the router's: a port forward works; how (UPnP, NAT-PMP or the web page)."""
    if f.verdict != "nat" or not f.online:
        return
    local, upnp, wan, ext4 = f.local, f.upnp, f.wan, f.ext4
    if upnp.available:
        how = (
            "Your router offers UPnP, so the wizard can create a lasting forward for you (or test the "
            "port with a forward and keep it), or you can add it in the router's web page."
        )
        actions: tuple[str, ...] = ("map-port", "map-and-test")
    elif upnp.natpmp_available:
        how = (
            "Your router offers NAT-PMP, so the wizard can create the forward for you and test it "
            "(NAT-PMP forwards expire after a week unless renewed), or you can add a lasting one in "
            "the router's web page."
        )
        actions = ("map-and-test",)
    else:
        how = (
            f"Add the forward in your router's web page (usually http://{local.gateway_ipv4 or 'your-router'}/, "
            "under 'Port forwarding', 'Virtual server' or 'NAT')."
        )
        actions = ()
    yield Finding(
        "port-forward-possible",
        "ok",
        "One NAT, your router's: a port forward will work",
        f"Your router holds the public address{f' {wan}' if wan else ''}"
        + (", the same one outside services see" if wan and wan == ext4 else "")
        + ". Inbound connections reach your server once the router forwards the port to "
        f"{local.ipv4 or 'this host'}. " + how,
        _bullets(
            [
                f"Give this host a fixed LAN address (a DHCP reservation for {local.ipv4 or 'it'}) so the "
                "forward keeps pointing at it.",
                "Forward the service's port to it, then test it from outside.",
                "Point your DDNS name at the public address and keep it updated.",
            ]
        ),
        actions=actions + ("test-port", "keep-updated"),
    )


def cgnat(f: Facts) -> Iterable[Finding]:
    """The ISP's carrier-grade NAT (plain, or DS-Lite's AFTR): no forward can help over IPv4."""
    if f.verdict != "cgnat":
        return
    ipv6_line = _ipv6_fix_line(f.local)
    ext4, wan = f.ext4, f.wan
    if f.nat.ds_lite:
        fixes = [line for line in (ipv6_line,) if line] + [
            'Ask your ISP for a "full" or "native" IPv4 line (dual stack instead of DS-Lite): many switch '
            "on request, sometimes for a fee.",
            _TUNNEL,
            _VPN_EXIT,
        ]
        yield Finding(
            "cgnat",
            "error",
            "DS-Lite: your IPv4 is shared with other customers, your IPv6 is your own",
            "Your line is DS-Lite (RFC 6333): your router sends IPv4 inside IPv6 to the ISP's AFTR, a "
            "carrier-grade NAT shared by many customers"
            + (f" (the internet sees {ext4})" if ext4 else "")
            + ". Nobody on the internet can open an IPv4 connection to you, and no port forward on your "
            "router changes that. IPv6 is native: your devices hold public IPv6 addresses, reachable once "
            "the router's IPv6 firewall lets a port in.",
            _bullets(fixes),
            actions=("test-port-ipv6",) if ipv6_line else (),
        )
        return
    fixes = [line for line in (ipv6_line,) if line] + [_ASK_ISP, _TUNNEL, _VPN_EXIT]
    yield Finding(
        "cgnat",
        "error",
        "Your ISP shares one public IPv4 address among many customers (CGNAT)",
        "Your connection sits behind your ISP's carrier-grade NAT"
        + (f" (your router's WAN address is {wan})" if wan else "")
        + (f"; the address the internet sees, {ext4}, belongs to the ISP's NAT and is shared" if ext4 else "")
        + ". Nobody on the internet can open a connection to you over IPv4: port forwards on your "
        'router do nothing, and a DDNS name pointing at that address will "work" while nothing '
        "answers behind it.",
        _bullets(fixes),
        actions=("test-port-ipv6",) if ipv6_line else (),
    )


def double_nat(f: Facts) -> Iterable[Finding]:
    """A second NAT in front of the router: bridge mode, DMZ, or forwards on both boxes."""
    if f.verdict != "double-nat":
        return
    wan, ext4 = f.wan, f.ext4
    ipv6_line = _ipv6_fix_line(f.local)
    # A public "WAN" here is a claim the outside contradicted (a stale or configured value):
    # never name it as the address to forward to.
    real_wan = wan if wan and not is_public(wan) else None
    fixes = [
        "Put the ISP's modem-router in bridge mode (sometimes called 'modem only' or 'IP passthrough'), "
        "so your own router gets the public address.",
        "Or, in the ISP box, put your router's WAN address"
        + (f" ({real_wan})" if real_wan else " (see your router's status page)")
        + " in the DMZ (exposed host), or forward the same port on both boxes.",
        "If there is no second box in your home, the NAT in front of you is your ISP's: then the "
        "CGNAT remedies apply. " + _ASK_ISP,
    ]
    if ipv6_line:
        fixes.append(ipv6_line)
    fixes.append(_TUNNEL)
    if wan and real_wan is None:
        detail = (
            f"Your router claims {wan} as its internet-side address, but the internet sees {ext4 or 'another'}"
            " and the path shows a private router in front of yours: another device translates "
            "addresses a second time (the router's claim is stale or configured). A port forward on "
            "your router alone will not let anyone in."
        )
    else:
        detail = (
            "Your router's own internet side is private"
            + (f" ({wan})" if wan else "")
            + ": another device in front of it translates addresses a second time. A port forward on "
            "your router alone will not let anyone in."
        )
    yield Finding(
        "double-nat",
        "warning",
        "Two NATs sit between this host and the internet",
        detail,
        _bullets(fixes),
        actions=("test-port-ipv6",) if ipv6_line else (),
    )


def nat_unknown(f: Facts) -> Iterable[Finding]:
    """Online, but the evidence does not say how many NATs: read the router, test a port."""
    if f.verdict != "unknown" or not f.online:
        return
    ext4 = f.ext4
    fixes = [
        f"Open your router's status page (usually http://{f.local.gateway_ipv4 or 'your-router'}/) and "
        "read its WAN or internet address"
        + (
            f": if it is {ext4}, you have a single NAT and a port forward will work; if it starts with "
            "100.64–100.127 it is CGNAT; if it is private (10.x, 172.16–31.x, 192.168.x) it is double NAT."
            if ext4
            else "."
        ),
        "Test a port from outside: that settles it for that port.",
    ]
    yield Finding(
        "nat-unknown",
        "warning",
        "We could not tell how many NATs are in the way",
        " ".join(f.nat.evidence[-1:]) or "The evidence was not enough to decide.",
        _bullets(fixes),
        actions=("test-port",),
    )


def no_upnp(f: Facts) -> Iterable[Finding]:
    """Online behind a NAT whose router answers neither UPnP, PCP nor NAT-PMP."""
    upnp = f.upnp
    if not f.online or f.verdict == "none" or upnp.found or upnp.natpmp_available or upnp.pcp_available:
        return
    admin = f" ({upnp.router.presentation_url})" if upnp.router.presentation_url else ""
    yield Finding(
        "no-upnp",
        "info",
        "Your router does not offer UPnP, PCP or NAT-PMP",
        "Nothing answered UPnP discovery, PCP or NAT-PMP at "
        f"{f.local.gateway_ipv4 or 'the gateway'}"
        + (f" ({upnp.error})" if upnp.error else "")
        + ". The wizard cannot read the router's WAN address or its list of forwards, nor add a "
        "forward for you; you can still add forwards by hand.",
        _bullets(
            [
                f"Add port forwards in the router's web page{admin}.",
                "Or enable UPnP IGD / PCP / NAT-PMP in the router's settings if you want programs (and this "
                "wizard) to add forwards; keeping it off is also a reasonable security choice.",
            ]
        ),
    )


def upnp_no_wan(f: Facts) -> Iterable[Finding]:
    """The router answers UPnP but has no public address: its forwards reach the next NAT only."""
    upnp = f.upnp
    if not (upnp.found and not upnp.available and f.verdict in ("double-nat", "cgnat")):
        return
    yield Finding(
        "upnp-no-wan",
        "info",
        "Your router's UPnP cannot help here",
        "Your router answers UPnP, but it has no public address of its own"
        + (f" (it reports {upnp.wan_ipv4})" if upnp.wan_ipv4 else " (it reports none)")
        + ", so forwards it creates only reach the next NAT, not the internet.",
        "Fix the NAT in front of the router first (see above).",
    )


def address_disagreement(f: Facts) -> Iterable[Finding]:
    """Outside services disagree on the public IPv4: DNS interception, or several paths out."""
    if f.online:
        yield from _address_findings(f.local, f.external)


def vpn_default_route(f: Facts) -> Iterable[Finding]:
    """The default route goes through a VPN: the address seen outside is the VPN's."""
    if not f.local.default_via_vpn:
        return
    ext4 = f.ext4
    yield Finding(
        "vpn-default-route",
        "warning",
        "Your internet traffic goes through a VPN",
        f"The default route goes through {f.local.interface or 'a VPN interface'}, so the public address "
        f"outside services see{f' ({ext4})' if ext4 else ''} is the VPN server's, not your home "
        "line's. A DDNS name set from here would point at the VPN, and forwards on your router "
        "would not be used.",
        _bullets(
            [
                "Run the DDNS update from a device that does not use the VPN (or use split tunnelling "
                "for the DDNS client and the server), or let the router update the name itself.",
                "To host through the VPN instead, you need a VPN provider that offers port forwarding.",
            ]
        ),
    )


def symmetric_nat(f: Facts) -> Iterable[Finding]:
    """Two STUN servers saw different source ports: fine for hosting, hard for peer-to-peer."""
    if not f.external.mapping_varies:
        return
    yield Finding(
        "symmetric-nat",
        "info",
        "Your NAT changes the port for every destination",
        "Two STUN servers saw different source ports from the same local socket: the NAT maps "
        'each destination separately ("symmetric" NAT). Peer-to-peer connections (games, calls, '
        "Tailscale direct links) often fall back to relays; a server behind a port forward is not "
        "affected.",
        "Nothing to do for hosting. For peer-to-peer, enable UPnP/NAT-PMP on the router or a "
        "'full cone'/'endpoint-independent' NAT option if it has one.",
    )


def ipv6_available(f: Facts) -> Iterable[Finding]:
    """A global IPv6 address: publish an AAAA record (stable addresses only)."""
    six = _ipv6_finding(f.local, f.external, f.verdict)
    if six is not None:
        yield six


def exposed_service(f: Facts) -> Iterable[Finding]:
    """The router forwards risky services (remote shells, file sharing, cameras) to the internet."""
    risky = risky_mappings(f.upnp.mappings)
    if not risky:
        return
    lines = [
        f"port {m.external_port}/{m.protocol} → {m.internal} ({what}"
        + (f", '{m.description}'" if m.description else "")
        + ")"
        for m, what in risky
    ]
    yield Finding(
        "exposed-service",
        "warning",
        "Your router forwards risky services to the internet",
        "These forwards expose services that are scanned and attacked constantly, especially "
        "under DDNS names:\n" + _bullets(lines),
        _bullets(
            [
                "Remove forwards you did not make on purpose, and turn off UPnP on devices that opened them "
                "(cameras, NAS, consoles).",
                "Reach these services through a VPN (WireGuard, Tailscale) instead of opening them.",
                "If one must stay open: strong unique passwords or keys, current firmware, and "
                "two-factor login where possible.",
            ]
        ),
        actions=("remove-mapping",),
    )


def private_ip_published(f: Facts) -> Iterable[Finding]:
    """A configured hostname's record holds a private address nobody outside can reach."""
    if not f.published:
        return
    bad = {
        host: [a for a in addrs if parse_ip(a) is not None and not is_public(a)] for host, addrs in f.published.items()
    }
    bad = {h: a for h, a in bad.items() if a}
    if not bad:
        return
    lines = [f"{h} → {', '.join(a)}" for h, a in sorted(bad.items())]
    yield Finding(
        "private-ip-published",
        "error",
        "A hostname points at a private address",
        "DNS serves addresses nobody on the internet can reach:\n"
        + _bullets(lines)
        + "\nThis happens when a DDNS client sends the computer's own LAN address instead of "
        "the public one.",
        _bullets(
            [
                "Let the provider detect the address (most DDNS update URLs do when no IP is sent), "
                "or send an update from this tool, which sends the public address.",
                "In a router or client setting, choose 'WAN/public IP' or 'detect via web', not the interface address.",
            ]
        ),
        actions=("update",),
    )


# Every rule, in the order their findings are listed before sorting by severity.
RULES: tuple[Rule, ...] = (
    offline,
    limited_connectivity,
    slow_line,
    public_address,
    port_forward_possible,
    cgnat,
    double_nat,
    nat_unknown,
    no_upnp,
    upnp_no_wan,
    address_disagreement,
    vpn_default_route,
    symmetric_nat,
    ipv6_available,
    exposed_service,
    private_ip_published,
)


def build_findings(
    connectivity: Connectivity,
    local: LocalInfo,
    external: ExternalInfo,
    nat: NatResult,
    upnp: UpnpInfo,
    *,
    published: Mapping[str, Sequence[str]] | None = None,
    budget_s: float | None = None,
    no_route: str | None = None,
) -> tuple[Finding, ...]:
    """Every finding ``RULES`` raise for this diagnosis, the most serious first. Pure: no I/O.

    ``published`` (optional): configured hostname -> the addresses DNS serves for it now;
    ``budget_s``: the time the diagnosis had (named when nothing answered within it);
    ``no_route``: the router's own word that it has no route to the internet.
    """
    facts = Facts(connectivity, local, external, nat, upnp, published=published, budget_s=budget_s, no_route=no_route)
    out = [finding for rule in RULES for finding in rule(facts)]
    out.sort(key=lambda f: _SEVERITY_ORDER.get(f.severity, 9))
    return tuple(out)


def _address_findings(local: LocalInfo, external: ExternalInfo) -> list[Finding]:
    out: list[Finding] = []
    answered4 = [s for s in external.sources if s.family == 4 and s.value]
    values = {s.value for s in answered4}
    if len(values) <= 1:
        return out
    http_vals = {s.value for s in answered4 if s.method == "http"}
    dns_vals = {s.value for s in answered4 if s.method == "dns"}
    other_vals = {s.value for s in answered4 if s.method != "dns"}
    listing = _bullets([f"{s.method} {s.endpoint}: {s.value}" for s in answered4])
    if dns_vals and http_vals and not (dns_vals & other_vals) and len(other_vals) == 1:
        out.append(
            Finding(
                "dns-interception",
                "warning",
                "Your DNS queries are answered by someone else",
                "The DNS-based address checks give a different answer from the web-based ones:\n"
                + listing
                + "\nYour ISP, router or security software is probably intercepting DNS traffic to public "
                "resolvers and answering it itself. Web checks are the ones to trust for your address.",
                _bullets(
                    [
                        "Nothing to fix for DDNS: the wizard uses the web-based answer.",
                        "If you did not expect filtering, check the router's DNS settings or ask the ISP.",
                    ]
                ),
            )
        )
        return out
    reason = external.explanation or (
        "Different services see different addresses. Common causes: traffic leaves through more than "
        "one path (a VPN with split routing, a second internet line, load-balancing), or the ISP's "
        "carrier-grade NAT uses several public addresses."
    )
    out.append(
        Finding(
            "ip-disagreement",
            "warning",
            "Outside services disagree about your public address",
            listing + "\n" + reason,
            _bullets(
                [
                    "A DDNS name can only hold one address: find out which path inbound connections use "
                    "(your router's WAN address is the one port forwards work on).",
                    "If a VPN is running, see whether it is meant to carry all traffic.",
                ]
            ),
        )
    )
    return out


def _ipv6_finding(local: LocalInfo, external: ExternalInfo, verdict: str) -> Finding | None:
    stable = _stable_ipv6(local)
    anyv6 = _any_global_ipv6(local)
    if not anyv6:
        return None
    blocked_v4 = verdict in ("cgnat", "double-nat", "unknown")
    if stable:
        addr = stable[0]
        detail = (
            f"This host has the global IPv6 address {addr.address} on {addr.interface}. IPv6 needs no NAT: "
            "the address is yours and reachable from the internet once the firewalls allow it"
            + (
                ", so it can work even though IPv4 is blocked by the NAT in front of you — once the router's "
                "IPv6 firewall lets the port in; test it from outside over IPv6 before relying on it."
                if blocked_v4
                else "."
            )
        )
        if external.ipv6 and external.ipv6 != addr.address:
            detail += (
                f" Outside services see {external.ipv6}, a temporary privacy address used for outgoing "
                "connections; publish the stable one instead."
            )
        fix = _bullets(
            [
                f"Publish an AAAA record for your DDNS name with {addr.address} (this tool's update can "
                "send it when your provider supports IPv6).",
                "Open the port in your router's IPv6 firewall: routers drop unsolicited inbound IPv6 by "
                "default. Look for 'IPv6 firewall', 'IPv6 filter', 'pinhole' or 'allow inbound IPv6' and "
                f"allow the service's port to {addr.address}.",
                "Open it in this host's firewall too (ip6tables/nftables, ufw, Windows Defender).",
                "Visitors need IPv6 themselves: most mobile networks and many home lines have it, many "
                "offices and hotels do not.",
            ]
        )
    else:
        temps = ", ".join(a.address for a in anyv6)
        detail = (
            f"This host has only temporary (privacy) IPv6 addresses ({temps}); they change every day "
            "or so and are not suited to a DNS record."
        )
        fix = _bullets(
            [
                "Give the server a stable IPv6 address (disable privacy extensions for it, or use a stable "
                "EUI-64 / stable-privacy address), then publish an AAAA record and open the port in the "
                "router's IPv6 firewall.",
            ]
        )
    return Finding(
        "ipv6-available",
        "info",
        "Public IPv6 is available: publish an AAAA record"
        if stable
        else "IPv6 is available, but only with temporary addresses",
        detail,
        fix,
        actions=("test-port-ipv6", "update") if stable else (),
    )


def finding_by_id(findings: Sequence[Finding], finding_id: str) -> Finding | None:
    return next((f for f in findings if f.id == finding_id), None)


__all__ = [
    "ACTIONS",
    "RULES",
    "Facts",
    "Rule",
    "build_findings",
    "finding_by_id",
    "risky_mappings",
]
