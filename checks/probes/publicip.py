"""The public address, asked of several independent outside sources at once.

HTTP echo services (plain-text body), DNS-based methods (OpenDNS, Cloudflare,
Google) and STUN (checks/probes/stun.py) each give an ExternalSource; summarize_external
takes the majority per family and explains why sources disagree when they do.
Every failure (timeout, refusal, HTML instead of an address, malformed DNS) is the
source's ``error`` sentence, never an exception.

Address families are never mixed.  An IPv4 source is asked over IPv4 only and an
IPv6 source over IPv6 only (HTTP: the request is pinned to the family, see
checks/http.py; DNS: the echo server's address of that family, as qdm12/ddns-updater
does in ``pkg/publicip/dns/fetch.go`` — ``tcp4``/``tcp6`` to the provider's IPv4 or
IPv6 address); an answer in the other family is discarded and said so, never counted
as a fact of either family.  Whatever a source answers passes
``checks.addresses.public_address``: a zoned (``%eth0``), link-local, private or
otherwise non-global address is that source's error, not its value (the updater's
``--allow-private`` relaxes only the "non-global" part).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from checks.addresses import parse_ip
from checks.model import ExternalInfo, ExternalSource, LocalInfo

if TYPE_CHECKING:  # httpx and dnspython are imported when a probe runs (lean start-up)
    import dns.message
    import httpx

MAX_BODY_BYTES = 4096  # an echo body is one address; more is not an echo service


def _snippet(text: str, limit: int = 40) -> str:
    flat = " ".join(text.split())
    return repr(flat[:limit] + ("..." if len(flat) > limit else ""))


def _address_text(text: str, allow_zone: bool) -> str | None:
    """The canonical address in ``text``; with ``allow_zone`` a zoned IPv6 address
    (``fe80::1%eth0``) is returned as written, so that ``accept_answer`` can discard it
    *with its reason* (parse_ip refuses zones outright)."""
    ip = parse_ip(text)
    if ip is not None:
        return str(ip)
    raw = text.strip()
    if allow_zone and "%" in raw and len(raw) <= 64:
        try:
            ipaddress.ip_address(raw)
        except ValueError:
            return None
        return raw
    return None


def parse_echo_body(text: str, *, allow_zone: bool = False) -> str | None:
    """The address in an echo service's body, or None.

    Accepts exactly: a bare address (whitespace around it allowed), Cloudflare
    trace-style ``key=value`` lines with an ``ip=`` line, or JSON ``{"ip": ...}``.
    ``allow_zone`` also returns a zoned address, for the caller to refuse with a reason.
    """
    stripped = text.strip()
    if not stripped or len(stripped) > MAX_BODY_BYTES:
        return None
    ip = _address_text(stripped, allow_zone)
    if ip is not None:
        return ip
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            return None
        value = data.get("ip") if isinstance(data, dict) else None
        return _address_text(value, allow_zone) if isinstance(value, str) else None
    lines = [line.strip() for line in stripped.splitlines() if line.strip()]
    if lines and all("=" in line for line in lines):
        for line in lines:
            key, _, value = line.partition("=")
            if key.strip() == "ip":
                return _address_text(value, allow_zone)
    return None


def _family_of(value: str) -> int:
    return 6 if ":" in value else 4


async def http_echo(
    client: httpx.AsyncClient,
    url: str,
    *,
    family: int = 4,
    timeout_s: float = 2.0,
    allow_non_public: bool = False,
) -> ExternalSource:
    """GET an echo URL over ``family`` only and read our address from the body."""
    import httpx

    from checks.http import fetch_over

    started = time.monotonic()
    fam: Literal[4, 6] = 6 if family == 6 else 4

    def result(value: str | None, error: str | None) -> ExternalSource:
        ms = round((time.monotonic() - started) * 1000, 1)
        return ExternalSource("http", url, fam, value, error, ms)

    try:
        async with asyncio.timeout(timeout_s):
            response, body, used = await fetch_over(
                client,
                "GET",
                url,
                fam,
                timeout_s=timeout_s,
                max_bytes=MAX_BODY_BYTES + 1,
                headers={"Accept": "text/plain, application/json"},
            )
    except TimeoutError:
        return result(None, f"no answer within {timeout_s:g} s")
    except httpx.TimeoutException:
        return result(None, f"no answer within {timeout_s:g} s")
    except httpx.ConnectError as exc:
        return result(None, _connect_error_text(exc, fam))
    except httpx.HTTPError as exc:
        return result(None, f"HTTP request failed: {exc or type(exc).__name__}")
    except (OSError, ValueError) as exc:
        return result(None, f"request failed: {exc}")
    if used is not None and used != fam:
        return result(None, f"the answer came over IPv{used}, not IPv{fam}: discarded")
    text = body[:MAX_BODY_BYTES].decode("utf-8", "replace")
    if len(body) > MAX_BODY_BYTES:
        text = body.decode("utf-8", "replace")  # too long: not an echo (parse_echo_body says so)
    if response.status_code != 200:
        return result(None, f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
    value = parse_echo_body(text, allow_zone=True)
    if value is None:
        return result(None, f"reply was not an IP address: {_snippet(text)}")
    return result(*accept_answer(value, fam, allow_non_public=allow_non_public))


def accept_answer(value: str, family: int, *, allow_non_public: bool = False) -> tuple[str | None, str | None]:
    """(value, None) when a source's answer counts as our public address of ``family``,
    else (None, the sentence saying why it was discarded)."""
    from checks.addresses import public_address

    address, problem = public_address(value, family)
    if address is not None:
        return address, None
    parsed = parse_ip(value) if "%" not in value else None
    mapped = getattr(parsed, "ipv4_mapped", None) if parsed is not None else None
    parsed = mapped or parsed
    if parsed is not None and parsed.version != family:
        return None, (
            f"asked for the IPv{family} address but the service saw IPv{parsed.version} {parsed}: "
            f"discarded (an IPv{parsed.version} answer is never an IPv{family} fact)"
        )
    if allow_non_public and parsed is not None:
        return str(parsed), None
    return None, f"answered {problem}: discarded"


def _root_os_error(exc: BaseException) -> OSError | None:
    """The OSError with an errno under httpx/httpcore/anyio's wrappers, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            return current
        current = current.__cause__ or current.__context__
    return None


def _connect_error_text(exc: Exception, family: int | None = None) -> str:
    import ssl

    root = _root_os_error(exc)
    # asyncio words it "Connect call failed (...)": the errno's own text says why. Not for
    # TLS errors: their errno is OpenSSL's reason number, and os.strerror of it is nonsense
    # ("certificate verify failed ... (Operation not permitted)").
    useful = root is not None and root.errno and not isinstance(root, ssl.SSLError)
    text = f"{exc} ({os.strerror(root.errno)})" if useful and root is not None and root.errno else str(exc)
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "name or service not known" in low or "nodename nor servname" in low or "resolution" in low:
        return f"cannot resolve the service's name ({text})"
    if "unreachable" in low or "no route to host" in low:
        return (
            "network unreachable (no route to the service)"
            if family is None
            else f"network unreachable over IPv{family} (no route to the service)"
        )
    if family is not None and (
        "all connection attempts failed" in low
        or "address family" in low
        or "invalid argument" in low
        or "cannot assign" in low
    ):
        return f"cannot connect over IPv{family}: {text or type(exc).__name__}"
    if "certificate" in low or "ssl" in low:
        return f"TLS failed: {text}"
    return f"cannot connect: {text or type(exc).__name__}"


# --- DNS-based methods -----------------------------------------------------------------


@dataclass(frozen=True)
class DnsEchoMethod:
    name: str
    qname: str
    rdtype: str  # "A" | "TXT" (OpenDNS: "A" asked over IPv4, "AAAA" over IPv6)
    rdclass: str  # "IN" | "CH"
    server: str  # the public server to ask over IPv4 (address; its name in the comment)
    server_v6: str = ""  # ... and over IPv6

    def rdtype_for(self, family: int) -> str:
        return "AAAA" if self.rdtype == "A" and family == 6 else self.rdtype

    def server_for(self, family: int) -> str:
        return self.server_v6 if family == 6 else self.server


# The IPv6 servers are the ones qdm12/ddns-updater asks over tcp6
# (pkg/publicip/dns/providers.go: OpenDNS 2620:119:35::35, Cloudflare 2606:4700:4700::1111);
# ns1.google.com's AAAA is 2001:4860:4802:32::a.
DNS_ECHO_METHODS: dict[str, DnsEchoMethod] = {
    # resolver1.opendns.com
    "opendns": DnsEchoMethod("opendns", "myip.opendns.com", "A", "IN", "208.67.222.222", "2620:119:35::35"),
    "cloudflare": DnsEchoMethod("cloudflare", "whoami.cloudflare", "TXT", "CH", "1.1.1.1", "2606:4700:4700::1111"),
    # ns1.google.com
    "google": DnsEchoMethod("google", "o-o.myaddr.l.google.com", "TXT", "IN", "216.239.32.10", "2001:4860:4802:32::a"),
}


def parse_dns_spec(spec: str, family: int = 4) -> tuple[DnsEchoMethod, str, int]:
    """'opendns' / 'cloudflare@11.1.0.60' / 'google@[2001:db8::1]:5353' -> (method, host, port).

    Without ``@HOST`` the host is the method's own server of ``family``."""
    name, _, override = spec.strip().partition("@")
    method = DNS_ECHO_METHODS.get(name.strip().lower())
    if method is None:
        known = ", ".join(DNS_ECHO_METHODS)
        raise ValueError(f"unknown DNS echo method {name!r} (known: {known})")
    if not override:
        return method, method.server_for(family), 53
    from checks.addresses import split_host_port

    host, port = split_host_port(override, default_port=53, what=f"DNS echo {spec.strip()!r}: server")
    return method, host, port


def address_from_dns_answer(
    response: dns.message.Message, method: DnsEchoMethod, family: int = 4, *, allow_non_public: bool = False
) -> tuple[str | None, str]:
    """(address, "") from a DNS echo answer to the IPv``family`` question, or (None, reason).

    An answer of the other family (an AAAA record, or a TXT holding an IPv6 address,
    to the IPv4 question) is discarded and said so."""
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype

    from checks.dns.wire import address_of

    rcode = response.rcode()
    if rcode != dns.rcode.NOERROR:
        return None, f"the DNS server answered {dns.rcode.to_text(rcode)}"
    want_text = method.rdtype_for(family)
    want_type = dns.rdatatype.from_text(want_text)
    want_class = dns.rdataclass.from_text(method.rdclass)
    other_type = {dns.rdatatype.A: dns.rdatatype.AAAA, dns.rdatatype.AAAA: dns.rdatatype.A}.get(want_type)
    texts: list[str] = []
    others: list[str] = []
    for rrset in response.answer:
        if rrset.rdclass != want_class:
            continue  # not what was asked: a CH "A" is an integer, an HS one has no parsed address at all
        if rrset.rdtype == want_type:
            for rdata in rrset:
                if want_type in (dns.rdatatype.A, dns.rdatatype.AAAA):
                    address = address_of(rdata)
                    if address is not None:
                        texts.append(address)
                else:
                    texts.extend(part.decode("ascii", "replace") for part in getattr(rdata, "strings", ()))
        elif other_type is not None and rrset.rdtype == other_type:
            others.extend(a for a in (address_of(rdata) for rdata in rrset) if a is not None)
    reasons: list[str] = []
    for text in texts:
        if parse_ip(text) is None and "%" not in text:
            continue
        value, why = accept_answer(text, family, allow_non_public=allow_non_public)
        if value is not None:
            return value, ""
        reasons.append(why or "")
    if reasons:
        return None, reasons[0]
    if others:
        kind = dns.rdatatype.to_text(other_type) if other_type is not None else "other"
        return None, (
            f"answered an {kind} record ({others[0]}) to the IPv{family} question: discarded "
            f"(an IPv{6 if family == 4 else 4} answer is never an IPv{family} fact)"
        )
    if texts:
        return None, f"answer was not an IP address: {_snippet(texts[0])}"
    return None, f"no {want_text} record in the answer"


async def _server_address(host: str, family: int, timeout_s: float) -> str:
    """The server's address of ``family`` (a literal of the other family is an error)."""
    literal = parse_ip(host)
    if literal is not None:
        if literal.version != family:
            raise ValueError(
                f"{host} is an IPv{literal.version} address: the IPv{family} question must go to an IPv{family} server"
            )
        return str(literal)
    from checks.names import lookup

    return (await lookup(host, family, timeout_s=timeout_s))[0]


async def dns_echo(
    spec: str, *, family: int = 4, timeout_s: float = 2.0, allow_non_public: bool = False
) -> ExternalSource:
    """Ask a DNS-based "what is my address" service (see DNS_ECHO_METHODS) over ``family``.

    The question goes to the server's address of that family (so the server sees,
    and echoes, this host's address of that family); the source is that family's
    whatever the answer holds, and an answer of the other family is discarded."""
    import dns.asyncquery
    import dns.exception
    import dns.message

    from checks.dns import wire as dnswire  # noqa: F401  (pins dnspython's address types before any reply is parsed)

    started = time.monotonic()
    fam: Literal[4, 6] = 6 if family == 6 else 4

    def result(value: str | None, error: str | None) -> ExternalSource:
        ms = round((time.monotonic() - started) * 1000, 1)
        return ExternalSource("dns", spec, fam, value, error, ms)

    try:
        method, host, port = parse_dns_spec(spec, fam)
    except ValueError as exc:
        return result(None, str(exc))
    try:
        server = await _server_address(host, fam, timeout_s)
    except ValueError as exc:
        return result(None, str(exc))
    except (TimeoutError, OSError, UnicodeError) as exc:
        why = getattr(exc, "strerror", None) or exc or "timeout"
        return result(None, f"cannot resolve DNS server {host} over IPv{fam}: {why}")
    deadline = started + timeout_s

    async def attempt(delay: float) -> dns.message.Message:
        # UDP loses packets and dnspython does not retransmit: hedge with a fresh query
        # (new id, new socket) after each delay; the first good answer wins.
        await asyncio.sleep(delay)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise dns.exception.Timeout()  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated
        query = dns.message.make_query(method.qname, method.rdtype_for(fam), method.rdclass)
        return await dns.asyncquery.udp(query, server, port=port, timeout=remaining)

    tasks = [asyncio.ensure_future(attempt(d)) for d in DNS_RETRY_AT if d < timeout_s]
    failures: list[BaseException] = []
    response = None
    try:
        pending: set[asyncio.Future[dns.message.Message]] = set(tasks)
        while pending and response is None:
            done, pending = await asyncio.wait(
                pending, timeout=max(0.0, deadline - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                break
            for task in done:
                error = task.exception()
                if error is None:
                    response = task.result()
                    break
                failures.append(error)
    finally:
        from checks.tasks import drop

        drop(tasks)
    if response is None:
        return result(None, _dns_failure_text(failures, server, timeout_s))
    value, reason = address_from_dns_answer(response, method, fam, allow_non_public=allow_non_public)
    return result(value, reason or None)


# Send times (s) of the hedged DNS echo queries.
DNS_RETRY_AT = (0.0, 0.3, 0.8)


def _dns_failure_text(failures: Sequence[BaseException], server: str, timeout_s: float) -> str:
    """The most telling of the attempts' failures (garbage and refusals beat timeouts)."""
    import dns.exception

    for exc in failures:
        if isinstance(exc, ConnectionRefusedError):
            return f"connection refused by {server}"
    for exc in failures:
        if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
            return f"cannot reach {server}: {exc.strerror or exc}"
    for exc in failures:
        if isinstance(exc, (TimeoutError, dns.exception.Timeout)):
            continue
        if isinstance(exc, dns.exception.DNSException):
            return f"malformed DNS answer from {server}: {exc}"
        # dnspython parses untrusted bytes: any error there is a garbage answer, never a crash.
        return f"malformed DNS answer from {server}: {type(exc).__name__}"
    return f"no answer within {timeout_s:g} s from {server} (port 53 may be blocked on this network)"


# --- summary -------------------------------------------------------------------------------


def _majority(sources: Sequence[ExternalSource]) -> str | None:
    votes = Counter(s.value for s in sources if s.value)
    if not votes:
        return None
    top = max(votes.values())
    tied = [v for v, n in votes.items() if n == top]
    if len(tied) == 1:
        return tied[0]
    # On a tie, trust HTTP, then STUN, then DNS (DNS is the one networks intercept).
    for method in ("http", "stun", "dns"):
        for s in sources:
            if s.method == method and s.value in tied:
                return s.value
    return tied[0]


def _explain(
    family: int, answering: Sequence[ExternalSource], local: LocalInfo | None, mapping_varies: bool | None
) -> str:
    by_method: dict[str, set[str]] = {}
    for s in answering:
        if s.value:  # every answering source has one (see the caller)
            by_method.setdefault(s.method, set()).add(s.value)
    everything = sorted({s.value for s in answering if s.value})
    listing = ", ".join(f"{s.method} {s.endpoint} saw {s.value}" for s in answering)
    reasons: list[str] = []
    if local is not None and local.default_via_vpn:
        reasons.append(
            f"Traffic leaves through the VPN interface {local.interface}: services reached "
            "through the tunnel see the VPN's exit address, others (split tunnel, DNS "
            "sent outside the tunnel) see this network's own address."
        )
    http = by_method.get("http", set())
    dns_values = by_method.get("dns", set())
    stun = by_method.get("stun", set())
    if dns_values and http and not (dns_values & http):
        reasons.append(
            "The DNS-based answers differ from the HTTP-based ones: this network probably "
            "intercepts or redirects DNS traffic to public resolvers (some ISPs and routers "
            "do), so DNS-based address checks cannot be trusted here."
        )
    if len(http) > 1 or (stun and http and not (stun & http)) or len(stun) > 1:
        if family == 6:
            reasons.append(
                "IPv6 hosts use several addresses (temporary privacy addresses rotate), so "
                "services can see different source addresses of this same host."
            )
        elif mapping_varies or len(stun) > 1:
            reasons.append(
                "The NAT gives different public addresses to different connections "
                "(several carrier-grade NAT egress addresses, and the STUN mapping varies by "
                "destination): an address published in DNS may not be the one that "
                "receives traffic."
            )
        else:
            reasons.append(
                "Services see different addresses: the traffic leaves through several egress "
                "addresses (a carrier-grade NAT pool, load-balanced uplinks) or one service "
                "is reached through a proxy."
            )
    if not reasons:
        reasons.append("The sources disagree for no reason this tool can see.")
    return f"IPv{family}: {listing}. " + " ".join(reasons) if everything else " ".join(reasons)


def summarize_external(
    sources: Sequence[ExternalSource],
    *,
    local: LocalInfo | None = None,
    mapping_varies: bool | None = None,
) -> ExternalInfo:
    """The agreed public address per family, whether all sources agree, and why not."""
    chosen: dict[int, str | None] = {}
    explanations: list[str] = []
    agreement = True
    for family in (4, 6):
        # A source counts for the family it was asked in, and only with a value of that
        # family (the sources discard the rest; a fake or a future source must not slip by).
        answering = [s for s in sources if s.value and s.family == family and _family_of(s.value) == family]
        chosen[family] = _majority(answering)
        if len({s.value for s in answering}) > 1:
            agreement = False
            explanations.append(_explain(family, answering, local, mapping_varies))
    return ExternalInfo(
        ipv4=chosen[4],
        ipv6=chosen[6],
        agreement=agreement,
        sources=tuple(sources),
        mapping_varies=mapping_varies,
        explanation=" ".join(explanations) or None,
    )


__all__ = [
    "DNS_ECHO_METHODS",
    "address_from_dns_answer",
    "dns_echo",
    "http_echo",
    "parse_dns_spec",
    "parse_echo_body",
    "summarize_external",
]
