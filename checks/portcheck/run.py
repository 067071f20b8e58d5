"""Inbound port test: "I forwarded the port — why can't my friend connect?"

A closed-loop test, not a boolean.  For each port asked (``8080``, ``51820/udp``):

1. **Listen.**  A temporary listener (checks/portcheck/listener.py) on the port, on all
   addresses, answers with a random nonce.  If a service already listens there
   (``EADDRINUSE``) that service is tested instead, and the result says it could
   not confirm the answer came from this machine.  Ports 1-1023 need root: a bind
   refused with ``EACCES`` says so and the port is not probed.
2. **Map (``--upnp`` only).**  A UPnP IGD mapping (or NAT-PMP when the router has
   no IGD) from the external port to this machine, with a short lease, recorded in
   a ``MappingLedger`` and removed afterwards in ``finally`` — also on errors and
   on cancellation (Ctrl-C / SIGTERM cancel the task; the removal is shielded from
   a second cancel and bounded by a deadline).  A removal that fails is reported
   with the mapping, never dropped silently.  A mapping that already points at this
   machine is used and left alone; one that points elsewhere is never touched.
3. **Control port.**  A random high port, given its own listener and mapped the
   same way as the tested ports (so: mapped with ``--upnp``, unmapped without).
   It is *asked about* only when a tested port of its protocol was not reached
   (``ask_targets_then_controls``): an open port costs one prober request.
4. **Probe from outside.**  Each ``[endpoints] port_check`` entry is a prober
   (checks/portcheck/probers.py: ``ddnsw+https://HOST[:PORT]`` the project's probe server
   with nonce banner and UDP; a URL with ``{port}`` echoip-compatible,
   ``{"ip", "port", "reachable"}``, TCP only; ``portchecker+https://HOST``
   portchecker.io's ``/api/me/N``, TCP/IPv4 only), asked over IPv4 only and within
   its limits (pacing kept across runs; a 429 is never retried, the next prober
   takes over; with none left the answer carries ``rate-limited`` / ``prober-silent``
   and ``with_answer_reason`` puts it on the verdict).  The tool itself never
   connects to its own public address: from inside the LAN that would test the
   router's hairpin NAT, not reachability (see ``HAIRPIN_NOTE``).
5. **Decide** (``decide_port``, pure).  NAT facts come from the engine's own
   ``checks.nat.decide_nat`` on this host's addresses, the router's WAN address
   (UPnP / NAT-PMP), the public address the prober saw, and traceroute hops when
   those could matter.


The verdict rules are in ``checks.portcheck.verdict``; the router mappings in
``checks.portmap``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from checks.config import Endpoints
from checks.errors import MappingError
from checks.model import ExternalInfo, ExternalSource, LocalInfo, NatResult, PortResult, UpnpInfo
from checks.model import PortProtocol as Protocol
from checks.portcheck.listener import NonceListener, open_listener
from checks.portcheck.probers import ProbeAnswer, ProberPacer, ask_probers, parse_probers
from checks.portcheck.spec import PortSpec
from checks.portcheck.verdict import (
    MappingState,
    PortEvidence,
    decide_port,
    router_maps,
    with_admin_page,
    with_answer_reason,
)
from checks.portmap.ledger import CreatedMapping, MappingLedger, remove_shielded
from checks.portmap.mapper import (
    KEPT_DESCRIPTION,
    LONGEST_LEASE_S,
    MAPPING_DESCRIPTION,
    TEST_LEASE_S,
    Mapper,
    NatPmpMapper,
    UpnpMapper,
)
from checks.portmap.upnp_errors import REFUSED_NOT_CREATED

if TYPE_CHECKING:  # pragma: no cover
    import httpx  # imported lazily: only a port check that asks a prober needs it

CONTROL_PORT_RANGE = (40000, 59999)


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class NetworkFacts:
    """What the engine knows about this network before probing."""

    local: LocalInfo
    upnp: UpnpInfo
    hops: tuple[str, ...] | None = None


async def gather_facts(*, budget_s: float = 2.5) -> NetworkFacts:
    """This host's addresses and the router's UPnP/NAT-PMP view (bounded; failures as data)."""
    from checks.probes.local import gather_local

    try:
        local = await asyncio.wait_for(gather_local(), budget_s)
    except Exception as exc:
        local = LocalInfo(None, None, None, error=f"could not read local addresses: {exc}")
    try:
        from checks.probes.upnp import probe_router

        upnp = await asyncio.wait_for(probe_router(local.gateway_ipv4), budget_s)
    except Exception as exc:
        upnp = UpnpInfo(available=False, error=f"UPnP/NAT-PMP probe failed: {type(exc).__name__}: {exc}")
    return NetworkFacts(local=local, upnp=upnp)


def assess_nat(facts: NetworkFacts, observed_ip: str | None, prober: str | None = None) -> NatResult:
    """The engine's NAT verdict with the public address the prober saw."""
    from checks.nat import decide_nat

    sources: tuple[ExternalSource, ...] = ()
    if observed_ip:
        sources = (ExternalSource("http", prober or "port prober", 4, observed_ip, None, 0.0),)
    external = ExternalInfo(ipv4=observed_ip, ipv6=None, agreement=True, sources=sources)
    return decide_nat(facts.local, external, facts.upnp, facts.hops)


async def open_mapper(facts: NetworkFacts) -> tuple[Mapper | None, str]:
    """A mapper for this router: UPnP IGD first, then PCP, then NAT-PMP (issue 16: the order
    of preference); (None, why) when none answers."""
    upnp = facts.upnp
    reasons: list[str] = []
    gateway = facts.local.gateway_ipv4
    if upnp.found and upnp.location:
        try:
            from checks.probes.upnp import IgdClient

            igd = await IgdClient.connect(upnp.location)
            return UpnpMapper(igd), f"UPnP IGD at {upnp.location}"
        except Exception as exc:
            reasons.append(f"the UPnP IGD at {upnp.location} could not be used ({exc})")
    if upnp.pcp_available and gateway:
        from checks.portmap.pcpmapper import PcpMapper

        return PcpMapper(gateway, facts.local.ipv4), f"PCP at {gateway}"
    if upnp.natpmp_available and gateway:
        return NatPmpMapper(gateway, facts.local.ipv4), f"NAT-PMP at {gateway}"
    if not upnp.found:
        reasons.append("no UPnP IGD answered")
    if not upnp.pcp_available:
        reasons.append("PCP did not answer" + (f" ({upnp.pcp_error})" if upnp.pcp_error else ""))
    if not upnp.natpmp_available:
        reasons.append("NAT-PMP did not answer" + (f" ({upnp.natpmp_error})" if upnp.natpmp_error else ""))
    return None, "; ".join(reasons)


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class PortCheckReport:
    results: tuple[PortResult, ...]
    nat: NatResult | None
    facts: NetworkFacts | None
    mapper: str | None = None  # "UPnP IGD at ..." / "NAT-PMP at ..."
    mapper_problem: str | None = None  # why --upnp could not map
    controls: tuple[PortEvidence, ...] = ()
    evidence: tuple[PortEvidence, ...] = ()
    leftovers: tuple[tuple[str, str], ...] = ()  # mappings that could not be removed
    prober_errors: tuple[str, ...] = ()


FactsGatherer = Callable[[], Awaitable[NetworkFacts]]
MapperOpener = Callable[[NetworkFacts], Awaitable[tuple["Mapper | None", str]]]


async def _pick_control(
    protocol: Protocol, taken: set[int], mapper: Mapper | None, rng: random.Random
) -> NonceListener | None:
    for _ in range(8):
        port = rng.randint(*CONTROL_PORT_RANGE)
        if port in taken:
            continue
        if mapper is not None and await mapper.existing(port, protocol) is not None:
            continue
        listener = await open_listener(port, protocol)
        if listener.listening:
            return listener
        await listener.close()
    return None


async def _map_one(
    mapper: Mapper,
    ledger: MappingLedger,
    port: int,
    protocol: Protocol,
    internal_host: str,
    lease_s: int,
    *,
    keep: bool = False,
) -> tuple[MappingState, str, int | None]:
    current = await mapper.existing(port, protocol)
    if current is not None:
        if current.internal_host == internal_host and current.internal_port == port:
            return (
                "existing",
                (
                    f"The router already forwards {port}/{protocol.upper()} to this machine "
                    f"({current.internal}, {current.description or 'no description'}); left as is."
                ),
                port,
            )
        return (
            "conflict",
            (
                f"The router already forwards {port}/{protocol.upper()} to {current.internal} "
                f"({current.description or 'no description'}), not to this machine; the test left "
                "that mapping alone."
            ),
            None,
        )
    if keep:
        lease_s = getattr(mapper, "keep_lease_s", lease_s)
    description = KEPT_DESCRIPTION if keep else MAPPING_DESCRIPTION
    try:
        try:
            granted = await mapper.add(port, protocol, internal_host, port, lease_s, description)
        except MappingError as exc:
            if not (keep and lease_s == 0 and exc.code in (402, 601)):
                raise
            # A router that refuses a permanent lease ("invalid args" / "value out of range"):
            # the longest one it accepts is the lasting forward we can have.
            lease_s = LONGEST_LEASE_S
            granted = await mapper.add(port, protocol, internal_host, port, lease_s, description)
    except asyncio.CancelledError:
        # Ctrl-C while the router works on it: the call may still complete (miniupnpc runs in a
        # thread), so it is removed at the end like any other.
        ledger.record(CreatedMapping(mapper, port, protocol, internal_host, port, uncertain=True))
        raise
    except MappingError as exc:
        if exc.code not in REFUSED_NOT_CREATED:
            # No answer, transport trouble, or a vague "Action Failed" (miniupnpd killed between
            # installing the rule and replying): it may exist anyway, so remove it at the end.
            ledger.record(CreatedMapping(mapper, port, protocol, internal_host, port, uncertain=True))
        return "failed", f"{mapper.name} could not map {port}/{protocol.upper()} for the test: {exc}", None
    ledger.record(CreatedMapping(mapper, granted, protocol, internal_host, port, keep=keep, lease_s=lease_s))
    purpose = "to keep as a lasting forward" if keep else "for the test (removed afterwards)"
    return (
        "created",
        (f"Mapped {granted}/{protocol.upper()} → {internal_host}:{port} over {mapper.name} {purpose}."),
        granted,
    )


def _lease_words(seconds: int) -> str:
    """A lease as people say it: routers report what is left (604799 s is "7 days")."""
    if seconds <= 0:
        return "permanent"
    if seconds >= 86400 - 60:
        days = round(seconds / 86400)
        return f"{days} day{'s' if days != 1 else ''}"
    if seconds >= 3600 - 60:
        hours = round(seconds / 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{seconds} s"


async def describe_kept(m: CreatedMapping) -> str:
    """What a kept mapping is, how long it lasts, and how to remove it later."""
    proto = m.protocol.upper()
    lease = m.lease_s
    if m.mapper.name == "UPnP":
        try:
            current = await asyncio.wait_for(m.mapper.existing(m.external_port, m.protocol), 2.0)
        except Exception:
            current = None
        if current is not None and current.lease_s:
            lease = current.lease_s
    else:
        lease = getattr(m.mapper, "lifetimes", {}).get((m.external_port, m.protocol), lease)
    how_long = (
        "for good"
        if lease <= 0
        else f"for {_lease_words(lease)} (what the router granted; the long-running updater renews it while it runs)"
        if m.mapper.name != "UPnP" or m.lease_s
        else f"for {_lease_words(lease)} (the router caps 'permanent' forwards at that; run this again "
        "before then, or add the forward in the router's web page to keep it for good)"
    )
    return (
        f"Kept as a lasting forward: the router forwards {m.external_port}/{proto} → "
        f"{m.internal_host}:{m.internal_port} over {m.mapper.name} {how_long}. Remove it when you no "
        "longer need it (this tool can, or the router's web page). Give this machine a fixed LAN address "
        f"(a DHCP reservation for {m.internal_host} in the router) so the forward keeps pointing at it."
    )


async def keep_forward(mapper: Mapper, port: int, protocol: Protocol, internal_host: str) -> str:
    """Make a lasting forward of ``port`` to ``internal_host`` (the wizard's "keep this forward").

    The same lease rules as ``--keep``; returns the sentence for the user (what was made, for
    how long, how to remove it). Raises MappingError when the router refuses or the port is
    already forwarded to another device."""
    ledger = MappingLedger()
    state, detail, _ = await _map_one(mapper, ledger, port, protocol, internal_host, 0, keep=True)
    if state == "existing":
        return detail
    if state != "created":
        raise MappingError(detail)
    (made,) = ledger.release_kept()
    await remember_kept(made)
    return await describe_kept(made)


def mapper_via(mapper: object) -> str | None:
    """``upnp`` | ``pcp`` | ``natpmp`` for a mapper (``mapped_via`` in ``ports check --json``)."""
    via = getattr(mapper, "via", None)
    if via:
        return str(via)
    return {"UPnP": "upnp", "PCP": "pcp", "NAT-PMP": "natpmp"}.get(str(getattr(mapper, "name", "")))


def _mapped_via(ev: PortEvidence, mapper: object | None) -> str | None:
    if ev.mapping not in ("created", "existing"):
        return None
    # Without --upnp, an existing forward is one the router's UPnP table lists.
    return mapper_via(mapper) if mapper is not None else "upnp"


async def remember_kept(m: CreatedMapping) -> None:
    """A kept mapping goes into the lasting-forwards ledger (renewed by watch, listed by upnp list).

    A UPnP router may cap a "permanent" lease (miniupnpd: a week): the lease it reports is
    recorded, so that watch renews the forward before it ends."""
    try:
        from checks.portmap.lasting import ForwardsLedger, forward_from_created

        fwd = forward_from_created(m, mapper_via(m.mapper) or "upnp")
        if fwd.via == "upnp" and not fwd.lease_s:
            try:
                current = await asyncio.wait_for(m.mapper.existing(m.external_port, m.protocol), 2.0)
            except Exception:
                current = None
            if current is not None and current.lease_s:
                fwd.lease_s = int(current.lease_s)
        ForwardsLedger.default().record(fwd)
    except Exception:  # the ledger never stops a run; the forward exists either way
        pass


async def run_port_check(
    specs: Sequence[PortSpec],
    *,
    endpoints: Endpoints,
    client: httpx.AsyncClient,
    use_upnp: bool = False,
    ledger: MappingLedger | None = None,
    facts: NetworkFacts | None = None,
    gather: FactsGatherer | None = None,
    mapper_opener: MapperOpener | None = None,
    on_progress: Callable[[str], None] | None = None,
    lease_s: int = TEST_LEASE_S,
    probe_timeout_s: float | None = None,
    listen_host: str = "0.0.0.0",
    rng: random.Random | None = None,
    pacer: ProberPacer | None = None,
    keep: bool = False,
) -> PortCheckReport:
    """Run the closed-loop test for every port; mappings are always removed before returning,
    except, with ``keep`` (and ``use_upnp``), the tested ports' own mappings once the test has
    completed: those stay as lasting forwards.

    The probers are asked over IPv4 only, each within its limits (``pacer``: the
    user's state file by default, see checks/portcheck/probers.py); a control port is asked
    about only when a tested port of its protocol was not reached (an open port
    costs one request)."""
    ledger = ledger if ledger is not None else MappingLedger()
    say = on_progress or (lambda _msg: None)
    rng = rng or random.Random()
    pacer = pacer if pacer is not None else ProberPacer.default()
    probers, prober_errors = parse_probers(endpoints.port_check)
    listeners: list[NonceListener] = []
    try:
        say("reading this machine's addresses and asking the router (UPnP / PCP / NAT-PMP)")
        if facts is None:
            facts = await (gather or gather_facts)()
        gathered = facts  # known from here on (``facts`` itself gets the traceroute's hops later)
        local_ip = gathered.local.ipv4

        # 1. listeners
        say("opening temporary listeners")
        targets: list[NonceListener] = []
        for spec in specs:
            listener = await open_listener(spec.port, spec.protocol, host=listen_host)
            listeners.append(listener)
            targets.append(listener)

        # 2. mapper
        mapper: Mapper | None = None
        mapper_label: str | None = None
        mapper_problem: str | None = None
        if use_upnp:
            say("connecting to the router's UPnP IGD / PCP / NAT-PMP")
            mapper, why = await (mapper_opener or open_mapper)(facts)
            if mapper is None:
                mapper_problem = f"--upnp: the router offers no way to map ports ({why})"
            else:
                mapper_label = why

        # 3. control ports (one per protocol that a prober can test)
        controls: dict[str, NonceListener] = {}
        taken = {s.port for s in specs}
        for proto in sorted({s.protocol for s in specs}):
            if any(proto == "tcp" or p.kind == "ddnsw" for p in probers):
                control = await _pick_control(proto, taken, mapper, rng)
                if control is not None:
                    listeners.append(control)
                    controls[proto] = control
                    taken.add(control.port)

        # 4. mappings
        internal_host = (mapper.lan_address if mapper else None) or local_ip or ""
        mapping_of: dict[int, tuple[MappingState, str | None, int | None]] = {}
        forwards_task: asyncio.Future[dict[int, tuple[MappingState, str | None, int | None]]] | None = None
        if use_upnp:
            for listener in targets + list(controls.values()):
                key = id(listener)
                if listener.state in ("denied", "error"):
                    mapping_of[key] = ("none", None, None)
                elif mapper is None:
                    mapping_of[key] = ("unavailable", mapper_problem, None)
                elif not internal_host:
                    mapping_of[key] = ("unavailable", "this machine's LAN address is unknown", None)
                else:
                    say(f"mapping {listener.port}/{listener.protocol} on the router")
                    mapping_of[key] = await _map_one(
                        mapper,
                        ledger,
                        listener.port,
                        listener.protocol,
                        internal_host,
                        lease_s,
                        keep=keep and listener in targets,
                    )
        else:
            # Read only, and only evidence for the verdicts: the router's table is read while
            # the probers work (one SOAP call per port: 0.5 s for 50 ports in the lab).
            forwards_task = asyncio.ensure_future(_forwards_the_router_lists(facts, targets, local_ip, mapper_opener))

        # 5. ask the probers (a traceroute runs alongside when it could matter)
        say("asking the outside prober to connect in")

        async def probe(listener: NonceListener) -> ProbeAnswer | None:
            _state, _detail, ext = mapping_of.get(id(listener), ("none", None, None))
            if listener.state in ("denied", "error"):
                return None
            return await ask_probers(
                client,
                probers,
                ext or listener.port,
                listener.protocol,
                token=listener.nonce,
                timeout_s=probe_timeout_s,
                family=4,
                pacer=pacer,
            )

        async def hops() -> tuple[str, ...] | None:
            from checks.nat import hops_would_help

            if (
                gathered.hops is not None
                or not probers
                or not hops_would_help(gathered.local, gathered.upnp, confirm_claim=True)
            ):
                return gathered.hops
            try:
                from checks.names import lookup
                from checks.probes.traceroute import trace_hops

                target = (await lookup(probers[0].host, 4, timeout_s=2.0))[0]
                return await trace_hops(target, max_hops=4, timeout_s=2.0)
            except Exception:
                return None

        trace_task = asyncio.ensure_future(hops())
        try:
            answer_of = await ask_targets_then_controls(targets, controls, probe, say)
            trace = await _trace_if_needed(trace_task, [answer_of.get(id(t)) for t in targets])
            if forwards_task is not None:
                mapping_of.update(await forwards_task)
        finally:
            trace_task.cancel()  # done already, unless the run is being cancelled
            if forwards_task is not None:
                forwards_task.cancel()
        if trace is not None and facts.hops is None:
            facts = replace(facts, hops=trace)
        answers = list(answer_of.values())
        released = ledger.release_kept()
        kept = {(m.internal_port, m.protocol): await describe_kept(m) for m in released}
        for m in released:
            await remember_kept(m)
    finally:
        say("removing the test's mappings and listeners")
        if ledger.created:
            await remove_shielded(ledger)
        for listener in listeners:
            try:
                await listener.close()
            except Exception:
                pass

    def evidence_for(listener: NonceListener) -> PortEvidence:
        state, detail, ext = mapping_of.get(id(listener), ("none", None, None))
        answer = answer_of.get(id(listener))
        skipped = None
        if answer is None and listener.state not in ("denied", "error"):
            skipped = (
                prober_errors[0]
                if prober_errors and not probers
                else "no prober is configured ([endpoints] port_check is empty)"
                if not probers
                else "only probers that test TCP only are configured (echoip-style, portchecker.io)"
            )
        return PortEvidence(
            port=listener.port,
            protocol=listener.protocol,
            nonce=listener.nonce,
            listener=listener.state,
            listener_error=listener.error,
            mapping=state,
            mapping_detail=detail,
            external_port=ext,
            answer=answer,
            skipped_reason=skipped,
        )

    observed = next((a.observed_ip for a in answers if a is not None and a.observed_ip), None)
    nat = assess_nat(facts, observed, probers[0].label if probers else None)
    control_ev = {proto: evidence_for(c) for proto, c in controls.items()}
    target_ev = [evidence_for(t) for t in targets]
    asked_controls = {proto: c for proto, c in control_ev.items() if id(controls[proto]) in answer_of}
    maps = router_maps(facts.upnp)
    results = tuple(
        with_answer_reason(
            decide_port(
                ev,
                asked_controls.get(ev.protocol),
                nat,
                local_ip=local_ip,
                mapper_name=mapper.name if mapper else None,
                maps=maps,
                kept=kept.get((ev.port, ev.protocol)) if ev.mapping == "created" else None,
            ),
            ev,
        )
        for ev in target_ev
    )
    results = tuple(
        with_admin_page(replace(r, mapped_via=_mapped_via(ev, mapper)), facts.upnp)
        for r, ev in zip(results, target_ev, strict=True)
    )
    if mapper is not None and getattr(mapper, "restarted", False):
        # PCP's epoch went back during the run (RFC 6887 §8.5): the router lost its mappings.
        note = (
            "The router restarted during the test (its PCP epoch went back) and lost the test's mappings: "
            "a port it did not let in may have been cut off by the restart; run the test again."
        )
        results = tuple(replace(r, evidence=(*r.evidence, note)) if r.mapped_via else r for r in results)
    return PortCheckReport(
        results=results,
        nat=nat,
        facts=facts,
        mapper=mapper_label,
        mapper_problem=mapper_problem,
        controls=tuple(control_ev.values()),
        evidence=tuple(target_ev),
        leftovers=tuple(ledger.leftovers),
        prober_errors=prober_errors,
    )


async def ask_targets_then_controls(
    targets: Sequence[NonceListener],
    controls: dict[str, NonceListener],
    probe: Callable[[NonceListener], Awaitable[ProbeAnswer | None]],
    say: Callable[[str], None],
) -> dict[int, ProbeAnswer | None]:
    """Ask about the tested ports first (concurrently, at most four at a time), then
    about a protocol's control port only when one of its tested ports was *not
    reached*: a reached port needs no control, and a port nobody could answer for
    would not learn anything from one.  Returns listener id -> answer; a control
    that was not asked about is absent."""
    sem = asyncio.Semaphore(4)

    async def bounded(listener: NonceListener) -> ProbeAnswer | None:
        async with sem:
            return await probe(listener)

    out: dict[int, ProbeAnswer | None] = {}
    answers = await asyncio.gather(*(bounded(t) for t in targets))
    out.update(zip((id(t) for t in targets), answers, strict=True))
    needed = [
        c
        for proto, c in controls.items()
        if any(
            t.protocol == proto and a is not None and a.outcome == "not-reached"
            for t, a in zip(targets, answers, strict=True)
        )
    ]
    if needed:
        say("asking about a control port (a tested port was not reached)")
        control_answers = await asyncio.gather(*(bounded(c) for c in needed))
        out.update(zip((id(c) for c in needed), control_answers, strict=True))
    return out


async def _trace_if_needed(
    trace: asyncio.Future[tuple[str, ...] | None], answers: Sequence[ProbeAnswer | None]
) -> tuple[str, ...] | None:
    """The path only matters for a port that did not get in: when every tested port was
    reached, the traceroute (slow where hops stay silent) is not waited for."""
    if answers and all(a is not None and a.outcome == "reached" for a in answers):
        trace.cancel()
        return None
    try:
        return await trace
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        return None


async def _forwards_the_router_lists(
    facts: NetworkFacts, targets: Sequence[NonceListener], local_ip: str | None, opener: MapperOpener | None
) -> dict[int, tuple[MappingState, str | None, int | None]]:
    """Without --upnp: ask the router's UPnP table (read only) whether it forwards each port,
    so a forward the router confirms counts as evidence. Nothing is changed on the router.

    Only UPnP IGD can list forwards (NAT-PMP cannot), and many routers list only forwards made
    over UPnP, not those made in their web page: absence proves nothing."""
    out: dict[int, tuple[MappingState, str | None, int | None]] = {}
    if not facts.upnp.available or not local_ip:
        return out
    try:
        mapper, _why = await asyncio.wait_for((opener or open_mapper)(facts), 3.0)
    except Exception:
        return out
    if mapper is None or mapper.name != "UPnP":
        return out
    gate = asyncio.Semaphore(4)  # a few SOAP calls at once: a router answers them one by one anyway

    async def existing(listener: NonceListener) -> Any:
        async with gate:
            try:
                return await asyncio.wait_for(mapper.existing(listener.port, listener.protocol), 2.0)
            except Exception:
                return None

    asked = [t for t in targets if t.state not in ("denied", "error")]
    for listener, current in zip(asked, await asyncio.gather(*(existing(t) for t in asked)), strict=True):
        if current is None:
            continue
        label = f"{listener.port}/{listener.protocol.upper()}"
        if current.internal_host == local_ip and current.internal_port == listener.port:
            out[id(listener)] = (
                "existing",
                f"The router's UPnP table forwards {label} to this machine "
                f"({current.internal}, {current.description or 'no description'}).",
                listener.port,
            )
        else:
            out[id(listener)] = (
                "conflict",
                f"The router's UPnP table forwards {label} to {current.internal} "
                f"({current.description or 'no description'}), not to this machine.",
                None,
            )
    return out
