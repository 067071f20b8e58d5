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
- Not reached (``unreached_verdict``, issue 11): a verdict that names the cause only
  when the evidence tells a missing forward from a block upstream.  A control port
  forwarded the same way that gets through (both mapped with ``--upnp``, or neither
  while the router lets everything in) → ``isp-blocked``.  The router forwards the
  port to another device (its table says so), or it could not map this port while
  the control's mapping worked → ``not-forwarded``.  Reset vs drop, where the
  project's probe server reports which: this port reset exactly like the
  unforwarded control → ``not-forwarded`` (the router answers unforwarded ports
  that way); everything else — no router to ask (no UPnP/NAT-PMP/PCP), a forward
  the router confirms that still lets nothing in, an echoip "false" — is
  ``blocked-or-not-forwarded``, with both checks (the forward and this machine's
  firewall; an ISP block) in the fix.  Without ``--upnp`` the router's UPnP table is
  read (never changed) for a forward to this machine.  Advice names UPnP (or
  NAT-PMP) only when the router offers it.
- ``--keep``: the tested ports' own mappings stay as lasting forwards once the test
  completes (UPnP lease 0, or the longest one the router accepts; NAT-PMP a week);
  ``PortResult.mapping`` is ``kept``, ``temporary`` (made for the test and removed:
  an ``open`` then means open *for the test*) or ``none``.
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

from checks.addresses import is_public, parse_ip
from checks.config import Endpoints
from checks.errors import UsageError
from checks.portcheck.listener import ListenState, NonceListener, banner_has_nonce, new_nonce, open_listener
from checks.model import (ExternalInfo, ExternalSource, LocalInfo, NatResult, PortMapping, PortResult,
                    UpnpInfo)

if TYPE_CHECKING:  # pragma: no cover
    import httpx   # imported lazily: only a port check that asks a prober needs it

Protocol = Literal["tcp", "udp"]
MappingState = Literal["none", "created", "existing", "conflict", "failed", "unavailable"]

CONTROL_PORT_RANGE = (40000, 59999)
TEST_LEASE_S = 300          # short lease: even a SIGKILLed run leaves nothing for long
# --keep: UPnP asks for a permanent lease (0; miniupnpd turns it into a week), retried with a
# week where a router refuses 0. NAT-PMP has no permanent lease (0 deletes): a week.
LONGEST_LEASE_S = 7 * 86400
KEPT_DESCRIPTION = "ddns-wizard"
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
# The prober clients (forms, requests pinned to a family, limits) live in checks/portcheck/probers.py.

from checks.portcheck.probers import (  # noqa: E402,F401  (re-exported: callers and tests import them from here)
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
    """Mappings through an IGD client (checks.probes.upnp.IgdClient, or a fake with the same methods)."""

    name = "UPnP"
    keep_lease_s = 0            # permanent (the router may cap it)

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
    keep_lease_s = LONGEST_LEASE_S   # NAT-PMP has no permanent lease: 0 would delete

    def __init__(self, gateway: str, local_address: str | None,
                 map_fn: Callable[..., Awaitable[Any]] | None = None) -> None:
        self.gateway = gateway
        self._local = local_address
        self._map = map_fn
        self.lifetimes: dict[tuple[int, str], int] = {}   # (external port, protocol) -> granted s

    @property
    def lan_address(self) -> str | None:
        return self._local

    async def _call(self, *args: Any) -> Any:
        if self._map is None:
            from checks.probes.natpmp import natpmp_map

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
        granted = int(reply.external_port or external_port)
        if reply.lifetime:
            self.lifetimes[(granted, protocol)] = int(reply.lifetime)
        return granted

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
    keep: bool = False          # --keep: left in place when the test completes
    lease_s: int = TEST_LEASE_S

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

    def release_kept(self) -> list[CreatedMapping]:
        """The test completed: mappings made to keep leave the ledger (they are not removed)."""
        kept = [m for m in self.created if m.keep and not m.uncertain and m not in self.removed]
        self.created = [m for m in self.created if m not in kept]
        return kept

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
    """A mapper for this router: UPnP IGD first, else NAT-PMP; (None, why) when neither."""
    upnp = facts.upnp
    reasons: list[str] = []
    if upnp.found and upnp.location:
        try:
            from checks.probes.upnp import IgdClient

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


RouterMaps = Literal["UPnP", "NAT-PMP"] | None


def router_maps(upnp: UpnpInfo) -> RouterMaps:
    """How this tool can ask the router for a forward: UPnP IGD, else NAT-PMP, else not at all."""
    if upnp.available:
        return "UPnP"
    if upnp.natpmp_available:
        return "NAT-PMP"
    return None


def keep_command(port: int, protocol: str, maps: RouterMaps) -> str | None:
    """The command that makes a lasting forward on this router, or None when it offers no way."""
    if maps == "UPnP":
        return f"ddns-wizard upnp add {port}/{protocol}"
    if maps == "NAT-PMP":
        return f"ddns-wizard ports check {port}/{protocol} --upnp --keep"
    return None


def forward_fix(spec_port: int, protocol: str, local_ip: str | None, maps: RouterMaps = None) -> str:
    ip = local_ip or "this machine's LAN address"
    command = keep_command(spec_port, protocol, maps)
    by_tool = (f" — or let this tool do it over {maps}: `{command}`" if command else "")
    return (
        f"Give this machine a fixed LAN address ({ip}): a DHCP reservation in the router, or a static "
        f"address. Then, in the router's web page (look for 'Port forwarding', 'Virtual server', 'NAT' or "
        f"'Applications'), forward {protocol.upper()} port {spec_port} to {ip} port {spec_port}{by_tool}. "
        "Also allow the port in this machine's firewall (ufw, firewalld, Windows Defender Firewall)."
    )


def blocked_or_not_forwarded_fix(port: int, protocol: str, local_ip: str | None, maps: RouterMaps) -> str:
    """Both checks: the forward (and this machine's firewall), and an ISP block."""
    ip = local_ip or "this machine's LAN address"
    command = keep_command(port, protocol, maps)
    common = (" ISPs commonly block 25, 80, 443 and 445 inbound on residential lines."
              if port in ISP_COMMONLY_BLOCKED and protocol == "tcp" else "")
    tell_apart = (f"`ddns-wizard ports check {port}/{protocol} --upnp` maps this port and a control port the "
                  "same way and tells an ISP block apart; or " if maps else "")
    return (
        f"1) The forward: in the router's web page ('Port forwarding', 'Virtual server', 'NAT'), "
        f"{protocol.upper()} port {port} must go to {ip} port {port}, and {ip} must be this machine's "
        "fixed address (a DHCP reservation)"
        + (f" — or let this tool make it over {maps}: `{command}`" if command else "")
        + ". Allow the port in this machine's firewall too (ufw, firewalld, Windows Defender Firewall). "
        f"2) An ISP block: {tell_apart}forward another external port (e.g. 8443 → {port}) the same way "
        f"and test that one; if it gets through, your ISP filters port {port}.{common}"
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
        claimed = nat.router_wan_ipv4
        # A public "WAN" under double NAT is a claim the outside contradicted: not the one to forward to.
        wan = (claimed if claimed and not is_public(claimed)
               else "your router's WAN address (its status page shows it)")
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


def _open_evidence(ev: PortEvidence, kept: str | None, maps: RouterMaps) -> tuple[list[str], str]:
    """What "open" means when the test made the forward itself: open *for the test*."""
    if ev.mapping != "created":
        return [], ""
    if kept:
        return [kept], ""
    command = keep_command(ev.port, ev.protocol, maps) or f"ddns-wizard ports check {ev.label} --upnp --keep"
    return ([f"Open for the test: it went through the mapping this test made, which was removed again, so "
             f"{ev.label} is closed now."],
            f"Make the forward last: `{command}` (or a forward in the router's web page), and give this "
            "machine a fixed LAN address (a DHCP reservation) so the forward keeps pointing at it. ")


def decide_port(ev: PortEvidence, control: PortEvidence | None, nat: NatResult, *,
                local_ip: str | None = None, mapper_name: str | None = None,
                maps: RouterMaps = None, kept: str | None = None) -> PortResult:
    """The verdict for one port from its evidence (pure; logic in the module docstring).

    ``maps``: how this tool can ask the router for forwards (advice never suggests UPnP on a
    router that does not offer it); ``kept``: the sentence describing the lasting forward when
    the test's mapping was kept (``--keep``)."""
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
                            f"{'reached from outside' if passed else 'not reached either'}"
                            + (f" ({control.answer.result})" if not passed and control.answer is not None
                               and control.answer.kind == "ddnsw" and control.answer.result else "") + ".")
    upstream = nat.verdict in ("cgnat", "double-nat")
    mapping_kind = "kept" if ev.mapping == "created" and kept else "temporary" if ev.mapping == "created" else "none"

    def result(verdict: str, fix: str, extra: Sequence[str] = ()) -> PortResult:
        return PortResult(port=ev.port, protocol=ev.protocol, verdict=verdict,  # type: ignore[arg-type]
                          evidence=tuple(evidence) + tuple(extra), fix=fix,
                          service_was_listening=ev.listener == "in-use", upnp_mapped=ev.mapped,
                          mapping=mapping_kind)  # type: ignore[arg-type]

    if reach in ("ours", "ours-unconfirmed", "service"):
        opened, keep_fix = _open_evidence(ev, kept, maps)
        if reach == "ours":
            return result("open", keep_fix + "Nothing to fix: the port reaches this machine from the internet. "
                          + HAIRPIN_NOTE, ["The prober read our nonce back: it reached this very machine."] + opened)
        if reach == "ours-unconfirmed":
            return result("open", keep_fix + "Nothing to fix. " + HAIRPIN_NOTE,
                          ["An echoip-style prober only says 'reachable', so this cannot prove the answer came "
                           "from this machine; the project's probe server (ddnsw+https://...) can."] + opened)
        return result("open", keep_fix + "Nothing to fix for reachability. " + HAIRPIN_NOTE,
                      ["Reached a service on this port; could not confirm it is this machine (its answer "
                       "does not carry our nonce)."] + opened)
    if reach == "other":
        return result("not-forwarded", forward_fix(ev.port, ev.protocol, local_ip, maps), [
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
    verdict, fix, extra = unreached_verdict(ev, control, nat, local_ip=local_ip, maps=maps)
    return result(verdict, fix, extra)


def unreached_verdict(ev: PortEvidence, control: PortEvidence | None, nat: NatResult, *,
                      local_ip: str | None, maps: RouterMaps) -> tuple[str, str, list[str]]:
    """A port the prober did not get through to, although this machine listened on it (issue 11).

    Only evidence that tells a missing forward from a block upstream earns ``not-forwarded`` or
    ``isp-blocked``; otherwise it is ``blocked-or-not-forwarded`` with both checks in the fix:

    - a control port forwarded the same way (both mapped by the router, or neither while the
      router lets everything in) that gets through → the port number itself is filtered
      upstream: ``isp-blocked``;
    - the router's table forwards the port to another device (a conflict), or this port could
      not be mapped while the control could → ``not-forwarded``;
    - reset vs drop (the project's probe server tells them apart; an echoip "false" does not):
      the unforwarded control port *and* this one were reset → this port was answered exactly
      like one the router does not forward → ``not-forwarded``.  This port dropped while the
      unforwarded control was reset → the router did not treat it as unforwarded: something
      drops it — upstream, or a forward to a device or firewall that drops it — still
      ``blocked-or-not-forwarded``, with that narrower explanation.  A reset alone proves
      nothing: an ISP filter or this machine's firewall can reset too.
    """
    control_reach = classify_reach(control) if control is not None else None
    nat_context = list(nat.evidence) if nat.verdict in ("nat", "unknown") else []
    common = (f" Port {ev.port} is one ISPs commonly block inbound." if ev.port in ISP_COMMONLY_BLOCKED
              and ev.protocol == "tcp" else "")
    both = blocked_or_not_forwarded_fix(ev.port, ev.protocol, local_ip, maps)
    if control is not None and control_reach in ("ours", "ours-unconfirmed"):
        if control.mapped and not ev.mapped and ev.mapping != "none":
            return "not-forwarded", forward_fix(ev.port, ev.protocol, local_ip, maps), [
                f"The control port, mapped by the router, was reached while {ev.label} could not be "
                "mapped: the router does not forward it to this machine."]
        if ev.mapped or not control.mapped:
            why = ("Both ports were forwarded to this machine and listened; only the control port got "
                   "through, so something upstream filters this port number." if ev.mapped else
                   "The control port got through without any forwarding, so the path into this machine is "
                   "open for arbitrary ports (no NAT here, or the router exposes this host / DMZ); this port "
                   "alone is filtered upstream.")
            return "isp-blocked", isp_block_fix(ev.port, ev.protocol), [why + common]
    if nat.verdict == "none":
        return ("blocked-or-not-forwarded",
                "This machine holds the public address itself, so no router forwarding is involved: allow the "
                "port in this machine's firewall (ufw, firewalld, nftables) and in any provider firewall / "
                "security group in front of it. If it still fails, test another port number: your ISP may "
                f"filter {ev.port}.",
                ["This machine holds the public address, yet neither this port nor the control port was "
                 "reached: a firewall drops them (this machine's, or one upstream)."])
    if ev.mapping == "conflict":
        return "not-forwarded", forward_fix(ev.port, ev.protocol, local_ip, maps), [
            "The router forwards this port to another device, not to this machine."] + nat_context
    if ev.mapped:
        confirmed = ("The router accepted the mapping" if ev.mapping == "created"
                     else "The router's own table forwards this port to this machine")
        if control is not None and control.mapped:
            why = (f"{confirmed} and the control port's, yet neither was reached from outside: the forward "
                   "is there but nothing gets in — the router's own firewall drops it, the ISP filters all "
                   "inbound connections, or another NAT upstream went unnoticed.")
        else:
            why = (f"{confirmed}, yet the port was not reached from outside: the forward is there, so "
                   "something drops the connection — this machine's firewall, or the ISP upstream (without a "
                   "control port mapped the same way that gets through, the two cannot be told apart).")
        return "blocked-or-not-forwarded", both, [why] + nat_context
    # Nobody confirmed a forward: the router was not asked, could not be, or had none listed.
    a, c = ev.answer, control.answer if control is not None else None
    reset = a is not None and a.kind == "ddnsw" and a.result == "refused"
    dropped = a is not None and a.kind == "ddnsw" and a.result == "timeout"
    control_reset = (control is not None and not control.mapped and c is not None and c.kind == "ddnsw"
                     and c.result == "refused")
    if reset and control_reset:
        return "not-forwarded", forward_fix(ev.port, ev.protocol, local_ip, maps), [
            f"{ev.label} was reset exactly like the unforwarded control port: your router answers ports it "
            "does not forward with a reset, and this one was answered the same way, so the connection "
            "reached your router and was not passed on to this machine. (An ISP filter that resets instead "
            "of dropping would look the same; that is rare.)"] + nat_context
    if dropped and control_reset:
        why = (f"Your router answers ports it does not forward with a reset (the control port got one), but "
               f"{ev.label} was silently dropped: it was not treated as an unforwarded port. Either something "
               "upstream (the ISP) drops it before your router, or the router forwards it to a device or "
               "firewall that drops it (another LAN address, or this machine's firewall)." + common)
        return "blocked-or-not-forwarded", both, [why] + nat_context
    why = ("Nobody could confirm a forward for this port"
           + (" (the router offers no way to ask: no UPnP, NAT-PMP or PCP)" if maps is None else
              " (the router was not asked to map it)" if ev.mapping == "none" else
              " (it could not be mapped for the test)")
           + ", so an unanswered port may be unforwarded, forwarded to another LAN address, or forwarded and "
           "blocked upstream by the ISP (or by this machine's firewall); this test cannot tell them apart."
           + common)
    if maps is not None and ev.mapping == "none":
        why += f" Run again with --upnp: with the port and a control port mapped the same way, an ISP block shows."
    return "blocked-or-not-forwarded", both, [why] + nat_context


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
                   internal_host: str, lease_s: int, *, keep: bool = False
                   ) -> tuple[MappingState, str, int | None]:
    current = await mapper.existing(port, protocol)
    if current is not None:
        if current.internal_host == internal_host and current.internal_port == port:
            return "existing", (f"The router already forwards {port}/{protocol.upper()} to this machine "
                                f"({current.internal}, {current.description or 'no description'}); left as is."), port
        return "conflict", (f"The router already forwards {port}/{protocol.upper()} to {current.internal} "
                            f"({current.description or 'no description'}), not to this machine; the test left "
                            "that mapping alone."), None
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
        if exc.code not in _REFUSED_NOT_CREATED:
            # No answer, transport trouble, or a vague "Action Failed" (miniupnpd killed between
            # installing the rule and replying): it may exist anyway, so remove it at the end.
            ledger.record(CreatedMapping(mapper, port, protocol, internal_host, port, uncertain=True))
        return "failed", f"{mapper.name} could not map {port}/{protocol.upper()} for the test: {exc}", None
    ledger.record(CreatedMapping(mapper, granted, protocol, internal_host, port, keep=keep, lease_s=lease_s))
    purpose = ("to keep as a lasting forward (--keep)" if keep else "for the test (removed afterwards)")
    return "created", (f"Mapped {granted}/{protocol.upper()} → {internal_host}:{port} over {mapper.name} "
                       f"{purpose}."), granted


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
    how_long = ("for good" if lease <= 0 else
                f"for {_lease_words(lease)} (what the router granted; ask again before then to renew)"
                if m.mapper.name != "UPnP" or m.lease_s else
                f"for {_lease_words(lease)} (the router caps 'permanent' forwards at that; run this again "
                "before then, or add the forward in the router's web page to keep it for good)")
    return (f"Kept as a lasting forward: the router forwards {m.external_port}/{proto} → "
            f"{m.internal_host}:{m.internal_port} over {m.mapper.name} {how_long}. Remove it later with "
            f"`ddns-wizard upnp remove {m.external_port}/{m.protocol}`. Give this machine a fixed LAN address "
            f"(a DHCP reservation for {m.internal_host} in the router) so the forward keeps pointing at it.")


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
    return await describe_kept(made)


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
                                                     internal_host, lease_s, keep=keep and listener in targets)
        else:
            mapping_of.update(await _forwards_the_router_lists(facts, targets, local_ip, mapper_opener))

        # 5. ask the probers (a traceroute runs alongside when it could matter)
        say("asking the outside prober to connect in")

        async def probe(listener: NonceListener) -> ProbeAnswer | None:
            state, _detail, ext = mapping_of.get(id(listener), ("none", None, None))
            if listener.state in ("denied", "error"):
                return None
            return await ask_probers(client, probers, ext or listener.port, listener.protocol,
                                     token=listener.nonce, timeout_s=probe_timeout_s, family=4, pacer=pacer)

        async def hops() -> tuple[str, ...] | None:
            from checks.nat import hops_would_help

            if facts.hops is not None or not probers or not hops_would_help(facts.local, facts.upnp,
                                                                             confirm_claim=True):
                return facts.hops
            try:
                from checks.probes.traceroute import trace_hops

                from checks.names import lookup

                target = (await lookup(probers[0].host, 4, timeout_s=2.0))[0]
                return await trace_hops(target, max_hops=4, timeout_s=2.0)
            except Exception:
                return None

        trace_task = asyncio.ensure_future(hops())
        try:
            answer_of = await ask_targets_then_controls(targets, controls, probe, say)
            trace = await _trace_if_needed(trace_task, [answer_of.get(id(t)) for t in targets])
        finally:
            trace_task.cancel()      # done already, unless the run is being cancelled
        if trace is not None and facts.hops is None:
            facts = replace(facts, hops=trace)
        answers = list(answer_of.values())
        kept = {(m.internal_port, m.protocol): await describe_kept(m) for m in ledger.release_kept()}
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
    maps = router_maps(facts.upnp)
    results = tuple(with_answer_reason(
                        decide_port(ev, asked_controls.get(ev.protocol), nat, local_ip=local_ip,
                                    mapper_name=mapper.name if mapper else None, maps=maps,
                                    kept=kept.get((ev.port, ev.protocol)) if ev.mapping == "created" else None),
                        ev)
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


async def _trace_if_needed(trace: "asyncio.Future[tuple[str, ...] | None]",
                           answers: Sequence[ProbeAnswer | None]) -> tuple[str, ...] | None:
    """The path only matters for a port that did not get in: when every tested port was
    reached, the traceroute (slow where hops stay silent) is not waited for."""
    if answers and all(a is not None and a.outcome == "reached" for a in answers):
        trace.cancel()
        return None
    try:
        return await trace
    except asyncio.CancelledError:
        if asyncio.current_task() is not None and asyncio.current_task().cancelling():  # type: ignore[union-attr]
            raise
        return None


async def _forwards_the_router_lists(facts: NetworkFacts, targets: Sequence[NonceListener], local_ip: str | None,
                                     opener: MapperOpener | None
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
    for listener in targets:
        if listener.state in ("denied", "error"):
            continue
        try:
            current = await asyncio.wait_for(mapper.existing(listener.port, listener.protocol), 2.0)
        except Exception:
            continue
        if current is None:
            continue
        label = f"{listener.port}/{listener.protocol.upper()}"
        if current.internal_host == local_ip and current.internal_port == listener.port:
            out[id(listener)] = ("existing", f"The router's UPnP table forwards {label} to this machine "
                                             f"({current.internal}, {current.description or 'no description'}).",
                                 listener.port)
        else:
            out[id(listener)] = ("conflict", f"The router's UPnP table forwards {label} to {current.internal} "
                                             f"({current.description or 'no description'}), not to this machine.",
                                 None)
    return out


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
    from checks.risky import risky_service

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
