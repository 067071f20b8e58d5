"""What each lab namespace is configured with: links, addresses, routes, sysctls, nftables.

Pure functions of the lab's options (no side effects), so the plan is easy to
read and print. ``topology.py`` applies it: one ``ip -batch`` file, one
``nft -f`` file and a few sysctl writes per namespace.

Interface names are local to each namespace, so they need no lab prefix:
``lan0`` (LAN side), ``wan0`` (a customer device's uplink), ``cust0`` (the ISP's
or ISP box's customer-facing side), ``up0`` (the ISP's uplink to the internet),
``isp0`` (the internet's side of that link).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from . import plan

TOPOLOGIES = ("public", "home", "home-no-upnp", "double-nat", "cgnat", "ds-lite", "offline")
DSLITE_IF = "dslite0"  # the softwire's tunnel device on the router (B4) and the ISP (AFTR)

# Extra v6 link between the ISP box and the user's router (double NAT only).
ISPBOX_V6_LAN_NET = "2a0c:b641:100:2::/64"
ISPBOX_V6_LAN_GW = "2a0c:b641:100:2::1"
ISPBOX_V6_ROUTER_WAN = "2a0c:b641:100:2::2"
ISPBOX_V6_WAN = "2a0c:b641:100::30"
PUBLIC_V6_GW = plan.HOME_V6_ROUTER  # `public`: the ISP itself sits on the host's /64

_SERVICE_NET_V4 = ipaddress.ip_network("11.1.0.0/16")
_SERVICE_NET_V6 = ipaddress.ip_network("2a0c:b641:2::/48")


@dataclass(frozen=True)
class Options:
    """Everything that shapes one lab."""

    topology: str
    ipv6: bool = False
    latency_ms: float = 0.0
    loss_pct: float = 0.0
    block_inbound: tuple[str, ...] = ()  # "80/tcp", "5000/udp": ISP drops new inbound flows to these
    block_outbound: tuple[str, ...] = ()  # "25/tcp": ISP drops new outbound flows to these
    upnp: bool | None = None  # None: the topology's default
    # miniupnpd's ext_ip=: the router claims this public WAN address whatever it really holds.
    router_ext_ip: str | None = None
    # False: miniupnpd runs with the UPnP IGD off (enable_upnp=no) but NAT-PMP and PCP on
    # (Debian's 2.3.1 turns both on with enable_natpmp=yes; it refuses enable_pcp_pmp).
    upnp_igd: bool = True
    # cgnat: the ISP's carrier-grade NAT runs a PCP server (a second miniupnpd on the ISP box,
    # listening towards the customers): what `diagnose` asks at the hop after the router.
    carrier_pcp: bool = False

    def __post_init__(self) -> None:
        if self.topology not in TOPOLOGIES:
            raise ValueError(f"unknown topology {self.topology!r} (known: {', '.join(TOPOLOGIES)})")
        if self.topology == "ds-lite" and not self.ipv6:
            object.__setattr__(self, "ipv6", True)  # DS-Lite is an IPv6 access line
        if self.router_ext_ip is not None:
            ipaddress.IPv4Address(self.router_ext_ip)
            if not self.runs_upnp:
                raise ValueError("router_ext_ip is what miniupnpd claims: it needs a router running UPnP")
        if self.latency_ms < 0 or not 0 <= self.loss_pct < 100:
            raise ValueError("latency_ms must be >= 0 and loss_pct in [0, 100)")
        for entry in self.block_inbound:
            parse_port_spec(entry, protos=("tcp", "udp"))
        for entry in self.block_outbound:
            parse_port_spec(entry, protos=("tcp",))
        if self.carrier_pcp and self.topology != "cgnat":
            raise ValueError("carrier_pcp needs the cgnat topology (a carrier-grade NAT to run it on)")
        if self.upnp and self.topology in ("public", "offline"):
            raise ValueError(f"topology {self.topology!r} has no router that could run UPnP")

    @property
    def runs_upnp(self) -> bool:
        if self.upnp is not None:
            return self.upnp
        # DS-Lite routers offer no IPv4 forwards (there is no public IPv4 to forward from).
        return self.topology in ("home", "double-nat", "cgnat")

    @property
    def shaped(self) -> bool:
        """Whether the ISP link needs the user-space relay (latency or loss)."""
        return self.latency_ms > 0 or self.loss_pct > 0


def parse_port_spec(spec: str, *, protos: tuple[str, ...]) -> tuple[int, str]:
    port_text, sep, proto = spec.strip().lower().partition("/")
    proto = proto if sep else "tcp"
    if proto not in protos or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"bad port filter {spec!r}: expected PORT/{'|'.join(protos)}")
    return int(port_text), proto


def is_ds_lite(opts: Options) -> bool:
    return opts.topology == "ds-lite"


def roles(topology: str) -> tuple[str, ...]:
    if topology == "public":
        return ("host", "isp", "inet")
    if topology == "double-nat":
        return ("host", "router", "ispbox", "isp", "inet")
    return ("host", "router", "isp", "inet")


def edge_role(topology: str) -> str | None:
    """The customer-side device on the ISP link (None: nothing is connected to the ISP)."""
    return {"public": "host", "double-nat": "ispbox", "offline": None}.get(topology, "router")


def service_addresses(*, ipv6: bool) -> list[str]:
    """Every service address of plan.py: the inet namespace holds them all on lo."""
    out: list[str] = []
    for name in dir(plan):
        value = getattr(plan, name)
        if not name.isupper() or not isinstance(value, str):
            continue
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            continue
        if addr in _SERVICE_NET_V4 or (ipv6 and addr in _SERVICE_NET_V6):
            out.append(value)
    return sorted(set(out), key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a)))


@dataclass(frozen=True)
class Link:
    """A point-to-point link; both ends live in lab namespaces (never the machine's own)."""

    a_role: str
    a_if: str
    b_role: str
    b_if: str
    shaped: bool = False  # True: two TAPs and the relay instead of a veth pair


def links(opts: Options) -> list[Link]:
    topo = opts.topology
    out = [Link("isp", "up0", "inet", "isp0")]
    edge = edge_role(topo)
    if edge is not None:
        out.append(Link(edge, "wan0", "isp", "cust0", shaped=opts.shaped))
    if topo != "public":
        out.append(Link("router", "lan0", "host", "lan0"))
    if topo == "double-nat":
        out.append(Link("router", "wan0", "ispbox", "lan0"))
    return out


@dataclass
class NamespaceConfig:
    """One namespace's configuration: sysctls, `ip -batch` lines, nftables ruleset."""

    sysctls: dict[str, str] = field(default_factory=dict)
    ip_lines: list[str] = field(default_factory=list)
    nft: str = ""


def in_customer_net(address: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(plan.CUSTOMER_NET)


def _addr(cfg: NamespaceConfig, ifname: str, cidr: str) -> None:
    extra = " nodad" if ":" in cidr else ""  # no duplicate address detection: usable at once
    cfg.ip_lines.append(f"addr add {cidr} dev {ifname}{extra}")


def _route(cfg: NamespaceConfig, dest: str, via: str, *, dev: str | None = None) -> None:
    if dest == "default" and ":" in via:
        dest = "::/0"  # `ip -batch` lines take no -6: spell the v6 default out
    suffix = f" dev {dev}" if dev else ""
    cfg.ip_lines.append(f"route add {dest} via {via}{suffix}")


def _forwarding(cfg: NamespaceConfig, ipv6: bool) -> None:
    cfg.sysctls["net/ipv4/ip_forward"] = "1"
    if ipv6:
        cfg.sysctls["net/ipv6/conf/all/forwarding"] = "1"


def ports_by_proto(specs: tuple[str, ...], protos: tuple[str, ...]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for spec in specs:
        port, proto = parse_port_spec(spec, protos=protos)
        out.setdefault(proto, []).append(port)
    return out


def _nft_set(ports: list[int]) -> str:
    return "{ " + ", ".join(str(p) for p in sorted(set(ports))) + " }"


def isp_nft(opts: Options, cgnat_pool_ip: str) -> str:
    """The ISP: port filters toward/from the customer, and the carrier-grade NAT."""
    rules: list[str] = []
    for proto, ports in ports_by_proto(opts.block_inbound, ("tcp", "udp")).items():
        rules.append(f'oifname "cust0" ct state new {proto} dport {_nft_set(ports)} counter drop')
    for proto, ports in ports_by_proto(opts.block_outbound, ("tcp",)).items():
        rules.append(f'iifname "cust0" ct state new {proto} dport {_nft_set(ports)} counter drop')
    nat = ""
    if opts.topology in ("cgnat", "ds-lite"):
        # CGNAT: the shared address space behind the ISP's NAT. DS-Lite: the AFTR translates the
        # customers' own private addresses as they come out of the softwire (RFC 6333).
        inside = plan.CGNAT_NET if opts.topology == "cgnat" else plan.HOME_LAN_NET
        nat = (
            "  chain postrouting {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            f'    oifname "up0" ip saddr {inside} snat ip to {cgnat_pool_ip}\n'
            "  }\n"
        )
    body = "".join(f"    {r}\n" for r in rules)
    return (
        "table inet isp {\n"
        "  chain forward {\n"
        "    type filter hook forward priority filter; policy accept;\n"
        f"{body}"
        "  }\n"
        f"{nat}"
        "}\n"
    )


def router_nft() -> str:
    """A home router: masquerade out of wan0, drop new inbound flows unless mapped or allowed.

    miniupnpd (configured with these table/chain names) adds its DNAT rules to
    ``prerouting_miniupnpd`` and its accept rules to ``miniupnpd``. IPv6 is routed,
    not NATed, and new inbound v6 connections are dropped, as home routers do, until
    a rule lands in ``lab_inbound`` (Lab.allow_inbound_v6) or miniupnpd opens a pinhole.
    """
    return (
        "table inet router {\n"
        "  chain prerouting {\n"
        "    type nat hook prerouting priority dstnat; policy accept;\n"
        "    jump prerouting_miniupnpd\n"
        "    jump lab_dnat\n"
        "  }\n"
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        "    jump postrouting_miniupnpd\n"
        '    oifname "wan0" meta nfproto ipv4 masquerade\n'
        "  }\n"
        "  chain forward {\n"
        "    type filter hook forward priority filter; policy drop;\n"
        "    ct state established,related accept\n"
        "    ct state invalid drop\n"
        '    iifname "lan0" accept\n'
        "    icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept\n"
        "    jump miniupnpd\n"
        "    jump lab_inbound\n"
        "    counter\n"
        "  }\n"
        "  chain miniupnpd {\n  }\n"
        "  chain prerouting_miniupnpd {\n  }\n"
        "  chain postrouting_miniupnpd {\n  }\n"
        "  chain lab_inbound {\n  }\n"
        "  chain lab_dnat {\n  }\n"
        "}\n"
    )


def ispbox_nft() -> str:
    """The ISP-supplied box of a double NAT: masquerade out of wan0; IPv6 is left to the user's router.

    Like the router, it drops new inbound IPv4 unless a port forward (Lab.forward_port) says otherwise."""
    return (
        "table inet ispbox {\n"
        "  chain prerouting {\n"
        "    type nat hook prerouting priority dstnat; policy accept;\n"
        "    jump lab_dnat\n"
        "  }\n"
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        '    oifname "wan0" meta nfproto ipv4 masquerade\n'
        "  }\n"
        "  chain forward {\n"
        "    type filter hook forward priority filter; policy drop;\n"
        "    ct state established,related accept\n"
        '    iifname "lan0" accept\n'
        "    meta nfproto ipv6 accept\n"
        "    jump lab_inbound\n"
        "  }\n"
        "  chain lab_inbound {\n  }\n"
        "  chain lab_dnat {\n  }\n"
        "}\n"
    )


def namespace_configs(opts: Options, *, edge_ipv4: str, cgnat_pool_ip: str) -> dict[str, NamespaceConfig]:
    """The full plan. ``edge_ipv4`` is the public address the ISP gives the customer device
    (host for public, router for home, ISP box for double NAT); ``cgnat_pool_ip`` the CGNAT's."""
    topo, v6 = opts.topology, opts.ipv6
    cfgs = {role: NamespaceConfig() for role in roles(topo)}
    for cfg in cfgs.values():
        cfg.ip_lines.append("link set lo up")
        # No ICMP rate limiting: traceroute hops and "unreachable"s must not depend on what
        # an earlier test sent a second ago (the kernel's default is 1/s per destination).
        cfg.sysctls["net/ipv4/icmp_ratelimit"] = "0"
        cfg.sysctls["net/ipv4/icmp_msgs_per_sec"] = "100000"
        cfg.sysctls["net/ipv4/icmp_msgs_burst"] = "10000"
        cfg.sysctls["net/ipv6/icmp/ratelimit"] = "0"
        if v6:
            cfg.sysctls["net/ipv6/conf/default/accept_dad"] = "0"
    for link in links(opts):
        cfgs[link.a_role].ip_lines.append(f"link set {link.a_if} up")
        cfgs[link.b_role].ip_lines.append(f"link set {link.b_if} up")

    # --- the internet: services on lo, everything else is behind the ISP ---
    inet = cfgs["inet"]
    for address in service_addresses(ipv6=v6):
        _addr(inet, "lo", f"{address}/{128 if ':' in address else 32}")
    _addr(inet, "isp0", f"{plan.INET_CORE}/30")
    _route(inet, "default", plan.ISP_UPLINK)
    if v6:
        _addr(inet, "isp0", f"{plan.INET_V6_CORE}/64")
        _route(inet, "default", plan.ISP_V6_UPLINK)

    # --- the ISP ---
    isp = cfgs["isp"]
    _forwarding(isp, v6)
    _addr(isp, "up0", f"{plan.ISP_UPLINK}/30")
    _route(isp, "default", plan.INET_CORE)
    if v6:
        _addr(isp, "up0", f"{plan.ISP_V6_UPLINK}/64")
        _route(isp, "default", plan.INET_V6_CORE)
    edge = edge_role(topo)
    if topo == "ds-lite":
        # IPv6-only access line; IPv4 arrives through the softwire (softwire.py) and leaves NATed.
        _addr(isp, "cust0", f"{plan.CUSTOMER_V6_GW}/64")
        _route(isp, plan.HOME_V6_PREFIX, plan.ROUTER_V6_WAN)
        isp.ip_lines.append(f"link set {DSLITE_IF} mtu 1460 up")  # 1500 minus the 40-byte IPv6 header
        _addr(isp, DSLITE_IF, f"{plan.DSLITE_AFTR}/29")
        isp.ip_lines.append(f"route add {plan.HOME_LAN_NET} dev {DSLITE_IF}")
        isp.ip_lines.append(f"route add blackhole {cgnat_pool_ip}/32")
        edge = None  # the generic customer set-up below does not apply
    elif edge is not None:
        if topo == "cgnat":
            _addr(isp, "cust0", f"{plan.CGNAT_GW}/24")
            # Unsolicited traffic to the pool address dies here, as at a real CGNAT.
            isp.ip_lines.append(f"route add blackhole {cgnat_pool_ip}/32")
        else:
            _addr(isp, "cust0", f"{plan.CUSTOMER_GW}/24")
            if not in_customer_net(edge_ipv4):
                isp.ip_lines.append(f"route add {edge_ipv4}/32 dev cust0")
        if v6:
            if topo == "public":
                _addr(isp, "cust0", f"{PUBLIC_V6_GW}/64")
            else:
                _addr(isp, "cust0", f"{plan.CUSTOMER_V6_GW}/64")
                next_hop = ISPBOX_V6_WAN if topo == "double-nat" else plan.ROUTER_V6_WAN
                _route(isp, plan.HOME_V6_PREFIX, next_hop)
    isp.nft = isp_nft(opts, cgnat_pool_ip)

    if topo == "ds-lite":
        router = cfgs["router"]
        _addr(router, "wan0", f"{plan.ROUTER_V6_WAN}/64")
        _route(router, "default", plan.CUSTOMER_V6_GW)
        router.ip_lines.append(f"link set {DSLITE_IF} mtu 1460 up")
        _addr(router, DSLITE_IF, f"{plan.DSLITE_B4}/29")
        router.ip_lines.append(f"route add default via {plan.DSLITE_AFTR} dev {DSLITE_IF}")

    # --- the customer's edge device's uplink ---
    if edge is not None:
        edge_cfg = cfgs[edge]
        if topo == "cgnat":
            _addr(edge_cfg, "wan0", f"{plan.CGNAT_ROUTER_WAN}/24")
            _route(edge_cfg, "default", plan.CGNAT_GW)
        else:
            _addr(edge_cfg, "wan0", f"{edge_ipv4}/24")
            onlink = "" if in_customer_net(edge_ipv4) else " onlink"
            edge_cfg.ip_lines.append(f"route add default via {plan.CUSTOMER_GW} dev wan0{onlink}")
        if v6 and topo != "public":
            _addr(edge_cfg, "wan0", f"{ISPBOX_V6_WAN if topo == 'double-nat' else plan.ROUTER_V6_WAN}/64")
            _route(edge_cfg, "default", plan.CUSTOMER_V6_GW)

    # --- the ISP box of a double NAT ---
    if topo == "double-nat":
        box = cfgs["ispbox"]
        _forwarding(box, v6)
        _addr(box, "lan0", f"{plan.ISPBOX_LAN_GW}/24")
        box.nft = ispbox_nft()
        if v6:
            _addr(box, "lan0", f"{ISPBOX_V6_LAN_GW}/64")
            _route(box, plan.HOME_V6_PREFIX, ISPBOX_V6_ROUTER_WAN)

    # --- the user's router ---
    if "router" in cfgs:
        router = cfgs["router"]
        _forwarding(router, v6)
        _addr(router, "lan0", f"{plan.HOME_GW}/24")
        router.nft = router_nft()
        if v6:
            _addr(router, "lan0", f"{plan.HOME_V6_ROUTER}/64")
        if topo == "double-nat":
            _addr(router, "wan0", f"{plan.ISPBOX_ROUTER_WAN}/24")
            _route(router, "default", plan.ISPBOX_LAN_GW)
            if v6:
                _addr(router, "wan0", f"{ISPBOX_V6_ROUTER_WAN}/64")
                _route(router, "default", ISPBOX_V6_LAN_GW)

    # --- the user's machine ---
    host = cfgs["host"]
    if topo == "public":
        if v6:
            _addr(host, "wan0", f"{plan.HOME_V6_HOST}/64")
            _route(host, "default", PUBLIC_V6_GW)
    else:
        _addr(host, "lan0", f"{plan.HOME_HOST}/24")
        _route(host, "default", plan.HOME_GW)
        if v6:
            _addr(host, "lan0", f"{plan.HOME_V6_HOST}/64")
            _route(host, "default", plan.HOME_V6_ROUTER)
    return cfgs
