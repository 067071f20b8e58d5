"""``reach``: can someone outside open HOSTNAME:PORT, with a valid certificate?

One end-to-end check instead of three partial ones (verify: the record; ports check:
an address; a LAN ping: nothing).  For a name and its ports:

1. DNS: the name's A/AAAA from the authoritative servers and the configured public
   resolvers (checks.dns.verify), compared with this network's public addresses (the
   configured IP echoes): ``points_here``.
2. Outside: for each family whose address points here, the project's probe server
   (``[endpoints] port_check`` entries ``ddnsw+https://HOST``) is asked
   ``/reach/tcp/N?name=HOSTNAME&tls=1``: it resolves the name itself, dials the
   requester's own address only (probeserver/reach.py), and for TLS ports does the
   handshake with SNI = the name and reports the certificate.  Without such a prober,
   the echoip-style probers (ifconfig.co, portchecker.io) answer the TCP part about
   our own address (the name was just shown to point at it), with no TLS detail; with
   none at all, ``outside`` is ``unknown`` and a finding says how to get a prober.
3. Inside: an ordinary TCP connection from here to our own public address and port
   (and the TLS handshake for TLS ports): if the outside works and the inside does not,
   or reaches another certificate (the router's own admin page), the router does no
   NAT loopback (hairpin).  Nothing but ordinary connections is sent: no packet with
   a forged source (a router's LAND-attack filter must not see one).
4. The verdict, in the order of what to fix first: ``wrong-address`` (the name does
   not point here), ``unreachable`` (a port is closed or filtered from outside, with
   the ``ports check`` reasoning), ``reachable`` (with TLS problems as error findings
   ahead of everything else), ``unknown`` (nobody could test from outside, or DNS did
   not answer).

Facts and codes only; wizard/ words them.  Every network step has its deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .model import Finding, NatResult, to_jsonable
from .probes.tlsprobe import TlsFacts

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from .config import Config
    from .portcheck.probers import Prober

ReachVerdict = Literal["reachable", "unreachable", "wrong-address", "unknown"]
PortState = Literal["open", "closed", "filtered", "unknown"]
Hairpin = Literal["works", "broken", "unknown"]
# Why the outside view is unknown (ReachPort.outside_code).
OutsideCode = Literal["no-prober", "not-your-address", "resolve-failed", "prober-failed", "rate-limited", "not-tested"]
TLS_PORTS = frozenset({443, 465, 563, 636, 853, 989, 990, 992, 993, 995, 5061, 8443, 9443})
REACH_SCHEMA = "ddns-wizard/reach@1"


@dataclass(frozen=True)
class ReachPortSpec:
    port: int
    protocol: Literal["tcp"] = "tcp"
    tls: bool = True

    @property
    def label(self) -> str:
        return f"{self.port}/{self.protocol}"


def parse_reach_port(text: str) -> ReachPortSpec:
    """``PORT`` or ``PORT/tcp`` (TLS assumed on the usual TLS ports; ``PORT/tls`` forces it,
    ``PORT/plain`` turns it off).  ValueError with a sentence for anything else."""
    raw = text.strip().lower()
    port_text, _, kind = raw.partition("/")
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r} is not a port (1-65535, optionally /tcp)")
    port = int(port_text)
    if kind in ("", "tcp"):
        return ReachPortSpec(port, "tcp", port in TLS_PORTS)
    if kind == "tls":
        return ReachPortSpec(port, "tcp", True)
    if kind == "plain":
        return ReachPortSpec(port, "tcp", False)
    if kind == "udp":
        raise ValueError(f"{text}: reach tests TCP services; a UDP port is tested by the port check")
    raise ValueError(f"{text!r}: expected PORT, PORT/tcp, PORT/tls or PORT/plain")


@dataclass(frozen=True)
class OutsideAnswer:
    """What an outside prober said about name:port over one family."""

    state: PortState
    prober: str | None = None
    result: str | None = None  # connected | refused | timeout | error | reachable | unreachable
    tls: TlsFacts | None = None
    code: OutsideCode | None = None  # why state is unknown
    error: str | None = None
    prober_addresses: tuple[str, ...] = ()  # what the name resolves to at the prober (on refusal)
    observed_ip: str | None = None
    kind: str | None = None  # ddnsw | echoip | portchecker
    ms: float = 0.0


@dataclass(frozen=True)
class ReachPort:
    port: int
    protocol: str
    family: int
    address: str | None  # the public address tested (the name's, which is ours)
    outside: PortState
    inside: PortState
    hairpin: Hairpin
    tls: TlsFacts | None  # the outside view's certificate (None: not a TLS test)
    tls_tested: bool = False
    inside_tls: TlsFacts | None = None
    outside_detail: OutsideAnswer | None = None
    port_verdict: str | None = None  # the ports check's verdict for an unreached port
    evidence: tuple[str, ...] = ()
    fix: str = ""


@dataclass(frozen=True)
class ReachResult:
    hostname: str
    addresses: tuple[str, ...]
    points_here: bool | None
    public_ipv4: str | None
    public_ipv6: str | None
    dns_verdict: str
    dns_explanation: str
    verdict: ReachVerdict
    ports: tuple[ReachPort, ...]
    findings: tuple[Finding, ...]
    duration_ms: float = 0.0
    prober: str | None = None  # the outside prober used (label), None when none

    @property
    def tls_ok(self) -> bool | None:
        tested = [p.tls for p in self.ports if p.tls is not None]
        if not tested:
            return None
        return all(t.ok for t in tested)


# --------------------------------------------------------------------------- pure parts


def outside_state(result: str | None) -> PortState:
    return {
        "connected": "open",
        "reachable": "open",
        "refused": "closed",
        "timeout": "filtered",
        "unreachable": "filtered",
    }.get(result or "", "unknown")  # type: ignore[return-value]


def judge_hairpin(
    outside: PortState, inside: PortState, outside_tls: TlsFacts | None, inside_tls: TlsFacts | None
) -> tuple[Hairpin, str | None]:
    """NAT loopback from the two views: (state, the sentence that says why)."""
    if outside != "open":
        return "unknown", None
    if inside in ("closed", "filtered"):
        how = "was refused" if inside == "closed" else "timed out"
        return "broken", (
            f"From inside this network the connection to the public address {how}, while it "
            "works from outside: the router does not loop connections to its own public address "
            "back into the LAN (no NAT loopback / hairpin NAT)."
        )
    if inside == "open":
        if (
            outside_tls is not None
            and inside_tls is not None
            and outside_tls.fingerprint
            and inside_tls.fingerprint
            and outside_tls.fingerprint != inside_tls.fingerprint
        ):
            return "broken", (
                "From inside this network the public address answers with another certificate "
                f"(issued by {inside_tls.issuer or 'someone else'}) than from outside: inside, the "
                "router answers its public address itself (its admin page) instead of looping the "
                "connection back to your server."
            )
        return "works", "From inside this network the public address reaches the same service (NAT loopback works)."
    return "unknown", None


def verdict_of(points_here: bool | None, ports: Sequence[ReachPort]) -> ReachVerdict:
    """wrong-address, then unreachable, then reachable; unknown when not tested enough."""
    if points_here is False:
        return "wrong-address"
    if points_here is None:
        return "unknown"
    tested = [p for p in ports if p.outside != "unknown"]
    if any(p.outside in ("closed", "filtered") for p in tested):
        return "unreachable"
    # Every port number opened from outside over at least one family (a family nobody could
    # test, e.g. IPv6 without an IPv6 prober, is a finding of its own, not a verdict).
    numbers = {p.port for p in ports}
    if numbers and numbers == {p.port for p in tested}:
        return "reachable"
    return "unknown"


def _fmt(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "nothing"


TLS_WORDS = {
    "expired": (
        "The certificate has expired",
        "Renew it (certbot renew / your ACME client), then reload the web server; check that the renewal timer runs.",
    ),
    "not-yet-valid": (
        "The certificate is not valid yet",
        "Check this server's clock, or wait until the certificate's start date.",
    ),
    "wrong-name": (
        "The certificate is for other names",
        "Get a certificate that names {name} (add it to "
        "your ACME client's domains), or serve {name} with the right one (SNI: the web server's "
        "server_name / ServerName for this name).",
    ),
    "self-signed": (
        "The certificate is self-signed",
        "Browsers refuse it. Get a free certificate from Let's Encrypt (certbot, Caddy, Traefik, acme.sh) for {name}.",
    ),
    "untrusted-root": (
        "The certificate comes from a CA that is not publicly trusted",
        "Use a certificate from a public CA (Let's Encrypt) for {name}, or install your private CA on every client.",
    ),
    "incomplete-chain": (
        "The server does not send the intermediate certificate",
        "Configure the full chain "
        "(fullchain.pem, not cert.pem) in the web server; browsers may cope, most other "
        "clients fail.",
    ),
    "invalid": ("The certificate does not validate", "See the detail below; renew or replace it."),
    "no-tls": (
        "The port does not speak TLS",
        "Check the port: is HTTPS served here (not plain HTTP, SSH, or another service)?",
    ),
    "timeout": ("The TLS handshake did not finish in time", "Check that the service on this port is TLS."),
    "refused": ("The TLS connection was refused", "The port closed between two connections: test again."),
    "unreachable": ("The TLS connection failed", "Test again."),
}


def build_findings(
    result_name: str,
    points_here: bool | None,
    dns_verdict: str,
    dns_explanation: str,
    addresses: Sequence[str],
    public: Sequence[str],
    ports: Sequence[ReachPort],
    prober: str | None,
) -> tuple[Finding, ...]:
    """Findings in the order of what to fix first (stable ids, see docs/reach.md)."""
    out: list[Finding] = []
    name = result_name
    if points_here is False:
        if dns_verdict in ("nxdomain", "no-answer"):
            out.append(
                Finding(
                    "reach-no-address",
                    "error",
                    f"{name} has no address",
                    dns_explanation,
                    "Publish the record (send the update, or use your provider's page), then check the name again.",
                    actions=("update", "verify"),
                )
            )
        else:
            out.append(
                Finding(
                    "reach-wrong-address",
                    "error",
                    f"{name} does not point at this network",
                    f"It resolves to {_fmt(list(addresses))}; this network's public address is "
                    f"{_fmt(list(public))}. {dns_explanation}",
                    "Update the record, or check that the name is the right one; a friend's browser "
                    "goes wherever the record points.",
                    actions=("update",),
                )
            )
    elif points_here is None:
        out.append(
            Finding(
                "reach-dns-unknown",
                "warning",
                f"Could not tell where {name} points",
                dns_explanation,
                "Check the resolvers in [endpoints] and this machine's connection.",
            )
        )
    for p in ports:
        label = f"{p.port}/{p.protocol}" + (f" over IPv{p.family}" if p.family == 6 else "")
        if p.outside in ("closed", "filtered"):
            how = (
                "refused (something sent a reset)"
                if p.outside == "closed"
                else "timed out (packets are dropped on the way)"
            )
            out.append(
                Finding(
                    "reach-port-unreachable",
                    "error",
                    f"{name}:{p.port} is not reachable from outside",
                    f"{label}: the connection from outside to {p.address} was {how}. "
                    + " ".join(e for e in p.evidence if not e.startswith(("Outside:", "Inside:"))),
                    p.fix,
                    # the reach check does not ask the router, nor look past it
                    actions=("list-mappings", "diagnose"),
                )
            )
    for p in ports:
        if p.tls is not None and not p.tls.ok and p.outside == "open":
            title, fix = TLS_WORDS.get(p.tls.error or "invalid", TLS_WORDS["invalid"])
            detail = (
                f"{name}:{p.port}: {title.lower()} (names: {_fmt(list(p.tls.names))}; issuer: "
                f"{p.tls.issuer or 'unknown'}; valid until {p.tls.not_after or 'unknown'})."
                + (f" OpenSSL: {p.tls.detail}." if p.tls.detail else "")
            )
            out.append(
                Finding(
                    f"tls-{p.tls.error or 'invalid'}",
                    "error",
                    f"{title} ({name}:{p.port})",
                    detail,
                    fix.format(name=name),
                )
            )
        elif p.tls is not None and p.tls.expiring_soon:
            out.append(
                Finding(
                    "tls-expiring",
                    "warning",
                    f"The certificate of {name}:{p.port} expires in {p.tls.days_left} days",
                    f"It is valid until {p.tls.not_after}; issued by {p.tls.issuer}.",
                    "Renew it now and check that automatic renewal runs (certbot renew --dry-run).",
                )
            )
    for p in ports:
        od = p.outside_detail
        if p.outside != "unknown" or od is None or od.code == "not-tested":
            continue
        if od.code == "no-prober":
            out.append(
                Finding(
                    "reach-needs-prober",
                    "warning",
                    "The outside test needs a prober",
                    "Nothing here can connect to your service from the internet: no probe server is "
                    "configured ([endpoints] port_check has no ddnsw+https:// entry and no other "
                    "prober answered).",
                    "Run the project's probe server, with a certificate, on a machine outside your "
                    "network (a small VPS, a friend's server) and add "
                    '"ddnsw+https://THAT-HOST" to [endpoints] port_check.',
                    actions=("probe-server",),
                )
            )
            break
        if od.code == "not-your-address":
            out.append(
                Finding(
                    "reach-prober-sees-other-address",
                    "warning",
                    f"The prober resolves {name} to another address",
                    f"{od.prober}: {name} resolves to {_fmt(list(od.prober_addresses))} there, not to "
                    f"this network's {p.address}; it connects only to the address a request comes "
                    "from. Its resolver may still hold an old answer.",
                    "Wait for the old record's TTL (checking the name shows how long), then test again.",
                    actions=("verify",),
                )
            )
        elif od.code == "rate-limited":
            # The public echoip-style probers allow about one automated request a minute
            # (ifconfig.co's documented limit; modelled in tests/lab/services/portcheckers.py),
            # so right after a port check they are not asked again: say that, not "check
            # your connection".
            out.append(
                Finding(
                    "reach-outside-unknown",
                    "warning",
                    f"{name}:{p.port} was not tested from outside: the prober's rate limit",
                    od.error or "The outside prober allows only a few requests a minute.",
                    "Test again in a minute, or add your own probe server "
                    "(ddnsw+https://HOST in [endpoints] port_check), which is not limited that way.",
                )
            )
        else:
            out.append(
                Finding(
                    "reach-outside-unknown",
                    "warning",
                    f"{name}:{p.port} was not tested from outside",
                    od.error or "No outside prober answered.",
                    "Check [endpoints] port_check and this machine's connection, then test again.",
                )
            )
    for p in ports:
        if (
            p.outside == "open"
            and p.tls is None
            and p.outside_detail is not None
            and p.outside_detail.kind in ("echoip", "portchecker")
            and p.port in TLS_PORTS
        ):
            out.append(
                Finding(
                    "reach-tls-not-checked",
                    "info",
                    "The certificate was not checked from outside",
                    f"{p.outside_detail.prober} only says whether the port is reachable.",
                    "The project's probe server (ddnsw+https://HOST in [endpoints] port_check) also "
                    "checks the certificate.",
                )
            )
            break
    broken = [p for p in ports if p.hairpin == "broken"]
    if broken:
        p = broken[0]
        out.append(
            Finding(
                "hairpin-broken",
                "info",
                "Inside your network the name does not work (no NAT loopback)",
                " ".join(e for e in p.evidence if "inside" in e.lower() and not e.startswith("Inside:"))
                or "The router does not loop connections to its public address back into the LAN.",
                f"Outside visitors are fine. For devices at home: a DNS entry for {name} pointing at "
                "the server's LAN address in the router or your local DNS (Pi-hole, dnsmasq, unbound: "
                "split DNS), or a hosts-file line on each device (`LAN-IP " + name + "`); or enable "
                "'NAT loopback' / 'hairpin NAT' in the router if it has the option.",
            )
        )
    opened = [p for p in ports if p.outside == "open"]
    if (
        points_here
        and ports
        and verdict_of(points_here, ports) == "reachable"
        and not any(p.tls is not None and not p.tls.ok for p in opened)
    ):
        out.append(
            Finding(
                "reachable",
                "ok",
                f"{name} is reachable from outside",
                "Tested from outside: "
                + ", ".join(
                    f"{p.port}/{p.protocol} (IPv{p.family})"
                    + (" with a valid certificate" if p.tls and p.tls.ok else "")
                    for p in opened
                )
                + ".",
                "",
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------- network parts


async def tcp_state(ip: str, port: int, *, timeout_s: float = 2.0) -> tuple[PortState, float, str | None]:
    """An ordinary TCP connect (closed at once): (state, ms, error)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            _reader, writer = await asyncio.open_connection(ip, port)
    except TimeoutError:
        return "filtered", (time.monotonic() - started) * 1000, None
    except ConnectionRefusedError:
        return "closed", (time.monotonic() - started) * 1000, None
    except OSError as exc:
        return "unknown", (time.monotonic() - started) * 1000, exc.strerror or type(exc).__name__
    writer.close()
    try:
        async with asyncio.timeout(0.5):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        pass
    return "open", (time.monotonic() - started) * 1000, None


def parse_reach_response(
    prober: Prober, name: str, status: int, body: bytes, *, family: int, ms: float = 0.0
) -> OutsideAnswer:
    """A probe server's ``/reach`` answer (untrusted input) as an OutsideAnswer."""
    import json

    def unknown(code: OutsideCode, error: str, **kw: Any) -> OutsideAnswer:
        return OutsideAnswer("unknown", prober.label, code=code, error=error, kind="ddnsw", ms=ms, **kw)

    try:
        data = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return unknown("prober-failed", f"{prober.label} answered HTTP {status} without JSON")
    words = data.get("error")
    said = words if isinstance(words, str) else ""
    if status == 429:
        return unknown("rate-limited", f"{prober.label} refused: too many requests (HTTP 429)")
    if status == 403 and data.get("code") == "not-your-address":
        raw = data.get("addresses")
        addrs = tuple(a for a in raw[:16] if isinstance(a, str)) if isinstance(raw, list) else ()
        return unknown("not-your-address", f"{prober.label}: {said[:300]}", prober_addresses=addrs)
    if status == 502 and data.get("code") == "resolve-failed":
        return unknown("resolve-failed", f"{prober.label}: {said[:300]}")
    if status == 404:
        return unknown("prober-failed", f"{prober.label} has no /reach endpoint (an older probe server: update it)")
    if status != 200:
        return unknown("prober-failed", f"{prober.label} answered HTTP {status}: {said[:200]}")
    result = data.get("result")
    if result not in ("connected", "refused", "timeout", "error"):
        return unknown("prober-failed", f"{prober.label} answered an unknown result {result!r}")
    tls = TlsFacts.from_dict(data.get("tls"), name) if data.get("tls") is not None else None
    observed = data.get("ip") if isinstance(data.get("ip"), str) else None
    error = data.get("error") if isinstance(data.get("error"), str) else None
    return OutsideAnswer(
        outside_state(result),
        prober.label,
        result=result,
        tls=tls,
        observed_ip=observed,
        error=error,
        kind="ddnsw",
        ms=ms,
    )


async def ask_reach(
    client: httpx.AsyncClient, prober: Prober, name: str, port: int, *, tls: bool, family: int, timeout_s: float = 12.0
) -> OutsideAnswer:
    """Ask one probe server's ``/reach/tcp/N`` over ``family`` (never raises)."""
    import httpx

    from probeserver.wire import reach_url

    from .http import fetch_over

    url = reach_url(prober.url, port, name, tls=tls)
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            response, body, used = await fetch_over(client, "GET", url, family, timeout_s=timeout_s, max_bytes=65536)
    except (TimeoutError, httpx.TimeoutException):
        return OutsideAnswer(
            "unknown",
            prober.label,
            code="prober-failed",
            kind="ddnsw",
            error=f"{prober.label} did not answer within {timeout_s:g} s",
        )
    except httpx.HTTPError as exc:
        return OutsideAnswer(
            "unknown",
            prober.label,
            code="prober-failed",
            kind="ddnsw",
            error=f"could not reach {prober.label} over IPv{family}: {str(exc)[:160] or type(exc).__name__}",
        )
    ms = (time.monotonic() - started) * 1000
    if used is not None and used != family:
        return OutsideAnswer(
            "unknown",
            prober.label,
            code="prober-failed",
            kind="ddnsw",
            error=f"{prober.label}'s answer came over IPv{used}, not IPv{family}: discarded",
        )
    return parse_reach_response(prober, name, response.status_code, body, family=family, ms=ms)


OutsideAsk = Callable[[str, int, bool, int], Awaitable[OutsideAnswer]]


def _unreached_reasoning(
    spec: ReachPortSpec, answer: OutsideAnswer, local_ip: str | None, service_here: bool | None
) -> tuple[str, str, list[str]]:
    """The ``ports check`` reasoning for a port the outside could not get through to."""
    from .portcheck.probers import ProbeAnswer
    from .portcheck.verdict import PortEvidence, unreached_verdict

    result = answer.result if answer.result in ("refused", "timeout") else "timeout"
    probe = ProbeAnswer(
        answer.prober or "prober",
        "ddnsw" if answer.kind == "ddnsw" else "echoip",
        spec.port,
        "tcp",
        "not-reached",
        result=result,
    )
    ev = PortEvidence(spec.port, "tcp", nonce="", listener="in-use", answer=probe)
    verdict, fix, extra = unreached_verdict(ev, None, NatResult("unknown", None), local_ip=local_ip, maps=None)
    lines: list[str] = []
    if service_here is True:
        lines.append(
            f"The service answers on {local_ip}:{spec.port} inside the LAN, so it runs; the way in "
            "from outside is what fails."
        )
    elif service_here is False:
        lines.append(
            f"Nothing answers on port {spec.port} of this machine ({local_ip}): if the service runs "
            "here, start it (and make it listen on all addresses, not only 127.0.0.1); if it runs on "
            "another device, the forward must point at that device's address."
        )
    # The ports check's words assume it asked the router; reach does not (UPnP discovery would
    # cost seconds), so say that instead of "the router offers no way".
    lines += [
        e.replace(
            "(the router offers no way to ask: no UPnP, NAT-PMP or PCP)",
            "(this check does not ask the router, so it cannot say which forwards exist)",
        )
        for e in extra
    ]
    lines.append(
        "If another NAT sits in front of your router (the ISP's carrier-grade NAT, or a second "
        "router), no forward at home can help: a full diagnosis tells."
    )
    return verdict, fix, lines


async def run_reach(
    hostname: str,
    specs: Sequence[ReachPortSpec],
    config: Config,
    *,
    client: httpx.AsyncClient | None = None,
    public: tuple[str | None, str | None] | None = None,
    ask_outside: OutsideAsk | None = None,
    local_ip: str | None = None,
    dns_port: int = 53,
    timeout_s: float = 3.0,
    on_progress: Callable[[str], None] | None = None,
) -> ReachResult:
    """The whole check (module docstring).  ``public``: this network's (IPv4, IPv6) when
    already known (else the configured echoes are asked); ``ask_outside(name, port, tls,
    family)`` replaces the probers (tests); ``local_ip``: this machine's LAN address."""
    from .dns.verify import judge, normalize_hostname, verify_hostname
    from .portcheck.probers import parse_probers

    started = time.monotonic()
    name = normalize_hostname(hostname)
    note = on_progress or (lambda _m: None)
    own_client = client is None
    if client is None:
        from .http import make_client

        client = make_client(timeout_s=timeout_s)
    try:
        note("dns")
        dns_task = verify_hostname(
            name,
            expected_ipv4=None,
            expected_ipv6=None,
            resolvers=list(config.endpoints.resolvers),
            ping=False,
            timeout_s=timeout_s,
            port=dns_port,
        )
        if public is None:
            dns_result, found = await asyncio.gather(dns_task, public_addresses(client, config, timeout_s=timeout_s))
            public = found
        else:
            dns_result = await dns_task
        if local_ip is None:
            local_ip = await _local_ipv4()
        pub4, pub6 = public
        verdict, explanation, _settle, auth, res = judge(pub4, pub6, dns_result.authoritative, dns_result.resolvers)
        if pub4 is None and pub6 is None:
            explanation = "This network's public address is unknown (no IP echo answered). " + explanation
        addresses = _published(auth, res)
        points_here: bool | None
        if verdict in ("ok", "propagating"):
            points_here = True
        elif verdict in ("wrong-ip", "nxdomain", "no-answer"):
            points_here = False
        else:
            points_here = None
        if points_here is None and (pub4 or pub6) and addresses:
            points_here = bool({a for a in (pub4, pub6) if a} & set(addresses))
        families = [(f, a) for f, a in ((4, pub4), (6, pub6)) if a and a in addresses] if points_here else []

        probers4, _e4 = parse_probers(config.endpoints.port_check)
        probers6, _e6 = parse_probers(config.endpoints.port_check_v6)
        if ask_outside is None:
            ask_outside = _default_outside(client, probers4, probers6)
        used_prober = next((p.label for p in (*probers4, *probers6) if p.kind == "ddnsw"), None)

        note("outside")

        async def one(spec: ReachPortSpec, family: int, address: str) -> ReachPort:
            outside_task = ask_outside(name, spec.port, spec.tls, family)
            inside_task = _inside(address, spec, name, timeout_s)
            outside, (inside, inside_tls) = await asyncio.gather(outside_task, inside_task)
            hairpin, why = judge_hairpin(outside.state, inside, outside.tls, inside_tls)
            evidence = [
                f"Outside: {_outside_sentence(outside, address, spec)}",
                f"Inside: {_inside_sentence(inside, address, spec, inside_tls)}",
            ]
            if why:
                evidence.append(why)
            port_verdict, fix = None, ""
            if outside.state in ("closed", "filtered"):
                here = None
                if local_ip and family == 4:
                    state, _ms, _err = await tcp_state(local_ip, spec.port, timeout_s=1.0)
                    here = state == "open"
                port_verdict, fix, lines = _unreached_reasoning(spec, outside, local_ip, here)
                evidence += lines
            return ReachPort(
                spec.port,
                spec.protocol,
                family,
                address,
                outside.state,
                inside,
                hairpin,
                tls=outside.tls if spec.tls else None,
                tls_tested=spec.tls and outside.tls is not None,
                inside_tls=inside_tls,
                outside_detail=outside,
                port_verdict=port_verdict,
                evidence=tuple(evidence),
                fix=fix,
            )

        if families:
            ports = list(await asyncio.gather(*(one(s, f, a) for s in specs for f, a in families)))
        else:
            why = "the name does not point here" if points_here is False else "where the name points is unknown"
            ports = [
                ReachPort(
                    s.port,
                    s.protocol,
                    4,
                    None,
                    "unknown",
                    "unknown",
                    "unknown",
                    None,
                    outside_detail=OutsideAnswer("unknown", code="not-tested", error=f"Not tested: {why}."),
                    evidence=(f"Not tested from outside: {why}.",),
                )
                for s in specs
            ]
        public_list = [a for a in (pub4, pub6) if a]
        findings = build_findings(name, points_here, verdict, explanation, addresses, public_list, ports, used_prober)
        return ReachResult(
            hostname=name,
            addresses=tuple(addresses),
            points_here=points_here,
            public_ipv4=pub4,
            public_ipv6=pub6,
            dns_verdict=verdict,
            dns_explanation=explanation,
            verdict=verdict_of(points_here, ports),
            ports=tuple(ports),
            findings=findings,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            prober=used_prober,
        )
    finally:
        if own_client:
            await client.aclose()


def _published(auth: Sequence[Any], res: Sequence[Any]) -> list[str]:
    """The addresses the name resolves to: the authoritative answer, else the resolvers'."""
    for group in (auth, res):
        found: list[str] = []
        for answer in group:
            for a in answer.answers:
                if _is_ip(a) and a not in found:
                    found.append(a)
        if found:
            return found
    return []


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def _local_ipv4() -> str | None:
    try:
        from .probes.local import gather_local

        return (await gather_local(timeout_s=1.0)).ipv4
    except Exception:
        return None


async def _inside(address: str, spec: ReachPortSpec, name: str, timeout_s: float) -> tuple[PortState, TlsFacts | None]:
    state, _ms, _err = await tcp_state(address, spec.port, timeout_s=min(2.0, timeout_s))
    if state != "open" or not spec.tls:
        return state, None
    from .probes.tlsprobe import tls_probe

    return state, await tls_probe(address, spec.port, name, timeout_s=min(4.0, timeout_s + 1))


def _outside_sentence(o: OutsideAnswer, address: str, spec: ReachPortSpec) -> str:
    if o.state == "unknown":
        return o.error or "no prober answered."
    if o.state != "open":
        word = {"closed": "refused (reset)", "filtered": "timed out"}[o.state]
        return f"{o.prober} tried {address}:{spec.port}: {word}."
    tls = ""
    if o.tls is not None:
        tls = (
            f"; TLS as {o.tls.server_name}: valid, issued by {o.tls.issuer}, until {o.tls.not_after}"
            if o.tls.ok
            else f"; TLS as {o.tls.server_name}: {o.tls.error}" + (f" ({o.tls.detail})" if o.tls.detail else "")
        )
    return f"{o.prober} connected to {address}:{spec.port}{tls}."


def _inside_sentence(state: PortState, address: str, spec: ReachPortSpec, tls: TlsFacts | None) -> str:
    word = {"open": "connected", "closed": "refused (reset)", "filtered": "timed out", "unknown": "failed"}[state]
    extra = f" (certificate issued by {tls.issuer})" if tls is not None and tls.issuer else ""
    return f"this machine connected to its own public address {address}:{spec.port}: {word}{extra}."


def _default_outside(client: httpx.AsyncClient, probers4: Sequence[Prober], probers6: Sequence[Prober]) -> OutsideAsk:
    async def ask(name: str, port: int, tls: bool, family: int) -> OutsideAnswer:
        probers = probers4 if family == 4 else probers6
        own = [p for p in probers if p.kind == "ddnsw"]
        last: OutsideAnswer | None = None
        for prober in own:
            answer = await ask_reach(client, prober, name, port, tls=tls, family=family)
            if answer.state != "unknown" or answer.code == "not-your-address":
                return answer
            last = answer
        others = [p for p in probers if p.kind != "ddnsw"]
        if others:
            from .portcheck.probers import ProberPacer, ask_probers

            got = await ask_probers(
                client, others, port, "tcp", token="reach", family=family, pacer=ProberPacer.default(), max_wait_s=0.0
            )
            if got is not None and got.outcome != "no-answer":
                return OutsideAnswer(
                    "open" if got.outcome == "reached" else "filtered",
                    got.prober,
                    result=got.result,
                    kind=got.kind,
                    observed_ip=got.observed_ip,
                    ms=got.ms,
                )
            if got is not None:
                return last or OutsideAnswer(
                    "unknown",
                    got.prober,
                    kind=got.kind,
                    error=got.error,
                    code="rate-limited" if got.code == "rate-limited" else "prober-failed",
                )
        if last is not None:
            return last
        return OutsideAnswer(
            "unknown",
            code="no-prober",
            error=f"No outside prober is configured for IPv{family} ([endpoints] port_check"
            f"{'' if family == 4 else '_v6'}).",
        )

    return ask


async def public_addresses(
    client: httpx.AsyncClient, config: Config, *, timeout_s: float = 3.0
) -> tuple[str | None, str | None]:
    """This network's public IPv4 and IPv6 from the configured HTTP echoes (None: unknown)."""
    from .probes.publicip import http_echo, summarize_external

    urls = [(u, 4) for u in config.endpoints.ip_echo] + [(u, 6) for u in config.endpoints.ip_echo_v6]
    if not urls:
        return None, None
    sources = await asyncio.gather(*(http_echo(client, u, family=f, timeout_s=timeout_s) for u, f in urls))
    info = summarize_external(sources)
    return info.ipv4, info.ipv6


# --------------------------------------------------------------------------- JSON


def tls_json(t: TlsFacts | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "ok": t.ok,
        "names": list(t.names),
        "issuer": t.issuer,
        "not_after": t.not_after,
        "days_left": t.days_left,
        "error": t.error,
        "detail": t.detail,
        "problems": list(t.problems),
        "expiring_soon": t.expiring_soon,
    }


def result_json(r: ReachResult) -> dict[str, Any]:
    """The ``reach --json`` object (docs/reach.md; schema checks/schema/reach-1.schema.json)."""
    return {
        "schema": REACH_SCHEMA,
        "hostname": r.hostname,
        "addresses": list(r.addresses),
        "public": {"ipv4": r.public_ipv4, "ipv6": r.public_ipv6},
        "points_here": r.points_here,
        "dns": {"verdict": r.dns_verdict, "explanation": r.dns_explanation},
        "verdict": r.verdict,
        "tls_ok": r.tls_ok,
        "prober": r.prober,
        "ports": [
            {
                "port": p.port,
                "protocol": p.protocol,
                "family": p.family,
                "address": p.address,
                "outside": p.outside,
                "inside": p.inside,
                "hairpin": p.hairpin,
                "tls": tls_json(p.tls),
                "outside_result": p.outside_detail.result if p.outside_detail else None,
                "outside_code": p.outside_detail.code if p.outside_detail else None,
                "port_verdict": p.port_verdict,
                "evidence": list(p.evidence),
                "fix": p.fix,
            }
            for p in r.ports
        ],
        "findings": [to_jsonable(f) for f in r.findings],  # id, severity, title, detail, fix, actions
        "duration_ms": r.duration_ms,
    }


def summary_record(r: ReachResult) -> dict[str, Any]:
    """A compact record of a result for the watch history."""
    return {
        "hostname": r.hostname,
        "verdict": r.verdict,
        "points_here": r.points_here,
        "addresses": list(r.addresses),
        "ports": [
            {
                "port": p.port,
                "family": p.family,
                "outside": p.outside,
                "hairpin": p.hairpin,
                "tls_ok": p.tls.ok if p.tls else None,
                "tls_error": p.tls.error if p.tls else None,
                "days_left": p.tls.days_left if p.tls else None,
            }
            for p in r.ports
        ],
        "findings": [f.id for f in r.findings if f.severity in ("warning", "error")],
    }


__all__ = [
    "REACH_SCHEMA",
    "TLS_PORTS",
    "OutsideAnswer",
    "ReachPort",
    "ReachPortSpec",
    "ReachResult",
    "ask_reach",
    "build_findings",
    "judge_hairpin",
    "parse_reach_port",
    "parse_reach_response",
    "public_addresses",
    "result_json",
    "run_reach",
    "summary_record",
    "tcp_state",
    "verdict_of",
]


# --------------------------------------------------------------------------- [watch] reach


def watch_reach_specs(config: Config) -> tuple[ReachPortSpec, ...]:
    """``[watch] reach = ["443", ...]`` (off when absent or empty).  ConfigError when malformed."""
    from .errors import ConfigError

    watch = config.settings.get("watch", {})
    if not isinstance(watch, dict):
        raise ConfigError("[watch] must be a table")
    raw = watch.get("reach", [])
    if raw in (None, False):
        return ()
    if not isinstance(raw, list) or len(raw) > 8:
        raise ConfigError('[watch] reach must be a list of at most 8 ports, e.g. reach = ["443"]')
    specs: list[ReachPortSpec] = []
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise ConfigError(f"[watch] reach: {item!r} is not a port")
        try:
            specs.append(parse_reach_port(str(item)))
        except ValueError as exc:
            raise ConfigError(f"[watch] reach: {exc}") from None
    return tuple(specs)
