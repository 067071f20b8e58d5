"""`ddns-wizard ports check PORT[/tcp|/udp]... [--upnp] [--json]` and
`ddns-wizard ports outbound [PORT...] [--json]`.

``check`` runs the closed-loop inbound test of checks/portcheck/run.py (temporary
listeners answering with a nonce, an outside prober, a control port); with
``--upnp`` it maps the ports on the router for the test and always removes the
mappings again — on errors, on Ctrl-C and on SIGTERM too.  A mapping that could
not be removed is printed loudly on stderr (exit status 1).

``outbound`` connects to ``[endpoints] outbound_target`` on each port.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from checks.model import OutboundResult, PortResult
    from checks.portcheck.run import PortCheckReport
    from checks.portmap.ledger import MappingLedger

VERDICT_WORDS = {
    "open": "OPEN — reachable from the internet",
    "not-forwarded": "NOT FORWARDED — the router does not pass it to this machine",
    "isp-blocked": "ISP-BLOCKED — forwarded, but filtered before it reaches your router",
    "blocked-or-not-forwarded": "BLOCKED OR NOT FORWARDED — nothing got in, and the test cannot tell which",
    "upstream-nat": "UPSTREAM NAT — another NAT in front of your router makes it unreachable",
    "unknown": "UNKNOWN — the test could not decide",
}
# An open port reached through the test's own mapping, removed again: open for the test only.
OPEN_FOR_THE_TEST = "OPEN for the test — reached through the test's own mapping, which is removed again"
OPEN_KEPT = "OPEN — reachable from the internet, through the forward kept with --keep"
OPEN_FOR_THE_TEST_V6 = (
    "OPEN for the test — through the test's own opening of the router's IPv6 firewall, which is closed again"
)
OPEN_KEPT_V6 = "OPEN — reachable over IPv6, through the firewall opening kept with --keep"
VERDICT_STYLE = {
    "open": "green",
    "not-forwarded": "yellow",
    "isp-blocked": "red",
    "blocked-or-not-forwarded": "yellow",
    "upstream-nat": "red",
    "unknown": "magenta",
    "blocked": "red",
}


def reason_words(reason: str | None, retry_after_s: float | None) -> str | None:
    """The engine's code for "no prober answered" (checks/portcheck/probers.py AnswerCode) in words."""
    later = f", try again in {retry_after_s:.0f} s" if retry_after_s else ", try again later"
    return {
        "rate-limited": f"could not ask: rate limited{later} (or add a second prober to [endpoints] port_check)",
        "prober-silent": f"could not ask: the prober did not answer (over its limit, or down){later}",
        "no-udp-prober": (
            "UDP can only be tested by a prober that sends UDP: the project's probe server. "
            "Run `ddns-wizard probe-server` on a machine outside your network and add "
            '"ddnsw+https://HOST" to [endpoints] port_check'
        ),
        "no-prober-answered": "no outside prober answered (see the evidence)",
    }.get(reason or "")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="ports_command", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check",
        help="test inbound reachability of ports from outside",
        description="Listen temporarily on each port, ask an outside prober to connect in, and tell "
        "open / not-forwarded / isp-blocked / blocked-or-not-forwarded / upstream-nat / unknown, with "
        "the evidence and the fix.",
    )
    check.add_argument("ports", nargs="+", metavar="PORT[/tcp|/udp]", help="ports to test (default protocol tcp)")
    check.add_argument(
        "--upnp",
        action="store_true",
        help="map the ports on the router (UPnP IGD, else PCP, else NAT-PMP) for the test; removed "
        "afterwards (with --ipv6: open the router's IPv6 firewall, IGDv2 pinhole or PCP)",
    )
    check.add_argument(
        "--keep",
        action="store_true",
        help="with --upnp: keep the ports' mappings as lasting forwards (permanent lease, or the "
        "longest the router accepts); remove one later with `ddns-wizard upnp remove PORT`",
    )
    check.add_argument(
        "--ipv6",
        action="store_true",
        help="test over IPv6 instead: this host's stable IPv6 address through the router's IPv6 "
        "firewall ([endpoints] port_check_v6); open / firewalled / no-ipv6 / unknown",
    )
    check.add_argument("--json", action="store_true", help="print the result as JSON (docs/json.md)")
    out = sub.add_parser(
        "outbound",
        help="test which ports this network lets out",
        description="Connect to [endpoints] outbound_target on each port (default: 25 53 80 443 465 587 "
        "993 1194 8080 51820/udp) and tell open / blocked / unknown.",
    )
    out.add_argument("ports", nargs="*", metavar="PORT[/tcp|/udp]", help="ports to test (default: a common set)")
    out.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS", help="connect deadline per port")
    out.add_argument("--json", action="store_true", help="print the result as JSON (docs/json.md)")


def run(args: argparse.Namespace) -> int:

    from ._config import load as _load

    config = _load(args)
    if args.ports_command == "check":
        return _run_check(args, config)
    return _run_outbound(args, config)


# --------------------------------------------------------------------------- progress


class _Progress:
    """A spinner on stderr with the current step (only when stderr is a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self._status: Any = None
        if enabled:
            from rich.console import Console

            self._status = Console(stderr=True).status("starting")

    def __enter__(self) -> Callable[[str], None]:
        if self._status is not None:
            self._status.start()
            # An empty message stops the spinner (before a command prints its result).
            return lambda msg: self._status.update(msg) if msg else self._status.stop()
        return lambda _msg: None

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()


def _progress_enabled(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty()


# --------------------------------------------------------------------------- check


def check_json(results: Sequence[PortResult]) -> list[dict[str, Any]]:
    """The ``ports check --json`` list (DESIGN.md: port, protocol, verdict, evidence; plus fix)."""
    return [
        {
            "port": r.port,
            "protocol": r.protocol,
            "verdict": r.verdict,
            "evidence": list(r.evidence),
            "fix": r.fix,
            "service_was_listening": r.service_was_listening,
            "upnp_mapped": r.upnp_mapped,
            "mapping": r.mapping,
            "mapped_via": r.mapped_via,
            "reason": r.reason,
            "retry_after_s": r.retry_after_s,
            "next_steps": list(r.next_steps),
        }
        for r in results
    ]


def _run_check(args: argparse.Namespace, config: Any) -> int:
    import asyncio

    from checks.errors import UsageError
    from checks.portcheck.spec import parse_port_spec
    from checks.portmap.ledger import MappingLedger

    specs = list(dict.fromkeys(parse_port_spec(p) for p in args.ports))
    keep = bool(getattr(args, "keep", False))
    if keep and not args.upnp:
        raise UsageError(
            "--keep keeps the mappings --upnp makes: use both (`ports check PORT --upnp --keep`), "
            "or `ddns-wizard upnp add PORT` for a forward without a test"
        )
    if getattr(args, "ipv6", False):
        # --upnp over IPv6: no mapping, a pinhole in the router's IPv6 firewall (IGDv2 or PCP).
        return _run_check_v6(args, config, specs)
    if not config.endpoints.port_check:
        raise UsageError(
            "[endpoints] port_check is empty: the inbound test needs an outside prober "
            "(an echoip URL with {port}, portchecker+https://portchecker.io, or ddnsw+https://HOST "
            "for `ddns-wizard probe-server`)"
        )
    ledger = MappingLedger()
    report: PortCheckReport | None = None
    try:
        with _Progress(_progress_enabled(args)) as say:
            report = asyncio.run(_check_main(specs, config, args.upnp, ledger, say, keep=keep))
    except asyncio.CancelledError:  # SIGTERM/SIGHUP: the mappings were removed on the way out
        print("terminated", file=sys.stderr)
        return 143
    finally:
        _report_leftovers(ledger)
    assert report is not None
    if args.json:
        print(json.dumps(check_json(report.results), indent=2))
    else:
        _print_check(report)
    return 1 if report.leftovers else 0


async def _check_main(
    specs: Any, config: Any, use_upnp: bool, ledger: MappingLedger, say: Callable[[str], None], *, keep: bool = False
) -> PortCheckReport:
    import asyncio
    import signal

    from checks.http import make_client
    from checks.portcheck.run import run_port_check

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    try:
        # SIGTERM/SIGHUP cancel the run like Ctrl-C does, so the finally blocks remove the mappings.
        if task is not None:
            for sig in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, task.cancel)
    except (NotImplementedError, RuntimeError):  # not on the main thread / platform without it
        pass
    try:
        async with make_client(timeout_s=12.0) as client:
            return await run_port_check(
                specs,
                endpoints=config.endpoints,
                client=client,
                use_upnp=use_upnp,
                ledger=ledger,
                on_progress=say,
                keep=keep,
            )
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):
                pass


V6_VERDICT_WORDS = {
    "open": "OPEN over IPv6 — reachable from the internet",
    "firewalled": "FIREWALLED — a firewall (usually the router's IPv6 firewall) stops it",
    "no-ipv6": "NO IPv6 — this host has no stable global IPv6 address",
    "unknown": "UNKNOWN — the test could not decide",
}
V6_VERDICT_STYLE = {"open": "green", "firewalled": "yellow", "no-ipv6": "red", "unknown": "magenta"}


def check_v6_json(results: Sequence[Any]) -> list[dict[str, Any]]:
    """``ports check --ipv6 --json``: port, protocol, verdict, address, evidence, fix."""
    return [
        {
            "port": r.port,
            "protocol": r.protocol,
            "verdict": r.verdict,
            "address": r.address,
            "evidence": list(r.evidence),
            "fix": r.fix,
            "reason": r.reason,
            "retry_after_s": r.retry_after_s,
            "pinhole": r.pinhole,
            "pinhole_via": r.pinhole_via,
        }
        for r in results
    ]


def _run_check_v6(args: argparse.Namespace, config: Any, specs: Any) -> int:
    import asyncio

    from checks.errors import UsageError
    from checks.portcheck.ipv6 import check_ipv6_ports

    if not config.endpoints.port_check_v6:
        raise UsageError(
            "[endpoints] port_check_v6 is empty: the IPv6 test needs an outside prober reachable "
            "over IPv6 (an echoip URL with {port}, or ddnsw+https://HOST)"
        )
    leftovers: list[tuple[str, str]] = []
    with _Progress(_progress_enabled(args)) as say:
        results = asyncio.run(
            check_ipv6_ports(
                specs,
                probers_v6=config.endpoints.port_check_v6,
                on_progress=say,
                use_upnp=bool(args.upnp),
                keep=bool(getattr(args, "keep", False)),
                leftovers=leftovers,
            )
        )
    if leftovers:
        from rich.console import Console

        err = Console(stderr=True)
        err.print("[bold red]WARNING: the test could not close these openings of the router's IPv6 firewall:[/]")
        for what, error in leftovers:
            err.print(f"[bold red]  • {what}[/] — {error}")
        err.print(
            "[red]They were asked for with a short lease (5 minutes); close them in the router's IPv6 "
            "firewall settings if they stay.[/]"
        )
    if args.json:
        print(json.dumps(check_v6_json(results), indent=2))
        return 1 if leftovers else 0
    from rich.console import Console

    out = Console()
    address = next((r.address for r in results if r.address), None)
    if address:
        out.print(f"This machine over IPv6: {address}")
    for result in results:
        _print_verdict(out, result, V6_VERDICT_WORDS, V6_VERDICT_STYLE)
    return 1 if leftovers else 0


def _print_verdict(out: Any, result: Any, words: dict[str, str], styles: dict[str, str]) -> None:
    """One port's verdict, its evidence and (unless open) the fix."""
    from rich.markup import escape

    style = styles.get(result.verdict, "white")
    mapping = getattr(result, "mapping", None) or getattr(result, "pinhole", "none")
    word = words[result.verdict]
    pinhole = hasattr(result, "pinhole")
    if result.verdict == "open" and mapping == "temporary":
        word = OPEN_FOR_THE_TEST_V6 if pinhole else OPEN_FOR_THE_TEST
    elif result.verdict == "open" and mapping == "kept":
        word = OPEN_KEPT_V6 if pinhole else OPEN_KEPT
    out.print()
    out.print(f"[bold]{result.port}/{result.protocol}[/]: [bold {style}]{word}[/]")
    why = reason_words(getattr(result, "reason", None), getattr(result, "retry_after_s", None))
    if why:
        out.print(f"  [{style}]{escape(why)}[/]")
    from rich.text import Text

    from ..render import hanging

    for sentence in result.evidence:
        out.print(hanging("•", sentence, indent=2))
    said = result.verdict == "unknown" and getattr(result, "reason", None) in (
        "rate-limited",
        "prober-silent",
        "no-udp-prober",
    )  # the reason line above says what to do
    if result.fix and not said and (result.verdict != "open" or mapping == "temporary"):
        label = "Fix" if result.verdict != "open" else "To keep it open"
        fix = result.fix.split(" Nothing to fix", 1)[0] if result.verdict == "open" else result.fix
        out.print(hanging(Text(f"{label}:", style="bold"), fix, indent=2))
    from ..words import action_commands

    for command in action_commands(getattr(result, "next_steps", ()), f"{result.port}/{result.protocol}"):
        out.print(hanging(Text("Next:", style="bold"), f"`{command}`", indent=2))


def _report_leftovers(ledger: MappingLedger) -> None:
    if not ledger.leftovers:
        return
    from rich.console import Console

    err = Console(stderr=True)
    err.print("[bold red]WARNING: the test could not remove these port mappings from the router:[/]")
    for mapping, error in ledger.leftovers:
        err.print(f"[bold red]  • {mapping}[/] — {error}")
        port_proto = mapping.split(" mapping ", 1)[-1].split(" ", 1)[0].lower()
        err.print(f"    remove it: [bold]ddns-wizard upnp remove {port_proto}[/] (or in the router's web page)")
    err.print(
        "[red]Test mappings are asked for with a short lease, but a router that restarted (or only "
        "accepts permanent leases) may keep them: remove them as shown.[/]"
    )


def _print_check(report: PortCheckReport) -> None:
    from rich.console import Console
    from rich.markup import escape

    from checks.portcheck.verdict import HAIRPIN_NOTE

    out = Console()
    facts = report.facts
    if facts is not None and facts.local.ipv4:
        out.print(
            f"This machine: {facts.local.ipv4}"
            + (f" via {facts.local.gateway_ipv4}" if facts.local.gateway_ipv4 else "")
        )
    if report.mapper:
        out.print(f"Test mappings through: {escape(report.mapper)}")
    if report.mapper_problem:
        out.print(f"[yellow]{escape(report.mapper_problem)}[/]")
    for err in report.prober_errors:
        out.print(f"[yellow]configuration: {escape(err)}[/]")
    if report.nat is not None:
        out.print(
            f"NAT: {report.nat.verdict}"
            + (f" (router WAN {report.nat.router_wan_ipv4})" if report.nat.router_wan_ipv4 else "")
        )
        if any(r.verdict != "open" for r in report.results):
            # Said once for the run (issue 19), not repeated under every port.
            from ..render import hanging

            for sentence in report.nat.evidence:
                out.print(hanging("•", sentence, indent=2))
    for result in report.results:
        _print_verdict(out, result, VERDICT_WORDS, VERDICT_STYLE)
    out.print()
    out.print(f"[dim]{escape(HAIRPIN_NOTE)}[/]")


# --------------------------------------------------------------------------- outbound


def outbound_json(results: Sequence[OutboundResult]) -> list[dict[str, Any]]:
    """The ``ports outbound --json`` list (DESIGN.md: port, verdict, ms; plus protocol, detail)."""
    return [
        {"port": r.port, "protocol": r.protocol, "verdict": r.verdict, "ms": r.ms, "detail": r.detail} for r in results
    ]


def _run_outbound(args: argparse.Namespace, config: Any) -> int:
    import asyncio

    from checks.errors import UsageError
    from checks.portcheck.spec import parse_port_spec
    from checks.probes.outbound import DEFAULT_OUTBOUND_PORTS, check_outbound

    if args.timeout <= 0 or args.timeout > 60:
        raise UsageError("--timeout must be between 0 and 60 seconds")
    if args.ports:
        ports = [(s.port, s.protocol) for s in dict.fromkeys(parse_port_spec(p) for p in args.ports)]
    else:
        ports = list(DEFAULT_OUTBOUND_PORTS)
    target = config.endpoints.outbound_target
    if not target:
        raise UsageError("[endpoints] outbound_target is empty: name a host that accepts TCP on every port")
    with _Progress(_progress_enabled(args)) as say:
        say(f"connecting to {target} on {len(ports)} ports")
        results = asyncio.run(check_outbound(target, ports, timeout_s=args.timeout))
    if args.json:
        print(json.dumps(outbound_json(results), indent=2))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out = Console()
    table = Table(title=f"Outbound to {target}", title_justify="left")
    table.add_column("port", justify="right")
    table.add_column("verdict")
    table.add_column("ms", justify="right")
    table.add_column("detail", overflow="fold")
    for r in results:
        style = VERDICT_STYLE.get(r.verdict, "white") if r.verdict != "open" else "green"
        table.add_row(
            f"{r.port}/{r.protocol}",
            f"[{style}]{r.verdict}[/]",
            "" if r.ms is None else f"{r.ms:.0f}",
            escape(r.detail),
        )
    out.print(table)
    return 0
