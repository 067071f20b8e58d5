"""Inbound IPv6: can the internet reach a port on this host over IPv6?

Under CGNAT or double NAT, IPv6 is usually the way left to host something at home
(an AAAA record), but only if the home router's IPv6 firewall lets new inbound
connections through — most drop them by default. There is no NAT here: the global
address is this host's own, so the question is only "does a firewall stop it?".

The same closed loop as the IPv4 test: a temporary listener on this host's *stable*
IPv6 address answers with a nonce, and an outside prober from ``[endpoints]
port_check_v6`` is asked over IPv6 — from that same address, so the prober dials
back the address a DNS name would carry (not a temporary privacy address, which
outgoing connections use by default).

Verdicts: ``open`` (the prober reached our listener), ``firewalled`` (it could not:
the router's IPv6 firewall, or this host's, drops or rejects it), ``no-ipv6`` (this
host has no stable global IPv6 address), ``unknown`` (the test could not be made:
no prober answered, a port below 1024 without root, ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from checks.model import LocalInfo, Port6Result, Port6VerdictName
from checks.portcheck.listener import NonceListener, open_listener
from checks.portcheck.probers import ProbeAnswer, ProberPacer, ask_probers, parse_probers
from checks.portcheck.spec import PortSpec
from probeserver.wire import banner_has_nonce

FIREWALL_FIX = (
    "Allow new inbound {proto} connections to {address} port {port} in the router's IPv6 firewall "
    "(look for 'IPv6 firewall', 'IPv6 filter', 'pinhole' or 'allow inbound IPv6'; routers drop them by "
    "default), and in this host's firewall (ufw, firewalld, nftables, Windows Defender). Allow that one "
    "address and port, not the whole network."
)


def stable_ipv6(local: LocalInfo) -> tuple[str | None, str | None]:
    """(this host's stable global IPv6 address, or None with the reason)."""
    usable = [a for a in local.ipv6_global if not a.temporary and not a.deprecated]
    if usable:
        return usable[0].address, None
    if any(a.temporary for a in local.ipv6_global):
        return None, (
            "this host has only temporary (privacy) IPv6 addresses, which change daily: give it a "
            "stable one (SLAAC with a stable interface identifier, or a DHCPv6 reservation)"
        )
    return None, "this host has no global IPv6 address (the line or the router does not provide IPv6)"


def _verdict(
    spec: PortSpec, address: str, listener: NonceListener, answer: ProbeAnswer | None, prober_errors: Sequence[str]
) -> Port6Result:
    where = f"[{address}]:{spec.port}/{spec.protocol}"
    proto = spec.protocol.upper()

    def result(verdict: Port6VerdictName, *evidence: str, fix: str = "") -> Port6Result:
        return Port6Result(spec.port, spec.protocol, verdict, address, tuple(evidence), fix)

    existing = listener.state == "in-use"  # a service already listens: test it instead
    if not listener.listening and not existing:
        return result("unknown", listener.error or f"could not listen on {where}")
    if answer is None:
        return replace(
            result(
                "unknown", "No IPv6 prober can test this protocol (echoip-style probers test TCP only).", *prober_errors
            ),
            reason="no-udp-prober",
        )
    if answer.observed_ip is not None and answer.observed_ip != address:
        return result(
            "unknown",
            f"{answer.prober} saw this host as {answer.observed_ip}, not {address}: "
            "the request did not leave from the address under test.",
        )
    if answer.outcome == "no-answer":
        return replace(
            result("unknown", f"No IPv6 prober gave an answer: {answer.error or 'no reply'}.", *prober_errors),
            reason=answer.code or "no-prober-answered",
            retry_after_s=answer.retry_after_s,
        )
    if answer.outcome == "reached" and existing:
        return result(
            "open",
            f"{answer.prober} reached {where} from outside over IPv6; the service already "
            "listening on this port answered.",
        )
    if answer.outcome == "reached":
        if answer.kind == "ddnsw" and spec.protocol == "tcp" and not banner_has_nonce(answer.banner, listener.nonce):
            return result(
                "unknown",
                f"{answer.prober} connected to {where}, but what answered was not this "
                "test's listener (another service on the port?).",
            )
        return result(
            "open",
            f"{answer.prober} reached {where} from outside over IPv6"
            + (" and read this test's nonce." if answer.kind == "ddnsw" else "."),
            "An AAAA record for this address makes the service reachable by name over IPv6.",
        )
    how = {
        "timeout": "the connection attempt timed out (packets dropped on the way)",
        "refused": "the connection was refused (rejected by a firewall)",
        "unreachable": "it reported the port unreachable",
    }.get(answer.result or "", f"it said {answer.result}")
    ready = (
        f"The service already listening on {spec.port}/{spec.protocol} was tested (check it listens on "
        "IPv6 too, not only on 0.0.0.0)"
        if existing
        else f"A temporary listener on {where} was ready"
    )
    return result(
        "firewalled",
        f"{ready}; {answer.prober} tried it from outside over IPv6: {how}.",
        "IPv6 has no NAT: the address is this host's own, so what stopped the prober is a firewall — "
        "usually the router's, which drops new inbound IPv6 connections by default.",
        fix=FIREWALL_FIX.format(proto=proto, address=address, port=spec.port),
    )


PINHOLE_TEST_LEASE_S = 300  # like the IPv4 test mappings: a killed run leaves nothing for long
PINHOLE_KEEP_LEASE_S = 86400  # the longest an IGDv2 pinhole may last; renewed by `watch`


async def default_pinholer(address: str, local: LocalInfo) -> tuple[Any, str]:
    """Find a way to open the router's IPv6 firewall: UPnP IGDv2, else PCP (never raises)."""
    from checks.portmap.pinhole import open_pinholer
    from checks.probes.upnp import ssdp_discover

    try:
        location = await ssdp_discover(timeout_s=1.0, gateway=local.gateway_ipv4)
    except Exception:
        location = None
    return await open_pinholer(address, router_v6=local.gateway_ipv6, interface=local.interface, igd_location=location)


async def _shielded(coro: Any) -> Any:
    """Run ``coro`` to its end even while this task is being cancelled (a second Ctrl-C too)."""
    task = asyncio.ensure_future(coro)
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            continue
        except Exception:
            break
    return task.result() if task.done() and not task.cancelled() and task.exception() is None else None


def _remember_pinhole(opener: Any, handle: Any, spec: PortSpec, address: str) -> None:
    try:
        from checks.portmap.lasting import ForwardsLedger, LastingForward
        from checks.portmap.pcp import mapping_record

        if opener.via == "upnp":
            fwd = LastingForward(
                "upnp-pinhole",
                spec.port,
                spec.protocol,
                address,
                spec.port,
                lease_s=handle.lease_s,
                pinhole_id=handle.unique_id,
                control_url=opener.client.control_url,
            )
        else:
            fwd = LastingForward(
                "pcp-pinhole",
                spec.port,
                spec.protocol,
                address,
                spec.port,
                lease_s=handle.lifetime,
                router=handle.server,
                pcp=mapping_record(handle),
            )
        ForwardsLedger.default().record(fwd)
    except Exception:  # the ledger never stops a run
        pass


async def check_ipv6_ports(
    specs: Sequence[PortSpec],
    *,
    probers_v6: Sequence[str],
    local: LocalInfo | None = None,
    make_client: Callable[[str], Any] | None = None,
    on_progress: Callable[[str], None] | None = None,
    probe_timeout_s: float | None = None,
    pacer: ProberPacer | None = None,
    use_upnp: bool = False,
    keep: bool = False,
    pinholer: Callable[[str, LocalInfo], Awaitable[tuple[Any, str]]] | None = None,
    leftovers: list[tuple[str, str]] | None = None,
) -> tuple[Port6Result, ...]:
    """Test every port over IPv6 from outside; failures are results, never exceptions.

    ``make_client(address)`` returns an httpx.AsyncClient whose connections leave
    from ``address`` (injected by tests). With ``use_upnp`` the router's IPv6 firewall is
    opened for each port first (UPnP IGDv2 pinhole, else PCP; ``pinholer`` finds the way,
    injected by tests) and closed again afterwards — also on errors and cancellation —
    unless ``keep``; a pinhole that could not be closed is appended to ``leftovers``."""
    say = on_progress or (lambda _msg: None)
    if local is None:
        from checks.probes.local import gather_local

        say("reading this machine's IPv6 addresses")
        local = await gather_local()
    address, why_not = stable_ipv6(local)
    if address is None:
        return tuple(
            Port6Result(
                s.port,
                s.protocol,
                "no-ipv6",
                None,
                (why_not or "",),
                "Without a stable IPv6 address there is nothing to reach over IPv6.",
            )
            for s in specs
        )
    probers, prober_errors = parse_probers(probers_v6)
    pacer = pacer if pacer is not None else ProberPacer.default()
    if make_client is None:
        from checks.http import make_client as make_http_client

        def make_client(source: str) -> Any:
            return make_http_client(timeout_s=probe_timeout_s or 12.0, local_address=source)

    listeners: list[NonceListener] = []
    opener: Any = None
    holes: dict[int, Any] = {}  # spec index -> pinhole handle (open)
    hole_state: dict[int, str] = {}
    hole_note: dict[int, str] = {}
    try:
        say(f"opening temporary listeners on {address}")
        for spec in specs:
            listeners.append(await open_listener(spec.port, spec.protocol, host=address))
        if use_upnp:
            say("asking the router to open its IPv6 firewall (UPnP IGDv2 / PCP)")
            opener, what = await (pinholer or default_pinholer)(address, local)
            for index, (spec, listener) in enumerate(zip(specs, listeners, strict=True)):
                where = f"[{address}]:{spec.port}/{spec.protocol}"
                if opener is None:
                    hole_state[index] = "failed"
                    hole_note[index] = f"--upnp: the router offers no way to open its IPv6 firewall ({what})."
                    continue
                if not (listener.listening or listener.state == "in-use"):
                    continue
                try:
                    handle = await opener.open(
                        spec.port, spec.protocol, PINHOLE_KEEP_LEASE_S if keep else PINHOLE_TEST_LEASE_S
                    )
                except Exception as exc:
                    hole_state[index] = "failed"
                    hole_note[index] = f"{opener.name} could not open the router's IPv6 firewall for {where}: {exc}"
                    continue
                holes[index] = handle
                hole_state[index] = "kept" if keep else "temporary"
                hole_note[index] = (
                    f"Opened the router's IPv6 firewall for {where} over {opener.name} "
                    f"({opener.describe(handle)}) "
                    + (
                        "to keep (renewed by the long-running updater while it runs)."
                        if keep
                        else "for the test (closed afterwards)."
                    )
                )
        say("asking the outside prober to connect in over IPv6")
        async with make_client(address) as client:

            async def probe(listener: NonceListener) -> ProbeAnswer | None:
                if not (listener.listening or listener.state == "in-use") or not probers:
                    return None
                return await ask_probers(
                    client,
                    probers,
                    listener.port,
                    listener.protocol,
                    token=listener.nonce,
                    timeout_s=probe_timeout_s,
                    family=6,
                    pacer=pacer,
                )

            answers = await asyncio.gather(*(probe(listener) for listener in listeners))
    finally:
        if holes and opener is not None:
            if keep:
                for index, handle in holes.items():
                    _remember_pinhole(opener, handle, specs[index], address)
            else:
                say("closing the router's IPv6 firewall again")

                async def close_all() -> None:
                    async def close(index: int, handle: Any) -> None:
                        try:
                            async with asyncio.timeout(5.0):
                                await opener.close(handle)
                        except Exception as exc:
                            what = f"{opener.name} pinhole for [{address}]:{specs[index].port}/{specs[index].protocol}"
                            if leftovers is not None:
                                leftovers.append((what, str(exc) or type(exc).__name__))
                            hole_note[index] += f" Closing it FAILED ({exc}): close it in the router's settings."

                    await asyncio.gather(*(close(i, h) for i, h in holes.items()))

                await _shielded(close_all())
        for listener in listeners:
            await listener.close()
    errors = list(prober_errors) or ([] if probers else ["[endpoints] port_check_v6 is empty"])
    results = []
    for index, (spec, listener, answer) in enumerate(zip(specs, listeners, answers, strict=True)):
        r = _verdict(spec, address, listener, answer, errors)
        state = hole_state.get(index, "none")
        if state != "none":
            r = replace(
                r,
                evidence=(hole_note[index], *r.evidence),
                pinhole=state,
                pinhole_via=opener.via if opener is not None and state in ("temporary", "kept") else None,
            )
        results.append(r)
    return tuple(results)
