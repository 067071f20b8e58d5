"""Public address sources: echo-body parser, HTTP echo, DNS echo and the summary.

HTTP echo runs against httpx.MockTransport (no network); DNS echo against a
loopback UDP responder in the test (the lab's real DNS echo service is used in
tests/lab). The parsers are fuzzed: no body or DNS message may crash them.
"""

from __future__ import annotations

import asyncio
import errno
import struct
from collections.abc import AsyncIterator, Callable

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.model import ExternalSource, LocalInfo
from checks.probes.publicip import (
    DNS_ECHO_METHODS,
    address_from_dns_answer,
    dns_echo,
    http_echo,
    parse_dns_spec,
    parse_echo_body,
    summarize_external,
)

# --- echo body ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("23.128.64.20\n", "23.128.64.20"),
        ("  2a0c:b641::5 \r\n", "2a0c:b641::5"),
        ('{"ip": "23.128.64.20", "country": "XX"}', "23.128.64.20"),
        ("fl=1\nh=www.cloudflare.com\nip=23.128.64.20\nts=1\n", "23.128.64.20"),
        ("<html><body>23.128.64.20</body></html>", None),
        ("23.128.64.20 garbage", None),
        ("ip=not-an-ip\n", None),
        ('{"ip": 5}', None),
        ("", None),
        ("Current IP Address: 23.128.64.20", None),
    ],
)
def test_parse_echo_body(body: str, expected: str | None) -> None:
    assert parse_echo_body(body) == expected


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_echo_body_parser_never_crashes(body: str) -> None:
    value = parse_echo_body(body)
    assert value is None or value in body or value.lower() in body.lower() or ":" in value


# --- HTTP echo ------------------------------------------------------------------------


def client_with(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_http_echo_plain_v4() -> None:
    async with client_with(lambda r: httpx.Response(200, text="23.128.64.20\n")) as client:
        src = await http_echo(client, "https://echo.test/", timeout_s=1)
    assert (src.method, src.family, src.value, src.error) == ("http", 4, "23.128.64.20", None)


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (
            httpx.Response(200, text="<!DOCTYPE html><html><head><title>Welcome to our IP service</title>"),
            "reply was not an IP address: '<!DOCTYPE html><html><head><title>Welcom...'",
        ),
        (httpx.Response(200, text="garbage"), "reply was not an IP address: 'garbage'"),
        (httpx.Response(500, text="oops"), "HTTP 500 Internal Server Error"),
        (httpx.Response(200, text="2a0c:b641::5"), "asked for the IPv4 address but the service saw IPv6"),
    ],
)
async def test_http_echo_failures_are_sentences(response: httpx.Response, error: str) -> None:
    async with client_with(lambda r: response) as client:
        src = await http_echo(client, "https://echo.test/", timeout_s=1)
    assert src.value is None
    assert (src.error or "").startswith(error)


async def test_http_echo_v6_requires_v6_answer() -> None:
    async with client_with(lambda r: httpx.Response(200, text="23.128.64.20")) as client:
        src = await http_echo(client, "https://echo6.test/", family=6, timeout_s=1)
    assert src.family == 6 and src.value is None and "IPv4 23.128.64.20" in (src.error or "")
    async with client_with(lambda r: httpx.Response(200, text="2a0c:b641:100:1::100")) as client:
        src = await http_echo(client, "https://echo6.test/", family=6, timeout_s=1)
    assert src.value == "2a0c:b641:100:1::100"


async def test_http_echo_timeout_and_refused() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, text="1.2.3.4")

    async with client_with(slow) as client:  # type: ignore[arg-type]
        src = await http_echo(client, "https://slow.test/", timeout_s=0.2)
    assert src.error == "no answer within 0.2 s" and src.ms < 2000

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async with client_with(refuse) as client:
        src = await http_echo(client, "https://down.test/", timeout_s=1)
    assert src.error == "connection refused"

    def no_route(request: httpx.Request) -> httpx.Response:
        # What httpx raises on a network without a route: the errno sits under the wrappers.
        try:
            raise OSError(errno.EHOSTUNREACH, "Connect call failed ('11.1.0.10', 443)")
        except OSError as exc:
            raise httpx.ConnectError("All connection attempts failed", request=request) from exc

    async with client_with(no_route) as client:
        src = await http_echo(client, "https://11.1.0.10/", timeout_s=1)
    assert src.error == "network unreachable over IPv4 (no route to the service)"


def test_http_echo_asks_over_the_family_it_reports() -> None:
    """The request carries the family pin (checks/http.py routes it to a pool bound to
    0.0.0.0 or ::, tested for real in tests/lab/test_probes_lab.py)."""
    from checks.http import FAMILY_EXTENSION

    seen: list[object] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions.get(FAMILY_EXTENSION))
        return httpx.Response(200, text="23.128.64.20" if len(seen) == 1 else "2a0c:b641:100:1::100")

    async def both() -> None:
        async with client_with(record) as client:
            assert (await http_echo(client, "https://echo.test/", family=4, timeout_s=1)).value == "23.128.64.20"
            assert (
                await http_echo(client, "https://echo.test/", family=6, timeout_s=1)
            ).value == "2a0c:b641:100:1::100"

    asyncio.run(both())
    assert seen == [4, 6]


@pytest.mark.parametrize(
    ("body", "family", "words"),
    [
        ("2a00::1%eth0", 6, "carries a zone"),
        ("fe80::1", 6, "link-local"),
        ("fd00::5", 6, "unique-local"),
        ("10.0.0.5", 4, "private (RFC 1918)"),
        ("100.64.1.20", 4, "carrier-grade NAT"),
        ("127.0.0.1", 4, "loopback"),
        ("::ffff:23.128.64.20", 6, "saw IPv4 23.128.64.20"),  # IPv4-mapped is an IPv4 fact
    ],
)
async def test_an_echo_answer_that_is_no_public_address_of_the_family_is_discarded(
    body: str, family: int, words: str
) -> None:
    async with client_with(lambda r: httpx.Response(200, text=body)) as client:
        src = await http_echo(client, "https://echo.test/", family=family, timeout_s=1)
    assert src.value is None and src.family == family and words in (src.error or ""), src.error
    assert "discarded" in (src.error or "")


async def test_allow_non_public_keeps_a_lan_echo_but_never_a_zone() -> None:
    async with client_with(lambda r: httpx.Response(200, text="192.168.1.100")) as client:
        src = await http_echo(client, "https://echo.test/", timeout_s=1, allow_non_public=True)
    assert src.value == "192.168.1.100"
    async with client_with(lambda r: httpx.Response(200, text="fe80::1%eth0")) as client:
        src = await http_echo(client, "https://echo.test/", family=6, timeout_s=1, allow_non_public=True)
    assert src.value is None and "zone" in (src.error or "")


async def test_http_echo_huge_body_is_not_an_address() -> None:
    async with client_with(lambda r: httpx.Response(200, text="1" * 100_000)) as client:
        src = await http_echo(client, "https://big.test/", timeout_s=1)
    assert src.value is None and "not an IP address" in (src.error or "")


# --- DNS echo -------------------------------------------------------------------------


def test_dns_spec_parsing() -> None:
    assert parse_dns_spec("opendns") == (DNS_ECHO_METHODS["opendns"], "208.67.222.222", 53)
    assert parse_dns_spec("opendns", 6) == (DNS_ECHO_METHODS["opendns"], "2620:119:35::35", 53)
    assert parse_dns_spec("cloudflare", 6)[1] == "2606:4700:4700::1111"
    assert parse_dns_spec("cloudflare@11.1.0.60") == (DNS_ECHO_METHODS["cloudflare"], "11.1.0.60", 53)
    assert parse_dns_spec("google@[::1]:5353") == (DNS_ECHO_METHODS["google"], "::1", 5353)
    assert parse_dns_spec("opendns@127.0.0.1:5300")[1:] == ("127.0.0.1", 5300)
    for bad in ("nosuch", "opendns@host:x", "opendns@:53", "opendns@h:70000"):
        with pytest.raises(ValueError):
            parse_dns_spec(bad)


def answer_for(query: dns.message.Message, rdtype: str, rdclass: str, *values: str) -> dns.message.Message:
    response = dns.message.make_response(query)
    if values:
        response.answer.append(dns.rrset.from_text(query.question[0].name, 0, rdclass, rdtype, *values))
    return response


def test_dns_answer_handling() -> None:
    od = DNS_ECHO_METHODS["opendns"]
    q = dns.message.make_query(od.qname, "A")
    assert address_from_dns_answer(answer_for(q, "A", "IN", "23.128.64.20"), od) == ("23.128.64.20", "")
    assert address_from_dns_answer(answer_for(q, "A", "IN"), od) == (None, "no A record in the answer")
    nx = dns.message.make_response(q)
    nx.set_rcode(dns.rcode.REFUSED)
    assert address_from_dns_answer(nx, od) == (None, "the DNS server answered REFUSED")
    cf = DNS_ECHO_METHODS["cloudflare"]
    q = dns.message.make_query(cf.qname, "TXT", "CH")
    assert address_from_dns_answer(answer_for(q, "TXT", "CH", '"23.128.64.20"'), cf)[0] == "23.128.64.20"
    value, reason = address_from_dns_answer(answer_for(q, "TXT", "CH", '"<html>"'), cf)
    assert value is None and reason == "answer was not an IP address: '<html>'"
    gg = DNS_ECHO_METHODS["google"]
    q = dns.message.make_query(gg.qname, "TXT")
    both = answer_for(q, "TXT", "IN", '"edns0-client-subnet 23.128.64.0/24"', '"23.128.64.20"')
    assert address_from_dns_answer(both, gg) == ("23.128.64.20", "")


def test_a_dns_answer_of_the_other_family_is_discarded_and_said_so() -> None:
    """The IPv6 answer to the IPv4 question (or the reverse) is never a fact of either."""
    od = DNS_ECHO_METHODS["opendns"]
    q = dns.message.make_query(od.qname, "A")
    value, reason = address_from_dns_answer(answer_for(q, "AAAA", "IN", "2a0c:b641:100:1::250"), od, 4)
    assert value is None and reason.startswith(
        "answered an AAAA record (2a0c:b641:100:1::250) to the IPv4 question: discarded"
    )
    q6 = dns.message.make_query(od.qname, "AAAA")
    assert address_from_dns_answer(answer_for(q6, "AAAA", "IN", "2a0c:b641:100:1::100"), od, 6) == (
        "2a0c:b641:100:1::100",
        "",
    )
    cf = DNS_ECHO_METHODS["cloudflare"]
    q = dns.message.make_query(cf.qname, "TXT", "CH")
    value, reason = address_from_dns_answer(answer_for(q, "TXT", "CH", '"2a0c:b641:100:1::250"'), cf, 4)
    assert value is None and "saw IPv6 2a0c:b641:100:1::250: discarded" in reason
    value, reason = address_from_dns_answer(answer_for(q, "TXT", "CH", '"23.128.64.20"'), cf, 6)
    assert value is None and "saw IPv4 23.128.64.20: discarded" in reason
    value, reason = address_from_dns_answer(answer_for(q, "TXT", "CH", '"fe80::1%eth0"'), cf, 6)
    assert value is None and "zone" in reason


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=12, max_size=200))
def test_dns_answer_handling_never_crashes_on_parsable_garbage(wire: bytes) -> None:
    try:
        message = dns.message.from_wire(wire)
    except Exception:
        return  # dns_echo turns these into "malformed DNS answer" (tested below)
    for method in DNS_ECHO_METHODS.values():
        value, reason = address_from_dns_answer(message, method)
        assert (value is None) == bool(reason)


class _DnsResponder(asyncio.DatagramProtocol):
    """Loopback stand-in for a DNS echo server."""

    def __init__(self, behaviour: Callable[[bytes, tuple[str, int]], bytes | None]) -> None:
        self.behaviour = behaviour

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.behaviour(data, addr)
        if reply is not None:
            self.transport.sendto(reply, addr)


@pytest.fixture
async def dns_server() -> AsyncIterator[Callable]:
    transports = []

    async def start(behaviour: Callable[[bytes, tuple[str, int]], bytes | None]) -> int:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _DnsResponder(behaviour), local_addr=("127.0.0.1", 0)
        )
        transports.append(transport)
        return transport.get_extra_info("sockname")[1]

    yield start
    for t in transports:
        t.close()


SEEN_FROM_OUTSIDE = "23.128.64.20"  # what the loopback stand-in claims to see


def echo_querier(data: bytes, addr: tuple[str, int], seen: str = SEEN_FROM_OUTSIDE) -> bytes:
    query = dns.message.from_wire(data)
    q = query.question[0]
    if q.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return answer_for(query, "AAAA" if ":" in seen else "A", "IN", seen).to_wire()
    return answer_for(query, "TXT", dns.rdataclass.to_text(q.rdclass), f'"{seen}"').to_wire()


async def test_dns_echo_against_loopback_server(dns_server) -> None:
    port = await dns_server(echo_querier)
    for name in ("opendns", "cloudflare", "google"):
        src = await dns_echo(f"{name}@127.0.0.1:{port}", timeout_s=1)
        assert (src.method, src.value, src.error, src.family) == ("dns", SEEN_FROM_OUTSIDE, None, 4)


async def test_dns_echo_refuses_what_is_no_public_address_of_the_family(dns_server) -> None:
    loopback = await dns_server(lambda d, a: echo_querier(d, a, seen=a[0]))  # echoes 127.0.0.1
    src = await dns_echo(f"cloudflare@127.0.0.1:{loopback}", timeout_s=1)
    assert src.value is None and "127.0.0.1 is a loopback address" in (src.error or "")
    wrong = await dns_server(lambda d, a: echo_querier(d, a, seen="2a0c:b641:100:1::250"))
    for name in ("opendns", "cloudflare"):
        src = await dns_echo(f"{name}@127.0.0.1:{wrong}", timeout_s=1)
        assert src.family == 4 and src.value is None and "discarded" in (src.error or ""), src
    # The IPv6 question never goes to an IPv4 server: the server would see (and echo) IPv4.
    src = await dns_echo(f"opendns@127.0.0.1:{wrong}", family=6, timeout_s=1)
    assert src.family == 6 and src.value is None and "must go to an IPv6 server" in (src.error or "")


async def test_dns_echo_malformed_wrong_id_and_silence(dns_server) -> None:
    garbage = await dns_server(lambda data, addr: data[:2] + b"\x81\x80\xff\xff\x00\x05garbage")
    src = await dns_echo(f"opendns@127.0.0.1:{garbage}", timeout_s=0.5)
    assert src.value is None and (src.error or "").startswith("malformed DNS answer from 127.0.0.1")

    silent = await dns_server(lambda data, addr: None)
    src = await dns_echo(f"cloudflare@127.0.0.1:{silent}", timeout_s=0.3)
    assert src.value is None and "no answer within 0.3 s" in (src.error or "")

    def wrong_id(data: bytes, addr: tuple[str, int]) -> bytes:
        reply = echo_querier(data, addr)
        return struct.pack("!H", (struct.unpack("!H", reply[:2])[0] + 1) & 0xFFFF) + reply[2:]

    other = await dns_server(wrong_id)
    src = await dns_echo(f"opendns@127.0.0.1:{other}", timeout_s=0.3)
    assert src.value is None  # a reply to another query is never taken as the answer


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=120))
async def test_dns_echo_never_crashes_on_any_reply(reply: bytes) -> None:
    loop = asyncio.get_running_loop()

    def respond(data: bytes, addr: tuple[str, int]) -> bytes:
        return data[:2] + reply[2:] if len(reply) >= 2 else reply

    transport, _ = await loop.create_datagram_endpoint(lambda: _DnsResponder(respond), local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        src = await dns_echo(f"opendns@127.0.0.1:{port}", timeout_s=0.15)
    finally:
        transport.close()
    assert (src.value is None) == bool(src.error)


# --- summary --------------------------------------------------------------------------


def src(method: str, endpoint: str, value: str | None, port: int | None = None) -> ExternalSource:
    fam = 6 if value and ":" in value else 4
    return ExternalSource(
        method,
        endpoint,
        fam,
        value,
        None if value else "no answer",
        10.0,  # type: ignore[arg-type]
        mapped_port=port,
    )


def test_summary_agreement_per_family() -> None:
    info = summarize_external(
        [
            src("http", "a", "23.128.64.20"),
            src("stun", "s", "23.128.64.20", 4000),
            src("http", "v6", "2a0c:b641:100:1::100"),
            src("dns", "d", None),
        ]
    )
    assert (info.ipv4, info.ipv6, info.agreement, info.explanation) == (
        "23.128.64.20",
        "2a0c:b641:100:1::100",
        True,
        None,
    )
    assert len(info.sources) == 4


def test_summary_majority_and_dns_interception() -> None:
    info = summarize_external(
        [src("http", "a", "23.128.64.20"), src("http", "b", "23.128.64.20"), src("dns", "opendns", "11.9.9.9")]
    )
    assert info.ipv4 == "23.128.64.20" and not info.agreement
    assert "intercepts or redirects DNS" in (info.explanation or "")


def test_summary_tie_prefers_http_over_dns() -> None:
    info = summarize_external([src("dns", "opendns", "11.9.9.9"), src("http", "a", "23.128.64.20")])
    assert info.ipv4 == "23.128.64.20"


def test_summary_vpn_egress_explained() -> None:
    local = LocalInfo("wg0", "10.8.0.2", None, vpn_interfaces=("wg0",), default_via_vpn=True)
    info = summarize_external([src("http", "a", "23.128.64.20"), src("stun", "s", "45.1.1.1", 1)], local=local)
    assert not info.agreement and "VPN interface wg0" in (info.explanation or "")


def test_summary_several_cgnat_egress_addresses() -> None:
    info = summarize_external(
        [
            src("http", "a", "23.128.64.200"),
            src("http", "b", "23.128.64.201"),
            src("stun", "s1", "23.128.64.200", 1000),
            src("stun", "s2", "23.128.64.202", 1001),
        ],
        mapping_varies=True,
    )
    assert info.mapping_varies is True and not info.agreement
    assert "several carrier-grade NAT egress addresses" in (info.explanation or "")


def test_summary_counts_a_value_only_in_the_family_it_was_asked() -> None:
    # A source object claiming family 4 with an IPv6 value (a fake, or a future bug) counts nowhere.
    odd = ExternalSource("dns", "opendns", 4, "2a0c:b641:100:1::250", None, 1.0)
    info = summarize_external([odd, src("http", "v6", "2a0c:b641:100:1::100")])
    assert (info.ipv4, info.ipv6, info.agreement) == (None, "2a0c:b641:100:1::100", True)


def test_summary_nothing_answered() -> None:
    info = summarize_external([src("http", "a", None), src("dns", "b", None)])
    assert (info.ipv4, info.ipv6, info.agreement) == (None, None, True)


def test_a_tls_failure_is_named_without_a_made_up_os_reason() -> None:
    import ssl

    from checks.probes.publicip import _connect_error_text

    cause = ssl.SSLCertVerificationError(
        1,
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
        "unable to get local issuer certificate (_ssl.c:992)",
    )
    try:
        raise httpx.ConnectError(str(cause)) from cause
    except httpx.ConnectError as exc:
        text = _connect_error_text(exc)
    assert text.startswith("TLS failed:") and "certificate verify failed" in text
    assert "Operation not permitted" not in text  # errno 1 is OpenSSL's, not the OS's
