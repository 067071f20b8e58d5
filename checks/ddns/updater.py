"""One round of updates: find the public address, compare with DNS, send only what differs.

1. The public address comes from a quorum of the configured echo services
   (``[endpoints] ip_echo``, ``dns_echo`` and ``stun`` asked over IPv4,
   ``ip_echo_v6`` and ``dns_echo_v6`` over IPv6), never from one: a flip-flopping,
   spoofed or wrong echo must not move a record.  Both families need the same strength: at least two
   agreeing *independent* sources (``agree``), else "uncertain, nothing published".
2. For every host, the authoritative servers are asked what they serve now
   (``checks.dns.verify.current_addresses``); an update is sent only when it
   differs (no ``nochg`` spam, which providers punish) unless ``force``.
3. A private, CGNAT or otherwise non-public address is never published unless
   ``allow_private``: nobody outside could reach it.

``run_update`` returns one UpdateResult per configured host (DESIGN.md
``update --json``); ``run_update_detailed`` also returns the public-address
evidence for the command line.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from checks.addresses import AddressClass, classify, describe_class
from checks.config import Config, HostConfig
from checks.ddns.history import last_of
from checks.ddns.ipv6device import choose as choose_device
from checks.ddns.providers.base import ProviderSpec, join_sent, keep_addresses, wants_ipv4, wants_ipv6
from checks.errors import ConfigError
from checks.model import AddressFamily, ExternalSource, LocalInfo, SourceMethod, UpdateResult, UpdateResultName

if TYPE_CHECKING:
    import ipaddress

Progress = Callable[[str], None]
# (hostname, resolvers) -> (ipv4, ipv6, error): what the authoritative servers serve
Lookup = Callable[[str, Sequence[str]], Awaitable["tuple[str | None, str | None, str | None]"]]

ECHO_TIMEOUT_S = 3.0
DNS_TIMEOUT_S = 3.0
# When the first lookup fails (a lossy or slow line), one longer try before sending blind:
# sending without the comparison is what earns `nochg` replies, and providers ban for those.
DNS_RETRY_TIMEOUT_S = 5.0  # worst case 3 + 5 s, alongside the echoes, before the provider request


@dataclass(frozen=True)
class PublicAddress:
    """The agreed public address per family, and how sure we are."""

    ipv4: str | None
    ipv6: str | None
    sources: tuple[ExternalSource, ...] = ()
    problem_v4: str | None = None  # why no IPv4 could be agreed on
    problem_v6: str | None = None
    summary: str = ""  # "3 of 3 sources agree on 203.0.113.7"


@dataclass(frozen=True)
class UpdateRun:
    public: PublicAddress
    results: tuple[UpdateResult, ...]


def no_hosts_message(config: Config) -> str:
    where = str(config.path) if config.path else "the configuration file"
    return (
        f"no hostnames configured in {where}. Run `ddns-wizard` (the wizard) to set one up, or add a "
        "[[hosts]] table with hostname, provider and credentials (see `ddns-wizard providers`)."
    )


def check_config(config: Config) -> None:
    """Raise ConfigError (exit 2) for no hosts or any invalid host, naming every problem."""
    from checks.ddns.providers.registry import validate_host

    if not config.hosts:
        raise ConfigError(no_hosts_message(config), path=str(config.path) if config.path else None)
    problems: list[str] = []
    seen: set[str] = set()
    from checks.ddns.ipv6device import check_host as check_device

    for host in config.hosts:
        problems.extend(validate_host(host))
        problems.extend(check_device(host))
        if host.hostname in seen:
            problems.append(f"{host.hostname} is configured twice")
        seen.add(host.hostname)
    if problems:
        from checks.redact import Redactor

        text = Redactor.from_config(config).text("; ".join(problems))
        where = f" in {config.path}" if config.path else ""
        raise ConfigError(f"configuration problems{where}: {text}", path=str(config.path) if config.path else None)


# --------------------------------------------------------------------------- public address


def voice_of(method: str, endpoint: str) -> str:
    """The independent "voice" a source speaks with in the quorum.

    Each HTTPS echo service is a voice of its own (its operator, authenticated by TLS;
    two URLs on one host are one voice).  Every DNS-based answer together is *one*
    voice, and so is every STUN answer: they travel as plain UDP, so one box on the
    path (an ISP's DNS interception, a spoofer) can forge all of them at once — three
    DNS echo methods agreeing are one fact, not three."""
    if method == "http":
        import urllib.parse

        host = urllib.parse.urlsplit(endpoint).hostname or endpoint
        return f"http:{host.lower()}"
    return method


def _configured_voices(configured: Any) -> dict[str, int]:
    """voice -> number of configured sources (an int n means n single-source voices)."""
    if isinstance(configured, int):
        return {f"#{i}": 1 for i in range(configured)}
    return dict(configured)


def configured_voices(asks: Sequence[tuple[str, str, int]], family: int) -> dict[str, int]:
    """voice -> configured sources, from the questions ``(method, endpoint, family)``."""
    out: dict[str, int] = {}
    for method, endpoint, fam in asks:
        if fam == family:
            voice = voice_of(method, endpoint)
            out[voice] = out.get(voice, 0) + 1
    return out


def _tally(
    sources: Sequence[ExternalSource],
    family: int,
    *,
    final_only: bool = False,
    configured: dict[str, int] | None = None,
) -> tuple[Counter[str], set[str]]:
    """(address -> number of voices giving it, the voices that answered).

    A voice whose sources disagree among themselves (one DNS method says A, another
    B) abstains: it answered, but votes for nothing.  ``final_only`` counts a voice
    only once every source of it has answered (its vote can no longer change)."""
    answers: dict[str, set[str]] = {}
    heard: Counter[str] = Counter()
    for s in sources:
        if s.family != family:
            continue
        voice = voice_of(s.method, s.endpoint)
        if s.value or (s.error and not s.error.startswith("not waited for")):
            heard[voice] += 1
        if s.value:
            answers.setdefault(voice, set()).add(s.value)
    votes: Counter[str] = Counter()
    answering: set[str] = set()
    for voice, values in answers.items():
        if final_only and configured is not None and heard[voice] < configured.get(voice, 1):
            continue
        answering.add(voice)
        if len(values) == 1:
            votes[next(iter(values))] += 1
    return votes, answering


def agree(sources: Sequence[ExternalSource], family: int, configured: Any) -> tuple[str | None, str | None, str]:
    """(address, problem, summary) by quorum for one family.

    ``configured``: the configured voices (``configured_voices``), or their number.
    Agreed when one address has a strict majority of the answering voices (see
    ``voice_of``) and, when two or more voices are configured, at least two of them
    give it: the same rule for IPv4 and IPv6.
    """
    voices = _configured_voices(configured)
    answering_sources = [s for s in sources if s.family == family and s.value]
    label = f"IPv{family}"
    if not voices:
        return None, f"no {label} echo service is configured", ""
    if not answering_sources:
        errors = "; ".join(f"{s.endpoint}: {s.error}" for s in sources if s.family == family and s.error)
        return None, f"no {label} echo service answered ({errors or 'no reply'})", ""
    votes, answering = _tally(sources, family)
    need = min(2, len(voices))
    skipped = sum(
        1 for s in sources if s.family == family and not s.value and s.error and s.error.startswith("not waited for")
    )
    value, count = votes.most_common(1)[0] if votes else (None, 0)
    same = sum(1 for s in answering_sources if s.value == value)
    summary = (
        f"IPv{family}: {same} of {len(answering_sources)} sources agree"
        + (f" ({count} independent)" if count != same else "")
        + (f"; {skipped} more not waited for" if skipped else "")
    )
    if value is None or count * 2 <= len(answering) or count < need:
        listing = ", ".join(f"{s.endpoint} saw {s.value}" for s in answering_sources)
        if value is not None and count < need and len(answering) == 1 and len(answering_sources) > 1:
            why = (
                "only DNS-based sources answered, and they count as one: one box on the path could forge them all"
                if next(iter(answering)) == "dns"
                else "the sources that answered are not independent of each other"
            )
        elif value is not None and len(answering) == 1 and need > 1:
            why = "only one source answered"
        else:
            why = "the sources disagree"
        return (
            None,
            (
                f"the public {label} address is uncertain: {why} ({listing}). Nothing is published "
                "until independent sources agree."
            ),
            summary,
        )
    return value, None, summary


def stable_ipv6(seen: str, local: LocalInfo | None) -> tuple[str, str | None]:
    """Replace a temporary (RFC 4941 privacy) IPv6 address by this host's stable one.

    The echo sees the address the connection left from, which on most desktops is a
    temporary address that changes daily: publishing it would break the name by
    tomorrow.  Returns (address to publish, note or None).
    """
    import ipaddress

    if local is None:
        return seen, None
    try:
        seen_ip = ipaddress.IPv6Address(seen)
    except ValueError:
        return seen, None
    mine = next((a for a in local.ipv6_global if _same_v6(a.address, seen_ip)), None)
    if mine is None or not mine.temporary:
        return seen, None
    prefix = ipaddress.IPv6Network(f"{seen_ip}/64", strict=False)
    stable = [a for a in local.ipv6_global if not a.temporary and not a.deprecated and _in_net(a.address, prefix)]
    if not stable:
        return seen, (
            f"IPv6: {seen} is a temporary privacy address and this host has no stable address in "
            f"{prefix}; it was published anyway but will change (disable privacy extensions on this host "
            "or give it a stable address)"
        )
    chosen = stable[0].address
    return chosen, (
        f"IPv6: the echo saw the temporary privacy address {seen}; publishing this host's stable "
        f"address {chosen} instead"
    )


def _same_v6(text: str, ip: ipaddress.IPv6Address) -> bool:
    import ipaddress

    try:
        return ipaddress.IPv6Address(text) == ip
    except ValueError:
        return False


def _in_net(text: str, net: Any) -> bool:
    import ipaddress

    try:
        return ipaddress.IPv6Address(text) in net
    except ValueError:
        return False


def settled(sources: Sequence[ExternalSource], family: int, configured: Any) -> bool:
    """True when the sources still out cannot change ``agree``'s answer for ``family``:
    one address already has a strict majority of all *configured* voices (and at
    least two of them when two or more are configured), counting only voices whose
    every source has answered (a DNS voice can still split and abstain)."""
    voices = _configured_voices(configured)
    if not voices:
        return True
    votes, _ = _tally(sources, family, final_only=True, configured=voices)
    count = votes.most_common(1)[0][1] if votes else 0
    return count * 2 > len(voices) and count >= min(2, len(voices))


async def ask_until_settled(
    asks: Sequence[tuple[SourceMethod, str, AddressFamily, Awaitable[ExternalSource]]],
    configured4: Any,
    configured6: Any,
) -> tuple[ExternalSource, ...]:
    """Run the echo questions ``(method, endpoint, family, coroutine)`` concurrently and
    stop as soon as the answer per family is settled (see ``settled``): waiting for the
    slowest echo cannot change a majority of everything configured, it only costs time
    (a TLS handshake is the slow part on a fast line).  The questions not waited for
    appear as sources with no value and the error "not waited for"."""
    started = asyncio.get_running_loop().time()
    # DNS questions start first: a UDP query is on the wire at once, while the first
    # HTTPS question spends its first ~50 ms importing and setting up TLS on this thread.
    start_order = sorted(range(len(asks)), key=lambda i: asks[i][0] != "dns")
    tasks = {i: asyncio.ensure_future(asks[i][3]) for i in start_order}
    pending = {tasks[i]: (method, endpoint, family) for i, (method, endpoint, family, _) in enumerate(asks)}
    done_sources: list[ExternalSource] = []
    try:
        waiting = set(pending)
        while waiting:
            finished, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            done_sources += [t.result() for t in finished]
            if settled(done_sources, 4, configured4) and settled(done_sources, 6, configured6):
                break
    finally:
        from checks.tasks import drop

        drop(pending)
        # Let the cancelled ones close their sockets now rather than at interpreter exit,
        # within a bound: a library's shielded cleanup must not hold the round up.
        if pending:
            await asyncio.wait(pending, timeout=1.0)
    ms = round((asyncio.get_running_loop().time() - started) * 1000, 1)
    by_task = {t: t.result() for t in pending if t.done() and not t.cancelled() and t.exception() is None}
    out: list[ExternalSource] = []
    for task, (method, endpoint, family) in pending.items():  # configuration order
        source = by_task.get(task)
        out.append(
            source
            if source is not None
            else ExternalSource(
                method, endpoint, family, None, "not waited for: the other sources had already agreed", ms
            )
        )
    return tuple(out)


async def detect_public(
    config: Config,
    client: Any,
    *,
    want_ipv6: bool,
    on_progress: Progress | None = None,
    local: LocalInfo | None = None,
    allow_private: bool = False,
) -> PublicAddress:
    """Ask every configured echo service concurrently and agree by quorum.

    IPv4 sources are asked over IPv4 only, IPv6 sources over IPv6 only (an answer of
    the other family is discarded by the source).  The round ends as soon as a
    majority of all configured voices agree (the rest could not change the answer).
    For IPv6, a temporary privacy address seen by the echo is replaced by this host's
    stable address on the same /64 (``local``: this host's addresses; gathered when
    not given).  ``allow_private`` lets the sources keep a non-public answer (a LAN
    echo for a LAN-only name); a zone or the other family never counts.
    """
    from checks.probes.publicip import dns_echo, http_echo  # lazy: only commands that need it

    ep = config.endpoints
    lax = {"allow_non_public": True} if allow_private else {}
    asks: list[tuple[SourceMethod, str, AddressFamily, Awaitable[ExternalSource]]] = []
    asks += [("http", url, 4, http_echo(client, url, family=4, timeout_s=ECHO_TIMEOUT_S, **lax)) for url in ep.ip_echo]
    asks += [("dns", spec, 4, dns_echo(spec, family=4, timeout_s=ECHO_TIMEOUT_S, **lax)) for spec in ep.dns_echo]
    # STUN: one UDP exchange with retransmissions, so it still answers on a lossy line
    # where a TLS handshake does not; a voice of its own kind next to DNS.
    asks += [("stun", spec, 4, _stun_source(spec)) for spec in ep.stun]
    if want_ipv6:
        asks += [
            ("http", url, 6, http_echo(client, url, family=6, timeout_s=ECHO_TIMEOUT_S, **lax)) for url in ep.ip_echo_v6
        ]
        asks += [("dns", spec, 6, dns_echo(spec, family=6, timeout_s=ECHO_TIMEOUT_S, **lax)) for spec in ep.dns_echo_v6]
    if on_progress:
        on_progress(f"asking {len(asks)} sources for the public address")
    plain = [(method, endpoint, fam) for method, endpoint, fam, _ in asks]
    voices4, voices6 = configured_voices(plain, 4), configured_voices(plain, 6)
    sources = await ask_until_settled(asks, voices4, voices6)
    v4, p4, s4 = agree(sources, 4, voices4)
    v6, p6, s6 = agree(sources, 6, voices6) if want_ipv6 else (None, None, "")
    if v6 is not None:
        if local is None:
            from checks.probes.local import gather_local  # lazy; never raises (failure is data)

            local = await gather_local()
        v6, note = stable_ipv6(v6, local)
        if note:
            s6 = f"{s6}; {note}" if s6 else note
    summary = "; ".join(x for x in (s4, s6) if x)
    return PublicAddress(v4, v6, sources, p4, p6 if want_ipv6 else None, summary)


async def _stun_source(spec: str) -> ExternalSource:
    from checks.probes.stun import stun_probe

    sources, _ = await stun_probe([spec], timeout_s=ECHO_TIMEOUT_S, family=4)
    return sources[0]


# --------------------------------------------------------------------------- decisions


def publishable_problem(address: str) -> str | None:
    """Why an address must not be published (None when it is public)."""
    try:
        cls = classify(address)
    except ValueError:
        return f"{address} is not an IP address"
    if cls is AddressClass.PUBLIC:
        return None
    if cls is AddressClass.CGNAT:
        return (
            f"{address} is a carrier-grade NAT address (100.64.0.0/10): it belongs to your ISP's NAT, and "
            "nobody outside can reach it. Ask the ISP for a public IPv4 address, use IPv6, or a tunnel. "
            "Use --allow-private only for a name meant to be used inside the ISP's network."
        )
    if cls is AddressClass.PRIVATE:
        return (
            f"{address} is a private (RFC 1918) address: it only exists inside a local network, so the name "
            "would be useless from outside. The echo services saw this address, so they are probably inside "
            "your network; check [endpoints] ip_echo. Use --allow-private to publish it for LAN-only use."
        )
    return (
        f"{address} is {describe_class(cls)}, not reachable from the internet, so publishing it would break "
        "the name. Use --allow-private to publish it anyway."
    )


@dataclass(frozen=True)
class Decision:
    """What to do for one host, before anything is sent."""

    send_ipv4: str | None
    send_ipv6: str | None
    previous: str | None
    result: UpdateResult | None  # set when nothing is to be sent (unchanged / refused / unknown)
    notes: tuple[str, ...] = ()  # e.g. the IPv6 address could not be agreed on: AAAA left alone


def decide(
    host: HostConfig,
    provider: str,
    public: PublicAddress,
    current: tuple[str | None, str | None, str | None],
    *,
    force: bool,
    allow_private: bool,
) -> Decision:
    """Pure: which addresses to send for ``host`` given the public address and what DNS serves."""
    dns4, dns6, dns_error = current
    want4, want6 = wants_ipv4(host), wants_ipv6(host)
    previous = join_sent(dns4 if want4 else None, dns6 if want6 else None)

    def result(kind: UpdateResultName, code: str | None, message: str, fatal: bool = False) -> UpdateResult:
        return UpdateResult(
            hostname=host.hostname,
            provider=provider,
            previous=previous,
            sent=None,
            result=kind,
            code=code,
            message=message,
            fatal=fatal,
        )

    v4 = public.ipv4 if want4 else None
    v6 = public.ipv6 if want6 else None
    notes: list[str] = []
    device = choose_device(host, public.ipv6) if want6 else None
    if device is not None:  # another LAN device's address: this prefix + its interface identifier
        v6 = device.address
        if public.ipv6 is not None:
            notes.append(device.why)
    if want4 and v4 is None and public.problem_v4:
        notes.append(public.problem_v4)
    if want6 and v6 is None and public.problem_v6:
        notes.append(public.problem_v6)
    if v4 is None and v6 is None:
        return Decision(
            None,
            None,
            previous,
            result(
                "error", "no-address", " ".join(notes) or "the public address could not be determined; nothing sent."
            ),
        )
    if v4 is None and v6 is None and device is not None and device.address is None and public.ipv6:
        notes.append(device.why)
    for address in (v4, v6):
        if address and not allow_private:
            problem = publishable_problem(address)
            if problem:
                return Decision(
                    None, None, previous, result("error", "private-address", f"refusing to publish: {problem}")
                )
    multi = _multi_record(provider)
    keep = keep_addresses(host) or frozenset()
    differs4, note4 = _family_differs(v4, dns4, keep, multi, "A", provider)
    differs6, note6 = _family_differs(v6, dns6, keep, multi, "AAAA", provider)
    notes += [n for n in (note4, note6) if n]
    if not force and not dns_error and not differs4 and not differs6:
        shown = join_sent(v4, v6)
        extra = (" " + " ".join(notes)) if notes else ""
        return Decision(
            None, None, previous, result("unchanged", None, f"DNS already serves {shown}; nothing sent.{extra}")
        )
    return Decision(v4, v6, previous, None, tuple(notes))


def served_set(value: str | None) -> frozenset[str]:
    """The addresses in a lookup's comma-joined answer (``"a,b"``), canonical."""
    import ipaddress

    out: set[str] = set()
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.add(ipaddress.ip_address(item).compressed)
        except ValueError:
            out.add(item)
    return frozenset(out)


def _multi_record(provider: str) -> bool:
    from checks.ddns.providers.registry import PROVIDERS

    spec = PROVIDERS.get(provider)
    return bool(spec is not None and spec.options.get("multi_record"))


def _family_differs(
    want: str | None, served: str | None, keep: frozenset[str], multi: bool, rtype: str, provider: str
) -> tuple[bool, str | None]:
    """(must send, note) for one family.

    Where the provider holds several records per name (Cloudflare, RFC 2136) the name must
    serve exactly our address plus the ones the user keeps (``keep_addresses``): a stale
    extra record is a difference, and the update removes it.  Elsewhere an update sets one
    address and cannot remove others, so only our address's presence counts (sending again
    would only earn ``nochg``), and the extra record is named.
    """
    if want is None:
        return False, None
    import ipaddress

    want_c = ipaddress.ip_address(want).compressed
    have = served_set(served)
    others = sorted(have - keep - {want_c})
    if want_c not in have:
        return True, None
    if not others:
        return False, None
    shown = ", ".join(others)
    if multi:
        return True, (
            f"DNS also serves the {rtype} record{'s' if len(others) > 1 else ''} {shown} for this name: "
            "stale records are removed so only the current address is published (list addresses you "
            "publish on purpose in keep_addresses)."
        )
    return False, (
        f"DNS also serves the {rtype} record{'s' if len(others) > 1 else ''} {shown} for this name; "
        f"{provider} updates set one address and cannot remove it: delete it in the provider's "
        "control panel if it is stale."
    )


def publishes(
    host: HostConfig, current: tuple[str | None, str | None, str | None], ipv4: str | None, ipv6: str | None
) -> bool:
    """True when ``current`` (a lookup) serves exactly what was sent for the wanted families
    (plus the addresses the user keeps beside it)."""
    if current[2]:
        return False
    keep = keep_addresses(host) or frozenset()
    for want, served in (
        (ipv4 if wants_ipv4(host) else None, current[0]),
        (ipv6 if wants_ipv6(host) else None, current[1]),
    ):
        if want is None:
            continue
        have = served_set(served)
        if served_set(want) - have or have - keep - served_set(want):
            return False
    return True


async def refine_with_provider(
    spec: Any,
    host: HostConfig,
    public: PublicAddress,
    current: tuple[str | None, str | None, str | None],
    decision: Decision,
    client: Any,
    *,
    force: bool,
    allow_private: bool,
) -> Decision:
    """When DNS does not show our address, ask the provider itself where it can be asked
    without changing anything (Cloudflare's API): a proxied record is served from the
    provider's edge, so public DNS never shows it, and only the API can tell "already set"
    from "must send".  Returns the decision to act on (unchanged when the API already holds
    the address: no write, no `nochg`-style churn)."""
    if decision.result is not None or force or spec.published_fn is None:
        return decision
    view = await spec.published(host, client)
    if view.error is not None:
        note = f"({spec.title}'s record could not be read: {view.error}.)"
        return replace(decision, notes=decision.notes + (note,))
    refined = decide(host, spec.name, public, view.joined(), force=False, allow_private=allow_private)
    proxied = sorted(view.proxied)
    dns_shown = join_sent(current[0], current[1])
    note = ""
    if proxied:
        note = (
            f"The {'/'.join(proxied)} record is proxied by {spec.title}: public DNS answers {spec.title}'s "
            f"edge addresses ({dns_shown or 'none'}) by design, so it was compared with the record in "
            f"{spec.title}'s API instead."
        )
    if refined.result is not None and refined.result.result == "unchanged":
        shown = join_sent(view.joined()[0], view.joined()[1])
        message = f"{spec.title} already holds {shown}; nothing sent. {note}".strip()
        return replace(refined, result=replace(refined.result, message=message, previous=shown))
    # Sending: the provider's own reply says the record is proxied; no second note.
    return refined


# --------------------------------------------------------------------------- the run


async def default_lookup(
    hostname: str,
    resolvers: Sequence[str],
    *,
    zones: Any = None,
) -> tuple[str | None, str | None, str | None]:
    from checks.dns.verify import current_addresses  # lazy

    result: tuple[str | None, str | None, str | None] = (None, None, None)
    for timeout_s in (DNS_TIMEOUT_S, DNS_RETRY_TIMEOUT_S):
        try:
            result = await current_addresses(hostname, resolvers=resolvers, timeout_s=timeout_s, zones=zones)
        except Exception as exc:  # a lookup failure must not stop the update: it only costs the comparison
            result = (None, None, f"{type(exc).__name__}: {exc}")
        if result[2] is None:
            break
    return result


def round_lookup() -> Lookup:
    """``default_lookup`` sharing one ``ZoneCache`` (each zone's servers looked up once):
    make one per round, never keep it across rounds."""
    from checks.dns.verify import ZoneCache  # lazy

    if default_lookup is not _default_lookup:  # replaced (tests: a stand-in for DNS)
        return default_lookup
    zones = ZoneCache()

    async def lookup(hostname: str, resolvers: Sequence[str]) -> tuple[str | None, str | None, str | None]:
        return await default_lookup(hostname, resolvers, zones=zones)

    lookup.zones = zones  # type: ignore[attr-defined]
    return lookup


_default_lookup = default_lookup


def make_provider_client() -> Any:
    from checks.ddns.providers.base import REQUEST_TIMEOUT_S, user_agent
    from checks.http import make_client

    return make_client(timeout_s=REQUEST_TIMEOUT_S, user_agent=user_agent(), request_deadline_s=REQUEST_TIMEOUT_S)


async def update_one(
    host: HostConfig,
    public: PublicAddress,
    client: Any,
    *,
    resolvers: Sequence[str],
    force: bool = False,
    dry_run: bool = False,
    allow_private: bool = False,
    lookup: Lookup = default_lookup,
    on_progress: Progress | None = None,
    current: Awaitable[tuple[str | None, str | None, str | None]] | None = None,
    last_update: dict[str, Any] | None = None,
    send: Callable[[Any, HostConfig, str | None, str | None], Awaitable[UpdateResult]] | None = None,
) -> UpdateResult:
    """Update one hostname. ``current`` is the authoritative lookup when the caller
    started it already (alongside the public-address detection); else it runs here.
    ``last_update`` is this host's last ``update`` record from the history: used only
    when DNS cannot be asked, so a lossy line does not turn into a `nochg`."""
    from checks.ddns.providers.registry import get_provider

    spec = get_provider(host.provider)
    if on_progress:
        on_progress(f"{host.hostname}: asking its authoritative servers what they serve")
    current_addrs = await (current if current is not None else lookup(host.hostname, resolvers))
    decision = decide(host, spec.name, public, current_addrs, force=force, allow_private=allow_private)
    if decision.result is None and spec.published_fn is not None and not force:
        if on_progress:
            on_progress(f"{host.hostname}: DNS does not show it; reading the record from {spec.title}")
        decision = await refine_with_provider(
            spec, host, public, current_addrs, decision, client, force=force, allow_private=allow_private
        )
    if decision.result is not None:
        return decision.result
    sent = join_sent(decision.send_ipv4, decision.send_ipv6)
    if (
        current_addrs[2]
        and not force
        and last_update is not None
        and last_update.get("sent") == sent
        and last_update.get("result") in ("updated", "unchanged")
    ):
        return UpdateResult(
            hostname=host.hostname,
            provider=spec.name,
            previous=None,
            sent=None,
            result="unchanged",
            code="history",
            message=(
                f"DNS could not be asked ({current_addrs[2]}), but the last update this machine sent "
                f"({last_update.get('ts', 'earlier')}) already set {sent}; nothing sent "
                "(a forced update sends anyway)."
            ),
        )
    why = (
        "forced"
        if force
        else (
            "DNS lookup failed: " + current_addrs[2]
            if current_addrs[2]
            else f"DNS serves {decision.previous or 'nothing'}"
        )
    )
    if dry_run:
        return UpdateResult(
            hostname=host.hostname,
            provider=spec.name,
            previous=decision.previous,
            sent=None,
            result="unchanged",
            code="dry-run",
            would_send=sent,
            message=f"would send {sent} to {spec.title} ({why}); dry run: nothing sent.",
        )
    if on_progress:
        on_progress(f"{host.hostname}: sending {sent} to {spec.title}")
    if send is not None:
        result = await send(spec, host, decision.send_ipv4, decision.send_ipv6)
    else:
        result = await spec.update(host, decision.send_ipv4, decision.send_ipv6, client)
    notes = list(decision.notes)
    if current_addrs[2] and not force:
        # Sent without knowing what DNS served: say so, it explains a possible `nochg`.
        notes.append(f"(Sent without comparing: the DNS lookup failed: {current_addrs[2]}.)")
    message = " ".join((result.message, *notes))
    return replace(result, previous=decision.previous, message=message)


class _Batcher:
    """Sends the updates of one round, several hostnames per request where the protocol allows.

    Every host's ``update_one`` either finishes without sending or hands its update to
    ``send``; once all have, the waiting updates are grouped by provider, server,
    credentials and addresses (``ProviderSpec.batch_key``) and each group goes out as one
    request of at most ``batch_max`` names (dyndns2 allows 20 and answers ``numhost``
    beyond: help.dyn.com/return-codes).  Providers without ``batch_fn`` send at once.
    """

    def __init__(self, hosts: Sequence[HostConfig], client: Any, on_progress: Progress | None) -> None:
        from checks.http import POOL_KEEPALIVE  # lazy (httpx)

        self.order = {h.hostname: i for i, h in enumerate(hosts)}  # requests list names in config order
        # Requests in flight at once: what the client's pool keeps alive (more would queue in
        # httpcore, each waiting one eating its own deadline, and open throw-away connections).
        self.gate = asyncio.Semaphore(POOL_KEEPALIVE)
        self.waiting_for = len(hosts)
        self.client = client
        self.on_progress = on_progress
        self.submitted: set[str] = set()
        self.queue: list[tuple[ProviderSpec, HostConfig, str | None, str | None, asyncio.Future[UpdateResult]]] = []
        self._flush_task: asyncio.Task[None] | None = None

    def finished(self, host: HostConfig) -> None:
        if host.hostname not in self.submitted:
            self.submitted.add(host.hostname)
            self._arrived()

    async def send(self, spec: ProviderSpec, host: HostConfig, ipv4: str | None, ipv6: str | None) -> UpdateResult:
        self.submitted.add(host.hostname)
        if spec.batch_key(host) is None:
            self._arrived()
            async with self.gate:
                return await spec.update(host, ipv4, ipv6, self.client)
        future: asyncio.Future[UpdateResult] = asyncio.get_running_loop().create_future()
        self.queue.append((spec, host, ipv4, ipv6, future))
        self._arrived()
        return await future

    def _arrived(self) -> None:
        self.waiting_for -= 1
        if self.waiting_for <= 0 and self.queue and self._flush_task is None:
            self._flush_task = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        groups: dict[
            tuple[Any, ...], list[tuple[Any, HostConfig, str | None, str | None, asyncio.Future[UpdateResult]]]
        ] = {}
        for item in sorted(self.queue, key=lambda it: self.order.get(it[1].hostname, 0)):
            spec, host, ipv4, ipv6, _ = item
            groups.setdefault((spec.batch_key(host), ipv4, ipv6), []).append(item)

        async def send_chunk(chunk: list[Any]) -> None:
            spec, _, ipv4, ipv6, _ = chunk[0]
            try:
                async with self.gate:
                    if self.on_progress and len(chunk) > 1:
                        self.on_progress(
                            f"sending {join_sent(ipv4, ipv6)} for {len(chunk)} hostnames in one request to {spec.title}"
                        )
                    results = await spec.update_batch([h for _, h, _, _, _ in chunk], ipv4, ipv6, self.client)
            except BaseException as exc:  # update_batch never raises; a cancel must still wake the waiters
                for *_, fut in chunk:
                    if not fut.done():
                        fut.set_exception(exc)
                raise
            for (*_, fut), result in zip(chunk, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

        # The chunks of one group (20 names each for dyndns2) go out side by side, like any
        # other requests, at most POOL_KEEPALIVE at once.
        chunks = [
            items[start : start + max(1, items[0][0].batch_max)]
            for items in groups.values()
            for start in range(0, len(items), max(1, items[0][0].batch_max))
        ]
        await asyncio.gather(*(send_chunk(chunk) for chunk in chunks))


async def run_update_detailed(
    config: Config,
    *,
    force: bool = False,
    dry_run: bool = False,
    allow_private: bool = False,
    client: Any = None,
    on_progress: Progress | None = None,
    lookup: Lookup | None = None,
    public: PublicAddress | None = None,
    history: Sequence[dict[str, Any]] = (),
    skip: dict[str, UpdateResult] | None = None,
) -> UpdateRun:
    """``skip``: hostname -> the result to report instead of sending, when a send is due
    (a host a provider refused for good, until its configuration changes)."""
    check_config(config)
    skip = skip or {}
    lookup = lookup or round_lookup()
    resolvers = config.endpoints.resolvers
    # What DNS serves does not depend on our public address: ask both at once. The lookups
    # start before the HTTP client is made (importing httpx and loading the CA bundle take
    # ~0.1 s of CPU): their first questions are on the wire meanwhile.
    lookups = [asyncio.ensure_future(lookup(h.hostname, resolvers)) for h in config.hosts]
    await asyncio.sleep(0)
    own_client = client is None
    try:
        if own_client:
            client = make_provider_client()
        if public is None:
            want6 = any(wants_ipv6(h) for h in config.hosts)
            public = await detect_public(
                config, client, want_ipv6=want6, on_progress=on_progress, allow_private=allow_private
            )
        batcher = _Batcher(config.hosts, client, on_progress)

        async def send(spec: Any, host: HostConfig, ipv4: str | None, ipv6: str | None) -> UpdateResult:
            if host.hostname in skip:  # refused for good before: not sent again
                batcher.finished(host)
                return skip[host.hostname]
            return await batcher.send(spec, host, ipv4, ipv6)

        async def one(h: HostConfig, task: Awaitable[Any]) -> UpdateResult:
            try:
                return await update_one(
                    h,
                    public,
                    client,
                    resolvers=resolvers,
                    force=force,
                    dry_run=dry_run,
                    allow_private=allow_private,
                    lookup=lookup,
                    on_progress=on_progress,
                    current=task,
                    last_update=last_of(history, h.hostname, ("update",)),
                    send=send,
                )
            finally:
                batcher.finished(h)

        results = await asyncio.gather(*(one(h, task) for h, task in zip(config.hosts, lookups, strict=True)))
    finally:
        from checks.tasks import drop

        drop(lookups)
        if own_client and client is not None:
            await client.aclose()
    return UpdateRun(public=public, results=tuple(results))


async def run_update(
    config: Config,
    *,
    force: bool = False,
    dry_run: bool = False,
    allow_private: bool = False,
    client: Any = None,
    on_progress: Progress | None = None,
    lookup: Lookup | None = None,
    public: PublicAddress | None = None,
    history: Sequence[dict[str, Any]] = (),
) -> tuple[UpdateResult, ...]:
    run = await run_update_detailed(
        config,
        force=force,
        dry_run=dry_run,
        allow_private=allow_private,
        client=client,
        on_progress=on_progress,
        lookup=lookup,
        public=public,
        history=history,
    )
    return run.results
