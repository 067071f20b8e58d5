"""`ddns-wizard verify [HOSTNAME] [--wait SECONDS] [--json] [--expect IP]`.

Asks the zone's authoritative servers directly and every configured resolver what
the name resolves to, compares it with the expected address (``--expect``, else the
current public address seen by the configured IP echo services), gives a verdict
with an estimate of when caches catch up, and pings the published address.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from checks.config import Config
    from checks.model import VerifyResult

VERDICT_WORDS = {
    "ok": "OK — the name points at the expected address everywhere",
    "propagating": "PROPAGATING — updated at the source, some caches still hold the old answer",
    "wrong-ip": "WRONG ADDRESS — the authoritative servers publish another address",
    "nxdomain": "NO SUCH NAME — the authoritative servers say the name does not exist",
    "no-answer": "NO ADDRESS — the name exists but has no A/AAAA record",
    "unknown": "UNKNOWN — not enough DNS servers answered to tell",
}
VERDICT_STYLE = {
    "ok": "green",
    "propagating": "yellow",
    "wrong-ip": "red",
    "nxdomain": "red",
    "no-answer": "red",
    "unknown": "magenta",
}
# The published address pinged from inside the LAN is this network's own outside address: the
# router answers it itself (or loops it back: hairpin NAT), so the answer never crossed the internet.
HAIRPIN_PING = (
    "LAN check only: {target} is this network's own outside address, so from inside the LAN "
    "your router answered it itself (or looped it back: hairpin NAT) and the packets never left "
    "your network. This proves nothing about reachability from the internet; "
    "`ddns-wizard ports check PORT` tests that from outside."
)
PING_FROM_INSIDE = (
    "From inside this network: if {target} is your own public address, the router answered it "
    "itself, which proves nothing about reachability from outside."
)
PING_METHOD_WORDS = {
    "icmp-unprivileged": "ICMP echo (unprivileged socket)",
    "icmp-privileged": "ICMP echo (raw socket, as root)",
    "tcp-connect": "TCP connect",
    "none": "nothing",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "hostname", nargs="?", metavar="HOSTNAME", help="name to check (default: every configured hostname)"
    )
    parser.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        default=0.0,
        help="keep checking (1, 2, 4 … s apart) until every server agrees, for at most SECONDS",
    )
    parser.add_argument(
        "--expect",
        action="append",
        metavar="IP",
        default=[],
        help="the address the name should have (once per family; default: this network's current public address)",
    )
    parser.add_argument("--no-ping", action="store_true", help="do not ping the published address")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (docs/json.md)")


def is_hairpin(target: str | None, own: set[str] | None) -> bool | None:
    """Whether the pinged address is this network's own outside address (None: not known)."""
    if target is None:
        return False
    if own is None:
        return None
    return target in own


def result_json(result: VerifyResult, own: set[str] | None = None) -> dict[str, Any]:
    """The ``verify --json`` object of DESIGN.md for one hostname (``own``: this network's public
    addresses, when known: a ping of one of them is a LAN check, ``ping.hairpin``)."""

    def answers(items: Sequence[Any]) -> list[dict[str, Any]]:
        return [
            {
                "server": a.server,
                "answers": list(a.answers),
                "ttl": a.ttl,
                "ok": a.ok,
                "rcode": a.rcode,
                "error": a.error,
                "ignored": list(a.ignored),
            }
            for a in items
        ]

    ping = result.ping
    return {
        "hostname": result.hostname,
        "expected": {"ipv4": result.expected_ipv4, "ipv6": result.expected_ipv6},
        "authoritative": answers(result.authoritative),
        "resolvers": answers(result.resolvers),
        "verdict": result.verdict,
        "explanation": result.explanation,
        "caches_settle_s": result.caches_settle_s,
        "provider_record": None
        if result.provider_record is None
        else {
            "source": result.provider_record.source,
            "proxied": list(result.provider_record.proxied),
            "ipv4": list(result.provider_record.ipv4),
            "ipv6": list(result.provider_record.ipv6),
        },
        "ping": None
        if ping is None
        else {
            "method": ping.method,
            "alive": ping.alive,
            "rtt_ms": ping.rtt_ms,
            "target": ping.target,
            "hairpin": is_hairpin(ping.target, own),
        },
    }


def _hostnames(args: argparse.Namespace, config: Config) -> list[str]:
    from checks.dns.verify import normalize_hostname
    from checks.errors import UsageError

    names = [args.hostname] if args.hostname else [h.hostname for h in config.hosts]
    if not names:
        where = f" in {config.path}" if config.path else ""
        raise UsageError(
            f"no hostname given and none configured{where}. "
            "Name one (`ddns-wizard verify myhome.example.org`) or add a [[hosts]] entry to the configuration."
        )
    out: list[str] = []
    for name in names:
        try:
            out.append(normalize_hostname(name))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return list(dict.fromkeys(out))


def _expected_from_args(values: Sequence[str]) -> tuple[str | None, str | None]:
    from checks.addresses import parse_ip
    from checks.errors import UsageError

    v4: str | None = None
    v6: str | None = None
    for raw in values:
        ip = parse_ip(raw)
        if ip is None:
            raise UsageError(f"--expect {raw!r} is not an IP address")
        if ip.version == 4:
            if v4 is not None:
                raise UsageError("--expect: give at most one IPv4 and one IPv6 address")
            v4 = str(ip)
        else:
            if v6 is not None:
                raise UsageError("--expect: give at most one IPv4 and one IPv6 address")
            v6 = str(ip)
    return v4, v6


def _check_resolvers(config: Config) -> list[str]:
    from checks.dns.verify import parse_server
    from checks.errors import ConfigError

    resolvers = list(config.endpoints.resolvers)
    if not resolvers:
        raise ConfigError(
            "[endpoints] resolvers is empty: verify needs at least one resolver "
            "to find the authoritative servers and to compare caches"
        )
    for spec in resolvers:
        try:
            parse_server(spec)
        except ValueError as exc:
            raise ConfigError(f"[endpoints] resolvers: {exc} (use ADDRESS or ADDRESS:PORT)") from None
    return resolvers


async def public_addresses(config: Config, *, timeout_s: float = 3.0) -> tuple[str | None, str | None, str]:
    """(ipv4, ipv6, note): this network's public address from the configured HTTP echo services."""
    from checks.probes.publicip import http_echo, summarize_external

    urls = [(u, 4) for u in config.endpoints.ip_echo] + [(u, 6) for u in config.endpoints.ip_echo_v6]
    if not urls:
        return None, None, "no IP echo service is configured ([endpoints] ip_echo), so nothing is expected"
    try:
        from checks.http import make_client

        client = make_client(timeout_s=timeout_s)
    except ImportError:  # pragma: no cover - the shared factory is part of the engine
        import httpx

        client = httpx.AsyncClient(timeout=timeout_s)
    import asyncio

    async with client:
        sources = await asyncio.gather(*(http_echo(client, u, family=f, timeout_s=timeout_s) for u, f in urls))
    info = summarize_external(sources)
    answered = sum(1 for s in sources if s.value)
    if info.ipv4 is None and info.ipv6 is None:
        return None, None, "no IP echo service answered, so the current public address is unknown"
    note = f"current public address, seen by {answered} of {len(sources)} echo services"
    if not info.agreement and info.explanation:
        note += f" (they disagree: {info.explanation})"
    return info.ipv4, info.ipv6, note


def run(args: argparse.Namespace) -> int:
    import asyncio

    from checks.errors import UsageError

    from ._config import load as _load

    config = _load(args, needs_file=True)
    hosts = _hostnames(args, config)
    resolvers = _check_resolvers(config)
    if args.wait < 0:
        raise UsageError("--wait must be 0 or more seconds")
    expect4, expect6 = _expected_from_args(args.expect)
    progress = _Progress(enabled=sys.stderr.isatty())
    try:
        results, note, own = asyncio.run(_verify_all(config, hosts, resolvers, expect4, expect6, args, progress))
    finally:
        progress.stop()
    if args.json:
        import json

        data = [result_json(r, own) for r in results]
        print(json.dumps(data[0] if args.hostname or len(data) == 1 else data, indent=2))
    else:
        _print_results(results, note, own, waited=args.wait > 0)
    return 0


async def _verify_all(
    config: Config,
    hosts: list[str],
    resolvers: list[str],
    expect4: str | None,
    expect6: str | None,
    args: argparse.Namespace,
    progress: _Progress,
) -> tuple[list[VerifyResult], str, set[str] | None]:
    import asyncio

    from checks.dns import verify as dnsverify

    own: set[str] | None = None
    if expect4 or expect6:
        note = "given with --expect"
    else:
        progress.update("finding this network's public address…")
        expect4, expect6, note = await public_addresses(config)
        own = {a for a in (expect4, expect6) if a}
    progress.update(f"asking the authoritative servers and {len(resolvers)} resolver(s)…")

    configured = {h.hostname: h for h in config.hosts}

    async def one(host: str) -> VerifyResult:
        def on_progress(result: VerifyResult, left: float) -> None:
            settle = f", caches settle in about {result.caches_settle_s} s" if result.caches_settle_s else ""
            progress.update(f"{host}: {result.verdict}{settle}; checking again ({left:.0f} s left)")

        # A configured host whose provider can be asked (Cloudflare) is also checked against the
        # provider's own record: a proxied record never shows its address in public DNS.
        return await dnsverify.verify_configured(
            host,
            configured.get(host),
            expected_ipv4=expect4,
            expected_ipv6=expect6,
            resolvers=resolvers,
            wait_s=args.wait,
            on_progress=on_progress,
            ping=not args.no_ping,
        )

    return list(await asyncio.gather(*(one(h) for h in hosts))), note, own


class _Progress:
    """A Rich status line on stderr while the check runs (only when stderr is a terminal)."""

    def __init__(self, *, enabled: bool) -> None:
        self._status: Any = None
        if enabled:
            from rich.console import Console

            self._status = Console(stderr=True).status("verifying…")
            self._status.start()

    def update(self, text: str) -> None:
        if self._status is not None:
            self._status.update(text)

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


# VerifyResult.next_step, worded for the command line.
NEXT_STEP_WORDS = {
    "update": "Run `ddns-wizard update` to send the current address, then verify again.",
    "check-name": "Check the hostname's spelling, or create it in the provider's control panel "
    "(with some providers `ddns-wizard update` creates it).",
    "retry": "Check the network and the configured resolvers, then run `ddns-wizard verify` again.",
}


def _print_results(
    results: Sequence[VerifyResult], note: str, own: set[str] | None = None, *, waited: bool = False
) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    for result in results:
        expected = ", ".join(a for a in (result.expected_ipv4, result.expected_ipv6) if a) or "nothing in particular"
        console.print(
            f"[bold]{escape(result.hostname)}[/bold]  expected: {escape(expected)}"
            + (f" [dim]({escape(note)})[/dim]" if note else "")
        )
        table = Table(show_edge=False, pad_edge=False)
        table.add_column("asked")
        table.add_column("server")
        table.add_column("answer")
        table.add_column("TTL", justify="right")
        table.add_column("ok")
        for kind, answers in (("authoritative", result.authoritative), ("resolver", result.resolvers)):
            for a in answers:
                if a.rcode is None:
                    answer_text = f"[dim]{escape(a.error or 'no reply')}[/dim]"
                elif a.answers:
                    answer_text = escape(", ".join(a.answers))
                else:
                    answer_text = (
                        "no such name"
                        if a.rcode == "NXDOMAIN"
                        else ("no address record" if a.rcode == "NOERROR" else escape(a.rcode))
                    )
                if a.error and a.rcode is not None:
                    answer_text += f" [dim]({escape(a.error)})[/dim]"
                for note in a.ignored:
                    answer_text += f"\n[yellow]{escape(note)}[/yellow]"
                ttl = f"{a.ttl} s" if a.ttl is not None else "—"
                mark = "[green]yes[/green]" if a.ok else ("[dim]—[/dim]" if a.rcode is None else "[red]no[/red]")
                table.add_row(kind, escape(a.server), answer_text, ttl, mark)
        if result.authoritative or result.resolvers:
            console.print(table)
        style = VERDICT_STYLE.get(result.verdict, "bold")
        console.print(f"[bold {style}]{escape(VERDICT_WORDS.get(result.verdict, result.verdict))}[/]")
        if result.explanation:
            console.print(escape(result.explanation))
        if waited and result.next_step in ("update", "check-name"):
            console.print(
                "Stopped waiting: the authoritative servers themselves hold this answer, so waiting "
                "longer would not change it."
            )
        step = NEXT_STEP_WORDS.get(result.next_step or "")
        if step:
            console.print(f"[bold]Next:[/] {escape(step)}")
        if result.caches_settle_s is not None:
            console.print(f"Estimate: every cache serves the new answer within about {result.caches_settle_s} s.")
        rec = result.provider_record
        if rec is not None:
            held = ", ".join(list(rec.ipv4) + list(rec.ipv6)) or "no address"
            console.print(
                f"Provider record ({escape(rec.source)}): {escape(held)}"
                + (f" [dim](proxied: {escape('/'.join(rec.proxied))})[/dim]" if rec.proxied else "")
            )
        if result.ping is not None:
            p = result.ping
            how = PING_METHOD_WORDS.get(p.method, p.method)
            hairpin = is_hairpin(p.target, own)
            label = "LAN check" if hairpin else "Ping"
            if p.alive:
                rtt = f", {p.rtt_ms:.1f} ms" if p.rtt_ms is not None else ""
                console.print(
                    f"{label} {escape(p.target or '')}: answers ({how}{rtt})"
                    if hairpin
                    else f"Ping {escape(p.target or '')}: [green]answers[/green] ({how}{rtt})"
                )
            else:
                console.print(
                    f"{label} {escape(p.target or '')}: no answer ({how}). [dim]{escape(p.detail)}[/dim]"
                    if p.target
                    else f"Ping: {escape(p.detail)}"
                )
            if p.target and hairpin:
                console.print(f"[yellow]{escape(HAIRPIN_PING.format(target=p.target))}[/yellow]")
            elif p.target and hairpin is None:
                console.print(f"[dim]{escape(PING_FROM_INSIDE.format(target=p.target))}[/dim]")
        console.print()
