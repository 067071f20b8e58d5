"""The diagnosis runner: every probe at once, each with its own deadline, under one budget.

Order of events::

    t=0   local (routing table, ~10 ms)   http-echo × N   dns-echo × N   stun
    upnp + natpmp (need the gateway: read from /proc/net/route at once, else after local)
    local done ──► v6 echo cancelled if no global IPv6
    router done, something answered, router gave no usable WAN ──► traceroute
    each probe done ──► on_progress(ProbeRecord)
    all done, or the budget spent ──► summarize, decide_nat, build_findings ──► Diagnosis

A probe that raises, hangs or returns garbage becomes that probe's error record;
it never stops the others.  "Offline" needs evidence (issue 11), so a slow line is
never called offline:

- no route at all (no IPv4 or IPv6 default route), or no address (an interface
  with neither an IPv4 nor a global IPv6 address): nothing else is started;
- the network says there is no route: every HTTP echo failed with "network/host
  unreachable" (ICMP from a router without an uplink), or one did and nothing
  else answered within ``Deadlines.no_route_silence`` (routers rate-limit those
  ICMP errors, so the rest mostly stay silent): the outside probes are stopped,
  the router probe gets a short grace;
- otherwise only silence for the whole budget is "offline": until something
  answers, no outside probe is cut before the budget ends.

Once anything has answered, an outside probe that stays silent past its usual
deadline is cut ("while other services answered") — except the HTTP echoes while
none of them (of either family) has answered yet: "online" rests on their word, and
a lost SYN plus its lost retry (1 s + 2 s) is ordinary on a lossy line.

Each probe's deadline scales with the budget (``--budget 10`` gives every probe
2.5× its usual time), and once the line is known to be slow (its first answers
took more than ``SLOW_LINE_MS``; a satellite or congested mobile line at 700–1000
ms needs 3–4 s for one HTTPS echo) the outside probes may use the whole budget.
Traceroute only runs when it could change the NAT verdict (online, and the router
did not report a WAN address the outside confirms): where hops are silent it is
slow, and its worker thread cannot be cancelled (the process would wait for it at
exit).

The probe functions are injected (``ProbeSet``) so tests run the real runner
against fakes; ``default_probes()`` wires the real ones lazily.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from checks import __version__
from checks.addresses import is_public, parse_ip, split_host_port
from checks.config import Config
from checks.errors import AddressError
from checks.findings import SLOW_LINE_MS, build_findings, line_rtt_ms
from checks.model import (
    Connectivity,
    Diagnosis,
    ExternalInfo,
    ExternalSource,
    LocalInfo,
    ProbeRecord,
    ProbeStatus,
    UpnpInfo,
)
from checks.nat import decide_nat, hops_would_help

if TYPE_CHECKING:  # pragma: no cover
    import httpx

ProgressCallback = Callable[[ProbeRecord], None]


@dataclass(frozen=True)
class ProbeSet:
    """The probe functions the runner calls (signatures of ENGINE_API.md)."""

    gather_local: Callable[..., Awaitable[LocalInfo]]
    http_echo: Callable[..., Awaitable[ExternalSource]]
    dns_echo: Callable[..., Awaitable[ExternalSource]]
    stun_probe: Callable[..., Awaitable[tuple[tuple[ExternalSource, ...], bool | None]]]
    probe_router: Callable[..., Awaitable[UpnpInfo]]
    summarize_external: Callable[..., ExternalInfo]
    trace_hops: Callable[..., Awaitable[tuple[str, ...] | None]] | None = None
    # (hostname, resolvers=, timeout_s=) -> (ipv4, ipv6, error): what DNS serves for a configured name.
    current_addresses: Callable[..., Awaitable[tuple[str | None, str | None, str | None]]] | None = None
    # () -> the IPv4 default gateway, instantly (no subprocess): lets the router probe start at
    # once instead of after the local probe. None: wait for the local probe.
    quick_gateway: Callable[[], str | None] | None = None
    # (target, gateway, timeout_s=) -> a sentence when the router itself answers "no route"
    # (checks.probes.traceroute.gateway_has_no_route), else None.
    route_check: Callable[..., Awaitable[str | None]] | None = None
    # (hop, timeout_s=) -> (code, detail): PCP ANNOUNCE to the hop after the router (issue 16:
    # a carrier-grade NAT's PCP server; checks.portmap.pcp.ask_carrier_pcp).
    carrier_pcp: Callable[..., Awaitable[tuple[str, str]]] | None = None


def proc_default_gateway() -> str | None:
    """The main routing table's IPv4 default gateway from /proc/net/route (Linux), or None.

    The main table's gateway is the LAN router even when a VPN steers traffic with
    policy routing, which is the one NAT-PMP must ask.
    """
    from checks.probes.local import parse_proc_route

    try:
        with open("/proc/net/route", encoding="ascii", errors="replace") as fh:
            return parse_proc_route(fh.read())[1]
    except OSError:
        return None


def default_probes() -> ProbeSet:
    """The real probes (imported here so importing this module stays cheap)."""
    from checks.probes import local, publicip, stun, traceroute, upnp

    async def current_addresses(hostname: str, **kw: Any) -> tuple[str | None, str | None, str | None]:
        # Imported on use: only configurations with hostnames pay for it.
        from checks.dns.verify import current_addresses as lookup

        return await lookup(hostname, **kw)

    return ProbeSet(
        gather_local=local.gather_local,
        http_echo=publicip.http_echo,
        dns_echo=publicip.dns_echo,
        stun_probe=stun.stun_probe,
        probe_router=upnp.probe_router,
        summarize_external=publicip.summarize_external,
        trace_hops=traceroute.trace_hops,
        current_addresses=current_addresses,
        quick_gateway=proc_default_gateway,
        route_check=traceroute.gateway_has_no_route,
        carrier_pcp=_carrier_pcp,
    )


async def _carrier_pcp(hop: str, *, timeout_s: float = 1.0) -> tuple[str, str]:
    from checks.portmap.pcp import ask_carrier_pcp

    return await ask_carrier_pcp(hop, timeout_s=timeout_s)


@dataclass(frozen=True)
class Deadlines:
    """Each probe's own deadline in seconds (all further capped by the overall budget).

    Chosen so a lossy line (80 ms RTT, 15 % loss: a lost SYN costs a 1 s
    retransmission) still answers, while a dead one is not waited on for long.
    """

    local: float = 1.0
    # The outside probes' usual deadlines (at the default budget; scaled with it, and
    # stretched to the whole budget on a slow line or while nothing has answered yet).
    http: float = 2.5
    dns: float = 2.0
    stun: float = 1.5
    router: float = 2.0  # the most telling probe: IGD description + several SOAP calls in threads
    traceroute: float = 1.5
    published: float = 2.0
    route: float = 0.5  # the router's own "no route" answer (LAN: not scaled)
    # After the network said "no route": how much longer the router probe may run.
    offline_router_grace: float = 0.3
    # After one echo failed with "network/host unreachable" (the network's own word that
    # it has no route), silence this long from everything else means the network is down.
    # Longer than any working line's first answer (a 1000 ms round trip plus set-up).
    no_route_silence: float = 2.0
    # Slack on top of a probe's own timeout before the runner stops waiting for it.
    slack: float = 0.25


Kind = Literal["local", "http", "http6", "dns", "dns6", "stun", "router", "trace", "published", "route", "carrier"]
# Probes that talk to the internet: their waiting depends on what the line has shown so far.
_OUTSIDE: frozenset[str] = frozenset({"http", "http6", "dns", "dns6", "stun", "published"})
DEFAULT_BUDGET_S = 4.0
# Without an explicit --budget, a line found slow gets this much in all.
SLOW_LINE_BUDGET_S = 10.0


@dataclass
class _Job:
    kind: Kind
    name: str  # ProbeRecord name
    target: str
    deadline_s: float  # the probe's own timeout (outside probes: what is left of the budget)
    started: float = 0.0
    normal_s: float = 0.0  # outside probes: cut after this long while the line looks fast
    cutoff: float | None = None  # monotonic time after which the runner cancels it
    cancel_reason: str = ""
    cancel_status: ProbeStatus = "skipped"


@dataclass
class _Outcome:
    value: Any = None
    status: ProbeStatus = "ok"
    error: str | None = None
    ms: float = 0.0


@dataclass
class _State:
    local: LocalInfo | None = None
    http: dict[str, ExternalSource] = field(default_factory=dict)
    http6: dict[str, ExternalSource] = field(default_factory=dict)
    dns: dict[str, ExternalSource] = field(default_factory=dict)
    dns6: dict[str, ExternalSource] = field(default_factory=dict)
    stun: tuple[ExternalSource, ...] | None = None
    mapping_varies: bool | None = None
    upnp: UpnpInfo | None = None
    hops: tuple[str, ...] | None = None
    published: dict[str, list[str]] = field(default_factory=dict)
    no_route: str | None = None  # the router said it has no route to the internet
    carrier_pcp: tuple[str, str, str] | None = None  # (hop, code, detail)
    records: list[ProbeRecord] = field(default_factory=list)


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000, 1)


async def _bounded(make: Callable[[], Awaitable[Any]], deadline_s: float) -> _Outcome:
    """Run one probe under its deadline; exceptions and overruns become data."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(max(0.01, deadline_s)):
            value = await make()
    except TimeoutError:
        return _Outcome(None, "timeout", f"no result within {deadline_s:.1f} s", _ms(started))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a probe bug must not end the diagnosis
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        return _Outcome(
            None, "error", f"probe failed: {type(exc).__name__}" + (f": {text}" if text else ""), _ms(started)
        )
    return _Outcome(value, "ok", None, _ms(started))


def connectivity_of(local: LocalInfo | None, sources: Sequence[ExternalSource]) -> Connectivity:
    """online: an HTTP echo answered (what a DDNS client needs); limited: something else
    answered (DNS or STUN only: a captive portal or a filter); offline: nothing did."""
    answered = [s for s in sources if s.value]
    if not answered:
        return "offline"
    has_http = any(s.method == "http" for s in sources)
    if any(s.method == "http" for s in answered) or not has_http:
        return "online"
    return "limited"


def _no_route_at_all(local: LocalInfo) -> bool:
    """No IPv4 and no IPv6 default route: nothing outside can be reached."""
    if local.interface is not None or local.gateway_ipv4 is not None or local.gateway_ipv6 is not None:
        return False
    # Only trust "no route" when the routing table was read; not when reading it failed.
    return local.error is not None and "no ipv4" in local.error.lower()


def _host_of(endpoint: str) -> str | None:
    """The host part of an echo URL, a STUN "host:port" or a DNS echo "method@host:port"."""
    if "://" in endpoint:
        return urlsplit(endpoint).hostname
    if "@" in endpoint:
        endpoint = endpoint.split("@", 1)[1]
    try:
        return split_host_port(endpoint, default_port=0)[0]
    except AddressError:
        return endpoint


def traceroute_target(config: Config) -> str | None:
    """An address to trace toward: the first outside service given as an IPv4 literal,
    else the first echo service's name (resolved when the probe runs)."""
    ep = config.endpoints
    candidates = [*ep.ip_echo, *ep.stun, *(s for s in ep.dns_echo if "@" in s)]
    hosts = [h for h in (_host_of(c) for c in candidates) if h]
    for host in hosts:
        ip = parse_ip(host)
        if ip is not None and ip.version == 4:
            return str(ip)
    return hosts[0] if hosts else None


async def _resolve_v4(host: str) -> str | None:
    import socket

    if parse_ip(host) is not None:
        return host
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    return str(infos[0][4][0]) if infos else None


def _resolution_error(error: str | None) -> bool:
    """A name-resolution failure: says the resolver is broken, not that the network is down."""
    low = (error or "").lower()
    return "resolve" in low or "name or service" in low or "nodename" in low


def _source_status(src: ExternalSource) -> ProbeStatus:
    if src.value:
        return "ok"
    return "timeout" if src.error and ("within" in src.error or "timed out" in src.error) else "error"


def _failed_source(
    method: Literal["http", "dns", "stun"], endpoint: str, family: int, error: str, ms: float
) -> ExternalSource:
    return ExternalSource(method, endpoint, 6 if family == 6 else 4, None, error, ms)


async def run_diagnosis(
    config: Config,
    *,
    on_progress: ProgressCallback | None = None,
    budget_s: float | None = None,
    client: httpx.AsyncClient | None = None,
    probes: ProbeSet | None = None,
    deadlines: Deadlines | None = None,
) -> Diagnosis:
    """Run every probe concurrently and return the whole diagnosis.

    Never raises for network trouble; ``budget_s`` bounds the wall time. Without one the
    budget is ``DEFAULT_BUDGET_S`` (4 s), stretched up to ``SLOW_LINE_BUDGET_S`` (10 s) once
    the line shows itself slow, so a satellite line gets its HTTPS answers. ``client`` is
    used for the HTTP echoes when given (else one is made and closed here);
    ``probes`` and ``deadlines`` default to the real probes and their usual deadlines.
    """
    run = _Run(config, probes or default_probes(), deadlines or Deadlines(), budget_s, client, on_progress)
    return await run.execute()


class _Run:
    """One diagnosis in progress: the probe tasks, what they found, and the waiting policy."""

    def __init__(
        self,
        config: Config,
        probes: ProbeSet,
        deadlines: Deadlines,
        budget_s: float | None,
        client: httpx.AsyncClient | None,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.config = config
        self.ep = config.endpoints
        self.probes = probes
        self.dl = deadlines
        # An explicit budget is a hard limit; the default one may stretch on a slow line.
        self.budget_s = DEFAULT_BUDGET_S if budget_s is None else budget_s
        self.stretch_to_s = max(self.budget_s, SLOW_LINE_BUDGET_S) if budget_s is None else self.budget_s
        self.client = client
        self.own_client: httpx.AsyncClient | None = None
        self.on_progress = on_progress
        self.generated_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        self.t0 = time.monotonic()
        self.end = self.t0 + max(0.1, self.budget_s)
        self.max_end = self.t0 + max(0.1, self.stretch_to_s)
        self._timeout: asyncio.Timeout | None = None
        self.state = _State()
        self.jobs: dict[asyncio.Task[_Outcome], _Job] = {}
        self.router_started = False
        self.offline_decided = False
        self.trace_started = False
        self.no_route_at: float | None = None  # when the network first said "unreachable"
        # --budget 10 gives every probe 2.5x its usual time; a smaller budget caps them instead.
        self.scale = max(1.0, self.budget_s / DEFAULT_BUDGET_S)

    # --- the run ---------------------------------------------------------------------------

    async def execute(self) -> Diagnosis:
        try:
            await self._start_all()
            try:
                async with asyncio.timeout_at(asyncio.get_running_loop().time() + self._left()) as cm:
                    self._timeout = cm
                    await self._wait_for_jobs()
            except TimeoutError:
                await self._cancel(
                    list(self.jobs), f"stopped: the overall budget of {self.budget_s:g} s ran out", "timeout"
                )
        finally:
            for task in self.jobs:
                task.cancel()
            if self.own_client is not None:
                await self.own_client.aclose()
        return self._assemble()

    async def _start_all(self) -> None:
        # Latency first: the cheap probes that wait on the network go out before the
        # CPU-heavy setup (TLS context, dnspython's import) stalls the event loop.
        local_job = _Job("local", "local", "routing table", self.dl.local)
        self._start(local_job, lambda: self.probes.gather_local(timeout_s=local_job.deadline_s))
        try:
            gateway = self.probes.quick_gateway() if self.probes.quick_gateway is not None else None
        except Exception:  # only a shortcut: the local probe names the gateway anyway
            gateway = None
        if gateway:
            # First on the wire: routers rate-limit their "unreachable" answers (Linux: a burst of
            # 5, then one a second per sender), and this is the one that asks for it.
            self._start_route_check(gateway)
            self._start_router(gateway)
        self._start_stun()
        await asyncio.sleep(0)
        if self.client is None and (self.ep.ip_echo or self.ep.ip_echo_v6):
            from checks.http import make_client

            self.own_client = self.client = make_client(timeout_s=self.dl.http)
        self._start_echoes()

    async def _wait_for_jobs(self) -> None:
        while self.jobs:
            now = time.monotonic()
            wake = [c for c in (self._cutoff_of(j) for j in self.jobs.values()) if c is not None]
            if not self.offline_decided and self.no_route_at is not None:
                wake.append(self.no_route_at + self.dl.no_route_silence)
            timeout = max(0.0, min(wake) - now) if wake else None
            done, _ = await asyncio.wait(list(self.jobs), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            local_arrived = False
            for task in done:
                job = self.jobs.pop(task)
                self._record(job, task.result())
                local_arrived = local_arrived or job.kind == "local"
            if local_arrived and not await self._on_local():
                return
            await self._apply_policies()

    async def _on_local(self) -> bool:
        """React to the local facts; False when there is nothing more to wait for."""
        local = self.state.local
        assert local is not None
        if _no_route_at_all(local):
            self.offline_decided = True
            await self._cancel(list(self.jobs), "not tried: this host has no route to the internet", "skipped")
            return False
        if _no_address_at_all(local):
            self.offline_decided = True
            await self._cancel(
                list(self.jobs), "not tried: this host has no address to reach the internet from", "skipped"
            )
            return False
        if not local.ipv6_global and local.gateway_ipv6 is None:
            await self._cancel(
                self._pending("http6", "dns6"), "not tried: this host has no global IPv6 address", "skipped"
            )
        if not self.router_started:
            self._start_route_check(local.gateway_ipv4)
            self._start_router(local.gateway_ipv4)
        return True

    async def _apply_policies(self) -> None:
        """Stop waiting where the answer is already known (see the module docstring)."""
        st = self.state
        now = time.monotonic()
        for task, job in list(self.jobs.items()):
            cutoff = self._cutoff_of(job)
            if cutoff is not None and cutoff <= now and task in self.jobs:
                if job.kind in _OUTSIDE:
                    await self._cancel(
                        [task], f"no answer within {job.normal_s:g} s, while other services answered", "timeout"
                    )
                else:
                    await self._cancel([task], job.cancel_reason, job.cancel_status)
        if self.end < self.max_end and self._line_slow() and self._timeout is not None:
            # The default budget stretches on a slow line: its HTTPS answers need 3-4 round trips.
            self.end = self.max_end
            self.budget_s = self.stretch_to_s
            self._timeout.reschedule(asyncio.get_running_loop().time() + self._left())
        if not self.offline_decided and st.local is not None and not self._any_answer():
            if self.no_route_at is None and self._failed_outright() is not None:
                self.no_route_at = now
            if st.no_route:
                self.offline_decided = True
                await self._cancel(self._stop_outside(), f"stopped: {st.no_route}", "skipped")
            elif self._every_http_echo_unreachable():
                self.offline_decided = True
                await self._cancel(
                    self._stop_outside(),
                    "stopped: the network has no route to any IP echo service (every one was unreachable)",
                    "skipped",
                )
            elif self.no_route_at is not None and now >= self.no_route_at + self.dl.no_route_silence:
                # The network said "unreachable" once (routers rate-limit those ICMP errors, so the
                # rest mostly stay silent) and nothing answered since: no route, the network is down.
                self.offline_decided = True
                first = self._failed_outright()
                await self._cancel(
                    self._stop_outside(),
                    f"stopped waiting: {first.endpoint if first else 'an echo'} was unreachable "
                    f"({first.error if first else 'no route'}) and nothing outside answered "
                    f"within {self.dl.no_route_silence:g} s after that",
                    "timeout",
                )
        if self._any_answer() and self._pending("route"):
            await self._cancel(self._pending("route"), "not needed: the internet answered", "skipped")
        if (
            self.jobs
            and all(j.kind == "router" for j in self.jobs.values())
            and st.local is not None
            and not st.local.default_via_vpn
            and st.local.ipv4
            and is_public(st.local.ipv4)
            and self._any_answer()
        ):
            await self._cancel(self._pending("router"), "not needed: this host holds a public address", "skipped")
        if (
            not self.trace_started
            and not self.offline_decided
            and st.upnp is not None
            and st.local is not None
            and self._any_answer()
            and hops_would_help(st.local, st.upnp, self._external_ipv4_so_far())
        ):
            self.trace_started = True
            self._start_traceroute()

    def _cutoff_of(self, job: _Job) -> float | None:
        """When the runner stops waiting for this probe (None: only its own timeout)."""
        if job.kind not in _OUTSIDE:
            return job.cutoff
        if not self._any_answer() or self._line_slow():
            # Silence is not "offline" before the budget is spent, and a slow line needs it all.
            return None
        if job.kind in ("http", "http6") and not self._http_answered():
            # Connectivity is "online" only on an HTTP echo's word, so until one has answered the
            # echoes keep the whole budget: on a lossy line (80 ms, 15 % loss) a lost SYN and its
            # lost retry cost 1 s + 2 s, and cutting both echoes at their usual 2.5 s called a
            # working line "limited" in one CI run of ten. (Once one has answered, a silent echo of
            # the other family is cut as before: a broken IPv6 path must not cost the whole budget.)
            return None
        return job.started + job.normal_s

    def _line_slow(self) -> bool:
        rtt = line_rtt_ms(self._sources_so_far())
        return rtt is not None and rtt > SLOW_LINE_MS

    def _external_ipv4_so_far(self) -> str | None:
        """The IPv4 address most outside answers agree on so far."""
        values = [s.value for s in self._sources_so_far() if s.value and s.family == 4]
        return max(set(values), key=values.count) if values else None

    def _assemble(self) -> Diagnosis:
        st, ep = self.state, self.ep
        local = st.local or LocalInfo(None, None, None, error="the local probe did not finish")
        sources: list[ExternalSource] = [st.http[u] for u in ep.ip_echo if u in st.http]
        sources += [st.http6[u] for u in ep.ip_echo_v6 if u in st.http6]
        sources += [st.dns[s] for s in ep.dns_echo if s in st.dns]
        sources += [st.dns6[s] for s in ep.dns_echo_v6 if s in st.dns6]
        sources += list(st.stun or ())
        try:
            external = self.probes.summarize_external(sources, local=local, mapping_varies=st.mapping_varies)
        except Exception as exc:  # keep the report even if the summary has a bug
            external = ExternalInfo(
                None, None, False, tuple(sources), st.mapping_varies, f"summary failed: {type(exc).__name__}"
            )
        connectivity = connectivity_of(local, sources)
        target = traceroute_target(self.config)
        if not self.trace_started and self.probes.trace_hops is not None and target:
            self._emit(
                ProbeRecord(
                    "traceroute",
                    target,
                    "skipped",
                    0.0,
                    "",
                    "not needed: the network is down"
                    if connectivity == "offline"
                    else "not needed: the router reported its WAN address and the outside agrees"
                    if st.upnp is not None and (st.upnp.wan_ipv4 or st.upnp.natpmp_wan_ipv4)
                    else "not needed: the evidence already decides",
                )
            )
        upnp = st.upnp or UpnpInfo(available=False, error="the router probe did not run", natpmp_error="not tried")
        if st.carrier_pcp is not None:
            hop, code, detail = st.carrier_pcp
            upnp = replace(upnp, carrier_pcp=code, carrier_pcp_server=hop, carrier_pcp_detail=detail)
        nat = decide_nat(local, external, upnp, st.hops)
        findings = build_findings(
            connectivity,
            local,
            external,
            nat,
            upnp,
            published=st.published or None,
            budget_s=self.budget_s,
            no_route=st.no_route,
        )
        return Diagnosis(
            generated_at=self.generated_at,
            duration_ms=_ms(self.t0),
            connectivity=connectivity,
            local=local,
            external=external,
            nat=nat,
            upnp=upnp,
            findings=findings,
            probes=tuple(st.records),
            tool_version=__version__,
        )

    # --- starting probes -------------------------------------------------------------------

    def _left(self) -> float:
        return max(0.01, self.end - time.monotonic())

    def _start(self, job: _Job, make: Callable[[], Awaitable[Any]]) -> None:
        job.deadline_s = min(job.deadline_s * self.scale, self._left())
        if job.kind in _OUTSIDE:
            # The probe itself may use the whole budget; the runner cuts it at ``normal_s`` while
            # the line answers quickly (see _cutoff_of).
            job.normal_s = job.deadline_s
            job.deadline_s = max(job.normal_s, round(self.max_end - time.monotonic() - self.dl.slack, 1))
        job.started = time.monotonic()
        self.jobs[asyncio.ensure_future(_bounded(make, job.deadline_s + self.dl.slack))] = job

    def _start_timed(self, job: _Job, probe: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> None:
        """Start ``probe(*args, **kwargs, timeout_s=...)`` with the job's deadline as _start has
        set it (read when the probe starts, not when this is called)."""
        self._start(job, lambda: probe(*args, timeout_s=job.deadline_s, **kwargs))

    def _start_router(self, gateway: str | None) -> None:
        self.router_started = True
        j = _Job("router", "upnp", gateway or "SSDP multicast", self.dl.router)
        self._start(j, lambda: self.probes.probe_router(gateway, budget_s=max(0.1, j.deadline_s - 0.1)))

    def _start_route_check(self, gateway: str | None) -> None:
        check = self.probes.route_check
        target = traceroute_target(self.config)
        ip = parse_ip(target) if target else None
        if check is None or not gateway or ip is None or ip.version != 4:
            return
        j = _Job("route", "route-check", f"{target} via {gateway}", self.dl.route)
        self._start(j, lambda: check(str(ip), gateway, timeout_s=j.deadline_s))

    def _start_stun(self) -> None:
        if self.ep.stun:
            j = _Job("stun", "stun", ", ".join(self.ep.stun), self.dl.stun)
            self._start(j, lambda: self.probes.stun_probe(list(self.ep.stun), timeout_s=j.deadline_s))

    def _start_echoes(self) -> None:
        probes, ep, dl = self.probes, self.ep, self.dl
        for url in ep.ip_echo:
            j = _Job("http", "http-echo", url, dl.http)
            self._start_timed(j, probes.http_echo, self.client, url, family=4)
        for url in ep.ip_echo_v6:
            j = _Job("http6", "http-echo-v6", url, dl.http)
            self._start_timed(j, probes.http_echo, self.client, url, family=6)
        for spec in ep.dns_echo:
            j = _Job("dns", "dns-echo", spec, dl.dns)
            self._start_timed(j, probes.dns_echo, spec, family=4)
        for spec in ep.dns_echo_v6:
            # The IPv6 quorum needs a second kind of source (issue 11): the DNS echoes asked
            # over IPv6, as `update` asks them.
            j = _Job("dns6", "dns-echo-v6", spec, dl.dns)
            self._start_timed(j, probes.dns_echo, spec, family=6)
        lookup = probes.current_addresses
        if lookup is not None:
            for host in self.config.hosts:
                j = _Job("published", "dns-published", host.hostname, dl.published)
                self._start_timed(j, lookup, host.hostname, resolvers=list(ep.resolvers))

    def _start_traceroute(self) -> None:
        """Only when it can change the verdict (online, no usable WAN from the router): where
        hops stay silent it is slow, and its worker thread outlives a cancel."""
        target = traceroute_target(self.config)
        trace = self.probes.trace_hops
        if trace is None or not target:
            return
        # Hops answer one after another: on a slow line each needs more than a round trip.
        rtt = line_rtt_ms(self._sources_so_far())
        per_hop_s = 1.5 * rtt / 1000 if rtt else 0.0
        j = _Job("trace", "traceroute", target, max(self.dl.traceroute, 4 * per_hop_s))

        async def run_trace() -> tuple[str, ...] | None:
            address = await _resolve_v4(target)
            if address is None:
                return None
            return await trace(address, max_hops=4, timeout_s=max(0.1, j.deadline_s - 0.2))

        self._start(j, run_trace)

    # --- recording results -----------------------------------------------------------------

    def _emit(self, record: ProbeRecord) -> None:
        self.state.records.append(record)
        if self.on_progress is not None:
            self.on_progress(record)

    def _record(self, job: _Job, out: _Outcome, forced: ProbeStatus | None = None) -> None:
        """Store a probe's result and report it; ``forced``: it was cancelled, with this status."""
        {
            "local": self._record_local,
            "http": self._record_echo,
            "http6": self._record_echo,
            "dns": self._record_echo,
            "dns6": self._record_echo,
            "stun": self._record_stun,
            "router": self._record_router,
            "trace": self._record_trace,
            "published": self._record_published,
            "route": self._record_route,
            "carrier": self._record_carrier,
        }[job.kind](job, out, forced)

    def _record_carrier(self, job: _Job, out: _Outcome, forced: ProbeStatus | None) -> None:
        value = out.value
        if forced is None and isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
            code, detail = value
            self.state.carrier_pcp = (job.target, code, detail)
            status: ProbeStatus = "ok" if code in ("answered", "address-mismatch") else "error"
            self._emit(
                ProbeRecord(
                    "pcp-carrier",
                    f"{job.target}:5351",
                    status,
                    out.ms,
                    detail if status == "ok" else "",
                    None if status == "ok" else detail,
                )
            )
            return
        self._emit(
            ProbeRecord("pcp-carrier", f"{job.target}:5351", forced or out.status, out.ms, "", out.error or "no answer")
        )

    def _start_carrier_pcp(self, hops: tuple[str, ...]) -> None:
        """The hop after the router: a carrier-grade NAT may offer PCP (the only way in without a
        tunnel). Asked once the traceroute named it."""
        ask = self.probes.carrier_pcp
        if ask is None or len(hops) < 2:
            return
        hop = hops[1]
        ip = parse_ip(hop)
        if ip is None or ip.version != 4 or (self.state.local is not None and hop == self.state.local.gateway_ipv4):
            return
        j = _Job("carrier", "pcp-carrier", hop, 1.0)
        self._start(j, lambda: ask(hop, timeout_s=max(0.1, j.deadline_s - 0.1)))

    def _record_route(self, job: _Job, out: _Outcome, forced: ProbeStatus | None) -> None:
        said = out.value if isinstance(out.value, str) and forced is None else None
        self.state.no_route = said
        if said:
            self._emit(ProbeRecord("route-check", job.target, "error", out.ms, "", said))
        else:
            self._emit(
                ProbeRecord(
                    "route-check",
                    job.target,
                    forced or ("ok" if out.status == "ok" else out.status),
                    out.ms,
                    'no "no route" answer from the router' if forced is None else "",
                    out.error if forced or out.status != "ok" else None,
                )
            )

    def _record_local(self, job: _Job, out: _Outcome, forced: ProbeStatus | None) -> None:
        info = out.value if isinstance(out.value, LocalInfo) else None
        if info is None:
            info = LocalInfo(None, None, None, error=out.error or "the local probe returned nothing usable")
        self.state.local = info
        status: ProbeStatus = "ok" if info.error is None else ("timeout" if out.status == "timeout" else "error")
        summary = (
            f"{info.interface or '?'} {info.ipv4 or '-'} via {info.gateway_ipv4 or '-'}"
            + (f", {len(info.ipv6_global)} global IPv6" if info.ipv6_global else "")
            + (", default route through VPN" if info.default_via_vpn else "")
        )
        self._emit(ProbeRecord("local", "routing table", forced or status, out.ms, summary, info.error))

    def _record_echo(self, job: _Job, out: _Outcome, forced: ProbeStatus | None) -> None:
        method: Literal["http", "dns"] = "dns" if job.kind in ("dns", "dns6") else "http"
        src = out.value
        if not isinstance(src, ExternalSource):
            src = _failed_source(
                method,
                job.target,
                6 if job.kind in ("http6", "dns6") else 4,
                out.error or "the probe returned something that is not an answer",
                out.ms,
            )
        elif src.value and parse_ip(src.value) is None:
            src = replace(src, value=None, error=f"answer is not an IP address: {str(src.value)[:40]!r}")
        {"http": self.state.http, "http6": self.state.http6, "dns": self.state.dns, "dns6": self.state.dns6}[job.kind][
            job.target
        ] = src
        self._emit(
            ProbeRecord(
                job.name, job.target, forced or _source_status(src), src.ms or out.ms, src.value or "", src.error
            )
        )

    def _record_stun(self, job: _Job, out: _Outcome, forced: ProbeStatus | None) -> None:
        value = out.value
        sources: tuple[ExternalSource, ...] = ()
        varies = None
        if (
            isinstance(value, tuple)
            and len(value) == 2
            and isinstance(value[0], tuple)
            and all(isinstance(s, ExternalSource) for s in value[0])
        ):
            sources, varies = value[0], value[1] if isinstance(value[1], bool) else None
            sources = tuple(
                s
                if not s.value or parse_ip(s.value) is not None
                else replace(s, value=None, error="mapped address is not an IP address")
                for s in sources
            )
        error = out.error or (None if sources else "the STUN probe returned nothing usable")
        if not sources:
            sources = tuple(_failed_source("stun", s, 4, error or "no answer", out.ms) for s in self.ep.stun)
        self.state.stun, self.state.mapping_varies = sources, varies
        answered = [s for s in sources if s.value]
        status = "ok" if answered else (out.status if out.status != "ok" else _source_status(sources[0]))
        summary = ", ".join(f"{s.value}:{s.mapped_port}" for s in answered)
        if varies:
            summary += " (mapping varies by destination)"
        self._emit(
            ProbeRecord(
                "stun", job.target, forced or status, out.ms, summary, None if answered else (error or sources[0].error)
            )
        )

    def _record_router(self, job: _Job, out: _Outcome, forced: ProbeStatus | None) -> None:
        info = out.value if isinstance(out.value, UpnpInfo) else None
        if info is None:
            info = UpnpInfo(
                available=False,
                error=out.error or "the router probe returned nothing usable",
                natpmp_error=out.error or "not tried",
            )
        self.state.upnp = info
        failed: ProbeStatus = forced or ("timeout" if out.status == "timeout" else "error")
        summary = f"IGD found, WAN {info.wan_ipv4 or 'none'}, {len(info.mappings)} mappings" if info.found else "no IGD"
        self._emit(
            ProbeRecord(
                "upnp", info.location or job.target, "ok" if info.found else failed, out.ms, summary, info.error
            )
        )
        self._emit(
            ProbeRecord(
                "natpmp",
                f"{job.target}:5351" if job.target[:1].isdigit() else "no gateway",
                "ok" if info.natpmp_available else failed,
                out.ms,
                f"WAN {info.natpmp_wan_ipv4}" if info.natpmp_wan_ipv4 else "",
                None if info.natpmp_available else info.natpmp_error,
            )
        )
        if info.pcp_available or info.pcp_error:
            self._emit(
                ProbeRecord(
                    "pcp",
                    f"{job.target}:5351" if job.target[:1].isdigit() else "no gateway",
                    "ok" if info.pcp_available else failed,
                    out.ms,
                    f"epoch {info.pcp_epoch}" if info.pcp_available else "",
                    None if info.pcp_available else info.pcp_error,
                )
            )

    def _record_trace(self, job: _Job, out: _Outcome, forced: ProbeStatus | None) -> None:
        hops = out.value
        if forced is None and isinstance(hops, tuple) and all(isinstance(h, str) for h in hops):
            self.state.hops = hops
            self._emit(ProbeRecord("traceroute", job.target, "ok", out.ms, " → ".join(hops)))
            self._start_carrier_pcp(hops)
            return
        status: ProbeStatus = forced or ("skipped" if out.status == "ok" else out.status)
        self._emit(
            ProbeRecord(
                "traceroute",
                job.target,
                status,
                out.ms,
                "",
                out.error or "not possible here (needs root, or Linux for the unprivileged trace)",
            )
        )

    def _record_published(self, job: _Job, out: _Outcome, forced: ProbeStatus | None) -> None:
        value = out.value
        if forced is None and isinstance(value, tuple) and len(value) == 3:
            addrs = [a for a in value[:2] if isinstance(a, str) and a]
            self.state.published[job.target] = addrs
            err = value[2] if isinstance(value[2], str) else None
            self._emit(
                ProbeRecord("dns-published", job.target, "ok" if not err else "error", out.ms, ", ".join(addrs), err)
            )
            return
        self._emit(
            ProbeRecord(
                "dns-published",
                job.target,
                forced or (out.status if out.status != "ok" else "error"),
                out.ms,
                "",
                out.error or "lookup returned nothing usable",
            )
        )

    # --- stopping probes -------------------------------------------------------------------

    def _pending(self, *kinds: Kind) -> list[asyncio.Task[_Outcome]]:
        return [t for t, j in self.jobs.items() if j.kind in kinds]

    async def _cancel(self, tasks: Sequence[asyncio.Task[_Outcome]], reason: str, status: ProbeStatus) -> None:
        """Stop these probes and record them with ``status`` and ``reason``."""
        for task in tasks:
            job = self.jobs.pop(task)
            task.cancel()
            out = _Outcome(None, status, reason, _ms(job.started))
            if job.kind == "router":
                out.value = UpnpInfo(available=False, error=reason, natpmp_error=reason)
            elif job.kind == "stun":
                out.value = (tuple(_failed_source("stun", s, 4, reason, out.ms) for s in self.ep.stun), None)
            self._record(job, out, forced=status)
        if tasks:
            # Let them unwind; a probe that ignores cancellation is not waited for.
            await asyncio.wait(tasks, timeout=0.05)

    def _stop_outside(self) -> list[asyncio.Task[_Outcome]]:
        """The network is down: the outside probes to stop now; the router probe gets a short
        grace to say whether the router is there at all."""
        for task in self._pending("router"):
            job = self.jobs[task]
            job.cutoff = min(job.started + job.deadline_s, time.monotonic() + self.dl.offline_router_grace)
            job.cancel_reason = "stopped waiting: the network is down"
            job.cancel_status = "timeout"
        return self._pending("http", "dns", "stun", "trace", "http6", "dns6", "published", "carrier")

    # --- what the answers so far say -------------------------------------------------------

    def _sources_so_far(self) -> list[ExternalSource]:
        st = self.state
        return [*st.http.values(), *st.http6.values(), *st.dns.values(), *(st.stun or ())]

    def _http_answered(self) -> bool:
        return any(s.value and s.method == "http" for s in self._sources_so_far())

    def _any_answer(self) -> bool:
        return any(s.value for s in self._sources_so_far())

    def _every_http_echo_unreachable(self) -> bool:
        """Every IPv4 HTTP echo is back, none answered, each with "network/host unreachable":
        the network's own word that it has no route (a router without an uplink)."""
        st = self.state
        if not self.ep.ip_echo or self._pending("http") or len(st.http) < len(self.ep.ip_echo):
            return False
        return all(_no_route_error(s) for s in st.http.values())

    def _failed_outright(self) -> ExternalSource | None:
        """An echo that failed because the network has no route to it (ICMP unreachable)."""
        for s in self._sources_so_far():
            if _no_route_error(s):
                return s
        return None


def _no_route_error(src: ExternalSource) -> bool:
    """The source failed with "network/host unreachable" (not a timeout, refusal or bad name)."""
    low = (src.error or "").lower()
    return not src.value and ("unreachable" in low or "no route" in low) and not _resolution_error(src.error)


def _no_address_at_all(local: LocalInfo) -> bool:
    """An interface carries the default route but holds neither IPv4 nor global IPv6 (DHCP failed)."""
    return local.interface is not None and local.ipv4 is None and not local.ipv6_global and local.gateway_ipv6 is None
