"""Hand-built result objects (real checks.model types) shared by view tests."""

from __future__ import annotations

from checks.model import (
    Diagnosis,
    DnsAnswer,
    ExternalInfo,
    ExternalSource,
    Finding,
    Ipv6Address,
    LocalInfo,
    NatResult,
    PingResult,
    PortMapping,
    PortResult,
    ProbeRecord,
    UpdateResult,
    UpnpInfo,
    VerifyResult,
)

PUBLIC_V4 = "23.128.64.20"
PUBLIC_V6 = "2a0c:b641:100:1::100"
HOSTNAME = "myhome.dyn.lab-ddns.net"


def home_diagnosis(**overrides: object) -> Diagnosis:
    sources = (
        ExternalSource("http", "https://11.1.0.10/", 4, PUBLIC_V4, None, 41.0),
        ExternalSource("http", "https://11.1.0.11/", 4, PUBLIC_V4, None, 44.5),
        ExternalSource("dns", "opendns@11.1.0.60", 4, PUBLIC_V4, None, 12.0),
        ExternalSource("stun", "11.1.0.40:3478", 4, PUBLIC_V4, None, 9.0, mapped_port=40001),
        ExternalSource("stun", "11.1.0.41:3478", 4, None, "no answer within 1.5 s", 1500.0),
    )
    d = Diagnosis(
        generated_at="2026-11-22T05:00:00+00:00",
        duration_ms=812.0,
        connectivity="online",
        local=LocalInfo(
            interface="eth0",
            ipv4="192.168.1.100",
            gateway_ipv4="192.168.1.1",
            ipv6_global=(Ipv6Address(PUBLIC_V6, "eth0"),),
        ),
        external=ExternalInfo(ipv4=PUBLIC_V4, ipv6=PUBLIC_V6, agreement=True, sources=sources),
        nat=NatResult(
            "nat",
            PUBLIC_V4,
            (
                "This machine has 192.168.1.100, a private (RFC 1918) address.",
                f"The router reports the WAN address {PUBLIC_V4}, equal to the external address.",
            ),
        ),
        upnp=UpnpInfo(
            available=True,
            found=True,
            wan_ipv4=PUBLIC_V4,
            status="Connected",
            mappings=(PortMapping(2222, "TCP", "192.168.1.100", 22, "ssh", 0),),
        ),
        findings=(
            Finding(
                "exposed-service",
                "warning",
                "SSH is exposed to the internet",
                f"Port 2222 on {PUBLIC_V4} forwards to 192.168.1.100:22 (SSH).",
                "Remove the mapping and reach SSH through a VPN such as WireGuard.",
            ),
            Finding("upnp-available", "ok", "The router supports UPnP", "Ports can be opened automatically.", ""),
        ),
        probes=(
            ProbeRecord("local", "ip route", "ok", 4.0, "eth0 192.168.1.100 via 192.168.1.1"),
            ProbeRecord("http-echo", "https://11.1.0.10/", "ok", 41.0, PUBLIC_V4),
            ProbeRecord("stun", "11.1.0.41:3478", "timeout", 1500.0, "", "no answer within 1.5 s"),
            ProbeRecord("upnp", "192.168.1.1", "ok", 120.0, f"IGD WAN {PUBLIC_V4}"),
        ),
        tool_version="0.1.0",
        ports=(
            PortResult(
                80,
                "tcp",
                "isp-blocked",
                ("The control port 41234 was reached.", "Port 80 was not reached from outside."),
                "Use another port such as 8080, or a tunnel.",
            ),
        ),
        verify=(
            VerifyResult(
                HOSTNAME,
                PUBLIC_V4,
                None,
                (DnsAnswer("ns1.dyn.lab-ddns.net (11.1.0.54)", (PUBLIC_V4,), 60, True),),
                (DnsAnswer("11.1.0.53", ("23.128.64.99",), 42, False),),
                "propagating",
                PingResult("icmp-privileged", True, 1.2, PUBLIC_V4),
                "A resolver still serves the old address.",
                42,
            ),
        ),
        updates=(UpdateResult(HOSTNAME, "dyndns2", "23.128.64.99", PUBLIC_V4, "updated", "good", "updated"),),
    )
    if overrides:
        from dataclasses import replace

        d = replace(d, **overrides)  # type: ignore[arg-type]
    return d


def offline_diagnosis() -> Diagnosis:
    return Diagnosis(
        generated_at="2026-11-22T05:00:00+00:00",
        duration_ms=640.0,
        connectivity="offline",
        local=LocalInfo(interface="eth0", ipv4="192.168.1.100", gateway_ipv4="192.168.1.1"),
        external=ExternalInfo(
            ipv4=None,
            ipv6=None,
            agreement=False,
            sources=(ExternalSource("http", "https://11.1.0.10/", 4, None, "network unreachable", 3.0),),
        ),
        nat=NatResult("unknown", None, ("No outside service answered.",)),
        upnp=UpnpInfo(available=False, error="no IGD answered within 0.6 s"),
        findings=(
            Finding(
                "offline",
                "error",
                "No internet connection",
                "Nothing outside the local network answered.",
                "Check the router's uplink.",
            ),
        ),
        probes=(ProbeRecord("http-echo", "https://11.1.0.10/", "error", 3.0, "", "network unreachable"),),
    )


def unused_port(family: int = 2) -> int:
    """A TCP port nothing listens on, for tests that open a real listener on it.

    Not a kernel-chosen port 0: those come from the ephemeral range (32768-60999 here), where
    any outgoing connection of a concurrent test (xdist, the lab) may take the same number
    between this call and the listener's bind — a 1-in-60 flake under the full suite, where
    a port check then read its own port as unreachable. Random numbers below that range do
    not collide with outgoing connections; the bind check guards against a listener."""
    import random
    import socket

    host = "::" if family == socket.AF_INET6 else "0.0.0.0"
    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no unused port found in 20000-31999")
