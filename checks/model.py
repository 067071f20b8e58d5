"""Result objects shared by every check.

All results are frozen dataclasses; sequences are tuples so results can be
shared between tasks and threads safely.  ``to_jsonable`` turns any of them
into the plain JSON of DESIGN.md's contract (enum values as strings, tuples as
lists, ``None`` kept as ``null``).

A probe never raises for a network failure: it returns ``status="error"`` or
``"timeout"`` with ``error`` set to a sentence a user can read.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, Literal

REPORT_SCHEMA = "ddns-wizard/report@1"

ProbeStatus = Literal["ok", "error", "timeout", "skipped"]
PortProtocol = Literal["tcp", "udp"]
Connectivity = Literal["online", "limited", "offline"]
NatVerdictName = Literal["none", "nat", "double-nat", "cgnat", "unknown"]
Severity = Literal["ok", "info", "warning", "error"]
PortVerdictName = Literal["open", "not-forwarded", "isp-blocked", "blocked-or-not-forwarded", "upstream-nat", "unknown"]
# What the port test did on the router: nothing, a mapping made for the test and removed
# again, or one left in place as a lasting forward (--keep).
PortMappingKind = Literal["none", "temporary", "kept"]
Port6VerdictName = Literal["open", "firewalled", "no-ipv6", "unknown"]
OutboundVerdictName = Literal["open", "blocked", "unknown"]
VerifyVerdictName = Literal["ok", "propagating", "wrong-ip", "nxdomain", "no-answer", "unknown"]
UpdateResultName = Literal["updated", "unchanged", "error"]


@dataclass(frozen=True)
class ProbeRecord:
    """One probe's run, as the progress callback and the report's ``probes`` list see it.

    ``name`` is stable and readable (``"http-echo"``, ``"stun"``, ``"upnp"``,
    ``"natpmp"``, ``"local"``, ``"dns-echo"``, ``"traceroute"``); ``target`` is the
    endpoint it talked to; ``summary`` one line about what it found.
    """

    name: str
    target: str
    status: ProbeStatus
    ms: float
    summary: str = ""
    error: str | None = None


@dataclass(frozen=True)
class Ipv6Address:
    address: str
    interface: str
    temporary: bool = False  # RFC 4941 privacy address (changes daily: never publish it)
    deprecated: bool = False


@dataclass(frozen=True)
class LocalInfo:
    """What this host knows about itself without asking anyone."""

    interface: str | None  # the interface used to reach the internet
    ipv4: str | None  # its address on that interface
    gateway_ipv4: str | None  # default gateway
    ipv6_global: tuple[Ipv6Address, ...] = ()
    gateway_ipv6: str | None = None
    vpn_interfaces: tuple[str, ...] = ()  # wg*, tun*, tailscale*, ... that are up
    default_via_vpn: bool = False  # the IPv4 default route goes through a VPN interface
    error: str | None = None


SourceMethod = Literal["http", "dns", "stun"]
AddressFamily = Literal[4, 6]


@dataclass(frozen=True)
class ExternalSource:
    """One independent answer to "what is my public address?"."""

    method: SourceMethod
    endpoint: str
    family: AddressFamily
    value: str | None
    error: str | None
    ms: float
    mapped_port: int | None = None  # STUN only: the NAT's mapped source port


@dataclass(frozen=True)
class ExternalInfo:
    ipv4: str | None  # the agreed (majority) public IPv4, if any
    ipv6: str | None
    agreement: bool  # every answering source gave the same address (per family)
    sources: tuple[ExternalSource, ...] = ()
    mapping_varies: bool | None = None  # STUN: mapped port differs by destination (symmetric NAT)
    explanation: str | None = None  # why sources disagree, when they do


@dataclass(frozen=True)
class PortMapping:
    """One entry of the router's UPnP port-mapping table."""

    external_port: int
    protocol: Literal["TCP", "UDP"]
    internal_host: str
    internal_port: int
    description: str = ""
    lease_s: int = 0  # 0 = permanent
    enabled: bool = True
    remote_host: str = ""

    @property
    def internal(self) -> str:
        return f"{self.internal_host}:{self.internal_port}"


@dataclass(frozen=True)
class RouterInfo:
    """Which router this is (``diagnose --json`` ``upnp.router``); nulls when unknown.

    From the UPnP device description (``source`` "upnp"), else only the maker from the
    gateway's MAC address (``source`` "mac-vendor"; checks/probes/router.py)."""

    manufacturer: str | None = None
    model: str | None = None
    friendly_name: str | None = None
    presentation_url: str | None = None  # the router's admin page
    source: str | None = None


@dataclass(frozen=True)
class UpnpInfo:
    """The router as seen through UPnP IGD, NAT-PMP and PCP."""

    available: bool  # an IGD answered and is usable (connected, public WAN)
    found: bool = False  # an IGD answered at all
    location: str | None = None  # its description URL
    wan_ipv4: str | None = None  # IGD's GetExternalIPAddress ("" reported as None)
    status: str | None = None  # IGD's connection status ("Connected", ...)
    connection_type: str | None = None
    mappings: tuple[PortMapping, ...] = ()
    error: str | None = None
    natpmp_available: bool = False
    natpmp_wan_ipv4: str | None = None
    natpmp_error: str | None = None
    # issue 16: PCP (RFC 6887) on the gateway, the router's identity, why UPnP is not usable.
    pcp_available: bool = False
    pcp_epoch: int | None = None
    pcp_error: str | None = None
    router: RouterInfo = RouterInfo()
    igd_version: int | None = None  # 1 or 2 (the root device type), None when no IGD
    # Why no usable IGD, as a code: no-ssdp-answer | no-igd (devices answered, none an IGD) |
    # wan-not-connected | description-failed | unusual-port (an IGD, but not on the gateway's
    # usual ports); None when an IGD is usable.
    not_found: str | None = None
    ssdp_seen: tuple[str, ...] = ()  # what answered SSDP ("SERVER header (ST)"), when none is an IGD
    # The carrier's PCP server (asked at the hop after the router): None not asked;
    # "answered" | "address-mismatch" (it answered but sees the router's NAT in between) |
    # "no-answer" | "refused" (ICMP: nothing on 5351).
    carrier_pcp: str | None = None
    carrier_pcp_server: str | None = None
    carrier_pcp_detail: str | None = None


@dataclass(frozen=True)
class NatResult:
    verdict: NatVerdictName
    router_wan_ipv4: str | None
    evidence: tuple[str, ...] = ()
    traceroute_hops: tuple[str, ...] = ()
    # DS-Lite (RFC 6333): IPv4 goes through the ISP's AFTR (carrier-grade NAT, shared), IPv6 is
    # native. Set with verdict "cgnat" when the router's WAN or the hop after it is in 192.0.0.0/29.
    ds_lite: bool = False


@dataclass(frozen=True)
class Finding:
    """Something the user should know, with the fix, under a stable id."""

    id: str
    severity: Severity
    title: str
    detail: str
    fix: str = ""
    # Next steps the views word as their own commands or keys (checks.findings.ACTIONS):
    # the engine's sentences never name a CLI command or flag.
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortResult:
    port: int
    protocol: Literal["tcp", "udp"]
    verdict: PortVerdictName
    evidence: tuple[str, ...] = ()
    fix: str = ""
    service_was_listening: bool = False  # tested an existing service rather than our listener
    upnp_mapped: bool = False
    # Why no outside prober answered for this port (checks/portcheck/probers.py AnswerCode):
    # rate-limited | prober-silent | no-udp-prober | no-prober-answered; None when one did.
    reason: str | None = None
    retry_after_s: float | None = None  # rate-limited / prober-silent: when asking again makes sense
    mapping: PortMappingKind = "none"
    mapped_via: str | None = None  # upnp | pcp | natpmp: the protocol of the test's (or kept) mapping
    # Next steps the views word as commands or keys (checks.portcheck.verdict.NEXT_STEPS):
    # the engine's sentences name no command or flag.
    next_steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Port6Result:
    """One port tested from outside over IPv6 (``ports check --ipv6``, checks.portcheck.ipv6)."""

    port: int
    protocol: Literal["tcp", "udp"]
    verdict: Port6VerdictName
    address: str | None  # the IPv6 address tested (this host's stable one)
    evidence: tuple[str, ...] = ()
    fix: str = ""
    reason: str | None = None  # as PortResult.reason: why no prober answered
    retry_after_s: float | None = None
    # --upnp: the router's IPv6 firewall was opened for the test: "upnp" (IGDv2 pinhole) |
    # "pcp" (PCP MAP for this address); None when nothing was opened.
    pinhole_via: str | None = None
    pinhole: str = "none"  # none | temporary (removed after the test) | kept (--keep) | failed


@dataclass(frozen=True)
class OutboundResult:
    port: int
    protocol: Literal["tcp", "udp"]
    verdict: OutboundVerdictName
    ms: float | None
    detail: str = ""


@dataclass(frozen=True)
class DnsAnswer:
    server: str  # address (and name) asked
    answers: tuple[str, ...]
    ttl: int | None
    ok: bool  # answers == expected
    error: str | None = None
    rcode: str | None = None
    cname: str | None = None  # the name is an alias: the CNAME chain ends at this name (outside the reply)
    ignored: tuple[str, ...] = ()  # records in the reply that were not what was asked (another class, name...)


PingMethod = Literal["icmp-unprivileged", "icmp-privileged", "tcp-connect", "none"]


@dataclass(frozen=True)
class PingResult:
    method: PingMethod
    alive: bool
    rtt_ms: float | None
    target: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class ProviderView:
    """What a provider holds for one name, read from its own API (nothing changed).

    ``ipv4``/``ipv6``: every address record's content, canonical and sorted;
    ``proxied``: the record types (``A``, ``AAAA``) served through the provider's proxy
    (public DNS then shows the provider's edge, never these addresses); ``error``: why
    it could not be read (then the other fields say nothing); ``source``: where it was
    read (``cloudflare-api``).
    """

    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    proxied: tuple[str, ...] = ()
    error: str | None = None
    source: str = "api"

    def joined(self) -> tuple[str | None, str | None, str | None]:
        """The (ipv4, ipv6, error) triple of ``updater.Lookup`` (several addresses comma-joined)."""
        return (",".join(self.ipv4) or None, ",".join(self.ipv6) or None, self.error)


@dataclass(frozen=True)
class VerifyResult:
    hostname: str
    expected_ipv4: str | None
    expected_ipv6: str | None
    authoritative: tuple[DnsAnswer, ...]
    resolvers: tuple[DnsAnswer, ...]
    verdict: VerifyVerdictName
    ping: PingResult | None = None
    explanation: str = ""
    caches_settle_s: int | None = None  # estimate: when every cache will serve the new answer
    provider_record: ProviderView | None = None  # the provider's own record, when DNS cannot show it (proxied)

    @property
    def next_step(self) -> str | None:
        """What helps now, as a code the views word (checks.dns.verify.NEXT_STEPS): ``update``
        when the record itself is wrong (waiting cannot fix it), ``wait`` while caches catch up,
        ``check-name`` for a name that does not exist, ``retry`` when DNS could not be asked."""
        return {
            "wrong-ip": "update",
            "no-answer": "update",
            "nxdomain": "check-name",
            "propagating": "wait",
            "unknown": "retry",
        }.get(self.verdict)


@dataclass(frozen=True)
class UpdateResult:
    hostname: str
    provider: str
    previous: str | None  # what the authoritative servers served before
    sent: str | None  # address(es) sent, None when nothing was sent
    result: UpdateResultName
    code: str | None  # the provider's own word: good, nochg, badauth, KO, HTTP 401 ...
    message: str
    fatal: bool = False  # stop updating this hostname until the user acts
    retry_after_s: int | None = None
    would_send: str | None = None  # a dry run: what an update would send (nothing was)


@dataclass(frozen=True)
class Diagnosis:
    """The whole ``diagnose`` report (schema ``ddns-wizard/report@1``)."""

    generated_at: str  # ISO 8601, UTC
    duration_ms: float
    connectivity: Connectivity
    local: LocalInfo
    external: ExternalInfo
    nat: NatResult
    upnp: UpnpInfo
    findings: tuple[Finding, ...]
    probes: tuple[ProbeRecord, ...] = ()
    tool_version: str = ""
    schema: str = REPORT_SCHEMA
    # Filled when ports/verify/update ran in the same session (wizard, or report export).
    ports: tuple[PortResult, ...] = ()
    ports_ipv6: tuple[Port6Result, ...] = ()
    outbound: tuple[OutboundResult, ...] = ()
    verify: tuple[VerifyResult, ...] = ()
    updates: tuple[UpdateResult, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def to_jsonable(obj: Any) -> Any:
    """Plain JSON data (dict/list/str/number/bool/None) from any result object."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        if isinstance(obj, PortMapping):
            out["internal"] = obj.internal
        return out
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj
