"""DNS verification against tiny DNS servers on loopback.

``StubDns`` is a loopback stand-in, built with dnspython, for the servers the tool
talks to: an authoritative server (answers its own data with AA, no recursion) and
a recursive resolver (answers with RA from a table that may hold a stale "cached"
record with its remaining TTL).  The real daemons (Knot, unbound) are exercised
by tests/lab/test_verify_lab.py; here the point is the tool's own behaviour: direct
RD=0 queries, TTLs, TCP fallback on truncation, NXDOMAIN / no-answer / garbage /
silence, and the verdicts.  Ping is switched off or injected: nothing leaves 127/8.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from checks.dns import verify as dnsverify
from checks.dns.verify import (
    current_addresses,
    find_authoritative,
    judge,
    parse_server,
    query_authoritative,
    verify_hostname,
    wait_until_consistent,
)
from checks.model import DnsAnswer, PingResult

ZONE = "example.test"
HOST = "home.example.test"
NEW_IP = "23.128.64.20"
OLD_IP = "23.128.64.99"
NEW_V6 = "2a0c:b641:100::20"
SOA_MINIMUM = 30  # negative-caching TTL of the stub zones

Records = dict[tuple[str, str], tuple[int, list[str]]]


def base_records(host_ip: str | None = NEW_IP, ttl: int = 60) -> Records:
    recs: Records = {
        (ZONE, "NS"): (3600, ["ns1.example.test.", "ns2.example.test."]),
        ("ns1.example.test", "A"): (3600, ["127.0.0.1"]),
        ("ns2.example.test", "A"): (3600, ["127.0.0.2"]),
        ("v6only.example.test", "AAAA"): (60, [NEW_V6]),
        ("www.example.test", "CNAME"): (300, ["home.example.test."]),
        ("alias.example.test", "CNAME"): (300, ["myhome.other.test."]),  # own domain → DDNS name
        ("other.test", "NS"): (3600, ["ns1.other.test."]),
        ("ns1.other.test", "A"): (3600, ["127.0.0.2"]),
        ("myhome.other.test", "A"): (60, [NEW_IP]),
    }
    if host_ip is not None:
        recs[(HOST, "A")] = (ttl, [host_ip])
    return recs


@dataclass
class StubDns:
    """A loopback stand-in DNS server (UDP and TCP) serving ``records`` for ``zones``.

    ``mode``: "normal", "silent" (never answers), "garbage" (answers junk bytes),
    "truncate" (UDP replies are empty with TC set; TCP answers fully), "servfail",
    "silent-aaaa" (answers everything but AAAA questions),
    "no-aa" (answers without the AA flag, like a cache).
    """

    records: Records
    zones: tuple[str, ...] = (ZONE, "other.test")
    recursive: bool = False
    mode: str = "normal"
    host: str = "127.0.0.1"
    port: int = 0
    log: list[tuple[str, str, bool, str]] = field(default_factory=list)  # (qname, type, rd, transport)
    servfail_ns: tuple[str, ...] = ()  # NS questions for these names get SERVFAIL
    # extra answer records of another class (hostile or broken servers): (owner, class, type, rdata wire)
    foreign: list[tuple[str, int, int, bytes]] = field(default_factory=list)

    async def start(self) -> StubDns:
        loop = asyncio.get_running_loop()
        stub = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport):  # type: ignore[no-untyped-def]
                self.transport = transport

            def datagram_received(self, data, addr):  # type: ignore[no-untyped-def]
                reply = stub.handle(data, "udp")
                if reply is not None:
                    self.transport.sendto(reply, addr)

        asked = self.port
        self._udp, _ = await loop.create_datagram_endpoint(Udp, local_addr=(self.host, self.port))
        self.port = self._udp.get_extra_info("sockname")[1]
        try:
            # The kernel chose a free UDP port; the same number over TCP may be taken (by a
            # concurrent test's outgoing connection, say): the fixture then tries again.
            self._tcp = await asyncio.start_server(self._tcp_client, self.host, self.port)
        except OSError:
            self._udp.close()
            self.port = asked
            raise
        return self

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            size = int.from_bytes(await reader.readexactly(2), "big")
            reply = self.handle(await reader.readexactly(size), "tcp")
            if reply is not None:
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        self._udp.close()
        self._tcp.close()
        await self._tcp.wait_closed()

    @property
    def spec(self) -> str:
        return f"{self.host}:{self.port}"

    def _zone_of(self, name: str) -> str | None:
        hits = [z for z in self.zones if name == z or name.endswith("." + z)]
        return max(hits, key=len) if hits else None

    def _soa(self, zone: str) -> dns.rrset.RRset:
        return dns.rrset.from_text(
            zone + ".", 60, "IN", "SOA", f"ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 {SOA_MINIMUM}"
        )

    def handle(self, wire: bytes, transport: str) -> bytes | None:
        if self.mode == "silent":
            return None
        query = dns.message.from_wire(wire)
        question = query.question[0]
        qname = question.name.to_text(omit_final_dot=True).lower()
        qtype = dns.rdatatype.to_text(question.rdtype)
        self.log.append((qname, qtype, bool(query.flags & dns.flags.RD), transport))
        if self.mode == "silent-aaaa" and qtype == "AAAA":
            return None
        if self.mode == "garbage":
            return wire[:2] + b"\x81\x80 this is not DNS"
        response = dns.message.make_response(query)
        if self.recursive:
            response.flags |= dns.flags.RA
        elif self.mode != "no-aa":
            response.flags |= dns.flags.AA
        if self.mode == "servfail" or (qtype == "NS" and qname in self.servfail_ns):
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        if self.mode == "truncate" and transport == "udp":
            response.flags |= dns.flags.TC
            return response.to_wire()
        zone = self._zone_of(qname)
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED if not self.recursive else dns.rcode.NXDOMAIN)
            return response.to_wire()
        for owner, rdclass, rdtype, data in self.foreign:
            if owner == qname:
                rrset = dns.rrset.RRset(dns.name.from_text(owner), rdclass, rdtype)
                rrset.add(dns.rdata.GenericRdata(rdclass, rdtype, data), 60)
                response.answer.append(rrset)
        name = qname
        for _ in range(8):
            if qtype == "SOA" and name == zone:
                response.answer.append(self._soa(zone))
                return response.to_wire()
            if (name, qtype) in self.records:
                ttl, datas = self.records[(name, qtype)]
                response.answer.append(dns.rrset.from_text(name + ".", ttl, "IN", qtype, *datas))
                return response.to_wire()
            if (name, "CNAME") in self.records:
                ttl, datas = self.records[(name, "CNAME")]
                response.answer.append(dns.rrset.from_text(name + ".", ttl, "IN", "CNAME", *datas))
                target = datas[0].rstrip(".")
                if not self.recursive and self._zone_of(target) != zone:
                    return response.to_wire()  # an authoritative server stops at its zone's edge
                name, zone = target, self._zone_of(target) or zone
                continue
            break
        exists = name == zone or any(n == name or n.endswith("." + name) for n, _ in self.records)
        if not exists:
            response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(self._soa(zone))
        return response.to_wire()


@dataclass
class Net:
    """Two authoritative stand-ins (127.0.0.1 and 127.0.0.2, same port) and a resolver (127.0.0.3)."""

    ns1: StubDns
    ns2: StubDns
    resolver: StubDns

    @property
    def resolvers(self) -> list[str]:
        return [self.resolver.spec]

    @property
    def port(self) -> int:
        return self.ns1.port


@pytest.fixture
async def net():
    servers: list[StubDns] = []
    for _attempt in range(20):
        try:
            ns1 = await StubDns(base_records()).start()
        except OSError:  # the UDP port's number is taken over TCP: pick another
            continue
        try:
            ns2 = await StubDns(base_records(), host="127.0.0.2", port=ns1.port).start()
        except OSError:  # that port is taken on 127.0.0.2: pick another
            await ns1.stop()
            continue
        break
    else:  # pragma: no cover
        pytest.fail("no free port for the stand-in authoritative servers")
    for _attempt in range(20):
        try:
            resolver = await StubDns(base_records(), recursive=True, host="127.0.0.3").start()
        except OSError:
            continue
        break
    else:  # pragma: no cover
        pytest.fail("no free port for the stand-in resolver")
    servers = [ns1, ns2, resolver]
    yield Net(ns1, ns2, resolver)
    for s in servers:
        await s.stop()


# --------------------------------------------------------------------------- finding the servers


async def test_find_authoritative_walks_to_the_apex_through_the_configured_resolver(net: Net) -> None:
    auth = await find_authoritative(HOST, resolvers=net.resolvers, timeout_s=2)
    assert auth.error is None
    assert auth.zone == ZONE
    assert [(ns.name, ns.addresses) for ns in auth.nameservers] == [
        ("ns1.example.test", ("127.0.0.1",)),
        ("ns2.example.test", ("127.0.0.2",)),
    ]
    assert auth.targets == (("127.0.0.1", "ns1.example.test"), ("127.0.0.2", "ns2.example.test"))
    # The walk goes through the resolver only; the authoritative servers are not asked yet.
    assert net.ns1.log == [] and net.ns2.log == []
    # One round trip finds the zone: NS of every suffix at once, no SOA walk.
    assert {q[:2] for q in net.resolver.log if q[1] in ("NS", "SOA")} == {(HOST, "NS"), (ZONE, "NS"), ("test", "NS")}


async def test_a_lost_aaaa_answer_does_not_hold_up_name_servers_reachable_over_ipv4(net: Net) -> None:
    # The resolver answers every A question and never an AAAA one (a lossy line at its
    # worst): the servers' IPv4 addresses are enough, well inside the deadline.
    net.resolver.mode = "silent-aaaa"
    auth = await find_authoritative(HOST, resolvers=net.resolvers, timeout_s=2)
    assert auth.error is None, auth.error
    assert auth.targets == (("127.0.0.1", "ns1.example.test"), ("127.0.0.2", "ns2.example.test"))


async def test_find_authoritative_does_not_take_the_zone_of_an_alias_target(net: Net) -> None:
    # apex.example.test is a CNAME to the apex of other.test: its NS question is answered
    # with other.test's NS records, which say nothing about the zone apex.example.test is in.
    net.resolver.records[("apex.example.test", "CNAME")] = (300, ["other.test."])
    auth = await find_authoritative("apex.example.test", resolvers=net.resolvers, timeout_s=2)
    assert auth.error is None and auth.zone == ZONE
    assert [ns.name for ns in auth.nameservers] == ["ns1.example.test", "ns2.example.test"]


async def test_find_authoritative_walks_by_soa_when_a_longer_suffix_gives_no_clear_answer(net: Net) -> None:
    # A SERVFAIL for the name itself leaves open whether it is a zone of its own: the
    # shorter suffix's NS cannot be trusted, so the classic SOA walk decides.
    net.resolver.servfail_ns = (HOST,)
    auth = await find_authoritative(HOST, resolvers=net.resolvers, timeout_s=2)
    assert auth.error is None and auth.zone == ZONE
    assert (HOST, "SOA", True, "udp") in net.resolver.log


async def test_find_authoritative_for_a_missing_deep_name_still_finds_the_zone(net: Net) -> None:
    auth = await find_authoritative("a.b.nothere.example.test", resolvers=net.resolvers, timeout_s=2)
    assert auth.zone == ZONE and auth.error is None


async def test_find_authoritative_reports_a_name_under_no_zone(net: Net) -> None:
    auth = await find_authoritative("host.unknown-tld", resolvers=net.resolvers, timeout_s=2)
    assert auth.zone is None and not auth.targets
    assert "no zone found" in (auth.error or "")


async def test_find_authoritative_reports_a_silent_resolver_within_its_deadline(net: Net) -> None:
    net.resolver.mode = "silent"
    started = time.monotonic()
    auth = await find_authoritative(HOST, resolvers=net.resolvers, timeout_s=0.8)
    assert time.monotonic() - started < 3
    assert not auth.targets
    assert "did not answer" in (auth.error or "") or "longer than" in (auth.error or "")


async def test_find_authoritative_reports_name_servers_without_addresses(net: Net) -> None:
    del net.resolver.records[("ns1.example.test", "A")]
    del net.resolver.records[("ns2.example.test", "A")]
    auth = await find_authoritative(HOST, resolvers=net.resolvers, timeout_s=2)
    assert auth.zone == ZONE and not auth.targets
    assert "has an address" in (auth.error or "")


async def test_find_authoritative_rejects_resolver_names_and_empty_lists() -> None:
    assert "not an IP address" in ((await find_authoritative(HOST, resolvers=["dns.example"])).error or "")
    assert "no resolvers" in ((await find_authoritative(HOST, resolvers=[])).error or "")


def test_parse_server_accepts_ports_and_ipv6() -> None:
    assert parse_server("1.1.1.1") == ("1.1.1.1", 53)
    assert parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_server("[::1]:5353") == ("::1", 5353)
    assert parse_server("2606:4700::1111") == ("2606:4700::1111", 53)
    with pytest.raises(ValueError):
        parse_server("resolver.example")


# --------------------------------------------------------------------------- asking them directly


async def test_query_authoritative_asks_each_server_directly_without_recursion(net: Net) -> None:
    net.ns2.records[(HOST, "A")] = (60, [OLD_IP])  # a secondary that lags behind
    answers = await query_authoritative(HOST, "A", resolvers=net.resolvers, timeout_s=2, port=net.port)
    assert [(a.server, a.answers, a.ttl, a.rcode, a.ok) for a in answers] == [
        ("ns1.example.test (127.0.0.1)", (NEW_IP,), 60, "NOERROR", True),
        ("ns2.example.test (127.0.0.2)", (OLD_IP,), 60, "NOERROR", True),
    ]
    assert net.ns1.log == [(HOST, "A", False, "udp")]  # RD flag off: the server's own data


async def test_query_authoritative_falls_back_to_tcp_when_truncated(net: Net) -> None:
    net.ns1.mode = net.ns2.mode = "truncate"
    answers = await query_authoritative(HOST, "A", resolvers=net.resolvers, timeout_s=2, port=net.port)
    assert [a.answers for a in answers] == [(NEW_IP,), (NEW_IP,)]
    assert [t for *_, t in net.ns1.log] == ["udp", "tcp"]


async def test_query_authoritative_nxdomain_carries_the_negative_ttl(net: Net) -> None:
    answers = await query_authoritative(
        "nothere.example.test", "A", resolvers=net.resolvers, timeout_s=2, port=net.port
    )
    assert {(a.rcode, a.answers, a.ttl, a.ok) for a in answers} == {("NXDOMAIN", (), SOA_MINIMUM, False)}


async def test_query_authoritative_follows_a_cname_inside_the_zone(net: Net) -> None:
    answers = await query_authoritative("www.example.test", "A", resolvers=net.resolvers, timeout_s=2, port=net.port)
    assert answers[0].answers == (NEW_IP,)
    assert answers[0].ttl == 60  # the shorter of the CNAME's and the A record's TTL


async def test_query_authoritative_reports_garbage_silence_and_non_authoritative_replies(net: Net) -> None:
    net.ns1.mode = "garbage"
    net.ns2.mode = "silent"
    started = time.monotonic()
    answers = await query_authoritative(HOST, "A", resolvers=net.resolvers, timeout_s=0.9, port=net.port)
    assert time.monotonic() - started < 3
    assert answers[0].rcode is None and "malformed" in (answers[0].error or "")
    assert answers[1].rcode is None and "no reply within" in (answers[1].error or "")
    net.ns1.mode = "no-aa"
    net.ns2.mode = "servfail"
    answers = await query_authoritative(HOST, "A", resolvers=net.resolvers, timeout_s=1, port=net.port)
    assert "lame delegation" in (answers[0].error or "") and not answers[0].ok
    assert answers[1].rcode == "SERVFAIL" and not answers[1].ok


async def test_query_authoritative_says_why_when_no_server_is_found(net: Net) -> None:
    answers = await query_authoritative("host.unknown-tld", "A", resolvers=net.resolvers, timeout_s=1)
    assert len(answers) == 1 and not answers[0].ok and "no zone found" in (answers[0].error or "")


async def test_current_addresses_returns_what_the_authoritative_servers_publish(net: Net) -> None:
    net.resolver.records[(HOST, "A")] = (55, [OLD_IP])  # the resolver's stale cache must not matter
    for s in (net.ns1, net.ns2):
        s.records[(HOST, "AAAA")] = (60, [NEW_V6])
    assert await current_addresses(HOST, resolvers=net.resolvers, timeout_s=2, port=net.port) == (NEW_IP, NEW_V6, None)
    assert await current_addresses("nothere.example.test", resolvers=net.resolvers, timeout_s=2, port=net.port) == (
        None,
        None,
        None,
    )
    assert await current_addresses("v6only.example.test", resolvers=net.resolvers, timeout_s=2, port=net.port) == (
        None,
        NEW_V6,
        None,
    )


async def test_current_addresses_returns_every_record_of_a_family(net: Net) -> None:
    # A stale record beside the current one (a round robin left behind) must be seen, or the
    # updater reads "unchanged" forever while visitors are sent to the old address half the time.
    for s in (net.ns1, net.ns2):
        s.records[(HOST, "A")] = (60, [OLD_IP, NEW_IP])
    v4, _, error = await current_addresses(HOST, resolvers=net.resolvers, timeout_s=2, port=net.port)
    assert error is None and v4 == ",".join(sorted([OLD_IP, NEW_IP]))


async def test_current_addresses_gives_an_error_when_no_authoritative_server_answers(net: Net) -> None:
    net.ns1.mode = net.ns2.mode = "silent"
    v4, v6, error = await current_addresses(HOST, resolvers=net.resolvers, timeout_s=0.6, port=net.port)
    assert (v4, v6) == (None, None)
    assert error and "no authoritative server of example.test answered" in error


# --------------------------------------------------------------------------- verdicts, end to end on loopback


async def test_verify_ok_when_authoritative_and_resolver_agree(net: Net) -> None:
    result = await verify_hostname(
        HOST, expected_ipv4=NEW_IP, expected_ipv6=None, resolvers=net.resolvers, ping=False, timeout_s=2, port=net.port
    )
    assert result.verdict == "ok"
    assert [a.ok for a in result.authoritative + result.resolvers] == [True, True, True]
    assert result.resolvers[0].server == net.resolver.spec and result.resolvers[0].ttl == 60
    assert result.ping is None


async def test_verify_propagating_estimates_from_the_resolvers_remaining_ttl(net: Net) -> None:
    net.resolver.records[(HOST, "A")] = (42, [OLD_IP])  # cached old answer, 42 s left
    result = await verify_hostname(
        HOST, expected_ipv4=NEW_IP, expected_ipv6=None, resolvers=net.resolvers, ping=False, timeout_s=2, port=net.port
    )
    assert result.verdict == "propagating"
    assert result.caches_settle_s == 42
    assert not result.resolvers[0].ok and result.resolvers[0].answers == (OLD_IP,)
    assert "42 s" in result.explanation


async def test_verify_wrong_ip_nxdomain_and_no_answer(net: Net) -> None:
    wrong = await verify_hostname(
        HOST,
        expected_ipv4="23.128.64.55",
        expected_ipv6=None,
        resolvers=net.resolvers,
        ping=False,
        timeout_s=2,
        port=net.port,
    )
    assert wrong.verdict == "wrong-ip" and NEW_IP in wrong.explanation
    missing = await verify_hostname(
        "nothere.example.test",
        expected_ipv4=NEW_IP,
        expected_ipv6=None,
        resolvers=net.resolvers,
        ping=False,
        timeout_s=2,
        port=net.port,
    )
    assert missing.verdict == "nxdomain"
    for s in (net.ns1, net.ns2, net.resolver):
        s.records[("bare.example.test", "TXT")] = (60, ['"exists, but no address"'])
    bare = await verify_hostname(
        "bare.example.test",
        expected_ipv4=NEW_IP,
        expected_ipv6=None,
        resolvers=net.resolvers,
        ping=False,
        timeout_s=2,
        port=net.port,
    )
    assert bare.verdict == "no-answer"


async def test_a_half_answered_resolver_is_not_counted_as_stale(net: Net) -> None:
    net.resolver.mode = "silent-aaaa"  # its A answer arrives, its AAAA answer is lost
    net.resolver.records[(HOST, "A")] = (60, [NEW_IP])
    result = await verify_hostname(
        HOST,
        expected_ipv4=None,
        expected_ipv6=NEW_V6,
        resolvers=net.resolvers,
        ping=False,
        timeout_s=0.8,
        port=net.port,
    )
    # Without the AAAA half, its empty IPv6 answer must not read as "still serves nothing".
    assert result.resolvers[0].rcode is None and "no reply" in (result.resolvers[0].error or "")
    assert result.verdict != "propagating"


async def test_verify_follows_an_alias_into_the_targets_zone(net: Net) -> None:
    result = await verify_hostname(
        "alias.example.test",
        expected_ipv4=NEW_IP,
        expected_ipv6=None,
        resolvers=net.resolvers,
        ping=False,
        timeout_s=2,
        port=net.port,
    )
    assert result.verdict == "ok", result.explanation
    assert [a.server for a in result.authoritative] == ["ns1.other.test (127.0.0.2)"]
    assert "alias.example.test → myhome.other.test" in result.explanation
    assert (("alias.example.test", "A", False, "udp")) in net.ns1.log  # example.test's servers were asked first
    net.ns2.records[("myhome.other.test", "A")] = (60, [OLD_IP])  # the DDNS name itself is stale
    stale = await verify_hostname(
        "alias.example.test",
        expected_ipv4=NEW_IP,
        expected_ipv6=None,
        resolvers=net.resolvers,
        ping=False,
        timeout_s=2,
        port=net.port,
    )
    assert stale.verdict == "wrong-ip"


async def test_verify_unknown_when_nothing_answers(net: Net) -> None:
    net.resolver.mode = "silent"
    result = await verify_hostname(
        HOST,
        expected_ipv4=NEW_IP,
        expected_ipv6=None,
        resolvers=net.resolvers,
        ping=False,
        timeout_s=0.6,
        port=net.port,
    )
    assert result.verdict == "unknown"
    assert "No DNS server answered" in result.explanation


async def test_verify_pings_the_published_address_with_the_given_pinger(net: Net) -> None:
    pinged: list[str] = []

    async def fake_ping(address: str) -> PingResult:
        pinged.append(address)
        return PingResult(method="tcp-connect", alive=True, rtt_ms=1.0, target=address)

    result = await verify_hostname(
        HOST,
        expected_ipv4=OLD_IP,
        expected_ipv6=None,
        resolvers=net.resolvers,
        ping=True,
        timeout_s=2,
        port=net.port,
        pinger=fake_ping,
    )
    assert pinged == [NEW_IP]  # what the name leads to, not what we expected
    assert result.ping is not None and result.ping.alive


async def test_verify_does_not_ping_a_name_without_address(net: Net) -> None:
    pinged: list[str] = []

    async def fake_ping(address: str) -> PingResult:
        pinged.append(address)
        return PingResult(method="tcp-connect", alive=True, rtt_ms=1.0, target=address)

    result = await verify_hostname(
        "nothere.example.test",
        expected_ipv4=NEW_IP,
        expected_ipv6=None,
        resolvers=net.resolvers,
        ping=True,
        timeout_s=2,
        port=net.port,
        pinger=fake_ping,
    )
    assert pinged == []  # never the expected address instead: that would test another thing
    assert result.ping is not None and (result.ping.method, result.ping.alive) == ("none", False)


async def test_wait_until_consistent_polls_with_backoff_until_caches_catch_up(net: Net) -> None:
    net.resolver.records[(HOST, "A")] = (300, [OLD_IP])
    pauses: list[float] = []
    progress: list[str] = []
    fake_now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        pauses.append(seconds)
        fake_now[0] += seconds
        if len(pauses) == 3:  # the resolver's cache expires during the third pause
            net.resolver.records[(HOST, "A")] = (60, [NEW_IP])

    result = await wait_until_consistent(
        HOST,
        expected_ipv4=NEW_IP,
        expected_ipv6=None,
        resolvers=net.resolvers,
        wait_s=60,
        on_progress=lambda r, left: progress.append(r.verdict),
        ping=False,
        timeout_s=2,
        port=net.port,
        sleep=fake_sleep,
        clock=lambda: fake_now[0],
    )
    assert result.verdict == "ok"
    assert pauses == [1.0, 2.0, 4.0]
    assert progress == ["propagating"] * 3


async def test_wait_until_consistent_gives_up_at_the_deadline(net: Net) -> None:
    net.resolver.records[(HOST, "A")] = (300, [OLD_IP])
    fake_now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        fake_now[0] += seconds

    result = await wait_until_consistent(
        HOST,
        expected_ipv4=NEW_IP,
        expected_ipv6=None,
        resolvers=net.resolvers,
        wait_s=10,
        ping=False,
        timeout_s=2,
        port=net.port,
        sleep=fake_sleep,
        clock=lambda: fake_now[0],
    )
    assert result.verdict == "propagating" and result.caches_settle_s == 300
    assert fake_now[0] == pytest.approx(10.0)  # 1 + 2 + 4 + 3 (the rest), then the final round


async def test_wait_stops_when_the_record_itself_is_wrong_and_says_update(net: Net) -> None:
    """Issue 19: a wrong record kept `verify --wait 180` (and the wizard) waiting "until every answer
    agrees" for 180 s; waiting cannot fix what the authoritative servers hold."""
    for server in (net.ns1, net.ns2, net.resolver):
        server.records[(HOST, "A")] = (60, [OLD_IP])
    fake_now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        fake_now[0] += seconds

    result = await wait_until_consistent(
        HOST,
        expected_ipv4=NEW_IP,
        expected_ipv6=None,
        resolvers=net.resolvers,
        wait_s=180,
        ping=False,
        timeout_s=2,
        port=net.port,
        sleep=fake_sleep,
        clock=lambda: fake_now[0],
    )
    assert result.verdict == "wrong-ip" and result.next_step == "update"
    assert fake_now[0] <= 16  # the 10 s grace, not the 180 s
    assert "Waiting does not change that" in result.explanation
    assert "ddns-wizard" not in result.explanation  # the views word the command


# --------------------------------------------------------------------------- verdict logic on hand-built answers


def A(
    server: str, *answers: str, ttl: int | None = 60, rcode: str | None = "NOERROR", error: str | None = None
) -> DnsAnswer:
    return DnsAnswer(server=server, answers=tuple(answers), ttl=ttl, ok=False, error=error, rcode=rcode)


SILENT = dict(ttl=None, rcode=None, error="timed out")


@pytest.mark.parametrize(
    "auth, res, verdict, settle",
    [
        ([A("ns1", NEW_IP), A("ns2", NEW_IP)], [A("r1", NEW_IP, ttl=12)], "ok", None),
        ([A("ns1", NEW_IP)], [A("r1", OLD_IP, ttl=40), A("r2", OLD_IP, ttl=7), A("r3", NEW_IP)], "propagating", 40),
        ([A("ns1", NEW_IP)], [A("r1", rcode="NXDOMAIN", ttl=25)], "propagating", 25),  # negative cache
        ([A("ns1", NEW_IP, ttl=90)], [A("r1", OLD_IP, ttl=None)], "propagating", 90),  # bounded by auth TTL
        ([A("ns1", NEW_IP), A("ns2", OLD_IP)], [A("r1", NEW_IP)], "propagating", None),  # lagging secondary
        ([A("ns1", OLD_IP), A("ns2", OLD_IP)], [A("r1", OLD_IP)], "wrong-ip", None),
        ([A("ns1", NEW_IP, OLD_IP)], [], "wrong-ip", None),  # an extra stale record
        ([A("ns1", rcode="NXDOMAIN")], [A("r1", rcode="NXDOMAIN")], "nxdomain", None),
        ([A("ns1")], [A("r1")], "no-answer", None),
        ([A("ns1", **SILENT)], [A("r1", **SILENT)], "unknown", None),
        ([], [], "unknown", None),
        ([A("ns1", **SILENT)], [A("r1", NEW_IP)], "ok", None),  # auth unreachable, resolvers agree
        ([A("ns1", **SILENT)], [A("r1", OLD_IP)], "unknown", None),  # cannot tell stale from wrong
        ([A("ns1", NEW_IP), A("ns2", **SILENT)], [A("r1", NEW_IP), A("r2", rcode="SERVFAIL")], "ok", None),
    ],
)
def test_verdicts(auth: list[DnsAnswer], res: list[DnsAnswer], verdict: str, settle: int | None) -> None:
    got, explanation, settle_s, _, _ = judge(NEW_IP, None, auth, res)
    assert (got, settle_s) == (verdict, settle)
    assert explanation


def test_a_missing_aaaa_is_fine_but_a_wrong_one_is_not() -> None:
    assert judge(NEW_IP, NEW_V6, [A("ns1", NEW_IP)], [A("r1", NEW_IP)])[0] == "ok"
    assert judge(NEW_IP, NEW_V6, [A("ns1", NEW_IP, "2a0c:b641:100::99")], [])[0] == "wrong-ip"
    # IPv6 written differently is still the same address
    assert judge(None, NEW_V6, [A("ns1", "2a0c:b641:100:0:0:0:0:20")], [])[0] == "ok"


def test_without_expectation_resolvers_are_held_to_the_authoritative_answer() -> None:
    verdict, _, settle, auth, res = judge(None, None, [A("ns1", NEW_IP)], [A("r1", OLD_IP, ttl=33)])
    assert (verdict, settle) == ("propagating", 33)
    assert auth[0].ok and not res[0].ok


def test_judge_marks_ok_and_names_silent_servers() -> None:
    _, explanation, _, auth, res = judge(NEW_IP, None, [A("ns1", NEW_IP), A("ns2", **SILENT)], [A("r1", NEW_IP)])
    assert [a.ok for a in auth] == [True, False] and res[0].ok
    assert "ns2" in explanation


def test_verify_result_json_matches_the_design_contract() -> None:
    from wizard.commands.verify import result_json

    verdict, explanation, settle, auth, res = judge(NEW_IP, None, [A("ns1", NEW_IP)], [A("r1", OLD_IP, ttl=9)])
    from checks.model import VerifyResult

    result = VerifyResult(
        hostname=HOST,
        expected_ipv4=NEW_IP,
        expected_ipv6=None,
        authoritative=auth,
        resolvers=res,
        verdict=verdict,
        explanation=explanation,
        caches_settle_s=settle,
        ping=PingResult(method="icmp-privileged", alive=True, rtt_ms=0.5, target=NEW_IP),
    )
    data = json.loads(json.dumps(result_json(result)))
    assert data["hostname"] == HOST
    assert data["expected"] == {"ipv4": NEW_IP, "ipv6": None}
    assert data["authoritative"][0] | {} == {
        "server": "ns1",
        "answers": [NEW_IP],
        "ttl": 60,
        "ok": True,
        "rcode": "NOERROR",
        "error": None,
        "ignored": [],
    }
    assert {"server", "answers", "ttl", "ok"} <= set(data["resolvers"][0])
    assert data["verdict"] == "propagating" and data["caches_settle_s"] == 9
    assert data["ping"] == {
        "method": "icmp-privileged",
        "alive": True,
        "rtt_ms": 0.5,
        "target": NEW_IP,
        "hairpin": None,
    }  # without this network's own address: not known
    # The published address is this network's own outside address: pinged from inside the LAN, the
    # router answered it itself (hairpin) — a LAN check that says nothing about outside reachability.
    assert result_json(result, {NEW_IP})["ping"]["hairpin"] is True
    assert result_json(result, {"23.128.64.99"})["ping"]["hairpin"] is False


def test_hostname_validation() -> None:
    assert dnsverify.normalize_hostname("Home.Example.ORG.") == "home.example.org"
    for bad in ("", "localhost", "has space.example.org", "a..b.org"):
        with pytest.raises(ValueError):
            dnsverify.normalize_hostname(bad)


# --------------------------------------------------------------------------- the command


def write_config(tmp_path, resolvers: list[str], *, ip_echo: list[str] = (), hosts: list[str] = ()):  # type: ignore[no-untyped-def]
    import tomli_w

    data = {
        "endpoints": {"resolvers": resolvers, "ip_echo": list(ip_echo), "ip_echo_v6": []},
        "hosts": [{"hostname": h, "provider": "dyndns2"} for h in hosts],
    }
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(data))
    return str(path)


@pytest.fixture
def loopback_auth(net: Net, monkeypatch: pytest.MonkeyPatch) -> Net:
    """The command's real engine, with only the authoritative port moved to the stand-ins' port."""
    import functools

    for s in (net.ns1, net.ns2, net.resolver):
        s.records[("loop.example.test", "A")] = (60, ["127.0.0.1"])
    monkeypatch.setattr(dnsverify, "verify_hostname", functools.partial(dnsverify.verify_hostname, port=net.port))
    return net


async def run_cli(*argv: str) -> int:
    from wizard.cli import main

    return await asyncio.to_thread(main, list(argv))  # the CLI runs its own event loop


async def test_cli_json_is_the_design_contract_and_pings_the_published_address(
    loopback_auth: Net, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, loopback_auth.resolvers)
    code = await run_cli("--config", cfg, "verify", "loop.example.test", "--expect", "127.0.0.1", "--json")
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)  # stdout holds the JSON and nothing else
    assert data["verdict"] == "ok" and data["expected"] == {"ipv4": "127.0.0.1", "ipv6": None}
    assert [a["answers"] for a in data["authoritative"]] == [["127.0.0.1"], ["127.0.0.1"]]
    assert data["resolvers"][0]["server"] == loopback_auth.resolver.spec
    assert {"method", "alive", "rtt_ms"} <= set(data["ping"]) and data["ping"]["alive"]
    assert data["ping"]["hairpin"] is None  # --expect: this network's own address is not known


def test_the_ping_of_the_networks_own_address_is_labelled_a_lan_check(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11: from inside the LAN the published (own) address is answered by the router itself."""
    from checks.model import VerifyResult
    from wizard.commands.verify import _print_results

    result = VerifyResult(
        hostname=HOST,
        expected_ipv4=NEW_IP,
        expected_ipv6=None,
        authoritative=(),
        resolvers=(),
        verdict="ok",
        ping=PingResult("icmp-privileged", True, 0.4, target=NEW_IP),
    )
    _print_results([result], "current public address", {NEW_IP})
    out = " ".join(capsys.readouterr().out.split())
    assert f"LAN check {NEW_IP}: answers" in out
    assert "proves nothing about reachability from the internet" in out and "hairpin" in out
    _print_results([result], "current public address", {"23.128.64.99"})
    out = " ".join(capsys.readouterr().out.split())
    assert f"Ping {NEW_IP}: answers" in out and "LAN check" not in out


async def test_cli_expects_the_public_address_from_the_echo_service(
    loopback_auth: Net, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = OLD_IP.encode() + b"\n"  # this network's "public address" differs from the record
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        cfg = write_config(tmp_path, loopback_auth.resolvers, ip_echo=[url], hosts=[HOST])
        code = await run_cli("--config", cfg, "verify", "--no-ping", "--json")
    finally:
        server.close()
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["hostname"] == HOST and data["expected"]["ipv4"] == OLD_IP
    assert data["verdict"] == "wrong-ip" and data["ping"] is None


async def test_cli_table_shows_servers_ttls_verdict_and_estimate(
    loopback_auth: Net, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    loopback_auth.resolver.records[(HOST, "A")] = (42, [OLD_IP])
    cfg = write_config(tmp_path, loopback_auth.resolvers, hosts=[HOST, "nothere.example.test"])
    code = await run_cli("--config", cfg, "verify", "--expect", NEW_IP, "--no-ping")
    out = capsys.readouterr().out
    assert code == 0
    assert "ns1.example.test (127.0.0.1)" in out and "42 s" in out
    assert "PROPAGATING" in out and "within about 42 s" in out
    assert "NO SUCH NAME" in out  # the second configured host


async def test_cli_json_lists_several_hostnames(loopback_auth: Net, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config(tmp_path, loopback_auth.resolvers, hosts=[HOST, "nothere.example.test"])
    assert await run_cli("--config", cfg, "verify", "--expect", NEW_IP, "--no-ping", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [(d["hostname"], d["verdict"]) for d in data] == [(HOST, "ok"), ("nothere.example.test", "nxdomain")]


async def test_records_of_another_class_are_ignored_and_said(
    loopback_auth: Net, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 13: an answer record of class HS (dnspython: GenericRdata, no ``address``) made verify
    end in "internal error"; a Chaosnet A record's integer "address" would have read as 0.0.2.156."""
    hs_a = ("loop.example.test", dns.rdataclass.HS, dns.rdatatype.A, bytes([6, 6, 6, 6]))
    ch_a = ("loop.example.test", dns.rdataclass.CH, dns.rdatatype.A, b"\x03foo\x00\x02\x9c")  # foo. 0o1234
    class7_aaaa = ("loop.example.test", 7, dns.rdatatype.AAAA, bytes(16))
    for server in (loopback_auth.ns1, loopback_auth.ns2, loopback_auth.resolver):
        server.foreign[:] = [hs_a, ch_a, class7_aaaa]
    cfg = write_config(tmp_path, loopback_auth.resolvers)
    code = await run_cli("--config", cfg, "verify", "loop.example.test", "--expect", "127.0.0.1", "--no-ping", "--json")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert data["verdict"] == "ok"
    for answer in data["authoritative"] + data["resolvers"]:
        assert answer["answers"] == ["127.0.0.1"]  # not 6.6.6.6, not 0.0.2.156, not ::
        notes = " | ".join(answer["ignored"])
        assert "HS A record for loop.example.test: class HS, not IN" in notes
        assert "CH A record" in notes and "CLASS7 AAAA record" in notes
    code = await run_cli("--config", cfg, "verify", "loop.example.test", "--expect", "127.0.0.1", "--no-ping")
    out = capsys.readouterr().out
    assert code == 0 and "class HS, not IN" in out and "OK" in out


def test_reply_parser_ignores_foreign_classes_and_other_names() -> None:
    query = dns.message.make_query(HOST, "A")
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    response.answer.append(dns.rrset.from_text("elsewhere.test.", 60, "IN", "A", "9.9.9.9"))
    response.answer.append(dns.rrset.from_text(HOST + ".", 60, "IN", "A", NEW_IP))
    reply = dnsverify._parse_reply(dns.message.from_wire(response.to_wire()), HOST, "A", recursive=False)
    assert reply.addresses == (NEW_IP,)
    assert reply.ignored == ("ignored 1 IN A record for elsewhere.test: not the name that was asked",)


@pytest.mark.parametrize(
    "argv, message",
    [
        ((), "no hostname given and none configured"),
        (("bad name.example.org",), "not a host name"),
        (("home.example.test", "--expect", "not-an-ip"), "not an IP address"),
        (("home.example.test", "--expect", "1.2.3.4", "--expect", "1.2.3.5"), "at most one IPv4"),
    ],
)
def test_cli_usage_errors_exit_2_with_a_clear_message(tmp_path, capsys, argv, message) -> None:  # type: ignore[no-untyped-def]
    from wizard.cli import main

    cfg = write_config(tmp_path, ["127.0.0.1:1"])
    assert main(["--config", cfg, "verify", *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == "" and "Traceback" not in captured.err


def test_cli_refuses_an_unusable_resolver_list(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from wizard.cli import main

    assert main(["--config", write_config(tmp_path, []), "verify", HOST]) == 2
    assert "resolvers is empty" in capsys.readouterr().err
    assert main(["--config", write_config(tmp_path, ["dns.example"]), "verify", HOST]) == 2
    assert "not an IP address" in capsys.readouterr().err


def test_a_class_any_address_record_does_not_blind_the_process_to_a_records() -> None:
    """dnspython caches "no parser" for (ANY, A) after one class-ANY A record, and then parses every
    IN A record as GenericRdata (no ``address``). A fresh interpreter: the hostile reply comes first."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import dns.message, dns.name, dns.rdata, dns.rdataclass, dns.rdatatype, dns.rrset
        from checks.dns import verify as dnsverify
        from checks.probes.publicip import DNS_ECHO_METHODS, address_from_dns_answer

        def reply(rdclass, qname="home.example.test"):
            response = dns.message.make_response(dns.message.make_query(qname, "A"))
            response.flags |= dns.flags.AA
            rrset = dns.rrset.RRset(dns.name.from_text(qname), rdclass, dns.rdatatype.A)
            rrset.add(dns.rdata.GenericRdata(rdclass, dns.rdatatype.A, bytes([23, 128, 64, 20])), 60)
            response.answer.append(rrset)
            return dns.message.from_wire(response.to_wire())

        hostile = dnsverify._parse_reply(reply(dns.rdataclass.ANY), "home.example.test", "A", recursive=False)
        good = dnsverify._parse_reply(reply(dns.rdataclass.IN), "home.example.test", "A", recursive=False)
        echo = address_from_dns_answer(reply(dns.rdataclass.IN, "myip.opendns.com"), DNS_ECHO_METHODS["opendns"])
        print(hostile.addresses, good.addresses, echo)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "() ('23.128.64.20',) ('23.128.64.20', '')"
