"""Deciding a port's verdict from its evidence (pure; no I/O).

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

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from checks.addresses import is_public
from checks.model import NatResult, PortMappingKind, PortResult, PortVerdictName, UpnpInfo
from checks.model import PortProtocol as Protocol
from checks.portcheck.listener import ListenState
from checks.portcheck.probers import ProbeAnswer, _snippet
from probeserver.wire import banner_has_nonce

MappingState = Literal["none", "created", "existing", "conflict", "failed", "unavailable"]
ISP_COMMONLY_BLOCKED = {25, 80, 135, 137, 138, 139, 443, 445}

HAIRPIN_NOTE = (
    "This test asks a prober outside your network to connect in. Testing from inside your LAN "
    "against your own public address or DDNS name proves nothing either way: it depends on the "
    "router's hairpin NAT (NAT loopback), which many routers lack. If the service works from "
    "outside but not from home by name, enable NAT loopback on the router, or use split DNS / a "
    "hosts-file entry mapping the name to the server's LAN address."
)


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
    external_port: int | None = None  # differs from port only when NAT-PMP chose another
    answer: ProbeAnswer | None = None
    skipped_reason: str | None = None  # why no prober was asked

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
        return f"No outside prober was asked about {ev.label}" + (
            f": {ev.skipped_reason}." if ev.skipped_reason else "."
        )
    if a.outcome == "no-answer":
        return f"No outside prober answered for {ev.label}: {a.error}."
    where = f"{a.observed_ip}:{ext}" if a.observed_ip else f"port {ext}"
    if a.kind in ("echoip", "portchecker"):
        return (
            f"{a.prober} ({'echoip-style' if a.kind == 'echoip' else 'portchecker.io API'}) tried {where} "
            "from outside: "
            f"{'reachable' if a.outcome == 'reached' else 'not reachable'}."
        )
    if ev.protocol == "udp":
        if a.outcome == "reached":
            return f"{a.prober} sent a UDP probe to {where} and got the reply {_snippet(a.banner or '')!r}."
        return f"{a.prober} sent UDP probes to {where}: no reply ({a.result})."
    if a.outcome == "reached":
        banner = f"read {_snippet(a.banner)!r}" if a.banner else "read nothing"
        return f"{a.prober} connected to {where} from outside and {banner}."
    word = {
        "refused": "the connection was refused (something sent a reset)",
        "timeout": "the connection timed out (packets dropped on the way)",
        "error": f"the connection failed ({a.error or 'error'})",
    }.get(a.result or "", a.result or "failed")
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


RouterMaps = Literal["UPnP", "PCP", "NAT-PMP"] | None


def router_maps(upnp: UpnpInfo) -> RouterMaps:
    """How this tool can ask the router for a forward: UPnP IGD, else PCP, else NAT-PMP, else not at all."""
    if upnp.available:
        return "UPnP"
    if upnp.pcp_available:
        return "PCP"
    if upnp.natpmp_available:
        return "NAT-PMP"
    return None


# PortResult.next_steps codes (the views word them; see checks.findings.ACTIONS for the shared ones):
NEXT_STEPS = (
    "map-port",  # let the router forward the port for good (UPnP, PCP)
    "map-and-test",  # test with a router mapping and keep it (NAT-PMP, or UPnP)
    "map-and-retest",  # test again with the port and a control port mapped by the router
    "probe-server",  # run the project's probe server outside this network
    "remove-mapping",  # remove a lasting forward this tool made
)


def keep_action(maps: RouterMaps) -> str | None:
    """The next step that makes a lasting forward on this router, or None when it offers no way."""
    if maps in ("UPnP", "PCP"):
        return "map-port"
    if maps == "NAT-PMP":
        return "map-and-test"
    return None


def forward_fix(spec_port: int, protocol: str, local_ip: str | None, maps: RouterMaps = None) -> str:
    ip = local_ip or "this machine's LAN address"
    by_tool = f" — or let this tool do it over {maps}" if maps else ""
    return (
        f"Give this machine a fixed LAN address ({ip}): a DHCP reservation in the router, or a static "
        f"address. Then, in the router's web page (look for 'Port forwarding', 'Virtual server', 'NAT' or "
        f"'Applications'), forward {protocol.upper()} port {spec_port} to {ip} port {spec_port}{by_tool}. "
        "Also allow the port in this machine's firewall (ufw, firewalld, Windows Defender Firewall)."
    )


def blocked_or_not_forwarded_fix(port: int, protocol: str, local_ip: str | None, maps: RouterMaps) -> str:
    """Both checks: the forward (and this machine's firewall), and an ISP block."""
    ip = local_ip or "this machine's LAN address"
    common = (
        " ISPs commonly block 25, 80, 443 and 445 inbound on residential lines."
        if port in ISP_COMMONLY_BLOCKED and protocol == "tcp"
        else ""
    )
    tell_apart = (
        "a test with the router mapping this port and a control port the same way tells an ISP block apart; or "
        if maps
        else ""
    )
    return (
        f"1) The forward: in the router's web page ('Port forwarding', 'Virtual server', 'NAT'), "
        f"{protocol.upper()} port {port} must go to {ip} port {port}, and {ip} must be this machine's "
        "fixed address (a DHCP reservation)"
        + (f" — or let this tool make it over {maps}" if maps else "")
        + ". Allow the port in this machine's firewall too (ufw, firewalld, Windows Defender Firewall). "
        f"2) An ISP block: {tell_apart}forward another external port (e.g. 8443 → {port}) the same way "
        f"and test that one; if it gets through, your ISP filters port {port}.{common}"
    )


def isp_block_fix(port: int, protocol: str) -> str:
    common = (
        " ISPs commonly block 25, 80, 443 and 445 inbound on residential lines." if port in ISP_COMMONLY_BLOCKED else ""
    )
    return (
        f"Your ISP filters inbound {protocol.upper()} port {port}.{common} Use another external port "
        f"(forward e.g. 8443 → {port} and give people the new port), a tunnel (Cloudflare Tunnel, ngrok, "
        "Tailscale Funnel), or ask the ISP to lift the block (business lines usually have none)."
    )


def upstream_nat_fix(nat: NatResult) -> str:
    if nat.verdict == "double-nat":
        claimed = nat.router_wan_ipv4
        # A public "WAN" under double NAT is a claim the outside contradicted: not the one to forward to.
        wan = claimed if claimed and not is_public(claimed) else "your router's WAN address (its status page shows it)"
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
    return (
        [
            f"Open for the test: it went through the mapping this test made, which was removed again, so "
            f"{ev.label} is closed now."
        ],
        "Make the forward last (this tool can keep it, or add a forward in the router's web page), and "
        "give this machine a fixed LAN address (a DHCP reservation) so the forward keeps pointing at it. ",
    )


def decide_port(
    ev: PortEvidence,
    control: PortEvidence | None,
    nat: NatResult,
    *,
    local_ip: str | None = None,
    mapper_name: str | None = None,
    maps: RouterMaps = None,
    kept: str | None = None,
) -> PortResult:
    """The verdict for one port from its evidence, with the next steps as codes (``NEXT_STEPS``)."""
    result = _decide_port(ev, control, nat, local_ip=local_ip, mapper_name=mapper_name, maps=maps, kept=kept)
    return replace(result, next_steps=next_steps_for(result, ev, maps))


def next_steps_for(result: PortResult, ev: PortEvidence, maps: RouterMaps) -> tuple[str, ...]:
    """What the views can offer as a command or a key after this verdict."""
    keep = keep_action(maps)
    steps: list[str] = []
    if result.verdict in ("not-forwarded", "blocked-or-not-forwarded"):
        if maps is not None and ev.mapping == "none" and result.verdict == "blocked-or-not-forwarded":
            steps.append("map-and-retest")
        if keep:
            steps.append(keep)
    elif result.verdict == "open" and result.mapping == "temporary":
        steps.append(keep or "map-and-test")
    elif result.mapping == "kept":
        steps.append("remove-mapping")
    elif (
        result.verdict == "unknown"
        and ev.answer is None
        and ev.protocol == "udp"
        and ev.listener not in ("denied", "error")
    ):
        steps.append("probe-server")
    return tuple(steps)


def _decide_port(
    ev: PortEvidence,
    control: PortEvidence | None,
    nat: NatResult,
    *,
    local_ip: str | None = None,
    mapper_name: str | None = None,
    maps: RouterMaps = None,
    kept: str | None = None,
) -> PortResult:
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
            evidence.append(
                f"Control port {control.label} ({how}) was "
                f"{'reached from outside' if passed else 'not reached either'}"
                + (
                    f" ({control.answer.result})"
                    if not passed
                    and control.answer is not None
                    and control.answer.kind == "ddnsw"
                    and control.answer.result
                    else ""
                )
                + "."
            )
    upstream = nat.verdict in ("cgnat", "double-nat")
    mapping_kind: PortMappingKind = (
        "kept" if ev.mapping == "created" and kept else "temporary" if ev.mapping == "created" else "none"
    )

    def result(verdict: PortVerdictName, fix: str, extra: Sequence[str] = ()) -> PortResult:
        return PortResult(
            port=ev.port,
            protocol=ev.protocol,
            verdict=verdict,
            evidence=tuple(evidence) + tuple(extra),
            fix=fix,
            service_was_listening=ev.listener == "in-use",
            upnp_mapped=ev.mapped,
            mapping=mapping_kind,
        )

    if reach in ("ours", "ours-unconfirmed", "service"):
        opened, keep_fix = _open_evidence(ev, kept, maps)
        if reach == "ours":
            return result(
                "open",
                keep_fix + "Nothing to fix: the port reaches this machine from the internet.",
                ["The prober read our nonce back: it reached this very machine."] + opened,
            )
        if reach == "ours-unconfirmed":
            return result(
                "open",
                keep_fix + "Nothing to fix.",
                [
                    "An echoip-style prober only says 'reachable', so this cannot prove the answer came "
                    "from this machine; the project's probe server (ddnsw+https://...) can."
                ]
                + opened,
            )
        return result(
            "open",
            keep_fix + "Nothing to fix for reachability.",
            [
                "Reached a service on this port; could not confirm it is this machine (its answer "
                "does not carry our nonce)."
            ]
            + opened,
        )
    if reach == "other":
        return result(
            "not-forwarded",
            forward_fix(ev.port, ev.protocol, local_ip, maps),
            [
                "Something answered from outside, but not this machine (no nonce in its answer): the router "
                "forwards this port to another device, or answers on it itself (a router admin page or VPN "
                "server often sits on 80, 443 or 8080)."
            ],
        )

    # Not reached, or no prober answered.
    if upstream and reach in ("no", "unknown"):
        # The NAT evidence is the run's, said once by the views (issue 19), not once per port.
        return result(
            "upstream-nat",
            upstream_nat_fix(nat),
            [
                f"Nothing got through the {'carrier-grade NAT' if nat.verdict == 'cgnat' else 'second NAT'} "
                "in front of your router (its evidence is the NAT verdict's)."
            ],
        )
    if ev.listener in ("denied", "error"):
        fix = (
            "Run the test as root (sudo) so it can listen on this port, or start the real service "
            "on it first and test again."
            if ev.listener == "denied"
            else "Free the port or pick another one, then test again."
        )
        return result("unknown", fix, ["Nothing listened on this port, so a failed probe would prove nothing."])
    if reach == "unknown":
        if ev.answer is None and ev.protocol == "udp":
            fix = (
                "UDP can only be tested through the project's probe server: add "
                '"ddnsw+https://HOST" to [endpoints] port_check (run the project\'s probe server on a '
                "machine outside your network)."
            )
        else:
            fix = (
                "No outside prober answered: check this machine's internet connection and "
                "[endpoints] port_check in the configuration, then try again."
            )
        return result("unknown", fix)

    # reach == "no": the probe failed although something listened here.
    if ev.protocol == "udp" and ev.listener == "in-use":
        return result(
            "unknown",
            f"Stop the service on {ev.label} for a moment and test again, so the tool's own listener "
            "can answer the probe.",
            [
                "A UDP service already listens on this port and did not answer the probe datagram; many "
                "UDP services (WireGuard, for one) stay silent to packets they do not recognise, so "
                "silence proves nothing."
            ],
        )
    verdict, fix, extra = unreached_verdict(ev, control, nat, local_ip=local_ip, maps=maps)
    return result(verdict, fix, extra)


def unreached_verdict(
    ev: PortEvidence, control: PortEvidence | None, nat: NatResult, *, local_ip: str | None, maps: RouterMaps
) -> tuple[PortVerdictName, str, list[str]]:
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
    # The NAT verdict's evidence belongs to the run and is said once by the views (issue 19).
    nat_context: list[str] = []
    common = (
        f" Port {ev.port} is one ISPs commonly block inbound."
        if ev.port in ISP_COMMONLY_BLOCKED and ev.protocol == "tcp"
        else ""
    )
    both = blocked_or_not_forwarded_fix(ev.port, ev.protocol, local_ip, maps)
    if control is not None and control_reach in ("ours", "ours-unconfirmed"):
        if control.mapped and not ev.mapped and ev.mapping != "none":
            return (
                "not-forwarded",
                forward_fix(ev.port, ev.protocol, local_ip, maps),
                [
                    f"The control port, mapped by the router, was reached while {ev.label} could not be "
                    "mapped: the router does not forward it to this machine."
                ],
            )
        if ev.mapped or not control.mapped:
            why = (
                "Both ports were forwarded to this machine and listened; only the control port got "
                "through, so something upstream filters this port number."
                if ev.mapped
                else "The control port got through without any forwarding, so the path into this machine is "
                "open for arbitrary ports (no NAT here, or the router exposes this host / DMZ); this port "
                "alone is filtered upstream."
            )
            return "isp-blocked", isp_block_fix(ev.port, ev.protocol), [why + common]
    if nat.verdict == "none":
        return (
            "blocked-or-not-forwarded",
            "This machine holds the public address itself, so no router forwarding is involved: allow the "
            "port in this machine's firewall (ufw, firewalld, nftables) and in any provider firewall / "
            "security group in front of it. If it still fails, test another port number: your ISP may "
            f"filter {ev.port}.",
            [
                "This machine holds the public address, yet neither this port nor the control port was "
                "reached: a firewall drops them (this machine's, or one upstream)."
            ],
        )
    if ev.mapping == "conflict":
        return (
            "not-forwarded",
            forward_fix(ev.port, ev.protocol, local_ip, maps),
            ["The router forwards this port to another device, not to this machine."] + nat_context,
        )
    if ev.mapped:
        confirmed = (
            "The router accepted the mapping"
            if ev.mapping == "created"
            else "The router's own table forwards this port to this machine"
        )
        if control is not None and control.mapped:
            why = (
                f"{confirmed} and the control port's, yet neither was reached from outside: the forward "
                "is there but nothing gets in — the router's own firewall drops it, the ISP filters all "
                "inbound connections, or another NAT upstream went unnoticed."
            )
        else:
            why = (
                f"{confirmed}, yet the port was not reached from outside: the forward is there, so "
                "something drops the connection — this machine's firewall, or the ISP upstream (without a "
                "control port mapped the same way that gets through, the two cannot be told apart)."
            )
        return "blocked-or-not-forwarded", both, [why] + nat_context
    # Nobody confirmed a forward: the router was not asked, could not be, or had none listed.
    a, c = ev.answer, control.answer if control is not None else None
    reset = a is not None and a.kind == "ddnsw" and a.result == "refused"
    dropped = a is not None and a.kind == "ddnsw" and a.result == "timeout"
    control_reset = (
        control is not None and not control.mapped and c is not None and c.kind == "ddnsw" and c.result == "refused"
    )
    if reset and control_reset:
        return (
            "not-forwarded",
            forward_fix(ev.port, ev.protocol, local_ip, maps),
            [
                f"{ev.label} was reset exactly like the unforwarded control port: your router answers ports it "
                "does not forward with a reset, and this one was answered the same way, so the connection "
                "reached your router and was not passed on to this machine. (An ISP filter that resets instead "
                "of dropping would look the same; that is rare.)"
            ]
            + nat_context,
        )
    if dropped and control_reset:
        why = (
            f"Your router answers ports it does not forward with a reset (the control port got one), but "
            f"{ev.label} was silently dropped: it was not treated as an unforwarded port. Either something "
            "upstream (the ISP) drops it before your router, or the router forwards it to a device or "
            "firewall that drops it (another LAN address, or this machine's firewall)." + common
        )
        return "blocked-or-not-forwarded", both, [why] + nat_context
    why = (
        "Nobody could confirm a forward for this port"
        + (
            " (the router offers no way to ask: no UPnP, NAT-PMP or PCP)"
            if maps is None
            else " (the router was not asked to map it)"
            if ev.mapping == "none"
            else " (it could not be mapped for the test)"
        )
        + ", so an unanswered port may be unforwarded, forwarded to another LAN address, or forwarded and "
        "blocked upstream by the ISP (or by this machine's firewall); this test cannot tell them apart." + common
    )
    if maps is not None and ev.mapping == "none":
        why += " Testing again with the router mapping the port and a control port the same way shows an ISP block."
    return "blocked-or-not-forwarded", both, [why] + nat_context


def with_answer_reason(result: PortResult, ev: PortEvidence) -> PortResult:
    """Attach why no prober could answer for this port (``reason``, ``retry_after_s``):
    a code the command line and the wizard word ("could not ask: rate limited, try
    again in 40 s"), never a guess at the verdict."""
    answer = ev.answer
    if answer is not None and answer.outcome != "no-answer":
        return result
    if answer is None:
        if (
            ev.protocol == "udp"
            and ev.listener not in ("denied", "error")
            and ev.skipped_reason
            and "TCP only" in ev.skipped_reason
        ):
            return replace(result, reason="no-udp-prober")
        return result
    reason = answer.code or "no-prober-answered"
    if reason in ("rate-limited", "prober-silent") and result.verdict == "unknown":
        when = f"in {answer.retry_after_s:.0f} s" if answer.retry_after_s else "later"
        fix = (
            f"Run the test again {when}: the outside prober could not be asked now (its limit for automated "
            "requests). A second prober in [endpoints] port_check takes over while one is rate-limited "
            "(the defaults have two), or run your own: the project's probe server on a machine outside "
            'your network, then "ddnsw+https://HOST".'
        )
        return replace(
            result,
            reason=reason,
            retry_after_s=answer.retry_after_s,
            fix=fix,
            next_steps=tuple(dict.fromkeys((*result.next_steps, "probe-server"))),
        )
    return replace(result, reason=reason, retry_after_s=answer.retry_after_s)


def with_admin_page(result: PortResult, upnp: UpnpInfo) -> PortResult:
    """Point the fix's "router's web page" at the router's own admin page when its UPnP
    description names one (issue 16: "Your router: X — admin page: URL")."""
    url = upnp.router.presentation_url
    if not url or "router's web page" not in result.fix:
        return result
    return replace(result, fix=result.fix.replace("router's web page", f"router's web page ({url})", 1))
