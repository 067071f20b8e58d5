"""Inbound port test: "I forwarded the port — why can't my friend connect?"

A closed-loop test, not a boolean.  For each port asked (``8080``, ``51820/udp``):

1. **Listen.**  A temporary listener (checks/listener.py) on the port, on all
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
   (checks/probers.py: ``ddnsw+https://HOST[:PORT]`` the project's probe server
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

The verdict logic (``decide_port``), in order:

- The prober's answer carries our nonce → ``open`` (proven: it reached this
  process).  An echoip ``reachable: true`` with our listener up → ``open``
  (consistent, not proven).  Reached a pre-existing service → ``open``, "could not
  confirm it is this machine".  Reached *something* whose banner is not our nonce
  while our listener was up → ``not-forwarded``: the router forwards the port to
  another device, or answers on it itself.
- Not reached, and an upstream NAT is established (``decide_nat`` says ``cgnat``
  or ``double-nat``: router WAN in 100.64/10 or private, or differing from the
  address the internet sees, ...) → ``upstream-nat``: no forwarding on the home
  router can help (double NAT: only together with the box in front).
- Could not listen (no root for a low port, other bind error) and nothing else
  listens → ``unknown``: a failed probe of a port nobody listens on proves nothing.
- No prober answered (network error, 4xx/5xx, garbage, rate limit), or only
  echoip-style probers for a UDP port → ``unknown``, with the reason.
- A pre-existing UDP service that stayed silent → ``unknown``: many UDP services
  (WireGuard) never answer a datagram they do not recognise, so silence proves
  nothing about the path.
- Not reached, and the control port *was* reached:
  the control passing shows the path from the internet to this machine works for
  an arbitrary port, mapped exactly like this one.  With ``--upnp`` both are mapped
  by the router, so the difference is the port number itself → ``isp-blocked``
  (forwarded and listening, filtered upstream while the control passes).  Without
  ``--upnp`` the unmapped control passing means the router lets every port through
  (DMZ / exposed host, or no NAT at all) → also ``isp-blocked``.  If this port's
  mapping failed or conflicts while the control's worked → ``not-forwarded``.
- Not reached, and the control failed too:
  without ``--upnp`` the control is unmapped, so its failure is expected and
  carries no information: we cannot know whether the router forwards this port
  (the common case: it does not, or to another LAN address) → ``not-forwarded``,
  with the hint that a manual forward to *this* address that still fails needs a
  ``--upnp`` run to tell an ISP block apart.  With ``--upnp`` both mappings were
  accepted yet neither works → ``not-forwarded`` too (the router's own firewall
  drops them, or the ISP filters all inbound), with both explanations.  With
  ``--upnp`` but no mapping possible (no IGD/NAT-PMP, or the router refused) the
  run is no better than one without ``--upnp``, and says so; a conflicting
  mapping (the port forwarded to another LAN host) is reported as such.
- Cancellation: Ctrl-C, SIGTERM and SIGHUP cancel the run; every mapping the
  ledger holds — including one whose creation was still in flight — is removed
  in ``finally``.  Unit tests check this against a fake IGD that records its
  add/delete calls; the lab tests do the same against a real miniupnpd, with
  ``upnpc -l`` as the independent witness.
- This host holds the public address itself (``decide_nat`` says ``none``): no
  router is involved; the same control logic applies (control passes →
  ``isp-blocked``, else ``not-forwarded`` with "check this host's firewall").

Evidence sentences name every fact used; each verdict carries its fix.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Literal, Protocol as TypingProtocol, Sequence

from .addresses import parse_ip
from .config import Endpoints
from .errors import UsageError
from .listener import ListenState, NonceListener, banner_has_nonce, new_nonce, open_listener
from .model import (ExternalInfo, ExternalSource, LocalInfo, NatResult, PortMapping, PortResult,
                    UpnpInfo)

if TYPE_CHECKING:  # pragma: no cover
    import httpx   # imported lazily: only a port check that asks a prober needs it

Protocol = Literal["tcp", "udp"]
MappingState = Literal["none", "created", "existing", "conflict", "failed", "unavailable"]

CONTROL_PORT_RANGE = (40000, 59999)
TEST_LEASE_S = 300          # short lease: even a SIGKILLed run leaves nothing for long
ISP_COMMONLY_BLOCKED = {25, 80, 135, 137, 138, 139, 443, 445}
MAPPING_DESCRIPTION = "ddns-wizard port test"

HAIRPIN_NOTE = (
    "This test asks a prober outside your network to connect in. Testing from inside your LAN "
    "against your own public address or DDNS name proves nothing either way: it depends on the "
    "router's hairpin NAT (NAT loopback), which many routers lack. If the service works from "
    "outside but not from home by name, enable NAT loopback on the router, or use split DNS / a "
    "hosts-file entry mapping the name to the server's LAN address."
)


# --------------------------------------------------------------------------- port specs


@dataclass(frozen=True)
class PortSpec:
    port: int
    protocol: Protocol = "tcp"

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol}"


def parse_port_spec(text: str) -> PortSpec:
    """``"8080"``, ``"8080/tcp"``, ``"51820/udp"`` → PortSpec; UsageError otherwise."""
    raw = text.strip().lower()
    port_text, _, proto = raw.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise UsageError(f"'{text}': protocol must be tcp or udp (e.g. 8080/tcp, 51820/udp)")
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:   # '²'.isdigit()
        raise UsageError(f"'{text}': a port is a number from 1 to 65535")
    return PortSpec(int(port_text), proto)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- probers
# The prober clients (forms, requests pinned to a family, limits) live in checks/probers.py.

from .probers import (  # noqa: E402,F401  (re-exported: callers and tests import them from here)
    ProbeAnswer, Prober, ProberPacer, _snippet, ask_prober, ask_probers, parse_probe_response, parse_prober,
    parse_probers,
)


# --------------------------------------------------------------------------- mappings


class MappingError(Exception):
    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class Mapper(TypingProtocol):
    """Creates and removes port mappings on the router (UPnP IGD or NAT-PMP)."""

    name: str

    @property
    def lan_address(self) -> str | None: ...

    async def existing(self, external_port: int, protocol: Protocol, *, strict: bool = False
                       ) -> PortMapping | None: ...

    async def add(self, external_port: int, protocol: Protocol, internal_host: str, internal_port: int,
                  lease_s: int, description: str) -> int: ...

    async def remove(self, external_port: int, protocol: Protocol, internal_port: int) -> None: ...


class UpnpMapper:
    """Mappings through an IGD client (checks.upnp.IgdClient, or a fake with the same methods)."""

    name = "UPnP"

    def __init__(self, igd: Any) -> None:
        self.igd = igd

    @property
    def lan_address(self) -> str | None:
        return getattr(self.igd, "lan_address", None) or None

    async def existing(self, external_port: int, protocol: Protocol, *, strict: bool = False
                       ) -> PortMapping | None:
        """The router's mapping on this port. A failed lookup is "none known", unless
        ``strict``: then it raises, so a cleanup never mistakes a silent router for a clean one."""
        try:
            return await self.igd.get_mapping(external_port, protocol.upper())
        except Exception:
            if strict:
                raise
            return None

    async def add(self, external_port: int, protocol: Protocol, internal_host: str, internal_port: int,
                  lease_s: int, description: str) -> int:
        try:
            await self.igd.add_mapping(external_port, protocol.upper(), internal_host, internal_port,
                                       description, lease_s)
        except Exception as exc:
            raise MappingError(upnp_error_text(exc), code=getattr(exc, "code", None)) from None
        return external_port

    async def remove(self, external_port: int, protocol: Protocol, internal_port: int) -> None:
        try:
            deleted = await self.igd.delete_mapping(external_port, protocol.upper())
        except Exception as exc:
            raise MappingError(upnp_error_text(exc), code=getattr(exc, "code", None)) from None
        if not deleted:
            # Gone already (lease expired) is fine; still there is not.
            still = await self.existing(external_port, protocol)
            if still is not None:
                raise MappingError("the router refused to delete it")


class NatPmpMapper:
    """Mappings through NAT-PMP (RFC 6886): always to the requesting host; the router may
    grant another external port than asked."""

    name = "NAT-PMP"

    def __init__(self, gateway: str, local_address: str | None,
                 map_fn: Callable[..., Awaitable[Any]] | None = None) -> None:
        self.gateway = gateway
        self._local = local_address
        self._map = map_fn

    @property
    def lan_address(self) -> str | None:
        return self._local

    async def _call(self, *args: Any) -> Any:
        if self._map is None:
            from .natpmp import natpmp_map

            self._map = natpmp_map
        return await self._map(self.gateway, *args)

    async def existing(self, external_port: int, protocol: Protocol, *, strict: bool = False
                       ) -> PortMapping | None:
        if strict:
            raise MappingError("NAT-PMP cannot list mappings")
        return None   # NAT-PMP cannot list mappings

    async def add(self, external_port: int, protocol: Protocol, internal_host: str, internal_port: int,
                  lease_s: int, description: str) -> int:
        reply = await self._call(protocol, internal_port, external_port, lease_s)
        if not reply.ok:
            raise MappingError(f"NAT-PMP refused: {reply.error or 'no reply'}", code=reply.result_code)
        return int(reply.external_port or external_port)

    async def remove(self, external_port: int, protocol: Protocol, internal_port: int) -> None:
        reply = await self._call(protocol, internal_port, 0, 0)
        if not reply.ok:
            raise MappingError(f"NAT-PMP refused to delete it: {reply.error or 'no reply'}",
                               code=reply.result_code)


UPNP_ERRORS: dict[int, str] = {
    606: "the router refused: action not authorized (606). Enable UPnP port mapping in the router's "
         "settings, or forward the port by hand",
    714: "no such mapping on the router (714)",
    718: "conflict (718): this external port is already mapped, perhaps to another device (routers in "
         "secure mode also refuse mappings that point at another LAN host)",
    724: "the router requires the external and internal ports to be the same (724)",
    725: "the router accepts only permanent mappings (725)",
    728: "the router's mapping table is full (728): remove unused mappings (`ddns-wizard upnp list`)",
    729: "conflict with another mechanism (729): the port is used by the router itself or by a static "
         "forward / another protocol (NAT-PMP, PCP)",
}


def upnp_error_text(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if isinstance(code, int) and code in UPNP_ERRORS:
        return UPNP_ERRORS[code]
    text = str(exc) or type(exc).__name__
    if code and str(code) not in text:
        text += f" (UPnP error {code})"
    return text


@dataclass
class CreatedMapping:
    mapper: Any
    external_port: int
    protocol: Protocol
    internal_host: str
    internal_port: int
    uncertain: bool = False     # the add call failed in a way that may have created it anyway

    def describe(self) -> str:
        return (f"{self.mapper.name} mapping {self.external_port}/{self.protocol.upper()} → "
                f"{self.internal_host}:{self.internal_port}")


@dataclass
class MappingLedger:
    """Every mapping the test created, so all of them are removed afterwards.

    ``leftovers`` lists (mapping description, error) for removals that failed: the
    caller must show them loudly."""

    created: list[CreatedMapping] = field(default_factory=list)
    removed: list[CreatedMapping] = field(default_factory=list)
    leftovers: list[tuple[str, str]] = field(default_factory=list)

    def record(self, mapping: CreatedMapping) -> None:
        self.created.append(mapping)

    async def remove_all(self, *, timeout_s: float = 5.0) -> None:
        pending = [m for m in self.created if m not in self.removed]

        async def remove_one(m: CreatedMapping) -> None:
            try:
                async with asyncio.timeout(timeout_s):
                    await m.mapper.remove(m.external_port, m.protocol, m.internal_port)
                self.removed.append(m)
            except TimeoutError:
                self.leftovers.append((m.describe(), f"the router did not answer within {timeout_s:g} s"))
            except MappingError as exc:
                if m.uncertain and not await self._still_there(m):
                    self.removed.append(m)   # never created after all
                else:
                    self.leftovers.append((m.describe(), str(exc)))
            except Exception as exc:   # never let one failure stop the other removals
                self.leftovers.append((m.describe(), f"{type(exc).__name__}: {exc}"))

        await asyncio.gather(*(remove_one(m) for m in pending))

    @staticmethod
    async def _still_there(m: CreatedMapping) -> bool:
        """Could this uncertain mapping exist? Only a router that answered "no" says no."""
        try:
            async with asyncio.timeout(2.0):
                current = await m.mapper.existing(m.external_port, m.protocol, strict=True)
        except Exception:
            return True    # could not ask (router down, NAT-PMP): report it rather than guess
        return current is not None and current.internal_host == m.internal_host


async def remove_shielded(ledger: MappingLedger, *, timeout_s: float = 5.0) -> None:
    """Remove every recorded mapping even while this task is being cancelled.

    A second Ctrl-C during cleanup must not leave mappings behind: the removal runs
    in its own task and we keep waiting for it (it has its own deadline)."""
    task = asyncio.ensure_future(ledger.remove_all(timeout_s=timeout_s))
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            continue
        except Exception:
            break


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class NetworkFacts:
    """What the engine knows about this network before probing."""

    local: LocalInfo
    upnp: UpnpInfo
    hops: tuple[str, ...] | None = None


async def gather_facts(*, budget_s: float = 2.5) -> NetworkFacts:
    """This host's addresses and the router's UPnP/NAT-PMP view (bounded; failures as data)."""
    from .local import gather_local

    try:
        local = await asyncio.wait_for(gather_local(), budget_s)
    except Exception as exc:
        local = LocalInfo(None, None, None, error=f"could not read local addresses: {exc}")
    try:
        from .upnp import probe_router

        upnp = await asyncio.wait_for(probe_router(local.gateway_ipv4), budget_s)
    except Exception as exc:
        upnp = UpnpInfo(available=False, error=f"UPnP/NAT-PMP probe failed: {type(exc).__name__}: {exc}")
    return NetworkFacts(local=local, upnp=upnp)


def assess_nat(facts: NetworkFacts, observed_ip: str | None, prober: str | None = None) -> NatResult:
    """The engine's NAT verdict with the public address the prober saw."""
    from .nat import decide_nat

    sources: tuple[ExternalSource, ...] = ()
    if observed_ip:
        sources = (ExternalSource("http", prober or "port prober", 4, observed_ip, None, 0.0),)
    external = ExternalInfo(ipv4=observed_ip, ipv6=None, agreement=True, sources=sources)
    return decide_nat(facts.local, external, facts.upnp, facts.hops)


async def open_mapper(facts: NetworkFacts) -> tuple[Mapper | None, str]:
    """A mapper for this router: UPnP IGD first, else NAT-PMP; (None, why) when neither."""
    upnp = facts.upnp
    reasons: list[str] = []
    if upnp.found and upnp.location:
        try:
            from .upnp import IgdClient

            igd = await IgdClient.connect(upnp.location)
            return UpnpMapper(igd), f"UPnP IGD at {upnp.location}"
        except Exception as exc:
            reasons.append(f"the UPnP IGD at {upnp.location} could not be used ({exc})")
    if upnp.natpmp_available and facts.local.gateway_ipv4:
        return NatPmpMapper(facts.local.gateway_ipv4, facts.local.ipv4), f"NAT-PMP at {facts.local.gateway_ipv4}"
    if not upnp.found:
        reasons.append("no UPnP IGD answered")
    if not upnp.natpmp_available:
        reasons.append("NAT-PMP did not answer" + (f" ({upnp.natpmp_error})" if upnp.natpmp_error else ""))
    return None, "; ".join(reasons)


# --------------------------------------------------------------------------- evidence and verdicts


@dataclass(frozen=True)
class PortEvidence:
    """Everything observed about one port (tested or control)."""

    port: int
    protocol: Protocol
    nonce: str
    listener: ListenState
    listener_error: str | None = None
    mapping: MappingState = "none"
    mapping_detail: str | None = None
    external_port: int | None = None     # differs from port only when NAT-PMP chose another
    answer: ProbeAnswer | None = None
    skipped_reason: str | None = None    # why no prober was asked

    @property
    def label(self) -> str:
        return f"{self.port}/{self.protocol}"

    @property
    def mapped(self) -> bool:
        return self.mapping in ("created", "existing")


Reach = Literal["ours", "ours-unconfirmed", "service", "other", "no", "unknown"]


def classify_reach(ev: PortEvidence) -> Reach:
    a = ev.answer
    if a is None or a.outcome == "no-answer":
        return "unknown"
    if a.outcome == "not-reached":
        return "no"
    if a.kind == "ddnsw":
        if banner_has_nonce(a.banner, ev.nonce):
            return "ours"
        return "service" if ev.listener == "in-use" else "other"
    return "ours-unconfirmed" if ev.listener == "listening" else "service"


def _answer_sentence(ev: PortEvidence) -> str:
    a = ev.answer
    ext = ev.external_port or ev.port
    if a is None:
        return f"No outside prober was asked about {ev.label}" + (f": {ev.skipped_reason}." if ev.skipped_reason else ".")
    if a.outcome == "no-answer":
        return f"No outside prober answered for {ev.label}: {a.error}."
    where = f"{a.observed_ip}:{ext}" if a.observed_ip else f"port {ext}"
    if a.kind in ("echoip", "portchecker"):
        return (f"{a.prober} ({'echoip-style' if a.kind == 'echoip' else 'portchecker.io API'}) tried {where} "
                "from outside: "
                f"{'reachable' if a.outcome == 'reached' else 'not reachable'}.")
    if ev.protocol == "udp":
        if a.outcome == "reached":
            return f"{a.prober} sent a UDP probe to {where} and got the reply {_snippet(a.banner or '')!r}."
        return f"{a.prober} sent UDP probes to {where}: no reply ({a.result})."
    if a.outcome == "reached":
        banner = f"read {_snippet(a.banner)!r}" if a.banner else "read nothing"
        return f"{a.prober} connected to {where} from outside and {banner}."
    word = {"refused": "the connection was refused (something sent a reset)",
            "timeout": "the connection timed out (packets dropped on the way)",
            "error": f"the connection failed ({a.error or 'error'})"}.get(a.result or "", a.result or "failed")
    return f"{a.prober} tried {where} from outside: {word}."


def _listener_sentence(ev: PortEvidence) -> str:
    if ev.listener == "listening":
        return f"A temporary listener on this machine answered on {ev.label} with a random nonce."
    if ev.listener == "in-use":
        return f"A service already listens on {ev.label} on this machine, so that service was tested."
    return (ev.listener_error or f"Could not listen on {ev.label}.").rstrip(".") + "."


def _mapping_sentence(ev: PortEvidence, mapper_name: str | None) -> str | None:
    if ev.mapping == "none":
        return None
    if ev.mapping_detail:
        return ev.mapping_detail.rstrip(".") + "."
    return f"{mapper_name or 'Router'} mapping state: {ev.mapping}."


def forward_fix(spec_port: int, protocol: str, local_ip: str | None) -> str:
    ip = local_ip or "this machine's LAN address"
    return (
        f"Give this machine a fixed LAN address ({ip}): a DHCP reservation in the router, or a static "
        f"address. Then, in the router's web page (look for 'Port forwarding', 'Virtual server', 'NAT' or "
        f"'Applications'), forward {protocol.upper()} port {spec_port} to {ip} port {spec_port} — or let "
        f"this tool do it over UPnP: `ddns-wizard upnp add {spec_port}/{protocol}`. Also allow the port "
        "in this machine's firewall (ufw, firewalld, Windows Defender Firewall)."
    )


def isp_block_fix(port: int, protocol: str) -> str:
    common = " ISPs commonly block 25, 80, 443 and 445 inbound on residential lines." if port in ISP_COMMONLY_BLOCKED else ""
    return (
        f"Your ISP filters inbound {protocol.upper()} port {port}.{common} Use another external port "
        f"(forward e.g. 8443 → {port} and give people the new port), a tunnel (Cloudflare Tunnel, ngrok, "
        "Tailscale Funnel), or ask the ISP to lift the block (business lines usually have none)."
    )


def upstream_nat_fix(nat: NatResult) -> str:
    if nat.verdict == "double-nat":
        wan = nat.router_wan_ipv4 or "your router's WAN address"
        return (
            "Another router sits in front of yours (usually the ISP's modem-router). Put that box in "
            "bridge/modem mode, or forward the port on it too (to your router's WAN address "
            f"{wan}), or make your router its DMZ host. If the box is the ISP's carrier-grade NAT rather "
            "than a device in your home, forwarding cannot help: see the CGNAT alternatives (a public "
            "IPv4 from the ISP, IPv6, a tunnel)."
        )
    return (
        "Under carrier-grade NAT your line has no public IPv4 address of its own, so no forwarding at "
        "home can help. Ask the ISP for a public IPv4 address (often free or cheap on request), use "
        "IPv6 if your line has it, or use a tunnel (Cloudflare Tunnel, ngrok, Tailscale Funnel) or a VPN/VPS "
        "with a public exit address."
    )


def decide_port(ev: PortEvidence, control: PortEvidence | None, nat: NatResult, *,
                local_ip: str | None = None, mapper_name: str | None = None) -> PortResult:
    """The verdict for one port from its evidence (pure; logic in the module docstring)."""
    evidence: list[str] = [_listener_sentence(ev)]
    m = _mapping_sentence(ev, mapper_name)
    if m:
        evidence.append(m)
    evidence.append(_answer_sentence(ev))
    if ev.external_port and ev.external_port != ev.port:
        evidence.append(f"The router granted external port {ev.external_port} instead of {ev.port}.")
    reach = classify_reach(ev)
    control_reach = classify_reach(control) if control is not None else None
    if control is not None and reach in ("no", "unknown"):
        passed = control_reach in ("ours", "ours-unconfirmed")
        how = "mapped the same way" if control.mapped else "not forwarded"
        if control_reach == "unknown":
            evidence.append(f"Control port {control.label} ({how}): no prober answered for it.")
        else:
            evidence.append(f"Control port {control.label} ({how}) was "
                            f"{'reached from outside' if passed else 'not reached either'}.")
    upstream = nat.verdict in ("cgnat", "double-nat")
    no_nat = nat.verdict == "none"

    def result(verdict: str, fix: str, extra: Sequence[str] = ()) -> PortResult:
        return PortResult(port=ev.port, protocol=ev.protocol, verdict=verdict,  # type: ignore[arg-type]
                          evidence=tuple(evidence) + tuple(extra), fix=fix,
                          service_was_listening=ev.listener == "in-use", upnp_mapped=ev.mapped)

    if reach == "ours":
        return result("open", "Nothing to fix: the port reaches this machine from the internet. " + HAIRPIN_NOTE,
                      ["The prober read our nonce back: it reached this very machine."])
    if reach == "ours-unconfirmed":
        return result("open", "Nothing to fix. " + HAIRPIN_NOTE,
                      ["An echoip-style prober only says 'reachable', so this cannot prove the answer came "
                       "from this machine; the project's probe server (ddnsw+https://...) can."])
    if reach == "service":
        return result("open", "Nothing to fix for reachability. " + HAIRPIN_NOTE,
                      ["Reached a service on this port; could not confirm it is this machine (its answer "
                       "does not carry our nonce)."])
    if reach == "other":
        return result("not-forwarded", forward_fix(ev.port, ev.protocol, local_ip), [
            "Something answered from outside, but not this machine (no nonce in its answer): the router "
            "forwards this port to another device, or answers on it itself (a router admin page or VPN "
            "server often sits on 80, 443 or 8080)."])

    # Not reached, or no prober answered.
    if upstream and reach in ("no", "unknown"):
        return result("upstream-nat", upstream_nat_fix(nat), list(nat.evidence))
    if ev.listener in ("denied", "error"):
        fix = ("Run the test as root (sudo) so it can listen on this port, or start the real service "
               "on it first and test again." if ev.listener == "denied"
               else "Free the port or pick another one, then test again.")
        return result("unknown", fix, ["Nothing listened on this port, so a failed probe would prove nothing."])
    if reach == "unknown":
        if ev.answer is None and ev.protocol == "udp":
            fix = ("UDP can only be tested through the project's probe server: add "
                   "\"ddnsw+https://HOST\" to [endpoints] port_check (run `ddns-wizard probe-server` on a "
                   "machine outside your network).")
        else:
            fix = ("No outside prober answered: check this machine's internet connection and "
                   "[endpoints] port_check in the configuration, then try again.")
        return result("unknown", fix)

    # reach == "no": the probe failed although something listened here.
    if ev.protocol == "udp" and ev.listener == "in-use":
        return result("unknown",
                      f"Stop the service on {ev.label} for a moment and test again, so the tool's own listener "
                      "can answer the probe.",
                      ["A UDP service already listens on this port and did not answer the probe datagram; many "
                       "UDP services (WireGuard, for one) stay silent to packets they do not recognise, so "
                       "silence proves nothing."])
    nat_context = list(nat.evidence) if nat.verdict in ("nat", "unknown") else []
    common = (f" Port {ev.port} is one ISPs commonly block inbound." if ev.port in ISP_COMMONLY_BLOCKED
              and ev.protocol == "tcp" else "")
    if control_reach in ("ours", "ours-unconfirmed"):
        assert control is not None
        if control.mapped and not ev.mapped and ev.mapping != "none":
            return result("not-forwarded", forward_fix(ev.port, ev.protocol, local_ip), [
                f"The control port, mapped by the router, was reached while {ev.label} could not be "
                "mapped: the router does not forward it to this machine."])
        if ev.mapped or not control.mapped:
            why = ("Both ports were forwarded to this machine and listened; only the control port got "
                   "through, so something upstream filters this port number." if ev.mapped else
                   "The control port got through without any forwarding, so the path into this machine is "
                   "open for arbitrary ports (no NAT here, or the router exposes this host / DMZ); this port "
                   "alone is filtered upstream.")
            return result("isp-blocked", isp_block_fix(ev.port, ev.protocol), [why + common])
    if no_nat:
        return result("not-forwarded",
                      "This machine holds the public address itself, so no router forwarding is involved: "
                      "allow the port in this machine's firewall (ufw, firewalld, nftables) and in any "
                      "provider firewall / security group in front of it.",
                      ["This machine holds the public address, yet neither this port nor the control port "
                       "was reached: a firewall drops them."])
    if ev.mapped and control is not None and control.mapped:
        return result("not-forwarded", forward_fix(ev.port, ev.protocol, local_ip) +
                      " If the mappings exist but nothing gets in, check the router's own firewall, or ask "
                      "the ISP whether it filters all inbound connections.",
                      ["The router accepted the mappings for this port and the control port, yet neither "
                       "was reached from outside: the router's own firewall drops them, or the ISP filters "
                       "all inbound connections, or another NAT upstream went unnoticed."] + nat_context)
    if ev.mapped:
        return result("not-forwarded", forward_fix(ev.port, ev.protocol, local_ip),
                      ["The router accepted the mapping, yet the port was not reached from outside; without "
                       "a working control port an ISP block cannot be told apart from the router's firewall."]
                      + nat_context)
    hint = ("Without --upnp this test cannot see whether the router forwards the port; the unmapped control "
            "port failing is expected. Most often the port is simply not forwarded, or forwarded to another "
            f"LAN address. If you did forward it to {local_ip or 'this machine'}, run again with --upnp (or "
            "check the router's firewall) to tell an ISP block apart." + common)
    extra = [hint] + nat_context
    if ev.mapping == "conflict":
        extra = ["The router forwards this port to another device, not to this machine."] + nat_context
    elif ev.mapping in ("failed", "unavailable"):
        hint = ("The port could not be mapped for the test, so, as without --upnp, this test cannot see "
                "whether the router forwards it (a manual forward may exist); most often it is simply not "
                f"forwarded, or forwarded to another LAN address than {local_ip or 'this machine'}." + common)
        extra = [hint] + nat_context
    return result("not-forwarded", forward_fix(ev.port, ev.protocol, local_ip), extra)


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class PortCheckReport:
    results: tuple[PortResult, ...]
    nat: NatResult | None
    facts: NetworkFacts | None
    mapper: str | None = None                       # "UPnP IGD at ..." / "NAT-PMP at ..."
    mapper_problem: str | None = None               # why --upnp could not map
    controls: tuple[PortEvidence, ...] = ()
    evidence: tuple[PortEvidence, ...] = ()
    leftovers: tuple[tuple[str, str], ...] = ()     # mappings that could not be removed
    prober_errors: tuple[str, ...] = ()


FactsGatherer = Callable[[], Awaitable[NetworkFacts]]
MapperOpener = Callable[[NetworkFacts], Awaitable[tuple["Mapper | None", str]]]


async def _pick_control(protocol: Protocol, taken: set[int], mapper: Mapper | None,
                        rng: random.Random) -> NonceListener | None:
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


# UPnP faults that mean the router refused before creating anything.
_REFUSED_NOT_CREATED = frozenset({401, 402, 600, 601, 606, 716, 718, 724, 725, 728, 729})


async def _map_one(mapper: Mapper, ledger: MappingLedger, port: int, protocol: Protocol,
                   internal_host: str, lease_s: int) -> tuple[MappingState, str, int | None]:
    current = await mapper.existing(port, protocol)
    if current is not None:
        if current.internal_host == internal_host and current.internal_port == port:
            return "existing", (f"The router already forwards {port}/{protocol.upper()} to this machine "
                                f"({current.internal}, {current.description or 'no description'}); left as is."), port
        return "conflict", (f"The router already forwards {port}/{protocol.upper()} to {current.internal} "
                            f"({current.description or 'no description'}), not to this machine; the test left "
                            "that mapping alone."), None
    try:
        granted = await mapper.add(port, protocol, internal_host, port, lease_s, MAPPING_DESCRIPTION)
    except asyncio.CancelledError:
        # Ctrl-C while the router works on it: the call may still complete (miniupnpc runs in a
        # thread), so it is removed at the end like any other.
        ledger.record(CreatedMapping(mapper, port, protocol, internal_host, port, uncertain=True))
        raise
    except MappingError as exc:
        if exc.code not in _REFUSED_NOT_CREATED:
            # No answer, transport trouble, or a vague "Action Failed" (miniupnpd killed between
            # installing the rule and replying): it may exist anyway, so remove it at the end.
            ledger.record(CreatedMapping(mapper, port, protocol, internal_host, port, uncertain=True))
        return "failed", f"{mapper.name} could not map {port}/{protocol.upper()} for the test: {exc}", None
    ledger.record(CreatedMapping(mapper, granted, protocol, internal_host, port))
    return "created", (f"Mapped {granted}/{protocol.upper()} → {internal_host}:{port} over {mapper.name} for "
                       "the test (removed afterwards)."), granted


async def run_port_check(
    specs: Sequence[PortSpec],
    *,
    endpoints: Endpoints,
    client: "httpx.AsyncClient",
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
) -> PortCheckReport:
    """Run the closed-loop test for every port; mappings are always removed before returning.

    The probers are asked over IPv4 only, each within its limits (``pacer``: the
    user's state file by default, see checks/probers.py); a control port is asked
    about only when a tested port of its protocol was not reached (an open port
    costs one request)."""
    ledger = ledger if ledger is not None else MappingLedger()
    say = on_progress or (lambda _msg: None)
    rng = rng or random.Random()
    pacer = pacer if pacer is not None else ProberPacer.default()
    probers, prober_errors = parse_probers(endpoints.port_check)
    listeners: list[NonceListener] = []
    try:
        say("reading this machine's addresses and asking the router (UPnP / NAT-PMP)")
        if facts is None:
            facts = await (gather or gather_facts)()
        local_ip = facts.local.ipv4

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
            say("connecting to the router's UPnP IGD / NAT-PMP")
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
                control = await _pick_control(proto, taken, mapper, rng)  # type: ignore[arg-type]
                if control is not None:
                    listeners.append(control)
                    controls[proto] = control
                    taken.add(control.port)

        # 4. mappings
        internal_host = (mapper.lan_address if mapper else None) or local_ip or ""
        mapping_of: dict[int, tuple[MappingState, str | None, int | None]] = {}
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
                    mapping_of[key] = await _map_one(mapper, ledger, listener.port, listener.protocol,
                                                     internal_host, lease_s)

        # 5. ask the probers (a traceroute runs alongside when it could matter)
        say("asking the outside prober to connect in")

        async def probe(listener: NonceListener) -> ProbeAnswer | None:
            state, _detail, ext = mapping_of.get(id(listener), ("none", None, None))
            if listener.state in ("denied", "error"):
                return None
            return await ask_probers(client, probers, ext or listener.port, listener.protocol,
                                     token=listener.nonce, timeout_s=probe_timeout_s, family=4, pacer=pacer)

        async def hops() -> tuple[str, ...] | None:
            from .nat import hops_would_help

            if facts.hops is not None or not probers or not hops_would_help(facts.local, facts.upnp):
                return facts.hops
            try:
                from .traceroute import trace_hops

                from .names import lookup

                target = (await lookup(probers[0].host, 4, timeout_s=2.0))[0]
                return await trace_hops(target, max_hops=4, timeout_s=2.0)
            except Exception:
                return None

        trace_task = asyncio.ensure_future(hops())
        try:
            answer_of = await ask_targets_then_controls(targets, controls, probe, say)
            trace = await trace_task
        finally:
            trace_task.cancel()      # done already, unless the run is being cancelled
        if trace is not None and facts.hops is None:
            facts = replace(facts, hops=trace)
        answers = list(answer_of.values())
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
            skipped = (prober_errors[0] if prober_errors and not probers else
                       "no prober is configured ([endpoints] port_check is empty)" if not probers else
                       "only probers that test TCP only are configured (echoip-style, portchecker.io)")
        return PortEvidence(port=listener.port, protocol=listener.protocol, nonce=listener.nonce,
                            listener=listener.state, listener_error=listener.error, mapping=state,
                            mapping_detail=detail, external_port=ext, answer=answer, skipped_reason=skipped)

    observed = next((a.observed_ip for a in answers if a is not None and a.observed_ip), None)
    nat = assess_nat(facts, observed, probers[0].label if probers else None)
    control_ev = {proto: evidence_for(l) for proto, l in controls.items()}
    target_ev = [evidence_for(l) for l in targets]
    asked_controls = {proto: c for proto, c in control_ev.items() if id(controls[proto]) in answer_of}
    results = tuple(with_answer_reason(decide_port(ev, asked_controls.get(ev.protocol), nat, local_ip=local_ip,
                                                   mapper_name=mapper.name if mapper else None), ev)
                    for ev in target_ev)
    return PortCheckReport(results=results, nat=nat, facts=facts, mapper=mapper_label,
                           mapper_problem=mapper_problem, controls=tuple(control_ev.values()),
                           evidence=tuple(target_ev), leftovers=tuple(ledger.leftovers),
                           prober_errors=prober_errors)


async def ask_targets_then_controls(
    targets: Sequence[NonceListener], controls: dict[str, NonceListener],
    probe: Callable[[NonceListener], Awaitable[ProbeAnswer | None]], say: Callable[[str], None],
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
    out.update(zip((id(t) for t in targets), answers))
    needed = [c for proto, c in controls.items()
              if any(t.protocol == proto and a is not None and a.outcome == "not-reached"
                     for t, a in zip(targets, answers))]
    if needed:
        say("asking about a control port (a tested port was not reached)")
        control_answers = await asyncio.gather(*(bounded(c) for c in needed))
        out.update(zip((id(c) for c in needed), control_answers))
    return out


def with_answer_reason(result: PortResult, ev: PortEvidence) -> PortResult:
    """Attach why no prober could answer for this port (``reason``, ``retry_after_s``):
    a code the command line and the wizard word ("could not ask: rate limited, try
    again in 40 s"), never a guess at the verdict."""
    answer = ev.answer
    if answer is not None and answer.outcome != "no-answer":
        return result
    if answer is None:
        if ev.protocol == "udp" and ev.listener not in ("denied", "error") and ev.skipped_reason \
                and "TCP only" in ev.skipped_reason:
            return replace(result, reason="no-udp-prober")
        return result
    reason = answer.code or "no-prober-answered"
    if reason in ("rate-limited", "prober-silent") and result.verdict == "unknown":
        when = f"in {answer.retry_after_s:.0f} s" if answer.retry_after_s else "later"
        fix = (f"Run the test again {when}: the outside prober could not be asked now (its limit for automated "
               "requests). A second prober in [endpoints] port_check takes over while one is rate-limited "
               "(the defaults have two), or run your own: `ddns-wizard probe-server` on a machine outside "
               "your network, then \"ddnsw+https://HOST\".")
        return replace(result, reason=reason, retry_after_s=answer.retry_after_s, fix=fix)
    return replace(result, reason=reason, retry_after_s=answer.retry_after_s)


# --------------------------------------------------------------------------- mapping inventory (upnp list)


@dataclass(frozen=True)
class MappingStatus:
    """One router mapping with what ``upnp list`` marks on it."""

    mapping: PortMapping
    risky_service: str | None      # e.g. "SSH" when the mapping exposes a risky service
    stale: bool                    # the LAN host it points at does not answer
    note: str = ""                 # how liveness was judged


def _arp_complete(host: str, arp_path: str = "/proc/net/arp") -> bool:
    """True when the kernel's ARP table holds a resolved entry for ``host`` (Linux only)."""
    try:
        with open(arp_path, encoding="ascii", errors="replace") as fh:
            next(fh, None)
            for line in fh:
                cols = line.split()
                if len(cols) >= 4 and cols[0] == host:
                    return int(cols[2], 16) & 0x2 != 0 and cols[3] != "00:00:00:00:00:00"
    except (OSError, ValueError):
        pass
    return False


async def host_answers(host: str, port: int, *, timeout_s: float = 0.8,
                       arp_path: str = "/proc/net/arp") -> tuple[bool | None, str]:
    """Whether a LAN host is still there: a quick TCP connect, then the ARP table.

    (True, ...) when it accepted or refused the connection (a reset proves the host
    is up) or has a resolved ARP entry; (False, ...) when nothing answered; None when
    the address cannot be judged."""
    if parse_ip(host) is None:
        return None, f"{host!r} is not an address"
    try:
        async with asyncio.timeout(timeout_s):
            _r, writer = await asyncio.open_connection(host, port)
        writer.close()
        return True, f"{host}:{port} accepts connections"
    except ConnectionRefusedError:
        return True, f"{host} answers (port {port} closed)"
    except (TimeoutError, OSError):
        pass
    if _arp_complete(host, arp_path):
        return True, f"{host} answers ARP, but not on TCP port {port}"
    return False, f"{host} does not answer (no TCP answer within {timeout_s:g} s, no ARP entry)"


async def inspect_mappings(mappings: Sequence[PortMapping], *, timeout_s: float = 0.8,
                           arp_path: str = "/proc/net/arp") -> tuple[MappingStatus, ...]:
    """Mark risky services and stale hosts, checking every distinct LAN host concurrently."""
    from .risky import risky_service

    targets = {(m.internal_host, m.internal_port) for m in mappings}
    keys = sorted(targets)
    answers = await asyncio.gather(*(host_answers(h, p, timeout_s=timeout_s, arp_path=arp_path)
                                     for h, p in keys))
    by_key = dict(zip(keys, answers))
    out: list[MappingStatus] = []
    for m in mappings:
        proto = m.protocol.lower()
        service = risky_service(m.internal_port, proto) or risky_service(m.external_port, proto)
        alive, note = by_key[(m.internal_host, m.internal_port)]
        out.append(MappingStatus(m, service, alive is False, note))
    return tuple(out)
