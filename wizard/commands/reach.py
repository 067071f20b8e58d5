"""`ddns-wizard reach HOSTNAME [PORT[/tcp]]... [--json]`: can someone outside open it?

Resolves the name through the public resolvers and its authoritative servers,
compares it with this network's public addresses, has the outside prober connect
to it (TLS with SNI on TLS ports, the certificate judged), connects from inside
too (NAT loopback), and gives one verdict with its reasons (checks/reach.py).
Default port: 443.  Exit 0 whatever it found; 2 for bad input or configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from wizard.words import action_commands

if TYPE_CHECKING:  # pragma: no cover
    from checks.reach import ReachResult

VERDICT_WORDS = {
    "reachable": "REACHABLE — it opens from the internet",
    "unreachable": "NOT REACHABLE from outside",
    "wrong-address": "WRONG ADDRESS — the name does not point at this network",
    "unknown": "UNKNOWN — could not be tested from outside",
}
VERDICT_STYLE = {"reachable": "green", "unreachable": "red", "wrong-address": "red", "unknown": "magenta"}
STATE_STYLE = {
    "open": "green",
    "works": "green",
    "closed": "red",
    "filtered": "red",
    "broken": "yellow",
    "unknown": "dim",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "hostname", nargs="?", metavar="HOSTNAME", help="the name people use (default: the first configured hostname)"
    )
    parser.add_argument(
        "ports",
        nargs="*",
        metavar="PORT[/tcp]",
        help="ports to test (default 443); TLS is checked on the usual TLS ports, "
        "PORT/tls or PORT/plain says otherwise",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object (docs/reach.md)")


def parse_args(args: argparse.Namespace, config: Any) -> tuple[str, list[Any]]:
    from checks.dns.verify import normalize_hostname
    from checks.errors import UsageError
    from checks.reach import parse_reach_port

    name = args.hostname
    if not name:
        if not config.hosts:
            raise UsageError("no hostname given and none configured: `ddns-wizard reach myhome.example.org 443`")
        name = config.hosts[0].hostname
    try:
        name = normalize_hostname(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    specs = []
    for text in args.ports or ["443"]:
        try:
            specs.append(parse_reach_port(text))
        except ValueError as exc:
            hint = f" (`ddns-wizard ports check {text}`)" if text.strip().lower().endswith("/udp") else ""
            raise UsageError(f"{exc}{hint}") from None
    unique = list({(s.port, s.protocol): s for s in specs}.values())
    if len(unique) > 8:
        raise UsageError("reach tests at most 8 ports at a time")
    return name, unique


def run(args: argparse.Namespace) -> int:
    import asyncio

    from checks.config import load_config
    from checks.errors import ConfigError
    from checks.reach import result_json, run_reach

    config = load_config(args.config)
    name, specs = parse_args(args, config)
    if not config.endpoints.resolvers:
        raise ConfigError("[endpoints] resolvers is empty: reach needs a resolver to look the name up")
    status = None
    if sys.stderr.isatty() and not args.json:
        from rich.console import Console

        status = Console(stderr=True).status(f"checking {name}…")
        status.start()
    words = {
        "dns": "asking DNS and finding this network's public address…",
        "outside": "connecting from outside and from inside…",
    }
    try:
        result = asyncio.run(
            run_reach(
                name, specs, config, on_progress=lambda step: status.update(words.get(step, step)) if status else None
            )
        )
    finally:
        if status is not None:
            status.stop()
    if args.json:
        import json

        print(json.dumps(result_json(result), indent=2))
    else:
        print_result(result)
    return 0


def print_result(result: ReachResult) -> None:
    from rich.console import Console

    Console().print(render(result))


def render(result: ReachResult) -> Any:
    """The Rich view of one reach result (also used by the report preview)."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from wizard.render import SEVERITY_MARK, SEVERITY_STYLE

    parts: list[Any] = []
    public = ", ".join(a for a in (result.public_ipv4, result.public_ipv6) if a) or "unknown"
    here = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "[dim]unknown[/dim]"}[result.points_here]
    parts.append(
        Text.from_markup(
            f"[bold]{escape(result.hostname)}[/bold] → {escape(', '.join(result.addresses) or 'no address')}"
            f"   this network: {escape(public)}   points here: {here}"
        )
    )
    if result.ports and any(p.address for p in result.ports):
        table = Table(show_edge=False, pad_edge=False)
        for col in ("port", "address", "outside", "inside", "hairpin", "certificate"):
            table.add_column(col)
        for p in result.ports:
            if p.tls is None:
                cert = "[dim]not checked[/dim]" if p.outside == "open" else "[dim]—[/dim]"
            elif p.tls.ok:
                style = "yellow" if p.tls.expiring_soon else "green"
                cert = f"[{style}]valid[/{style}], {p.tls.days_left} days left, {escape(p.tls.issuer or '')}"
            else:
                cert = f"[red]{escape(p.tls.error or 'invalid')}[/red]"

            def st(v: str) -> str:
                return f"[{STATE_STYLE.get(v, '')}]{v}[/]"

            table.add_row(
                f"{p.port}/{p.protocol}", escape(p.address or "—"), st(p.outside), st(p.inside), st(p.hairpin), cert
            )
        parts.append(table)
    verdict = VERDICT_WORDS.get(result.verdict, result.verdict)
    if result.verdict == "reachable" and result.tls_ok is False:
        verdict += ", but the certificate is not valid: browsers will refuse it"
    parts.append(Text.from_markup(f"[bold {VERDICT_STYLE.get(result.verdict, '')}]{escape(verdict)}[/]"))
    for f in result.findings:
        style = SEVERITY_STYLE.get(f.severity, "")
        parts.append(Text.from_markup(f"[{style}]{SEVERITY_MARK.get(f.severity, '')} {escape(f.title)}[/]"))
        if f.detail:
            parts.append(Text("   " + f.detail))
        if f.fix:
            parts.append(Text.from_markup(f"   [bold]Fix:[/bold] {escape(f.fix)}"))
        for command in action_commands(f.actions):
            parts.append(Text.from_markup(f"   [bold]Next:[/bold] {escape(command)}"))
    evidence = [e for p in result.ports for e in p.evidence]
    if evidence:
        parts.append(Text("Evidence:", style="dim"))
        parts.extend(Text(f"  • {e}", style="dim") for e in dict.fromkeys(evidence))
    parts.append(Text(f"({result.duration_ms / 1000:.1f} s)", style="dim"))
    return Group(*parts)


def summary_lines(
    result: ReachResult, words: Callable[[Iterable[str]], list[str]] = action_commands
) -> list[tuple[str, str]]:
    """(severity, sentence) lines for the wizard's Verify and Done screens (which pass
    ``words=wizard.tui.words.action_hints``: keys and steps, not commands)."""
    lines: list[tuple[str, str]] = []
    ports = ", ".join(f"{p.port}/{p.protocol}" + (f" (IPv{p.family})" if p.family == 6 else "") for p in result.ports)
    if result.verdict == "reachable":
        lines.append(("ok", f"{result.hostname} is reachable from outside on {ports}."))
    elif result.verdict == "unreachable":
        lines.append(("error", f"{result.hostname} is NOT reachable from outside on {ports}."))
    elif result.verdict == "wrong-address":
        lines.append(
            (
                "error",
                f"{result.hostname} does not point at this network ({', '.join(result.addresses) or 'no address'}).",
            )
        )
    else:
        lines.append(("warning", f"{result.hostname}: reachability from outside is unknown."))
    for f in result.findings:
        if f.id == "reachable":
            continue
        text = f.title
        if f.severity in ("error", "warning"):
            text += f" — {f.fix}" if f.fix else ""
            next_steps = words(f.actions)
            text += f" ({'; '.join(next_steps)})" if next_steps else ""
        lines.append((f.severity, text))
    return lines
