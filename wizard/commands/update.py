"""`ddns-wizard update [--force] [--dry-run] [--allow-private] [--json]`.

Finds the public address (a quorum of echo services), asks each hostname's
authoritative servers what they serve, and sends an update only where they
differ.  Exit 0 when every host is up to date (updated, unchanged or dry run),
1 when any host failed, 2 for configuration problems (no hosts, bad fields).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from checks.config import Config
    from checks.ddns.updater import UpdateRun
    from checks.model import UpdateResult
    from checks.redact import Redactor

JSON_KEYS = ("hostname", "provider", "previous", "sent", "result", "code", "message", "fatal", "retry_after_s")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force", action="store_true", help="send the update even when DNS already serves the current address"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="find the address and compare with DNS, but send nothing"
    )
    parser.add_argument(
        "--allow-private", action="store_true", help="allow publishing a private, CGNAT or otherwise non-public address"
    )
    parser.add_argument("--json", action="store_true", help="print the per-hostname results as JSON")
    parser.add_argument(
        "--history",
        metavar="FILE",
        help="history file shared with `watch` (JSON Lines; default: history.jsonl in the "
        "platform state directory): what was sent is recorded there, and consulted "
        "only when DNS cannot be asked",
    )


def results_json(results: Sequence[UpdateResult], redactor: Redactor) -> list[dict[str, Any]]:
    from checks.model import to_jsonable

    out = []
    for r in results:
        data = to_jsonable(r)
        out.append(redactor.data({k: data[k] for k in JSON_KEYS}))
    return out


def run(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from checks.ddns.history import check_history_path, default_history_path, read_history
    from checks.ddns.updater import run_update_detailed
    from checks.errors import UsageError
    from checks.redact import Redactor

    from ._config import load as _load

    config = _load(args, needs_file=True)
    redactor = Redactor.from_config(config)
    progress = _progress_printer(redactor) if sys.stderr.isatty() and not args.json else None
    history_path = Path(args.history).expanduser() if args.history else default_history_path()
    problem = check_history_path(history_path)
    if problem:
        raise UsageError(f"{problem}; give --history the path of a regular file")
    records = read_history(history_path).records
    skip = {} if args.force or args.dry_run else _still_stopped(config, records)
    from checks.ddns.notify import Notifier

    notifier = Notifier.for_config(config, history_path, strict=False, emit=_warn)
    notifying = notifier.settings.enabled and not args.dry_run
    if notifying:
        asyncio.run(notifier.ping("start", "update started"))
    run_result = asyncio.run(
        run_update_detailed(
            config,
            force=args.force,
            dry_run=args.dry_run,
            allow_private=args.allow_private,
            on_progress=progress,
            history=records,
            skip=skip,
        )
    )
    if progress is not None:
        progress.done()
    results = run_result.results
    _record_sent(history_path, results, redactor, config)
    if notifying:
        asyncio.run(_notify(notifier, results))
    if args.json:
        print(json.dumps(results_json(results, redactor), indent=2))
    else:
        _print_human(run_result, redactor)
    return 1 if any(r.result == "error" for r in results) else 0


def _warn(text: str) -> None:
    print(f"ddns-wizard: warning: {text}", file=sys.stderr)


async def _notify(notifier, results) -> None:  # type: ignore[no-untyped-def]
    """changed / failed / recovered notifications, then the ping: fail when a host failed."""
    await notifier.results(results)
    failed = [r.hostname for r in results if r.result == "error"]
    await notifier.ping(
        "fail" if failed else "success", ("failed: " + ", ".join(failed)) if failed else "every hostname is up to date"
    )


def _still_stopped(config: Config, records: Sequence[dict[str, Any]]) -> dict[str, UpdateResult]:
    """Hosts a provider refused for good (badauth, nohost, abuse...) with this very
    configuration: not sent again from cron every five minutes (providers block clients
    that repeat a refused request); the stop ends when the configuration changes, a
    success is recorded, or with --force."""
    from checks.ddns.status import stopped_hosts
    from checks.model import UpdateResult

    out = {}
    for name, record in stopped_hosts(config, records).items():
        host = next(h for h in config.hosts if h.hostname == name)
        out[name] = UpdateResult(
            hostname=name,
            provider=host.provider,
            previous=None,
            sent=None,
            result="error",
            code="stopped",
            message=(
                f"not sent again: {host.provider} refused this configuration at {_when(record)} "
                f"({record.get('code') or 'refused'}; `ddns-wizard status` shows its words), and sending it "
                "again would only risk a ban. Fix the configuration (the stop ends when it changes), "
                "or use --force."
            ),
            fatal=True,
        )
    return out


def _when(record) -> str:  # type: ignore[no-untyped-def]
    import datetime as dt

    t = record.get("t")
    if not isinstance(t, (int, float)):
        return "an earlier run"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _record_sent(path: Path, results: Sequence[UpdateResult], redactor: Redactor, config: Config | None = None) -> None:
    """Append what reached a provider to the history (the same records `watch` writes),
    and a ``stopped`` record for a refusal for good (as the watch does)."""
    from checks.ddns.history import History

    sent = [r for r in results if r.sent is not None and r.code not in ("dry-run", "stopped")]
    if not sent:
        return
    prints = {}
    if config is not None:
        from checks.ddns.watch import fingerprint

        refused = {r.hostname for r in sent if r.result == "error" and r.fatal}  # the slow hash: these only
        prints = {h.hostname: fingerprint(h) for h in config.hosts if h.hostname in refused}
    try:
        with History(path, redactor=redactor) as history:
            for r in sent:
                history.append(
                    "update",
                    hostname=r.hostname,
                    provider=r.provider,
                    previous=r.previous,
                    sent=r.sent,
                    result=r.result,
                    code=r.code,
                    message=r.message,
                    fatal=r.fatal,
                    retry_after_s=r.retry_after_s,
                )
                if r.result == "error" and r.fatal and r.hostname in prints:
                    history.append(
                        "stopped", hostname=r.hostname, code=r.code, message=r.message, fingerprint=prints[r.hostname]
                    )
    except OSError as exc:  # the update itself happened: a history problem is only worth a line
        print(f"ddns-wizard: warning: cannot write history {path}: {exc.strerror or exc}", file=sys.stderr)


class _progress_printer:
    """One overwritten status line on stderr (only when stderr is a terminal)."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.width = 0

    def __call__(self, text: str) -> None:
        line = self.redactor.text(text)[:100]
        sys.stderr.write("\r" + line.ljust(self.width))
        sys.stderr.flush()
        self.width = len(line)

    def done(self) -> None:
        sys.stderr.write("\r" + " " * self.width + "\r")
        sys.stderr.flush()


def _print_human(run_result: UpdateRun, redactor: Redactor) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    public = run_result.public
    parts = []
    if public.ipv4:
        parts.append(f"IPv4 {public.ipv4}")
    if public.ipv6:
        parts.append(f"IPv6 {public.ipv6}")
    if parts:
        console.print(
            f"Public address: {', '.join(parts)}" + (f" ({public.summary})" if public.summary else ""), markup=False
        )
        for problem in (public.problem_v4, public.problem_v6):
            if problem:
                console.print(f"Note: {problem}", markup=False)
    else:
        console.print("Public address: unknown", markup=False)
    for source in public.sources:  # an answer of the wrong family or no public address: said, not counted
        if source.error and "discarded" in source.error:
            console.print(
                f"Discarded: IPv{source.family} {source.method} {source.endpoint}: {redactor.text(source.error)}",
                markup=False,
            )
    styles = {"updated": "green", "unchanged": "cyan", "error": "bold red"}
    table = Table(show_header=True, header_style="bold", expand=False)
    for col in ("hostname", "provider", "result", "DNS had", "sent", "code"):
        table.add_column(col)
    for r in run_result.results:
        if r.code == "dry-run":  # issue 19: not "unchanged, sent -": what it would do
            table.add_row(
                r.hostname,
                r.provider,
                "[yellow]would update[/]",
                r.previous or "-",
                f"{r.would_send or '?'} (not sent)",
                "dry run",
            )
            continue
        table.add_row(
            r.hostname,
            r.provider,
            f"[{styles.get(r.result, '')}]{r.result}[/]",
            r.previous or "-",
            r.sent or "-",
            redactor.text(r.code or "-"),
        )
    console.print(table)
    for r in run_result.results:
        if r.code == "dry-run":
            console.print(
                f"{r.hostname}: would update {r.previous or 'nothing'} → {r.would_send or '?'} (dry run: nothing sent)",
                markup=False,
                soft_wrap=False,
            )
            continue
        prefix = "stopped: " if r.fatal else ""
        retry = f" (retry in {r.retry_after_s} s)" if r.retry_after_s else ""
        message = r.message[len(r.hostname) + 1 :] if r.message.startswith(r.hostname + " ") else r.message
        console.print(f"{r.hostname}: {prefix}{redactor.text(message)}{retry}", markup=False, soft_wrap=False)
