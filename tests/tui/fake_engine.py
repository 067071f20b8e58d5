"""A WizardEngine for the TUI tests, screenshots and the no-network demo.

Built from the real result objects of checks/model.py (and the real
checks.config.save_config), so the screens render exactly what the engine would
hand them; only the network is absent.  Scenarios: ``home`` (one NAT, UPnP),
``cgnat`` (carrier-grade NAT) and ``double-nat``.

Run it by hand:  python -m tests.tui.fake_engine [home|cgnat|double-nat]
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.config import Config, HostConfig, save_config
from checks.errors import UpnpError
from checks.model import (
    Diagnosis,
    DnsAnswer,
    ExternalInfo,
    ExternalSource,
    Finding,
    Ipv6Address,
    LocalInfo,
    NatResult,
    PortMapping,
    PortResult,
    ProbeRecord,
    UpdateResult,
    UpnpInfo,
    VerifyResult,
)
from wizard.engine import (
    FieldInfo,
    PortCallback,
    PortSpec,
    Preflight,
    ProbeCallback,
    ProviderInfo,
    StatusCallback,
    VerifyCallback,
)

HOST_IP = "192.168.1.100"


def report_json_fallback(diagnosis: Diagnosis, path: Path, secrets: Sequence[str] = ()) -> Path:
    """The fake's export: the diagnosis as JSON with the secrets masked (the real
    engine's export, wizard.report, is tested on its own)."""
    import json

    from checks.config import write_private_file
    from checks.model import to_jsonable

    text = json.dumps(to_jsonable(diagnosis), indent=2)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    write_private_file(path, text.encode("utf-8"))
    return path


GATEWAY = "192.168.1.1"
PUBLIC_IP = "23.128.64.20"
CGNAT_PUBLIC = "23.128.64.200"
CGNAT_WAN = "100.64.1.20"
DOUBLE_NAT_WAN = "192.168.100.2"
DOUBLE_NAT_PUBLIC = "23.128.64.30"
OLD_IP = "23.128.64.5"
IPV6 = "2a0c:b641:100:1::100"

WRONG_SECRETS = ("wrong", "00000000-0000-0000-0000-000000000000")


def _probes(public: str, upnp_summary: str, natpmp_summary: str) -> tuple[ProbeRecord, ...]:
    return (
        ProbeRecord("local", "ip route", "ok", 4.0, f"{HOST_IP} on eth0, gateway {GATEWAY}"),
        ProbeRecord(
            "natpmp",
            GATEWAY,
            "ok" if "WAN" in natpmp_summary else "timeout",
            212.0,
            natpmp_summary,
            None if "WAN" in natpmp_summary else "no NAT-PMP answer in 0.6 s",
        ),
        ProbeRecord("stun", "stun.l.google.com:19302", "ok", 38.0, f"mapped {public}:40123, port kept"),
        ProbeRecord("dns-echo", "opendns", "ok", 41.0, public),
        ProbeRecord("http-echo", "https://api.ipify.org", "ok", 87.0, public),
        ProbeRecord("http-echo", "https://ipv4.icanhazip.com", "ok", 95.0, public),
        ProbeRecord("http-echo-v6", "https://api6.ipify.org", "ok", 102.0, IPV6),
        ProbeRecord("upnp", f"http://{GATEWAY}:5000/rootDesc.xml", "ok", 340.0, upnp_summary),
    )


def _sources(public: str) -> tuple[ExternalSource, ...]:
    return (
        ExternalSource("http", "https://api.ipify.org", 4, public, None, 87.0),
        ExternalSource("http", "https://ipv4.icanhazip.com", 4, public, None, 95.0),
        ExternalSource("dns", "opendns", 4, public, None, 41.0),
        ExternalSource("stun", "stun.l.google.com:19302", 4, public, None, 38.0, mapped_port=40123),
        ExternalSource("http", "https://api6.ipify.org", 6, IPV6, None, 102.0),
    )


LOCAL = LocalInfo(
    interface="eth0",
    ipv4=HOST_IP,
    gateway_ipv4=GATEWAY,
    ipv6_global=(Ipv6Address(IPV6, "eth0"),),
    gateway_ipv6="fe80::1",
)


def offline_diagnosis() -> Diagnosis:
    """No network at all (a namespace with no route): the real engine's NAT verdict and findings."""
    from checks.findings import build_findings
    from checks.nat import decide_nat

    local = LocalInfo(None, None, None, error="no IPv4 route to the internet")
    external = ExternalInfo(
        None,
        None,
        True,
        tuple(
            ExternalSource("http", url, 4, None, "no route to host", 0.0)
            for url in ("https://api.ipify.org", "https://ipv4.icanhazip.com")
        ),
    )
    upnp = UpnpInfo(False, found=False, error="no IGD answered")
    nat = decide_nat(local, external, upnp, None)
    findings = build_findings("offline", local, external, nat, upnp, budget_s=4.0)
    return Diagnosis(
        generated_at="2026-11-22T05:00:00Z",
        duration_ms=4000.0,
        connectivity="offline",
        local=local,
        external=external,
        nat=nat,
        upnp=upnp,
        findings=findings,
        probes=(ProbeRecord("local", "ip route", "error", 1.0, None, "no IPv4 route to the internet"),),
        tool_version="0.1.0",
    )


def diagnosis_for(scenario: str) -> Diagnosis:
    if scenario == "offline":
        return offline_diagnosis()
    if scenario == "cgnat":
        public, wan = CGNAT_PUBLIC, CGNAT_WAN
        nat = NatResult(
            "cgnat",
            wan,
            (
                f"Your router's WAN address {wan} is in 100.64.0.0/10, the range reserved for "
                "carrier-grade NAT (RFC 6598).",
                f"The internet sees {public}, an address your router does not hold.",
            ),
        )
        upnp = UpnpInfo(
            False,
            found=True,
            location=f"http://{GATEWAY}:5000/rootDesc.xml",
            wan_ipv4=wan,
            status="Connected",
            connection_type="IP_Routed",
            error=f"the router's WAN address {wan} is not public",
            natpmp_available=True,
            natpmp_wan_ipv4=wan,
        )
        findings = (
            Finding(
                "cgnat",
                "error",
                "You are behind carrier-grade NAT",
                "Your ISP shares one public IPv4 address among many customers; connections from "
                "the internet cannot reach your router.",
                "Ask your ISP for a public IPv4 address, use IPv6, or use a tunnel.",
            ),
            Finding(
                "ipv6-available",
                "info",
                "You have global IPv6",
                f"This computer has the stable IPv6 address {IPV6}.",
                "Publish an AAAA record and allow the port in the router's IPv6 firewall.",
            ),
        )
        probes = _probes(public, f"IGD found, WAN {wan} (not public)", f"WAN {wan}")
    elif scenario == "double-nat":
        public, wan = DOUBLE_NAT_PUBLIC, DOUBLE_NAT_WAN
        nat = NatResult(
            "double-nat",
            wan,
            (
                f"Your router's WAN address {wan} is a private (RFC 1918) address.",
                f"The internet sees {public}: another router in front of yours holds it.",
            ),
            traceroute_hops=(GATEWAY, "192.168.100.1", "23.128.64.1"),
        )
        upnp = UpnpInfo(
            False, found=True, wan_ipv4=wan, status="Connected", error=f"the router's WAN address {wan} is not public"
        )
        findings = (
            Finding(
                "double-nat",
                "error",
                "You are behind double NAT",
                "Two routers translate your traffic; a forward on yours alone does nothing.",
                "Put the ISP's box in bridge mode, or forward on both boxes.",
            ),
        )
        probes = _probes(public, f"IGD found, WAN {wan} (private)", "no answer")
    else:
        public, wan = PUBLIC_IP, PUBLIC_IP
        nat = NatResult(
            "nat",
            wan,
            (
                f"This computer has the private address {HOST_IP}; your router translates it.",
                f"Your router's WAN address {wan} is the address the internet sees.",
            ),
        )
        upnp = UpnpInfo(
            True,
            found=True,
            location=f"http://{GATEWAY}:5000/rootDesc.xml",
            wan_ipv4=wan,
            status="Connected",
            connection_type="IP_Routed",
            mappings=(PortMapping(8080, "TCP", "192.168.1.50", 80, "NAS web UI"),),
            natpmp_available=True,
            natpmp_wan_ipv4=wan,
        )
        findings = (
            Finding(
                "public-ipv4",
                "ok",
                "Your router holds a public IPv4 address",
                f"The internet sees {public}, your router's own WAN address: you can host here.",
            ),
            Finding(
                "exposed-service",
                "warning",
                "Port 8080 is open to 192.168.1.50",
                'The router forwards 8080/tcp to 192.168.1.50 (UPnP, "NAS web UI"). '
                "Everything exposed is scanned within hours.",
                "Remove it if you do not use it: ddns-wizard upnp remove 8080/tcp",
            ),
        )
        probes = _probes(public, f"IGD connected, WAN {wan}, 1 mapping", f"WAN {wan}")
    return Diagnosis(
        generated_at="2026-11-22T05:00:00Z",
        duration_ms=1240.0,
        connectivity="online",
        local=LOCAL,
        external=ExternalInfo(public, IPV6, True, _sources(public)),
        nat=nat,
        upnp=upnp,
        findings=findings,
        probes=probes,
        tool_version="0.1.0",
    )


PORT_VERDICTS: dict[int, tuple[str, tuple[str, ...], str]] = {
    80: (
        "isp-blocked",
        (
            "The router forwards 80/tcp and our listener is up, yet nothing from outside reached it.",
            "Control port 8443/tcp reached the same listener from outside.",
        ),
        "Your ISP filters inbound port 80: serve on another port (e.g. 8080), use a tunnel, "
        "or ask for a business line.",
    ),
    443: ("open", ("The outside prober connected to our listener on 443/tcp.",), ""),
    22: (
        "not-forwarded",
        ("The outside prober got no answer; the router has no forward for 22/tcp.",),
        f"Forward 22/tcp on your router to {HOST_IP} (give this computer a fixed LAN address first).",
    ),
}


def port_result(spec: PortSpec, scenario: str, upnp: bool) -> PortResult:
    if scenario in ("cgnat", "double-nat"):
        return PortResult(
            spec.port,
            spec.protocol,
            "upstream-nat",
            ("The outside prober reached the public address, which is not your router's.",),
            "See 'Can you host here?': use IPv6, a tunnel, or ask the ISP.",
        )
    verdict, evidence, fix = PORT_VERDICTS.get(
        spec.port, ("open", (f"The outside prober reached our listener on {spec}.",), "")
    )
    if upnp and verdict == "not-forwarded":
        verdict, evidence, fix = (
            "open",
            (
                f"Reached through a temporary UPnP mapping of {spec}.",
                f"Open for the test: it went through the mapping this test made, which was removed again, so {spec} "
                f"is closed now. To keep it open, make it a lasting forward: `ddns-wizard upnp add {spec}`.",
            ),
            f"Make the forward last: `ddns-wizard upnp add {spec}`. Nothing to fix.",
        )
    mapped = upnp and verdict in ("open", "isp-blocked")
    return PortResult(
        spec.port,
        spec.protocol,
        verdict,
        evidence,
        fix,  # type: ignore[arg-type]
        upnp_mapped=mapped,
        mapping="temporary" if mapped else "none",
    )


PROVIDERS: tuple[ProviderInfo, ...] = (
    ProviderInfo(
        "duckdns",
        "DuckDNS",
        "free",
        "https://www.duckdns.org",
        (
            "Sign in at duckdns.org (GitHub, Google or Reddit account).",
            "Add a subdomain: NAME.duckdns.org.",
            "Copy the token shown at the top of the page.",
        ),
        ("The token updates every subdomain of the account: keep it secret.",),
        (FieldInfo("token", "Token", secret=True, help="the 36-character token from duckdns.org"),),
        supports_ipv6=True,
        hostname_hint="NAME.duckdns.org",
        needs="token",
    ),
    ProviderInfo(
        "noip",
        "No-IP",
        "free (confirm every 30 days)",
        "https://www.noip.com/sign-up",
        (
            "Create a free account at noip.com.",
            "Create a hostname under Dynamic DNS → No-IP Hostnames.",
            "Create a DDNS key for the hostname (better than your account password).",
        ),
        ("Free hostnames expire unless confirmed every 30 days.",),
        (FieldInfo("username", "Username"), FieldInfo("password", "Password / DDNS key", secret=True)),
        hostname_hint="NAME.ddns.net",
        needs="username + DDNS key",
    ),
    ProviderInfo(
        "dyndns2",
        "Other (dyndns2)",
        "varies",
        "https://help.dyn.com/remote-access-api/",
        ("Find your provider's dyndns2 update URL, username and password or key.",),
        (),
        (
            FieldInfo("server", "Update server", help="e.g. https://members.example.org"),
            FieldInfo("username", "Username"),
            FieldInfo("password", "Password / key", secret=True),
        ),
        hostname_hint="myhome.example.org",
        needs="server, username, password",
    ),
    ProviderInfo(
        "cloudflare",
        "Cloudflare",
        "free with own domain",
        "https://dash.cloudflare.com/profile/api-tokens",
        (
            "Add your domain to Cloudflare.",
            "Create an API token with Zone → DNS → Edit for that zone.",
        ),
        ("Use a token limited to one zone, never the Global API Key.",),
        (FieldInfo("token", "API token", secret=True),),
        supports_ipv6=True,
        hostname_hint="home.yourdomain.com",
        needs="own domain + API token",
    ),
    ProviderInfo(
        "desec",
        "deSEC",
        "free",
        "https://desec.io",
        ("Register at desec.io and create a dedyn.io name.", "Create a token for it."),
        (),
        (FieldInfo("token", "Token", secret=True),),
        supports_ipv6=True,
        hostname_hint="NAME.dedyn.io",
        needs="token",
    ),
)

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def validate(provider: str, field_name: str, value: str) -> str | None:
    if field_name == "hostname":
        from checks.idn import IdnError, to_ascii

        try:
            value = to_ascii(value)  # as the real engine: bücher.example is a hostname too
        except IdnError as exc:
            return str(exc)
        labels = value.lower().rstrip(".").split(".")
        if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
            return "not a hostname: letters, digits and hyphens, with at least one dot"
        if provider == "duckdns" and not value.endswith(".duckdns.org"):
            return "DuckDNS names end in .duckdns.org"
        return None
    if (
        field_name == "token"
        and provider == "duckdns"
        and not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", value)
    ):
        return "a DuckDNS token looks like 8-4-4-4-12 hex digits"
    if field_name == "server" and not value.startswith("https://"):
        return "the update server must be an https:// address"
    return None


@dataclass
class FakeEngine:
    """Canned answers; ``delay_s`` spaces the probes out like a real network."""

    scenario: str = "home"
    delay_s: float = 0.0
    config: Config = field(default_factory=Config)
    calls: list[tuple[str, object]] = field(default_factory=list)
    hold: asyncio.Event | None = None  # set → the diagnosis finishes (screenshots of a running one)
    verify_rounds: int = 2
    systemd: bool = True  # install_service: pretend systemd runs (False: the cron path)
    # Hostnames whose record holds OLD_IP at the authoritative servers until an update for them
    # (a wrong record: the real engine stops waiting and says to update).
    wrong_records: set[str] = field(default_factory=set)

    async def diagnose(self, on_progress: ProbeCallback | None = None) -> Diagnosis:
        self.calls.append(("diagnose", None))
        d = diagnosis_for(self.scenario)
        for i, record in enumerate(d.probes):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.hold is not None and i == 4:
                await self.hold.wait()
            if on_progress:
                on_progress(record)
        return d

    async def check_ports(
        self,
        ports: Sequence[PortSpec],
        *,
        upnp: bool = False,
        on_progress: PortCallback | None = None,
        on_status: StatusCallback | None = None,
    ) -> tuple[PortResult, ...]:
        self.calls.append(("check_ports", (tuple(ports), upnp)))
        if on_status:
            on_status("opening temporary listeners")
        results = []
        for spec in ports:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            r = port_result(spec, self.scenario, upnp)
            results.append(r)
            if on_progress:
                on_progress(r)
        return tuple(results)

    async def check_ports_ipv6(
        self, ports: Sequence[PortSpec], *, on_status: StatusCallback | None = None
    ) -> tuple[Any, ...]:
        from checks.portcheck.ipv6 import FIREWALL_FIX, Port6Result

        self.calls.append(("check_ports_ipv6", tuple(ports)))
        if on_status:
            on_status(f"opening temporary listeners on {IPV6}")
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        out = []
        for spec in ports:
            where = f"[{IPV6}]:{spec.port}/{spec.protocol}"
            if self.scenario == "cgnat":  # the router's IPv6 firewall still drops it
                out.append(
                    Port6Result(
                        spec.port,
                        spec.protocol,
                        "firewalled",
                        IPV6,
                        (
                            f"A temporary listener on {where} was ready; the prober tried it from outside over IPv6: "
                            "the connection attempt timed out (packets dropped on the way).",
                        ),
                        FIREWALL_FIX.format(proto=spec.protocol.upper(), address=IPV6, port=spec.port),
                    )
                )
            else:
                out.append(
                    Port6Result(
                        spec.port,
                        spec.protocol,
                        "open",
                        IPV6,
                        (f"The prober reached {where} from outside over IPv6 and read this test's nonce.",),
                    )
                )
        return tuple(out)

    async def add_port_mapping(self, port: PortSpec, description: str = "ddns-wizard") -> str:
        self.calls.append(("add_port_mapping", port))
        if self.scenario != "home":
            raise UpnpError("the router refused: 606 Action not authorized", code=606)
        return (
            f"Kept as a lasting forward: the router forwards {port} → {HOST_IP}:{port.port} over UPnP for "
            f"7 days (the router caps 'permanent' forwards at that). Remove it later with "
            f"`ddns-wizard upnp remove {port}`."
        )

    def list_providers(self) -> tuple[ProviderInfo, ...]:
        return PROVIDERS

    def validate_field(self, provider: str, field: str, value: str) -> str | None:
        return validate(provider, field, value)

    async def preflight(self, host: HostConfig) -> Preflight:
        self.calls.append(("preflight", host))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if host.provider == "dyndns2":  # like the real one: no read-only call in that protocol
            return Preflight(
                True,
                "Other (dyndns2) offers no way to test the credentials without updating: the first update is the test.",
                spent_update=True,
            )
        if any(secret in WRONG_SECRETS for secret in host.secret_values()):
            return Preflight(False, "badauth: the provider does not accept this username and password/key")
        return Preflight(True, f"{host.hostname} belongs to this account.")

    async def update(self, host: HostConfig) -> UpdateResult:
        self.calls.append(("update", host))
        self.wrong_records.discard(host.hostname)
        d = diagnosis_for(self.scenario)
        if any(secret in WRONG_SECRETS for secret in host.secret_values()):
            return UpdateResult(
                host.hostname,
                host.provider,
                OLD_IP,
                d.external.ipv4,
                "error",
                "badauth",
                "Other (dyndns2) rejected the credentials (badauth).",
                fatal=True,
            )
        # Like the real updater: the records the host asks for (IPv4 unless switched off, IPv6 when on).
        want4 = host.options.get("ipv4", True) is not False
        want6 = host.options.get("ipv6", False) is True
        sent = ",".join(a for a in ((d.external.ipv4 if want4 else None), (IPV6 if want6 else None)) if a)
        return UpdateResult(host.hostname, host.provider, OLD_IP, sent or None, "updated", "good", f"good {sent}")

    async def verify(
        self,
        hostname: str,
        expected_ipv4: str | None,
        expected_ipv6: str | None,
        *,
        wait_s: float = 120.0,
        on_progress: VerifyCallback | None = None,
        host: HostConfig | None = None,
    ) -> VerifyResult:
        self.calls.append(("verify", (hostname, expected_ipv4, expected_ipv6)))
        expected = expected_ipv4 or ""
        if hostname in self.wrong_records:
            auth = tuple(
                DnsAnswer(ns, (OLD_IP,), 60, False)
                for ns in ("ns1.example.net (192.0.2.53)", "ns2.example.net (198.51.100.53)")
            )
            res = tuple(DnsAnswer(r, (OLD_IP,), 60, False) for r in ("1.1.1.1", "8.8.8.8"))
            return VerifyResult(
                hostname,
                expected_ipv4,
                expected_ipv6,
                auth,
                res,
                "wrong-ip",
                None,
                f"The authoritative servers serve {OLD_IP}, not {expected}. Waiting does not "
                "change that: send an update and check its result.",
            )
        result = None
        for round_ in range(self.verify_rounds):
            settled = round_ == self.verify_rounds - 1
            auth = (
                DnsAnswer("ns1.example.net (192.0.2.53)", (expected,), 60, True),
                DnsAnswer("ns2.example.net (198.51.100.53)", (expected,), 60, True),
            )
            res = tuple(
                DnsAnswer(
                    server, (expected if settled or i == 0 else OLD_IP,), 60 if settled else 42, settled or i == 0
                )
                for i, server in enumerate(("1.1.1.1", "8.8.8.8", "9.9.9.9"))
            )
            result = VerifyResult(
                hostname,
                expected_ipv4,
                expected_ipv6,
                auth,
                res,
                "ok" if settled else "propagating",
                None,  # the wizard does not ping any more: the reach check is the proof
                "" if settled else "8.8.8.8 and 9.9.9.9 still serve the old address from their cache.",
                caches_settle_s=None if settled else 42,
            )
            if on_progress:
                on_progress(result, float(round_ * 10))
            if self.delay_s and not settled:
                await asyncio.sleep(self.delay_s * 3)
        assert result is not None
        return result

    async def reach(self, hostname: str, ports: Sequence[int], public: tuple[str | None, str | None]) -> Any:
        """checks.reach.ReachResult as the real check gives it in each scenario (values from the lab runs)."""
        from checks.probes.tlsprobe import TlsFacts
        from checks.reach import ReachPort, ReachResult, build_findings

        self.calls.append(("reach", (hostname, tuple(ports))))
        d = diagnosis_for(self.scenario)
        address = public[0] or d.external.ipv4
        port = ports[0] if ports else 443
        if self.scenario in ("cgnat", "double-nat"):
            rp = ReachPort(
                port,
                "tcp",
                4,
                address,
                "filtered",
                "closed",
                "unknown",
                None,
                port_verdict="blocked-or-not-forwarded",
                evidence=("Outside: probe.example.net tried the address: timed out.",),
                fix="Another router or the ISP's NAT sits in front of yours.",
            )
        else:
            tls = TlsFacts(
                ok=True,
                server_name=hostname,
                names=(hostname,),
                issuer="R11",
                not_after="2027-02-02T10:00:00Z",
                days_left=60,
            )
            rp = ReachPort(
                port,
                "tcp",
                4,
                address,
                "open",
                "closed",
                "broken",
                tls if port == 443 else None,
                evidence=("Inside: this machine connected to its own public address: refused (reset).",),
            )
        findings = build_findings(hostname, True, "ok", "", [address], [address], [rp], "probe.example.net")
        verdict = "reachable" if rp.outside == "open" else "unreachable"
        return ReachResult(
            hostname,
            (address,),
            True,
            address,
            None,
            "ok",
            "",
            verdict,
            (rp,),
            findings,
            duration_ms=1400.0,
            prober="probe.example.net",
        )

    async def save_config(self, config: Config) -> Path:
        self.calls.append(("save_config", config.path))
        return await asyncio.to_thread(save_config, config)

    async def install_service(self, config_path: Path, scope: str | None = None) -> Any:
        """The real install code (checks.ddns.service), with systemctl/loginctl recorded instead
        of run (``systemd``: pretend systemd runs); the user unit goes to $XDG_CONFIG_HOME."""
        from checks.ddns import service

        self.calls.append(("install_service", config_path))
        assert scope != "system", "the TUI tests install user units only (they run as root)"
        plan = service.plan_install(scope or "user", config_path=config_path, executable="/usr/local/bin/ddns-wizard")

        def run(argv):  # type: ignore[no-untyped-def]
            self.calls.append(("run", tuple(argv)))
            return 0, ""

        return await asyncio.to_thread(service.install, plan, run=run, systemd=self.systemd)

    async def notify_test(self, urls: Sequence[str]) -> Any:
        """Accepted when the URL holds "good" (no network here)."""
        from checks.ddns.notify import Delivery, shown_url

        self.calls.append(("notify_test", len(urls)))
        return [Delivery(shown_url(u), "test", "good" in u, "" if "good" in u else "HTTP 500") for u in urls]

    async def export_report(
        self, diagnosis: Diagnosis, path: Path, *, redact: bool = True, config: Config | None = None
    ) -> Path:
        self.calls.append(("export_report", path))
        secrets = (config or self.config).secret_values()
        return await asyncio.to_thread(report_json_fallback, diagnosis, path, secrets)


def main() -> None:  # pragma: no cover - a manual demo
    import sys

    from wizard.tui.app import WizardApp

    scenario = sys.argv[1] if len(sys.argv) > 1 else "home"
    config = Config(path=Path("/tmp/ddns-wizard-demo/config.toml"))
    WizardApp(FakeEngine(scenario=scenario, delay_s=0.25), config, report_dir=Path("/tmp/ddns-wizard-demo")).run()


if __name__ == "__main__":  # pragma: no cover
    main()
