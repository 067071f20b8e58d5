"""Property-based tests for every parser of outside input (issue 13).

Whatever a server, a router or a file hands over, two things must hold:
(1) no exception escapes the parser (a failure is data or the parser's own, documented
    error), and (2) nothing that is not an IP address is ever accepted as one.

The inputs are built to get past the first checks (well-framed STUN/NAT-PMP/DNS messages
with hostile contents, JSON of the right shape with the wrong types), because random bytes
rarely reach the interesting code.  The parsers covered: DNS answers (verification and the
DNS echo), HTTP echo bodies, STUN, NAT-PMP, SSDP, UPnP IGD values (through miniupnpc),
port probers' replies, provider replies (with any Retry-After), ICMP errors, the
configuration and the history.  There is no PCP client yet (checks/ has none).
``EXAMPLES`` below is the number each test draws.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import struct
import tomllib
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks.addresses import is_public
from checks.config import Config, HostConfig, config_from_dict, load_config
from checks.ddns.history import read_history, record_problem
from checks.ddns.providers import desec, duckdns, dyndns2, dynv6, freedns, namecheap
from checks.ddns.providers.registry import get_provider
from checks.dns import verify as dnsverify
from checks.errors import ConfigError
from checks.portcheck.probers import Prober, parse_probe_response
from checks.probes import natpmp, stun, upnp
from checks.probes.publicip import DNS_ECHO_METHODS, address_from_dns_answer, parse_echo_body

EXAMPLES = 400
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def strict_ip(value: Any, version: int | None = None) -> bool:
    """``value`` is the canonical text of an IP address: no scope, no spaces, no brackets."""
    if not isinstance(value, str) or "%" in value or value != value.strip():
        return False
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    return str(ip) == value and (version is None or ip.version == version)


# --------------------------------------------------------------------------- DNS answers

_OWNERS = st.sampled_from(["home.example.test.", "www.example.test.", "other.test.", "example.test.", "."])
_CLASSES = st.one_of(
    st.sampled_from([dns.rdataclass.IN, dns.rdataclass.CH, dns.rdataclass.HS, dns.rdataclass.NONE, dns.rdataclass.ANY]),
    st.integers(1, 65535),
)
_TYPES = st.one_of(
    st.sampled_from(
        [
            dns.rdatatype.A,
            dns.rdatatype.AAAA,
            dns.rdatatype.CNAME,
            dns.rdatatype.TXT,
            dns.rdatatype.SOA,
            dns.rdatatype.NS,
        ]
    ),
    st.integers(1, 300),
)


def _rdata_wire(rdtype: int, draw_bytes: bytes, target: str) -> bytes:
    if rdtype == dns.rdatatype.A:
        return draw_bytes[:4].ljust(4, b"\0")
    if rdtype == dns.rdatatype.AAAA:
        return draw_bytes[:16].ljust(16, b"\0")
    if rdtype in (dns.rdatatype.CNAME, dns.rdatatype.NS):
        return dns.name.from_text(target).to_wire()
    if rdtype == dns.rdatatype.TXT:
        text = draw_bytes[:255]
        return bytes([len(text)]) + text
    return draw_bytes


@st.composite
def dns_reply_specs(draw: st.DrawFn, qname: str, qtype: str, qclass: int = dns.rdataclass.IN) -> dict[str, Any]:
    """What a reply holds, as plain data (dnspython itself is called outside the strategy)."""

    def rrsets() -> list[tuple[str, int, int, list[tuple[bytes, int]]]]:
        out = []
        for _ in range(draw(st.integers(0, 4))):
            rdtype = draw(st.one_of(st.just(dns.rdatatype.from_text(qtype)), _TYPES))
            rdatas = [
                (_rdata_wire(rdtype, draw(st.binary(max_size=40)), draw(_OWNERS)), draw(st.integers(0, 2**31 - 1)))
                for _ in range(draw(st.integers(1, 3)))
            ]
            out.append(
                (draw(st.one_of(st.just(qname), _OWNERS)), draw(st.one_of(st.just(qclass), _CLASSES)), rdtype, rdatas)
            )
        return out

    return {
        "qname": qname,
        "qtype": qtype,
        "qclass": qclass,
        "rcode": draw(st.sampled_from([0, 0, 0, 2, 3, 5, 9, 15])),
        "aa": draw(st.booleans()),
        "answer": rrsets(),
        "authority": rrsets(),
    }


def build_reply(spec: dict[str, Any]) -> dns.message.Message:
    """The reply as the client would see it (typed rdata where dnspython knows the type).

    A record set whose bytes dnspython cannot parse makes the whole message unparsable,
    which the client reports as a malformed reply (tests/test_publicip.py, test_dnsverify.py);
    such sets are left out here so that every example reaches the parsers under test.
    """
    query = dns.message.make_query(spec["qname"], spec["qtype"], spec["qclass"])

    def message(answer: list[dns.rrset.RRset], authority: list[dns.rrset.RRset]) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.set_rcode(spec["rcode"])
        if spec["aa"]:
            response.flags |= dns.flags.AA
        response.answer.extend(answer)
        response.authority.extend(authority)
        return dns.message.from_wire(response.to_wire())

    def parsable(sets: list[tuple[str, int, int, list[tuple[bytes, int]]]]) -> list[dns.rrset.RRset]:
        out = []
        for owner, rdclass, rdtype, rdatas in sets:
            rrset = dns.rrset.RRset(dns.name.from_text(owner), rdclass, rdtype)
            for wire, ttl in rdatas:
                rrset.add(dns.rdata.GenericRdata(rdclass, rdtype, wire), ttl)
            try:
                message([rrset], [])
            except Exception:
                continue
            out.append(rrset)
        return out

    return message(parsable(spec["answer"]), parsable(spec["authority"]))


@FAST
@given(qtype=st.sampled_from(["A", "AAAA"]), recursive=st.booleans(), data=st.data())
def test_dns_verification_reads_only_internet_addresses_of_the_asked_name(
    qtype: str, recursive: bool, data: st.DataObject
) -> None:
    qname = "home.example.test"
    response = build_reply(data.draw(dns_reply_specs(qname + ".", qtype)))
    reply = dnsverify._parse_reply(response, qname, qtype, recursive=recursive)  # type: ignore[arg-type]
    version = 4 if qtype == "A" else 6
    assert all(strict_ip(a, version) for a in reply.addresses)
    in_records = {
        str(ipaddress.ip_address(r.address))
        for rrset in response.answer
        if rrset.rdclass == dns.rdataclass.IN and rrset.rdtype == dns.rdatatype.from_text(qtype)
        for r in rrset
    }
    assert set(reply.addresses) <= in_records
    assert reply.ttl is None or 0 <= reply.ttl < 2**32
    assert all(isinstance(n, str) and len(n) < 300 for n in reply.ignored) and len(reply.ignored) <= 4


@FAST
@given(method=st.sampled_from(sorted(DNS_ECHO_METHODS)), data=st.data())
def test_dns_echo_answers_give_an_address_or_a_reason(method: str, data: st.DataObject) -> None:
    m = DNS_ECHO_METHODS[method]
    response = build_reply(data.draw(dns_reply_specs(m.qname + ".", m.rdtype, dns.rdataclass.from_text(m.rdclass))))
    value, reason = address_from_dns_answer(response, m)
    assert (value is None) == bool(reason)
    assert value is None or strict_ip(value)


# --------------------------------------------------------------------------- HTTP echo bodies

_IPS = st.one_of(st.ip_addresses().map(str), st.sampled_from(["23.128.64.20", "2a0c:b641::20", "::ffff:1.2.3.4"]))
_JUNK = st.text(max_size=12)
_BODIES = st.one_of(
    st.text(max_size=200),
    st.builds(lambda ip, pre, post: f"{pre}{ip}{post}", _IPS, _JUNK, _JUNK),
    st.builds(lambda ip, scope: f"{ip}%{scope}", _IPS, st.text(min_size=1, max_size=8)),  # a scope id
    st.builds(lambda ip: f"[{ip}]", _IPS),
    st.builds(
        lambda value: json.dumps({"ip": value}),
        st.one_of(_IPS, st.integers(), st.none(), st.lists(_IPS, max_size=2), st.text(max_size=20)),
    ),
    st.builds(
        lambda ip, extra: f"fl=1\nip={ip}\n{extra}=x",
        st.one_of(_IPS, _JUNK),
        st.text(st.characters(blacklist_characters="=\n\r"), max_size=8),
    ),
    st.builds(lambda digits: ".".join([digits] * 4), st.sampled_from(["١", "²", "٣٣", "0x7f", "0177"])),
)


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(body=_BODIES)
def test_echo_bodies_give_an_address_or_nothing(body: str) -> None:
    value = parse_echo_body(body)
    assert value is None or strict_ip(value)


# --------------------------------------------------------------------------- STUN

TXID = bytes(range(12))


def _stun(attrs: list[tuple[int, bytes]], msg_type: int = stun.BINDING_SUCCESS) -> bytes:
    body = b"".join(struct.pack("!HH", t, len(v)) + v + b"\0" * (-len(v) % 4) for t, v in attrs)
    return struct.pack("!HHI", msg_type, len(body), stun.MAGIC_COOKIE) + TXID + body


@FAST
@given(
    family=st.integers(0, 255),
    port=st.integers(0, 65535),
    raw=st.binary(max_size=20),
    kind=st.sampled_from([stun.ATTR_XOR_MAPPED_ADDRESS, stun.ATTR_MAPPED_ADDRESS]),
    reserved=st.integers(0, 255),
    others=st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=12)), max_size=3),
)
def test_stun_mapped_addresses_are_addresses_of_the_family_said(
    family: int, port: int, raw: bytes, kind: int, reserved: int, others: list[tuple[int, bytes]]
) -> None:
    value = bytes([reserved, family]) + struct.pack("!H", port) + raw
    data = _stun([*[(t, v) for t, v in others if t != stun.ATTR_FINGERPRINT], (kind, value)])
    try:
        ip, got_port = stun.parse_binding_response(data, TXID)
    except stun.StunParseError:
        return
    assert strict_ip(ip) and 0 <= got_port <= 65535
    if not any(t in (stun.ATTR_XOR_MAPPED_ADDRESS, stun.ATTR_MAPPED_ADDRESS) for t, _ in others):
        assert ipaddress.ip_address(ip).version == {1: 4, 2: 6}[family]


# --------------------------------------------------------------------------- NAT-PMP


@FAST
@given(
    op=st.sampled_from([0, 1, 2]),
    version=st.sampled_from([0, 0, 0, 1, 2]),
    reply_op=st.sampled_from([None, 0, 1, 128, 129, 130, 255]),
    result=st.integers(0, 65535),
    epoch=st.integers(0, 2**32 - 1),
    rest=st.binary(max_size=16),
)
def test_natpmp_replies_give_an_ipv4_address_or_an_error(
    op: int, version: int, reply_op: int | None, result: int, epoch: int, rest: bytes
) -> None:
    data = struct.pack("!BBHI", version, 128 + op if reply_op is None else reply_op, result, epoch) + rest
    try:
        reply = natpmp.parse_reply(data, op)
    except natpmp.NatPmpParseError:
        return
    assert reply.ok == (reply.error is None) == (result == 0)
    if reply.external_ipv4 is not None:
        assert strict_ip(reply.external_ipv4, 4)
    for port in (reply.internal_port, reply.external_port):
        assert port is None or 0 <= port <= 65535


# --------------------------------------------------------------------------- SSDP and UPnP IGD values


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(
    status=st.sampled_from(["HTTP/1.1 200 OK", "HTTP/1.0 200", "HTTP/1.1 404 Not Found", "NOTIFY * HTTP/1.1"]),
    location=st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda host, port, path: f"http://{host}:{port}/{path}",
            st.one_of(_IPS, st.text(max_size=15)),
            st.one_of(st.integers(-5, 99999), st.text(max_size=6)),
            st.text(max_size=10),
        ),
    ),
    extra=st.dictionaries(
        st.sampled_from(["ST", "USN", "SERVER", "CACHE-CONTROL"]),
        st.text(st.characters(blacklist_characters="\r\n"), max_size=40),
    ),
)
def test_ssdp_replies_give_an_http_location_or_nothing(status: str, location: str, extra: dict[str, str]) -> None:
    headers = {"LOCATION": location.replace("\r", "").replace("\n", ""), **extra}
    data = (status + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode(
        "utf-8", "surrogatepass"
    )
    reply = upnp.parse_ssdp_reply(data)
    if reply is not None:
        from urllib.parse import urlsplit

        parts = urlsplit(reply.location)
        assert parts.scheme == "http" and parts.hostname and 0 < (parts.port or 80) <= 65535


_MINIUPNPC_VALUES = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.integers(-(2**40), 2**40),
    st.booleans(),
    _IPS,
    st.sampled_from(["", "0", "65536", "²", "9" * 5000, "TCP", "udp", "1"]),
)


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(
    entry=st.one_of(
        st.tuples(
            _MINIUPNPC_VALUES,
            _MINIUPNPC_VALUES,
            st.tuples(_MINIUPNPC_VALUES, _MINIUPNPC_VALUES),
            _MINIUPNPC_VALUES,
            _MINIUPNPC_VALUES,
            _MINIUPNPC_VALUES,
            _MINIUPNPC_VALUES,
        ),
        st.lists(_MINIUPNPC_VALUES, max_size=8).map(tuple),
        _MINIUPNPC_VALUES,
    )
)
def test_upnp_mapping_entries_are_sane_or_dropped(entry: Any) -> None:
    mapping = upnp._mapping_from_generic(entry)
    if mapping is not None:
        assert 1 <= mapping.external_port <= 65535 and 1 <= mapping.internal_port <= 65535
        assert mapping.protocol in ("TCP", "UDP")
        assert strict_ip(mapping.internal_host, 4)
        assert 0 <= mapping.lease_s < 2**32


class _HostileIgd:
    """Stands in for miniupnpc.UPnP (a C library whose answers come from the router's XML)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.lanaddr = values.get("lanaddr")

    def _give(self, name: str) -> Any:
        value = self.values.get(name)
        if isinstance(value, Exception):
            raise value
        return value

    def selectigd(self, location: str) -> Any:
        return self._give("selectigd")

    def externalipaddress(self) -> Any:
        return self._give("externalipaddress")

    def statusinfo(self) -> Any:
        return self._give("statusinfo")

    def connectiontype(self) -> Any:
        return self._give("connectiontype")

    def getgenericportmapping(self, index: int) -> Any:
        table = self.values.get("mappings") or []
        return table[index] if index < len(table) else None


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(
    values=st.fixed_dictionaries(
        {
            "selectigd": st.one_of(st.none(), st.text(max_size=10), st.just(Exception("No IGD found"))),
            "externalipaddress": st.one_of(_MINIUPNPC_VALUES, st.just(Exception("Invalid Action"))),
            "statusinfo": st.one_of(
                _MINIUPNPC_VALUES,
                st.tuples(_MINIUPNPC_VALUES, _MINIUPNPC_VALUES, _MINIUPNPC_VALUES),
                st.lists(_MINIUPNPC_VALUES, max_size=4).map(tuple),
            ),
            "connectiontype": _MINIUPNPC_VALUES,
            "lanaddr": _MINIUPNPC_VALUES,
            "mappings": st.lists(
                st.tuples(
                    _MINIUPNPC_VALUES,
                    st.sampled_from(["TCP", "UDP", "x"]),
                    st.tuples(_MINIUPNPC_VALUES, _MINIUPNPC_VALUES),
                    _MINIUPNPC_VALUES,
                    _MINIUPNPC_VALUES,
                    _MINIUPNPC_VALUES,
                    _MINIUPNPC_VALUES,
                ),
                max_size=3,
            ),
        }
    )
)
def test_a_hostile_igd_gives_facts_or_errors(values: dict[str, Any]) -> None:
    import time

    info = asyncio.run(
        upnp._igd_info("http://192.168.1.1:5000/rootDesc.xml", time.monotonic() + 2.0, lambda: _HostileIgd(values))
    )
    assert info.found
    assert info.wan_ipv4 is None or strict_ip(info.wan_ipv4, 4)
    assert info.status is None or isinstance(info.status, str)
    assert info.connection_type is None or isinstance(info.connection_type, str)
    assert all(strict_ip(m.internal_host, 4) for m in info.mappings)
    assert not info.available or (
        info.wan_ipv4 is not None and is_public(info.wan_ipv4) and info.status in (None, "Connected")
    )


# --------------------------------------------------------------------------- port probers' replies

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
    max_leaves=8,
)


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(
    kind=st.sampled_from(["ddnsw", "echoip"]),
    protocol=st.sampled_from(["tcp", "udp"]),
    status=st.sampled_from([200, 200, 200, 429, 500, 404]),
    body=st.one_of(
        st.binary(max_size=80),
        _JSON.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {},
            optional={
                "ip": st.one_of(_IPS, _JUNK, st.integers()),
                "port": st.one_of(st.just(8080), st.integers(), st.text(max_size=5)),
                "reachable": st.one_of(st.booleans(), st.text(max_size=5), st.integers(0, 1)),
                "result": st.sampled_from(["connected", "refused", "timeout", "replied", "error", "x"]),
                "banner": st.one_of(st.text(max_size=700), st.integers()),
                "error": st.one_of(st.text(max_size=20), st.integers()),
            },
        ).map(lambda d: json.dumps(d).encode()),
    ),
)
def test_prober_replies_are_answers_or_no_answer(kind: str, protocol: str, status: int, body: bytes) -> None:
    prober = Prober(
        kind,
        "https://probe.example.net" if kind == "ddnsw" else "https://e.example/port/{port}",  # type: ignore[arg-type]
        "probe.example.net",
    )
    answer = parse_probe_response(prober, 8080, protocol, status, body)  # type: ignore[arg-type]
    assert answer.outcome in ("reached", "not-reached", "no-answer")
    assert answer.observed_ip is None or strict_ip(answer.observed_ip)
    assert answer.banner is None or (isinstance(answer.banner, str) and len(answer.banner) <= 512)


# --------------------------------------------------------------------------- provider replies

_TOKEN = "a1b2c3d4-1234-5678-9abc-def012345678"
PROVIDER_PARSERS = [
    (
        dyndns2.parse_reply,
        HostConfig(
            hostname="myhome.example.org",
            provider="dyndns2",
            server="https://members.example.org",
            username="u",
            password="p4ssw0rd",
        ),
    ),
    (duckdns.parse_reply, HostConfig(hostname="myhome.duckdns.org", provider="duckdns", token=_TOKEN)),
    (desec.parse_reply, HostConfig(hostname="myhome.dedyn.io", provider="desec", token="i-T3b1h2yp_T5-abcdefghijklmn")),
    (freedns.parse_reply, HostConfig(hostname="myhome.mooo.com", provider="freedns", token="AbCdEfGh12345678")),
    (
        dynv6.parse_reply,
        HostConfig(hostname="myhome.dynv6.net", provider="dynv6", token="abcdefghijklmnopqrstuvwxyz0123"),
    ),
    (
        namecheap.parse_reply,
        HostConfig(hostname="myhome.example.com", provider="namecheap", password="0123456789abcdef0123456789abcdef"),
    ),
]
_RETRY_AFTER = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.sampled_from(["²", "9" * 5000, "-1", "1e9", "inf", "Wed, 21 Oct 2099 07:28:00 -0000"]),
    st.integers(-10, 10**12).map(str),
)


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(
    which=st.integers(0, len(PROVIDER_PARSERS) - 1),
    status=st.sampled_from([200, 201, 400, 401, 403, 404, 409, 429, 500, 502, 503]),
    retry_after=_RETRY_AFTER,
    body=st.one_of(st.text(max_size=200), _JSON.map(json.dumps)),
)
def test_provider_replies_with_any_retry_after_are_results(
    which: int, status: int, retry_after: str | None, body: str
) -> None:
    parse, host = PROVIDER_PARSERS[which]
    headers = {} if retry_after is None else {"retry-after": retry_after}
    r = parse(get_provider(host.provider), host, status, headers, body, "23.128.64.20")
    assert r.result in ("updated", "unchanged", "error") and r.message
    if r.result == "error" and not r.fatal:
        assert isinstance(r.retry_after_s, int) and 1 <= r.retry_after_s <= 24 * 3600


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(
    status=st.sampled_from([200, 400, 403, 429, 500]),
    retry_after=_RETRY_AFTER,
    body=st.one_of(_JSON.map(json.dumps), st.text(max_size=100)),
)
def test_cloudflare_replies_with_any_retry_after_are_results(status: int, retry_after: str | None, body: str) -> None:
    host = HostConfig(hostname="home.example.com", provider="cloudflare", token="x" * 40)
    headers = {} if retry_after is None else {"retry-after": retry_after}

    async def go() -> Any:
        raw_headers = [(k.encode(), v.encode("utf-8", "surrogatepass")) for k, v in headers.items()]  # as sent
        transport = httpx.MockTransport(lambda request: httpx.Response(status, text=body, headers=raw_headers))
        async with httpx.AsyncClient(transport=transport) as client:
            return await get_provider("cloudflare").update(host, "23.128.64.20", None, client)

    r = asyncio.run(go())
    assert r.result in ("updated", "unchanged", "error")
    assert r.code != "network" or "could not handle" not in r.message  # no parser bug caught as "network"


# --------------------------------------------------------------------------- ICMP errors (traceroute)


@FAST
@given(
    data=st.binary(max_size=48),
    level=st.sampled_from([0, 6, 17]),
    kind=st.sampled_from([11, 0, 1]),
    origin=st.integers(0, 5),
    family=st.sampled_from([2, 10, 0]),
)
def test_icmp_errors_give_an_ipv4_sender_or_nothing(
    data: bytes, level: int, kind: int, origin: int, family: int
) -> None:
    import socket

    from checks.probes import traceroute

    framed = struct.pack("=IBBBBII", 113, origin, 11, 0, 0, 0, 0) + struct.pack("=H", family) + data
    for blob in (data, framed):
        got = traceroute.parse_icmp_error(socket.SOL_IP if level == 0 else level, kind, blob)
        assert got is None or strict_ip(got[2], 4)


# --------------------------------------------------------------------------- configuration


_TOML_VALUES = st.recursive(
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=30)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=10), kids, max_size=3),
    max_leaves=10,
)
_CONFIG_DICTS = st.fixed_dictionaries(
    {},
    optional={
        "endpoints": st.one_of(
            _TOML_VALUES,
            st.dictionaries(
                st.sampled_from(["ip_echo", "dns_echo", "stun", "resolvers", "port_check", "outbound_target", "bogus"]),
                _TOML_VALUES,
                max_size=4,
            ),
        ),
        "hosts": st.one_of(
            _TOML_VALUES,
            st.lists(
                st.one_of(
                    _TOML_VALUES,
                    st.dictionaries(
                        st.sampled_from(
                            [
                                "hostname",
                                "provider",
                                "server",
                                "username",
                                "password",
                                "token",
                                "ipv6",
                                "min_interval",
                                "zone",
                            ]
                        ),
                        _TOML_VALUES,
                        max_size=6,
                    ),
                ),
                max_size=3,
            ),
        ),
        "notify": _TOML_VALUES,
    },
)


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(data=_CONFIG_DICTS)
def test_any_toml_shaped_configuration_is_accepted_or_a_config_error(data: dict[str, Any]) -> None:
    try:
        config = config_from_dict(data)
    except ConfigError:
        return
    for host in config.hosts:
        assert isinstance(host.hostname, str) and isinstance(host.provider, str)
        assert all(isinstance(s, str) for s in host.secret_values())


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.builds(
            lambda n, o, c: "a = " + o * n + c * n,
            st.integers(0, 3000),
            st.sampled_from(["[", "{x="]),
            st.sampled_from(["]", "}", ""]),
        ),
        st.builds(
            lambda k, v: f"[endpoints]\n{k} = {v}\n",
            st.sampled_from(["ip_echo", "resolvers", "x"]),
            st.sampled_from(['"a"', "1", "[1]", "{a=1}", '["a", 2]', "1979-05-27"]),
        ),
    )
)
def test_any_configuration_file_loads_or_is_a_config_error(text: str, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        load_config(path)
    except ConfigError:
        pass


# --------------------------------------------------------------------------- history


_HISTORY_LINES = st.one_of(
    st.text(max_size=80),
    _JSON.map(lambda v: json.dumps(v)),
    st.fixed_dictionaries(
        {"event": st.sampled_from(["update", "check", "stopped", "start", "stop", "x"])},
        optional={
            "t": st.one_of(st.floats(), st.integers(-(2**70), 2**70), st.text(max_size=5), st.none(), st.booleans()),
            "hostname": st.one_of(st.just("myhome.duckdns.org"), _JSON),
            "result": st.one_of(st.sampled_from(["updated", "unchanged", "error"]), _JSON),
            "sent": st.one_of(_IPS, _JSON),
            "serves": st.one_of(_IPS, _JSON),
            "retry_after_s": st.one_of(st.floats(), st.integers(-10, 2**70), _JSON),
            "fingerprint": _JSON,
            "message": _JSON,
            "fatal": _JSON,
        },
    ).map(lambda d: json.dumps(d)),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_HISTORY_LINES, max_size=8))
def test_any_history_is_read_and_restored_without_a_crash(lines: list[str], tmp_path: Path) -> None:
    from checks.ddns.history import History
    from checks.ddns.watch import Watcher

    path = tmp_path / "h.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    read = read_history(path)
    assert all(record_problem(r) is None for r in read.records)
    assert len(read.records) + len(read.problems) == sum(1 for line in path.read_bytes().split(b"\n") if line.strip())
    host = HostConfig(hostname="myhome.duckdns.org", provider="duckdns", token=_TOKEN)
    events: list[str] = []
    w = Watcher(
        Config(hosts=(host,)), client=None, history=History(path), clock=lambda: 2_000_000_000.0, emit=events.append
    )
    w.restore()
    state = w.states["myhome.duckdns.org"]
    assert state.not_before <= 2_000_000_000.0 + state.spec.policy.max_retry_s
    assert state.published is None or isinstance(state.published, str)


def test_tomllib_is_what_we_think() -> None:
    """The nesting test above relies on tomllib recursing per nested array (RecursionError at 2000)."""
    with pytest.raises(RecursionError):
        tomllib.loads("a = " + "[" * 2000)
