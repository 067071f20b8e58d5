"""The lab's address plan: one place both the topology builder and the services read.

Public-looking but never routed anywhere: no lab interface is linked to the
machine's own namespace (tests/lab/test_isolation.py proves it). 11.0.0.0/8 and
the customer ranges below are ordinary global unicast to the classifier, unlike
the documentation ranges, which miniupnpd and the tool rightly treat as reserved.
"""

from __future__ import annotations

# --- the lab's "internet" (one namespace, services bound to addresses on its lo) ---
INET_CORE = "11.0.0.1"  # internet side of the inet<->isp link (/30)
ISP_UPLINK = "11.0.0.2"  # ISP side of that link
ECHO1 = "11.1.0.10"  # HTTPS plain-text IP echo #1
ECHO2 = "11.1.0.11"  # HTTPS plain-text IP echo #2
PROBE = "11.1.0.20"  # probe server: echoip /port/N, rich probe, UDP echo
IFCONFIG = "11.1.0.21"  # model of ifconfig.co (echoip -p): /port/N, one request a minute
PORTCHECKER = "11.1.0.22"  # model of portchecker.io's API: /api/me/N, IPv4 only
PROBE_HTTP_PORT = 443
PROBE_UDP_PORT = 9999
ALLPORTS = "11.1.0.30"  # accepts TCP on every port (portquiz.net stand-in)
STUN1 = "11.1.0.40"  # STUN server, port 3478
STUN2 = "11.1.0.41"  # second STUN server address (mapping-behaviour test)
STUN_PORT = 3478
RESOLVER = "11.1.0.53"  # unbound, recursive
RESOLVER2 = "11.1.0.55"  # second resolver address (same unbound)
AUTH = "11.1.0.54"  # authoritative server (Knot), RFC 2136 + TSIG
DNS_ECHO = "11.1.0.60"  # answers myip.opendns.com / whoami.cloudflare with the querier's address
DYNDNS2 = "11.1.0.80"  # dyndns2 emulator (No-IP style replies), HTTPS
DUCKDNS = "11.1.0.81"  # DuckDNS emulator, HTTPS
CLOUDFLARE = "11.1.0.82"  # Cloudflare v4 API subset, HTTPS
SINK = "11.1.0.90"  # webhook sink: notifications (apprise json://) and pings, plain HTTP

INET_V6_CORE = "2a0c:b641:1::1"  # inet side of the inet<->isp link (/64)
ISP_V6_UPLINK = "2a0c:b641:1::2"
ECHO1_V6 = "2a0c:b641:2::10"
ECHO2_V6 = "2a0c:b641:2::11"
PROBE_V6 = "2a0c:b641:2::20"
IFCONFIG_V6 = "2a0c:b641:2::21"
PORTCHECKER_V6 = "2a0c:b641:2::22"  # dual-stack name; the service refuses IPv6 requesters (like the real one)
DNS_ECHO_V6 = "2a0c:b641:2::60"

# --- names of the outside services (zone served by the lab's Knot, A and AAAA records) ---
# Real services are reached by dual-stack names: a client that does not pin the address
# family goes out over IPv6 first (anyio's happy eyeballs order) and is caught here.
SERVICES_ZONE = "lab-services.net"
ECHO1_NAME = f"echo1.{SERVICES_ZONE}"  # api.ipify.org / icanhazip.com stand-ins
ECHO2_NAME = f"echo2.{SERVICES_ZONE}"
IFCONFIG_NAME = f"ifconfig.{SERVICES_ZONE}"
PORTCHECKER_NAME = f"portchecker.{SERVICES_ZONE}"
PROBE_NAME = f"probe.{SERVICES_ZONE}"
DNS_ECHO_NAME = f"dns-echo.{SERVICES_ZONE}"
# name -> (IPv4, IPv6): published as A and AAAA whether or not the lab runs IPv6
SERVICE_NAMES = {
    ECHO1_NAME: (ECHO1, ECHO1_V6),
    ECHO2_NAME: (ECHO2, ECHO2_V6),
    IFCONFIG_NAME: (IFCONFIG, IFCONFIG_V6),
    PORTCHECKER_NAME: (PORTCHECKER, PORTCHECKER_V6),
    PROBE_NAME: (PROBE, PROBE_V6),
    DNS_ECHO_NAME: (DNS_ECHO, DNS_ECHO_V6),
}

# --- ISP and customer side ---
CUSTOMER_NET = "23.128.64.0/24"  # public customer range
CUSTOMER_GW = "23.128.64.1"  # ISP's address on the customer link
PUBLIC_HOST_IP = "23.128.64.10"  # `public`: the host itself holds this
ROUTER_WAN_IP = "23.128.64.20"  # `home`, `home-no-upnp`: the router's public WAN
ISPBOX_WAN_IP = "23.128.64.30"  # `double-nat`: the ISP-supplied router's public WAN
CGNAT_POOL_IP = "23.128.64.200"  # `cgnat`: the CGNAT's public egress address
CGNAT_NET = "100.64.1.0/24"  # `cgnat`: shared address space between CGNAT and customer
CGNAT_GW = "100.64.1.1"
CGNAT_ROUTER_WAN = "100.64.1.20"
DSLITE_POOL_IP = "23.128.64.210"  # `ds-lite`: the AFTR's public IPv4 (carrier-grade NAT) egress
DSLITE_AFTR = "192.0.0.1"  # `ds-lite`: the AFTR's end of the softwire (RFC 6333 reserves it)
DSLITE_B4 = "192.0.0.2"  # `ds-lite`: the home router's (B4's) end
DSLITE_TUNNEL_NET = "192.0.0.0/29"
# `router_ext_ip`: a public address miniupnpd claims for its WAN (ext_ip=) that nobody holds:
# a stale or hand-configured value, the way real routers misreport (reference/real-world.md).
CLAIMED_WAN_IP = "23.128.64.99"
ISPBOX_LAN_NET = "192.168.100.0/24"  # `double-nat`: the ISP box's LAN
ISPBOX_LAN_GW = "192.168.100.1"
ISPBOX_ROUTER_WAN = "192.168.100.2"

HOME_LAN_NET = "192.168.1.0/24"
HOME_GW = "192.168.1.1"
HOME_HOST = "192.168.1.100"
HOME_OTHER = "192.168.1.50"  # a second LAN host, for mappings that point elsewhere

HOME_V6_PREFIX = "2a0c:b641:100:1::/64"  # routed to the home LAN
HOME_V6_ROUTER = "2a0c:b641:100:1::1"
HOME_V6_HOST = "2a0c:b641:100:1::100"
CUSTOMER_V6_NET = "2a0c:b641:100::/64"  # ISP <-> router link
CUSTOMER_V6_GW = "2a0c:b641:100::1"
ROUTER_V6_WAN = "2a0c:b641:100::20"

# --- DNS zones served by the authoritative server ---
DYNDNS2_ZONE = "dyn.lab-ddns.net"
DUCKDNS_ZONE = "duckdns.org"
CLOUDFLARE_ZONE = "lab-zone.net"
RFC2136_ZONE = "selfhosted.lab-ddns.net"
ZONE_TTL = 60
