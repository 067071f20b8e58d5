"""DNS verification: what the authoritative servers and the resolvers serve for a name.

Three views of one hostname, each asked concurrently and each with its own deadline:

* the zone's **authoritative servers**, found by walking up the name to the zone apex
  (SOA) through the configured resolvers, then their NS names resolved to addresses;
  each address is asked directly with the RD flag off (no cache in between, TCP
  fallback when the UDP reply is truncated) — this is the truth the provider holds;
* each **configured resolver**, asked an ordinary recursive query: its answer and the
  TTL it still has left in its cache — this is what the rest of the world sees;
* a **verdict** (``ok``, ``propagating``, ``wrong-ip``, ``nxdomain``, ``no-answer``,
  ``unknown``) with an estimate of when every cache will serve the new answer.

The resolvers used for the walk are the configuration's ``[endpoints] resolvers``,
never the system's ``resolv.conf``: a test or a lab run must not leak queries.  A
resolver entry is ``ADDRESS``, ``ADDRESS:PORT`` or ``[IPv6]:PORT``.

Network failures are data (``error`` fields), never exceptions.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, TypeVar

import dns.asyncquery
import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset

from checks.addresses import split_host_port
from checks.dns.wire import address_of
from checks.model import DnsAnswer, PingResult, ProviderView, VerifyResult, VerifyVerdictName
from checks.tasks import drop as _drop_tasks

if TYPE_CHECKING:
    from checks.config import HostConfig

RecordType = Literal["A", "AAAA"]
Pinger = Callable[[str], Awaitable[PingResult]]

_MAX_CNAME_CHAIN = 8


# --------------------------------------------------------------------------- types


@dataclass(frozen=True)
class NameServer:
    """One NS record of the zone and the addresses its name resolves to."""

    name: str  # host name of the server, without the trailing dot
    addresses: tuple[str, ...] = ()
    error: str | None = None  # why it has no address (lookup failed)


@dataclass(frozen=True)
class AuthServers:
    """The zone a hostname lives in and the servers authoritative for it."""

    hostname: str
    zone: str | None  # zone apex, without the trailing dot
    nameservers: tuple[NameServer, ...] = ()
    error: str | None = None  # why they could not be found (NXDOMAIN zone, no NS, timeout)
    ms: float = 0.0

    @property
    def targets(self) -> tuple[tuple[str, str], ...]:
        """(address, NS name) pairs to ask, each address once, in NS order."""
        seen: set[str] = set()
        out: list[tuple[str, str]] = []
        for ns in self.nameservers:
            for addr in ns.addresses:
                if addr not in seen:
                    seen.add(addr)
                    out.append((addr, ns.name))
        return tuple(out)


@dataclass(frozen=True)
class _Reply:
    """One server's reply to one question, reduced to what verification needs."""

    rcode: str | None  # None: no usable reply at all
    addresses: tuple[str, ...] = ()
    ttl: int | None = None  # TTL of the address records, else the negative-caching TTL
    error: str | None = None
    authoritative: bool = False  # AA flag
    cname: str | None = None  # CNAME chain ends at this name, whose addresses are not in the reply
    ignored: tuple[str, ...] = ()  # records of the reply that were not what was asked, in words


# --------------------------------------------------------------------------- helpers


def parse_server(spec: str, default_port: int = 53) -> tuple[str, int]:
    """``"1.1.1.1"``, ``"1.1.1.1:5353"``, ``"[::1]:5353"`` or ``"::1"`` → (address, port).

    Raises ``AddressError`` (a ``ValueError``) for anything that is not an IP address (resolvers are
    addresses: resolving a resolver's name would need a resolver).
    """
    return split_host_port(spec, default_port=default_port, what="resolver", require_ip=True)


def normalize_hostname(hostname: str) -> str:
    """Lower case, no trailing dot; raises ``ValueError`` for a name DNS cannot carry."""
    name = hostname.strip().rstrip(".").lower()
    if not name or " " in name:
        raise ValueError(f"{hostname!r} is not a host name")
    try:
        parsed = dns.name.from_text(name)  # IDNA-encodes non-ASCII, checks label lengths
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise ValueError(f"{hostname!r} is not a valid host name ({exc})") from None
    if len(parsed.labels) < 3:  # at least "label.tld." — a bare TLD is not a host
        raise ValueError(f"{hostname!r} is not a host name (it needs a domain, e.g. myhome.example.org)")
    return parsed.to_text(omit_final_dot=True)


def _family(address: str) -> int:
    return 6 if ":" in address else 4


def _canonical(address: str) -> str:
    try:
        return ipaddress.ip_address(address).compressed
    except ValueError:
        return address


def _make_resolver(resolvers: Sequence[str], timeout_s: float) -> tuple[dns.asyncresolver.Resolver | None, str | None]:
    """A dnspython resolver that asks only ``resolvers`` (never the system's configuration)."""
    nameservers: list[dns.nameserver.Nameserver] = []
    for spec in resolvers:
        try:
            addr, port = parse_server(spec)
        except ValueError as exc:
            return None, str(exc)
        nameservers.append(dns.nameserver.Do53Nameserver(addr, port))
    if not nameservers:
        return None, "no resolvers configured ([endpoints] resolvers is empty)"
    res = dns.asyncresolver.Resolver(configure=False)
    res.nameservers = nameservers
    res.lifetime = timeout_s
    # Several short tries (rotating over the resolvers) inside the lifetime: one lost UDP
    # datagram must not fail the walk, which takes three round trips (SOA, NS, NS address).
    res.timeout = max(0.25, timeout_s / 5)
    res.retry_servfail = False
    res.cache = None
    return res, None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (dns.exception.Timeout, TimeoutError, asyncio.TimeoutError)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (no DNS server there)"
    if isinstance(exc, OSError):
        return f"network error: {exc.strerror or exc}"
    if isinstance(exc, (dns.message.ShortHeader, dns.exception.FormError, dns.message.TrailingJunk)):
        return f"malformed reply ({type(exc).__name__})"
    if isinstance(exc, dns.exception.DNSException):
        return f"bad reply: {exc}"
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- finding the servers


T = TypeVar("T")

# A lost UDP datagram costs dnspython's resolver a whole per-try timeout plus its backoff;
# on a lossy line the three-step walk then overruns its deadline. The same lookup is
# started again after these delays (all run at once, the first answer wins).
_HEDGE_DELAYS_S = (0.35, 0.9, 1.8)


async def _hedged(make: Callable[[], Awaitable[T]], delays: Sequence[float] = _HEDGE_DELAYS_S) -> T:
    """Run ``make()`` and, while no answer has come, again at each delay; first answer wins.

    A definitive answer (success, NXDOMAIN, ...) ends it; a timeout of one attempt only
    waits for the others. The caller's own deadline bounds the whole thing."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    schedule = list(delays)
    tasks: set[asyncio.Future[T]] = {asyncio.ensure_future(make())}
    last_timeout: BaseException | None = None
    try:
        while tasks or schedule:
            if not tasks:  # every attempt timed out early: start the next one now
                schedule.pop(0)
                tasks.add(asyncio.ensure_future(make()))
                continue
            wait = max(0.0, start + schedule[0] - loop.time()) if schedule else None
            done, _ = await asyncio.wait(tasks, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                schedule.pop(0)
                tasks.add(asyncio.ensure_future(make()))
                continue
            for task in done:
                tasks.discard(task)
                exc = task.exception()
                if exc is None:
                    return task.result()
                if isinstance(exc, dns.exception.Timeout):
                    last_timeout = exc
                    continue
                raise exc
        assert last_timeout is not None
        raise last_timeout
    finally:
        _drop_tasks(tasks)


async def find_authoritative(hostname: str, *, resolvers: Sequence[str], timeout_s: float = 2.0) -> AuthServers:
    """The zone apex of ``hostname`` and its authoritative servers' addresses.

    Walks up the name with SOA queries (the apex is where the SOA lives), asks the
    zone's NS records, and resolves every NS name's A/AAAA, all through ``resolvers``.
    Never raises for DNS or network failures: ``error`` says what went wrong.
    """
    started = time.monotonic()

    def done(zone: str | None, nameservers: tuple[NameServer, ...] = (), error: str | None = None) -> AuthServers:
        return AuthServers(
            hostname=hostname,
            zone=zone,
            nameservers=nameservers,
            error=error,
            ms=round((time.monotonic() - started) * 1000, 1),
        )

    try:
        name = dns.name.from_text(normalize_hostname(hostname))
    except ValueError as exc:
        return done(None, error=str(exc))
    resolver, err = _make_resolver(resolvers, timeout_s)
    if resolver is None:
        return done(None, error=err)
    try:
        async with asyncio.timeout(timeout_s):
            # One round trip in the usual case: every suffix's NS at once.
            found, ns_answer = await _zone_by_ns(name, resolver)
            if found is not None and ns_answer is not None:
                zone_name = found
                zone = zone_name.to_text(omit_final_dot=True) or "."
            else:
                # Otherwise the classic walk, whose failures say precisely what is wrong.
                try:
                    zone_name = await _hedged(
                        lambda: dns.asyncresolver.zone_for_name(name, resolver=resolver, lifetime=timeout_s)
                    )
                except dns.resolver.NoRootSOA:
                    return done(
                        None, error=f"no zone found for {hostname}: no parent domain exists (NXDOMAIN up to the root)"
                    )
                except dns.resolver.NoNameservers as exc:
                    return done(None, error=f"the resolvers failed to look up the zone of {hostname} ({_short(exc)})")
                except (dns.resolver.LifetimeTimeout, dns.exception.Timeout):
                    return done(
                        None,
                        error=f"the resolvers did not answer in {timeout_s:g} s while looking up the zone of {hostname}",
                    )
                zone = zone_name.to_text(omit_final_dot=True) or "."
                try:
                    ns_answer = await _hedged(lambda: resolver.resolve(zone_name, "NS", raise_on_no_answer=False))
                except dns.resolver.NXDOMAIN:
                    return done(zone, error=f"zone {zone} has no NS records (NXDOMAIN)")
                except (dns.resolver.LifetimeTimeout, dns.exception.Timeout):
                    return done(zone, error=f"the resolvers did not answer the NS query for {zone}")
                except dns.resolver.NoNameservers as exc:
                    return done(zone, error=f"the resolvers failed the NS query for {zone} ({_short(exc)})")
            ns_names = sorted({r.target.to_text(omit_final_dot=True) for r in (ns_answer.rrset or ())})
            if not ns_names:
                return done(zone, error=f"zone {zone} has no NS records")
            per_ns = max(0.2, timeout_s - (time.monotonic() - started))
            nameservers = await asyncio.gather(*(_resolve_ns(resolver, n, per_ns) for n in ns_names))
    except TimeoutError:
        return done(None, error=f"finding the authoritative servers of {hostname} took longer than {timeout_s:g} s")
    except dns.exception.DNSException as exc:
        return done(None, error=f"finding the authoritative servers of {hostname} failed: {_describe(exc)}")
    if not any(ns.addresses for ns in nameservers):
        return done(
            zone, tuple(nameservers), error=f"none of the name servers of {zone} ({', '.join(ns_names)}) has an address"
        )
    return done(zone, tuple(nameservers))


# Names deeper than this are walked the classic way (one SOA query per step).
_MAX_PARALLEL_SUFFIXES = 6


async def _zone_by_ns(
    name: dns.name.Name,
    resolver: dns.asyncresolver.Resolver,
) -> tuple[dns.name.Name | None, dns.resolver.Answer | None]:
    """The zone apex of ``name`` and its NS answer, by asking NS of every suffix at once.

    The apex is the longest suffix (the name included) that has NS records of its own;
    an NS answer reached through a CNAME belongs to the alias target, not to the suffix.
    The answer is trusted only when every longer suffix answered "no NS here"; any
    timeout or error returns (None, None) and the caller walks the classic way.
    This turns the SOA walk and the NS query (two round trips, more on a lossy line)
    into one."""
    suffixes: list[dns.name.Name] = []
    current = name
    while current != dns.name.root and len(suffixes) < _MAX_PARALLEL_SUFFIXES + 1:
        suffixes.append(current)
        current = current.parent()
    if not suffixes or len(suffixes) > _MAX_PARALLEL_SUFFIXES:
        return None, None

    async def ns_of(suffix: dns.name.Name) -> dns.resolver.Answer | None:
        try:
            return await _hedged(lambda: resolver.resolve(suffix, "NS", raise_on_no_answer=False))
        except dns.resolver.NXDOMAIN:
            return None  # no such name: certainly no NS here

    # All asked at once, read longest first: the first suffix with NS of its own wins and
    # the shorter ones are not waited for (a slow TLD or parent must not hold us up).
    tasks = [asyncio.ensure_future(ns_of(s)) for s in suffixes]
    try:
        for suffix, task in zip(suffixes, tasks, strict=True):
            try:
                answer = await task
            except dns.exception.DNSException:
                return None, None  # unknown for a longer suffix: cannot pick a shorter one
            if answer is not None and answer.rrset is not None and answer.rrset.name == suffix and len(answer.rrset):
                return suffix, answer
        return None, None
    finally:
        _drop_tasks(tasks)


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 160 else text[:157] + "..."


_OTHER_FAMILY_GRACE_S = 0.25


async def _resolve_ns(resolver: dns.asyncresolver.Resolver, ns_name: str, timeout_s: float) -> NameServer:
    async def one(rdtype: str) -> tuple[list[str], str | None]:
        try:
            ans = await _hedged(lambda: resolver.resolve(ns_name, rdtype, raise_on_no_answer=False, lifetime=timeout_s))
        except dns.resolver.NXDOMAIN:
            return [], f"{ns_name} does not exist (NXDOMAIN)"
        except dns.exception.DNSException as exc:
            return [], f"{rdtype} lookup of {ns_name}: {_describe(exc)}"
        return [a for a in map(address_of, ans.rrset or ()) if a is not None], None

    # One address is enough to ask the server: once either family has answered with
    # addresses, the other gets a short grace, not the whole deadline (on a lossy line a
    # lost AAAA answer would otherwise hold up a server already reachable over IPv4).
    tasks = {rdtype: asyncio.ensure_future(one(rdtype)) for rdtype in ("A", "AAAA")}
    try:
        pending = set(tasks.values())
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if pending and any(t.result()[0] for t in done):
                await asyncio.wait(pending, timeout=_OTHER_FAMILY_GRACE_S)
                break
    finally:
        # only the ones still running: got() reads the finished ones
        _drop_tasks(t for t in tasks.values() if not t.done())

    def got(rdtype: str) -> tuple[list[str], str | None]:
        task = tasks[rdtype]
        if task.done() and not task.cancelled():
            return task.result()
        return [], f"{rdtype} lookup of {ns_name}: not waited for"

    (v4, e4), (v6, e6) = got("A"), got("AAAA")
    addresses = tuple(sorted(v4)) + tuple(sorted(v6))
    error = None if addresses else (e4 or e6 or f"{ns_name} has no A or AAAA record")
    return NameServer(name=ns_name, addresses=addresses, error=error)


# --------------------------------------------------------------------------- asking one server


async def _ask(server: str, port: int, qname: str, rdtype: RecordType, *, recursive: bool, timeout_s: float) -> _Reply:
    """One question to one server within ``timeout_s``: UDP, TCP if the reply is truncated.

    Lost datagrams are retransmitted on a growing schedule (0, t, 3t, 7t with t ≈ 1/8 of
    the deadline) without giving up on the earlier copies: a late first reply still
    counts, as with a stub resolver.  A malformed or refused reply ends it at once.
    """
    query = dns.message.make_query(qname, rdtype)
    if not recursive:
        query.flags &= ~dns.flags.RD  # ask the server's own data, not its cache or its resolver
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    step = min(0.5, max(0.2, timeout_s / 8))

    async def attempt(delay: float) -> dns.message.Message:
        await asyncio.sleep(delay)
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise dns.exception.Timeout
        response, _used_tcp = await dns.asyncquery.udp_with_fallback(query, server, timeout=remaining, port=port)
        return response

    tasks = [asyncio.ensure_future(attempt(d)) for d in (0.0, step, 3 * step, 7 * step) if d < timeout_s]
    try:
        async with asyncio.timeout(timeout_s):
            for next_done in asyncio.as_completed(tasks):
                try:
                    response = await next_done
                except (dns.exception.Timeout, TimeoutError):
                    continue
                except Exception as exc:  # malformed reply, refused, unreachable: data, not an exception
                    return _Reply(rcode=None, error=_describe(exc))
                return _parse_reply(response, qname, rdtype, recursive=recursive)
    except TimeoutError:
        pass
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return _Reply(rcode=None, error=f"no reply within {timeout_s:g} s")


def _parse_reply(response: dns.message.Message, qname: str, rdtype: RecordType, *, recursive: bool) -> _Reply:
    """What a reply says about ``qname``/``rdtype``, from its Internet-class records only.

    A server may put anything in the answer section: records of another class (CH, HS
    or a number: dnspython hands those over as ``GenericRdata`` without an ``address``,
    or as a Chaosnet "address" that is an integer), or address records of a name that
    was not asked.  Those are left out and listed in ``ignored`` so the output can say
    so, instead of crashing or reading an integer as an IPv4 address.
    """
    rcode = dns.rcode.to_text(response.rcode())
    aa = bool(response.flags & dns.flags.AA)
    want = dns.rdatatype.from_text(rdtype)
    name = dns.name.from_text(qname)
    ttls: list[int] = []
    addresses: list[str] = []
    used: list[dns.rrset.RRset] = []
    chain = [name]

    def pick(owner: dns.name.Name, kind: int) -> dns.rrset.RRset | None:
        return next(
            (
                r
                for r in response.answer
                if r.name == owner and r.rdtype == kind and r.rdclass == dns.rdataclass.IN and len(r)
            ),
            None,
        )

    for _ in range(_MAX_CNAME_CHAIN):
        rrset = pick(name, want)
        if rrset is not None:
            used.append(rrset)
            addresses = sorted({_canonical(a) for a in map(address_of, rrset) if a is not None})
            ttls.append(rrset.ttl)
            break
        cname = pick(name, dns.rdatatype.CNAME)
        if cname is None:
            break
        used.append(cname)
        ttls.append(cname.ttl)
        name = cname[0].target
        chain.append(name)
    error: str | None = None
    if rcode not in ("NOERROR", "NXDOMAIN"):
        error = f"server answered {rcode}"
    elif not recursive and not aa:
        # A referral or a cached answer: this server is not authoritative for the zone (lame delegation).
        error = "not authoritative for this name (lame delegation)"
    ttl: int | None = min(ttls) if addresses else _negative_ttl(response)
    alias = None
    if not addresses and name != dns.name.from_text(qname):
        alias = name.to_text(omit_final_dot=True)
    return _Reply(
        rcode=rcode,
        addresses=tuple(addresses),
        ttl=ttl,
        error=error,
        authoritative=aa,
        cname=alias,
        ignored=_ignored(response, used, chain, want),
    )


_MAX_IGNORED_SHOWN = 3


def _ignored(
    response: dns.message.Message, used: Sequence[dns.rrset.RRset], chain: Sequence[dns.name.Name], want: int
) -> tuple[str, ...]:
    """Sentences for the answer records of the asked type (or CNAME) that were left out, and why."""
    notes: list[str] = []
    for rrset in response.answer:
        if any(rrset is u for u in used) or rrset.rdtype not in (want, dns.rdatatype.CNAME):
            continue
        what = (
            f"{len(rrset)} {dns.rdataclass.to_text(rrset.rdclass)} {dns.rdatatype.to_text(rrset.rdtype)} "
            f"record{'s' if len(rrset) != 1 else ''} for {rrset.name.to_text(omit_final_dot=True)[:80]}"
        )
        if rrset.rdclass != dns.rdataclass.IN:
            notes.append(f"ignored {what}: class {dns.rdataclass.to_text(rrset.rdclass)}, not IN (Internet)")
        elif rrset.name not in chain:
            notes.append(f"ignored {what}: not the name that was asked")
        elif not len(rrset):
            notes.append(f"ignored {what}: empty")
    if len(notes) > _MAX_IGNORED_SHOWN:
        notes = notes[:_MAX_IGNORED_SHOWN] + [f"and {len(notes) - _MAX_IGNORED_SHOWN} more record sets ignored"]
    return tuple(notes)


def _negative_ttl(response: dns.message.Message) -> int | None:
    """How long a "no such name / no such record" answer may be cached (RFC 2308)."""
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.rdclass == dns.rdataclass.IN and len(rrset):
            return min(rrset.ttl, int(rrset[0].minimum))
    return None


def _merge(server: str, replies: Sequence[_Reply]) -> DnsAnswer:
    """One server's A and AAAA replies as one DnsAnswer (``ok`` is set later by the verdict)."""
    answered = [r for r in replies if r.rcode is not None]
    errors = [r.error for r in replies if r.error]
    ignored = tuple(dict.fromkeys(note for r in replies for note in r.ignored))
    if len(answered) < len(replies):
        # One family's question got no usable reply: the server's answer is incomplete, and an
        # empty half must not read as "no such record". Shown, but counted as not answered.
        partial = tuple(a for r in answered for a in r.addresses)
        return DnsAnswer(
            server=server,
            answers=partial,
            ttl=None,
            ok=False,
            error="; ".join(dict.fromkeys(errors)) or "no reply",
            ignored=ignored,
        )
    rcode = "NXDOMAIN" if any(r.rcode == "NXDOMAIN" for r in answered) else answered[0].rcode
    if rcode == "NOERROR":
        bad = next((r.rcode for r in answered if r.rcode != "NOERROR"), None)
        rcode = bad or rcode
    answers = tuple(a for r in answered for a in r.addresses)
    with_addr = [r.ttl for r in answered if r.addresses and r.ttl is not None]
    if with_addr:
        ttl: int | None = min(with_addr)
    else:
        neg = [r.ttl for r in answered if r.ttl is not None]
        ttl = min(neg) if neg else None
    error = None
    if errors:
        error = "; ".join(dict.fromkeys(errors))
    alias = None if answers else next((r.cname for r in answered if r.cname), None)
    return DnsAnswer(
        server=server, answers=answers, ttl=ttl, ok=False, error=error, rcode=rcode, cname=alias, ignored=ignored
    )


def _auth_label(address: str, ns_name: str) -> str:
    return f"{ns_name} ({address})"


# --------------------------------------------------------------------------- public queries


async def query_authoritative(
    hostname: str,
    rdtype: RecordType,
    *,
    resolvers: Sequence[str],
    timeout_s: float = 2.0,
    auth: AuthServers | None = None,
    port: int = 53,
) -> tuple[DnsAnswer, ...]:
    """Ask every authoritative server of ``hostname`` directly (RD=0, no cache).

    One ``DnsAnswer`` per server address, concurrently, each within ``timeout_s``;
    ``ok`` means the server gave an authoritative answer with records.  Pass ``auth``
    from an earlier ``find_authoritative`` to skip the lookup; ``port`` is for tests
    (a loopback stand-in server).  If the servers cannot be found the result is one
    entry whose ``error`` says why.
    """
    if auth is None:
        auth = await find_authoritative(hostname, resolvers=resolvers, timeout_s=timeout_s)
    if not auth.targets:
        return (
            DnsAnswer(
                server="(authoritative servers)",
                answers=(),
                ttl=None,
                ok=False,
                error=auth.error or "no authoritative server found",
            ),
        )
    qname = normalize_hostname(hostname)

    async def one(address: str, ns_name: str) -> DnsAnswer:
        reply = await _ask(address, port, qname, rdtype, recursive=False, timeout_s=timeout_s)
        answer = _merge(_auth_label(address, ns_name), [reply])
        return replace(answer, ok=bool(answer.answers) and answer.error is None)

    return tuple(await asyncio.gather(*(one(a, n) for a, n in auth.targets)))


async def _ask_both(server: str, port: int, qname: str, *, recursive: bool, timeout_s: float, label: str) -> DnsAnswer:
    replies = await asyncio.gather(
        _ask(server, port, qname, "A", recursive=recursive, timeout_s=timeout_s),
        _ask(server, port, qname, "AAAA", recursive=recursive, timeout_s=timeout_s),
    )
    return _merge(label, replies)


async def authoritative_answers(
    hostname: str, auth: AuthServers, *, timeout_s: float = 2.0, port: int = 53
) -> tuple[DnsAnswer, ...]:
    """A and AAAA from every authoritative server, one merged ``DnsAnswer`` per server."""
    qname = normalize_hostname(hostname)
    return tuple(
        await asyncio.gather(
            *(
                _ask_both(a, port, qname, recursive=False, timeout_s=timeout_s, label=_auth_label(a, n))
                for a, n in auth.targets
            )
        )
    )


async def resolver_answers(hostname: str, *, resolvers: Sequence[str], timeout_s: float = 2.0) -> tuple[DnsAnswer, ...]:
    """A and AAAA from every configured resolver (ordinary recursive queries).

    The TTL is what the resolver has left in its cache: how long it will keep
    serving this answer.
    """
    qname = normalize_hostname(hostname)

    async def one(spec: str) -> DnsAnswer:
        try:
            addr, port = parse_server(spec)
        except ValueError as exc:
            return DnsAnswer(server=spec, answers=(), ttl=None, ok=False, error=str(exc))
        return await _ask_both(addr, port, qname, recursive=True, timeout_s=timeout_s, label=spec)

    return tuple(await asyncio.gather(*(one(s) for s in resolvers)))


class ZoneCache:
    """The authoritative servers found during one round, shared by names of one zone.

    The first name of a parent domain (``a.example.org`` for ``example.org``) looks the
    zone up; the other names under the same parent wait for it and reuse its servers
    instead of walking the same suffixes again (200 names of one zone: 5 resolver queries
    instead of ~1,400). A name whose own zone is delegated further down would get a
    referral (no AA flag) from those servers: ``current_addresses`` then looks that name
    up on its own. Nothing is kept beyond the round (the caller makes a new cache): a
    moved zone is seen at the next round. ``limit`` bounds the names asked at once.
    """

    def __init__(self, limit: int = 32) -> None:
        self._by_parent: dict[str, asyncio.Future[AuthServers | None]] = {}
        self.gate = asyncio.Semaphore(limit)
        self.walks = 0  # full lookups made (the rest were shared)

    async def find(self, hostname: str, *, resolvers: Sequence[str], timeout_s: float) -> tuple[AuthServers, bool]:
        """(servers, shared): ``shared`` when they came from another name's lookup."""
        name = normalize_hostname(hostname)
        parent = name.split(".", 1)[1] if "." in name.rstrip(".") else "."
        key = f"{parent}|{','.join(resolvers)}"
        waiting = self._by_parent.get(key)
        if waiting is not None:
            auth = await asyncio.shield(waiting)
            if auth is not None and auth.targets and auth.zone is not None and _below(name, auth.zone):
                return auth, True
            self.walks += 1
            return await find_authoritative(hostname, resolvers=resolvers, timeout_s=timeout_s), False
        future: asyncio.Future[AuthServers | None] = asyncio.get_running_loop().create_future()
        self._by_parent[key] = future
        result: AuthServers | None = None
        try:
            self.walks += 1
            result = await find_authoritative(hostname, resolvers=resolvers, timeout_s=timeout_s)
            return result, False
        finally:
            future.set_result(result)  # None (cancelled leader): the others look up on their own


def _below(name: str, zone: str) -> bool:
    """``name`` is strictly inside ``zone`` (both without regard to case and final dot)."""
    n, z = name.rstrip(".").lower(), zone.rstrip(".").lower()
    return z in ("", ".") or n.endswith("." + z)


async def current_addresses(
    hostname: str,
    *,
    resolvers: Sequence[str],
    timeout_s: float = 2.0,
    port: int = 53,
    zones: ZoneCache | None = None,
) -> tuple[str | None, str | None, str | None]:
    """(ipv4, ipv6, error): what the authoritative servers serve for ``hostname`` now.

    Several records of one family come back comma-joined and sorted (``"a,b"``).
    ``(None, None, None)`` means they answered that there is no such address (NXDOMAIN
    or no A/AAAA record); ``error`` is set only when no authoritative server answered
    (then the caller cannot know what is published).  When servers disagree, the
    first one (in NS-name order) that answered wins.  ``timeout_s`` bounds the whole
    call: the zone lookup gets 60 % of it, the direct queries the rest.
    """
    try:
        normalize_hostname(hostname)
    except ValueError as exc:
        return None, None, str(exc)
    if zones is None:
        return await _current_addresses(hostname, resolvers=resolvers, timeout_s=timeout_s, port=port, zones=None)
    async with zones.gate:
        return await _current_addresses(hostname, resolvers=resolvers, timeout_s=timeout_s, port=port, zones=zones)


async def _current_addresses(
    hostname: str,
    *,
    resolvers: Sequence[str],
    timeout_s: float,
    port: int,
    zones: ZoneCache | None,
) -> tuple[str | None, str | None, str | None]:
    started = time.monotonic()
    if zones is not None:
        auth, shared = await zones.find(hostname, resolvers=resolvers, timeout_s=timeout_s * 0.6)
    else:
        auth, shared = await find_authoritative(hostname, resolvers=resolvers, timeout_s=timeout_s * 0.6), False
    if not auth.targets:
        return None, None, auth.error or "no authoritative server found"
    left = max(0.2, timeout_s - (time.monotonic() - started))
    answers = await authoritative_answers(hostname, auth, timeout_s=left, port=port)
    usable = [a for a in answers if a.rcode in ("NOERROR", "NXDOMAIN") and not _lame(a)]
    if not usable and shared:
        # The servers of a sibling's zone did not answer for this name with authority (a
        # delegation further down, or they failed): look this name up on its own.
        return await _current_addresses(hostname, resolvers=resolvers, timeout_s=timeout_s, port=port, zones=None)
    if not usable:
        errors = "; ".join(f"{a.server}: {a.error}" for a in answers if a.error)
        return None, None, f"no authoritative server of {auth.zone} answered ({errors or 'no reply'})"
    first = usable[0]
    # Every address of the set, not just the first: a stale record beside the current one
    # (a round robin the user did not mean) must read as a difference, not as "unchanged".
    v4 = ",".join(sorted({_canonical(a) for a in first.answers if _family(a) == 4})) or None
    v6 = ",".join(sorted({_canonical(a) for a in first.answers if _family(a) == 6})) or None
    return v4, v6, None


def _lame(answer: DnsAnswer) -> bool:
    return bool(answer.error and "lame delegation" in answer.error)


# --------------------------------------------------------------------------- verdict

ServerState = Literal["silent", "failed", "nxdomain", "nodata", "match", "differs"]
Expected = tuple[frozenset[str] | None, frozenset[str] | None]


def _expected_sets(expected_ipv4: str | None, expected_ipv6: str | None) -> Expected:
    return (
        frozenset({_canonical(expected_ipv4)}) if expected_ipv4 else None,
        frozenset({_canonical(expected_ipv6)}) if expected_ipv6 else None,
    )


def server_state(answer: DnsAnswer, expected: Expected) -> ServerState:
    """What one server's answer means against the expected addresses.

    A family with an expected address is checked only if the server publishes that
    family at all: a missing AAAA is a choice (IPv4-only name), a different one is wrong.
    """
    if answer.rcode is None:
        return "silent"
    if answer.rcode == "NXDOMAIN":
        return "nxdomain"
    if answer.rcode != "NOERROR" or _lame(answer):
        return "failed"
    v4 = frozenset(_canonical(a) for a in answer.answers if _family(a) == 4)
    v6 = frozenset(_canonical(a) for a in answer.answers if _family(a) == 6)
    checked = [(got, want) for got, want in ((v4, expected[0]), (v6, expected[1])) if want is not None]
    if not checked:
        return "match" if answer.answers else "nodata"
    published = [(got, want) for got, want in checked if got]
    if not published:
        return "nodata"
    return "match" if all(got == want for got, want in published) else "differs"


def _fmt(addresses: Sequence[str] | frozenset[str]) -> str:
    return ", ".join(sorted(addresses)) if addresses else "nothing"


def judge(
    expected_ipv4: str | None,
    expected_ipv6: str | None,
    authoritative: Sequence[DnsAnswer],
    resolvers: Sequence[DnsAnswer],
) -> tuple[VerifyVerdictName, str, int | None, tuple[DnsAnswer, ...], tuple[DnsAnswer, ...]]:
    """The verdict from the answers: (verdict, explanation, caches_settle_s, auth, resolvers).

    The returned answers have ``ok`` set.  With no expected address at all, the
    authoritative servers' own answer is what the resolvers are held to.
    """
    expected = _expected_sets(expected_ipv4, expected_ipv6)
    auth_states = [server_state(a, expected) for a in authoritative]
    if expected == (None, None):
        # No expectation: hold resolvers to what the first answering authoritative server publishes.
        source = next((a for a, s in zip(authoritative, auth_states, strict=True) if s == "match"), None)
        if source is not None:
            v4 = frozenset(_canonical(x) for x in source.answers if _family(x) == 4)
            v6 = frozenset(_canonical(x) for x in source.answers if _family(x) == 6)
            expected = (v4 or None, v6 or None)
            auth_states = [server_state(a, expected) for a in authoritative]
    res_states = [server_state(a, expected) for a in resolvers]
    auth_out = tuple(replace(a, ok=s == "match") for a, s in zip(authoritative, auth_states, strict=True))
    res_out = tuple(replace(a, ok=s == "match") for a, s in zip(resolvers, res_states, strict=True))
    want_text = _fmt([x for s in expected if s for x in s]) if expected != (None, None) else "an address"

    def silent_note(answers: Sequence[DnsAnswer], states: Sequence[ServerState], what: str) -> str:
        quiet = [a.server for a, s in zip(answers, states, strict=True) if s in ("silent", "failed")]
        if not quiet:
            return ""
        return f" {what} {', '.join(quiet)} did not answer usefully, so {'it is' if len(quiet) == 1 else 'they are'} not counted."

    auth_answered = [(a, s) for a, s in zip(auth_out, auth_states, strict=True) if s not in ("silent", "failed")]
    res_answered = [(a, s) for a, s in zip(res_out, res_states, strict=True) if s not in ("silent", "failed")]
    notes = silent_note(auth_out, auth_states, "Authoritative server") + silent_note(res_out, res_states, "Resolver")

    if not auth_answered:
        if not res_answered:
            return (
                "unknown",
                "No DNS server answered: neither the authoritative servers nor the resolvers "
                "could be asked. Check the network connection and the configured resolvers." + notes,
                None,
                auth_out,
                res_out,
            )
        kinds = {s for _, s in res_answered}
        lead = "The authoritative servers could not be asked;"
        if kinds == {"match"}:
            return ("ok", f"{lead} every resolver that answered serves {want_text}." + notes, None, auth_out, res_out)
        if kinds == {"nxdomain"}:
            return ("nxdomain", f"{lead} the resolvers say the name does not exist." + notes, None, auth_out, res_out)
        if kinds == {"nodata"}:
            return (
                "no-answer",
                f"{lead} the resolvers say the name has no address record." + notes,
                None,
                auth_out,
                res_out,
            )
        return (
            "unknown",
            f"{lead} the resolvers serve something other than {want_text}, and without the "
            "authoritative answer a stale cache cannot be told from a wrong record." + notes,
            None,
            auth_out,
            res_out,
        )

    auth_kinds = [s for _, s in auth_answered]
    if all(s == "match" for s in auth_kinds):
        stale = [(a, s) for a, s in res_answered if s != "match"]
        if not stale:
            if res_answered:
                text = f"Every authoritative server and every resolver serves {want_text}."
            else:
                text = f"Every authoritative server serves {want_text}; no resolver answered to compare."
            return "ok", text + notes, None, auth_out, res_out
        settle = _settle_estimate([a for a, _ in stale], auth_out)
        old = "; ".join(
            f"{a.server} still serves {_stale_words(a, s)}"
            + (f" for up to {a.ttl} s more" if a.ttl is not None else "")
            for a, s in stale
        )
        text = (
            f"The authoritative servers serve {want_text}, but cached answers are still out there: {old}. "
            + (
                f"Every cache should serve the new answer within about {_duration(settle)}."
                if settle is not None
                else "Caches will catch up when their copies expire."
            )
            + " Nothing to fix: wait, or flush the local DNS cache."
            + notes
        )
        return "propagating", text, settle, auth_out, res_out
    if any(s == "match" for s in auth_kinds):
        behind = ", ".join(a.server for a, s in auth_answered if s != "match")
        text = (
            f"Some authoritative servers already serve {want_text}, others ({behind}) still serve old data: "
            "the secondary servers have not yet transferred the updated zone. This usually settles within "
            "minutes; if it does not, the provider's secondaries are stuck." + notes
        )
        return "propagating", text, None, auth_out, res_out
    if all(s == "nxdomain" for s in auth_kinds):
        return (
            "nxdomain",
            "The name does not exist at its authoritative servers (NXDOMAIN). Check the spelling of "
            "the hostname, or create it in the provider's control panel; a first update creates it with some "
            "providers." + notes,
            None,
            auth_out,
            res_out,
        )
    if all(s in ("nodata", "nxdomain") for s in auth_kinds):
        return (
            "no-answer",
            "The name exists at its authoritative servers but has no address record "
            "(A/AAAA) yet: an update publishes the current address." + notes,
            None,
            auth_out,
            res_out,
        )
    served = frozenset(x for a, s in auth_answered if s == "differs" for x in a.answers)
    return (
        "wrong-ip",
        f"The authoritative servers serve {_fmt(served)}, not {want_text}. The last update did "
        "not reach the provider, was refused, or another client (the router's built-in DDNS client?) "
        "overwrote it. Waiting does not change that: send an update and check its result." + notes,
        None,
        auth_out,
        res_out,
    )


def _stale_words(answer: DnsAnswer, state: ServerState) -> str:
    if state == "nxdomain":
        return "a cached 'no such name'"
    if state == "nodata":
        return "a cached 'no address record'"
    return _fmt(answer.answers)


def _settle_estimate(stale: Sequence[DnsAnswer], authoritative: Sequence[DnsAnswer]) -> int | None:
    """Seconds until the last stale cache expires: the largest remaining TTL among them.

    A stale answer without a TTL is bounded by the authoritative TTL (a cache cannot
    keep a record longer than the TTL it was given, unless the old TTL was longer).
    """
    ttls = [a.ttl for a in stale if a.ttl is not None]
    if len(ttls) < len(stale):
        auth_ttls = [a.ttl for a in authoritative if a.ttl is not None]
        if not auth_ttls:
            return max(ttls) if ttls else None
        ttls.append(max(auth_ttls))
    return max(ttls) if ttls else None


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{math.ceil(minutes / 60)} h"


# --------------------------------------------------------------------------- the whole check


def _ping_target(authoritative: Sequence[DnsAnswer], resolvers: Sequence[DnsAnswer]) -> str | None:
    """The address a visitor reaches: what the authoritative servers publish (IPv4 first).

    Falls back to the resolvers' answer when no authoritative server answered.
    """
    for group in (authoritative, resolvers):
        for fam in (4, 6):
            for a in group:
                if a.rcode == "NOERROR":
                    hit = next((x for x in a.answers if _family(x) == fam), None)
                    if hit:
                        return hit
    return None  # the name leads nowhere: pinging the expected address instead would mislead


def _alias_target(answers: Sequence[DnsAnswer]) -> str | None:
    """The CNAME target to follow when no answering server gave addresses, only an alias."""
    if any(a.answers and a.rcode == "NOERROR" for a in answers):
        return None
    return next((a.cname for a in answers if a.cname and a.rcode == "NOERROR"), None)


async def _ping(target: str | None, pinger: Pinger | None, timeout_s: float) -> PingResult:
    if target is None:
        return PingResult(
            method="none", alive=False, rtt_ms=None, target=None, detail="nothing to ping: the name has no address"
        )
    if pinger is not None:
        return await pinger(target)
    from checks.probes.ping import ping_host

    return await ping_host(target, timeout_s=min(2.0, timeout_s))


async def verify_hostname(
    hostname: str,
    *,
    expected_ipv4: str | None,
    expected_ipv6: str | None,
    resolvers: Sequence[str],
    ping: bool = True,
    timeout_s: float = 3.0,
    port: int = 53,
    pinger: Pinger | None = None,
) -> VerifyResult:
    """Authoritative and resolver answers for ``hostname``, the verdict, and a ping.

    The zone lookup and the resolver queries run concurrently, then every
    authoritative server is asked (each within ``timeout_s``); the ping goes to the
    address the authoritative servers publish.  ``port`` is the authoritative
    servers' port (53; tests use a loopback stand-in); ``pinger`` replaces
    ``checks.probes.ping.ping_host``.
    """
    try:
        name = normalize_hostname(hostname)
    except ValueError as exc:
        return VerifyResult(
            hostname=hostname,
            expected_ipv4=expected_ipv4,
            expected_ipv6=expected_ipv6,
            authoritative=(),
            resolvers=(),
            verdict="unknown",
            explanation=str(exc),
        )
    auth, res = await asyncio.gather(
        find_authoritative(name, resolvers=resolvers, timeout_s=timeout_s),
        resolver_answers(name, resolvers=resolvers, timeout_s=timeout_s),
    )
    auth_answers = await authoritative_answers(name, auth, timeout_s=timeout_s, port=port) if auth.targets else ()
    # An alias (e.g. home.my-domain.org CNAME myhome.duckdns.org): its addresses live in the
    # target's zone, so ask the target's authoritative servers; the resolvers follow it themselves.
    aliases: list[str] = []
    alias = _alias_target(auth_answers)
    while alias is not None and len(aliases) < _MAX_CNAME_CHAIN and alias not in aliases and alias != name:
        aliases.append(alias)
        auth = await find_authoritative(alias, resolvers=resolvers, timeout_s=timeout_s)
        auth_answers = await authoritative_answers(alias, auth, timeout_s=timeout_s, port=port) if auth.targets else ()
        alias = _alias_target(auth_answers)
    verdict, explanation, settle, auth_answers, res = judge(expected_ipv4, expected_ipv6, auth_answers, res)
    if auth.error and not auth.targets:
        explanation = f"{explanation} (Authoritative servers: {auth.error}.)"
    if aliases:
        chain = " → ".join([name, *aliases])
        explanation = (
            f"{name} is an alias (CNAME): {chain}; the authoritative servers of {aliases[-1]} were asked. {explanation}"
        )
    ping_result = await _ping(_ping_target(auth_answers, res), pinger, timeout_s) if ping else None
    return VerifyResult(
        hostname=name,
        expected_ipv4=expected_ipv4,
        expected_ipv6=expected_ipv6,
        authoritative=auth_answers,
        resolvers=res,
        verdict=verdict,
        ping=ping_result,
        explanation=explanation,
        caches_settle_s=settle,
    )


def judge_with_provider(result: VerifyResult, view: ProviderView, title: str) -> VerifyResult:
    """The verdict for a name whose records the provider proxies (Cloudflare's orange cloud).

    Public DNS answers the provider's edge addresses for such a name, by design, so DNS can
    never show the origin address: the provider's own record (``view``, read from its API)
    is compared with the expected address instead, and the explanation says why the DNS
    answers differ.  ``result`` is returned unchanged when nothing is proxied or the
    record could not be read.
    """
    if view.error or not view.proxied:
        return result
    expected = _expected_sets(result.expected_ipv4, result.expected_ipv6)
    held = (frozenset(view.ipv4), frozenset(view.ipv6))
    checked = [
        (want, got, t)
        for want, got, t in ((expected[0], held[0], "A"), (expected[1], held[1], "AAAA"))
        if want is not None and (got or t in view.proxied)
    ]
    edge = sorted({x for a in result.authoritative + result.resolvers for x in a.answers})
    shown = ", ".join(list(view.ipv4) + list(view.ipv6)) or "no address"
    why = (
        f"The {'/'.join(view.proxied)} record is proxied by {title}: public DNS answers {title}'s edge "
        f"addresses ({', '.join(edge) or 'none seen'}), never yours, by design. {title}'s API holds {shown}"
    )
    if not checked:
        verdict: VerifyVerdictName = "unknown"
        text = f"{why}; no address was expected, so there is nothing to compare."
    elif all(got == want for want, got, _ in checked):
        verdict = "ok"
        text = f"{why}, as expected: visitors reach you through {title}'s proxy (HTTP and HTTPS ports only)."
    else:
        verdict = "wrong-ip"
        want_text = _fmt([x for want, _, _ in checked for x in want])
        text = f"{why}, not {want_text}: an update corrects the record."
    return replace(result, verdict=verdict, explanation=text, caches_settle_s=None, provider_record=view)


# Verdicts about what the authoritative servers hold: only an update (or the provider's
# control panel) changes them, not time.
WAITING_CANNOT_FIX = frozenset({"wrong-ip", "no-answer", "nxdomain"})
# A provider may publish an accepted update a few seconds later: a wrong answer this soon after
# the start of a wait is given that long before the wait gives up on it.
WRONG_GRACE_S = 10.0
# VerifyResult.next_step codes, worded by the views.
NEXT_STEPS = ("update", "wait", "check-name", "retry")


async def wait_until_consistent(
    hostname: str,
    *,
    expected_ipv4: str | None,
    expected_ipv6: str | None,
    resolvers: Sequence[str],
    wait_s: float,
    on_progress: Callable[[VerifyResult, float], None] | None = None,
    ping: bool = True,
    timeout_s: float = 3.0,
    port: int = 53,
    pinger: Pinger | None = None,
    backoff_cap_s: float = 16.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    wrong_grace_s: float = WRONG_GRACE_S,
) -> VerifyResult:
    """Verify repeatedly (1, 2, 4 … s apart, capped) until the verdict is ``ok`` or ``wait_s`` is spent.

    A verdict waiting cannot fix (``WAITING_CANNOT_FIX``: the authoritative servers serve
    another address, none, or no such name) ends the wait once it has held for
    ``wrong_grace_s``: ``result.next_step`` then says what helps instead.

    ``on_progress(result, seconds_left)`` is called after every round that is not the
    last.  When a propagation estimate is known and shorter than the next back-off
    step, the next round is timed just after it.  Ping runs once, on the final round.
    """
    start = clock()
    deadline = start + max(0.0, wait_s)
    delay = 1.0
    while True:
        result = await verify_hostname(
            hostname,
            expected_ipv4=expected_ipv4,
            expected_ipv6=expected_ipv6,
            resolvers=resolvers,
            ping=False,
            timeout_s=timeout_s,
            port=port,
        )
        left = deadline - clock()
        if result.verdict == "ok" or left <= 0:
            break
        if result.verdict in WAITING_CANNOT_FIX and clock() - start >= wrong_grace_s:
            # The authoritative servers themselves hold another answer: caches are not the
            # problem, so waiting longer cannot help (issue 19). The grace covers a provider
            # that publishes an update a few seconds after accepting it.
            break
        if on_progress is not None:
            on_progress(result, left)
        pause = delay
        if result.caches_settle_s is not None:
            pause = min(pause, result.caches_settle_s + 0.5)
        await sleep(max(0.2, min(pause, left)))
        delay = min(delay * 2, backoff_cap_s)
    if ping:
        target = _ping_target(result.authoritative, result.resolvers)
        result = replace(result, ping=await _ping(target, pinger, timeout_s))
    return result


async def verify_configured(
    hostname: str,
    host: HostConfig | None,
    *,
    expected_ipv4: str | None,
    expected_ipv6: str | None,
    resolvers: Sequence[str],
    wait_s: float = 0.0,
    on_progress: Callable[[VerifyResult, float], None] | None = None,
    ping: bool = True,
    timeout_s: float = 3.0,
    client: object | None = None,
) -> VerifyResult:
    """``verify_hostname`` (or ``wait_until_consistent`` when ``wait_s`` > 0) for a configured host.

    When the host's provider can be asked what it holds (Cloudflare) and the record is
    proxied, DNS can never show the address, so one DNS round is taken for the record and
    the verdict comes from the provider's record (``judge_with_provider``) -- no waiting
    for caches that will never agree.
    """
    view: ProviderView | None = None
    spec = None
    if host is not None:
        from checks.ddns.providers.registry import get_provider

        try:
            spec = get_provider(host.provider)
        except Exception:  # an unknown provider is reported elsewhere; verify DNS as usual
            spec = None
    if host is not None and spec is not None and spec.published_fn is not None:
        if client is None:
            from checks.ddns.updater import make_provider_client

            own_client = make_provider_client()
            try:
                view = await spec.published(host, own_client)
            finally:
                await own_client.aclose()
        else:
            view = await spec.published(host, client)
    if spec is not None and view is not None and view.proxied and not view.error:
        result = await verify_hostname(
            hostname,
            expected_ipv4=expected_ipv4,
            expected_ipv6=expected_ipv6,
            resolvers=resolvers,
            ping=ping,
            timeout_s=timeout_s,
        )
        return judge_with_provider(result, view, spec.title)
    if wait_s > 0:
        return await wait_until_consistent(
            hostname,
            expected_ipv4=expected_ipv4,
            expected_ipv6=expected_ipv6,
            resolvers=resolvers,
            wait_s=wait_s,
            on_progress=on_progress,
            ping=ping,
            timeout_s=timeout_s,
        )
    return await verify_hostname(
        hostname,
        expected_ipv4=expected_ipv4,
        expected_ipv6=expected_ipv6,
        resolvers=resolvers,
        ping=ping,
        timeout_s=timeout_s,
    )
