"""`ddns-wizard watch [--interval SECONDS] [--history FILE]`: the long-running updater.

Prints one line per event (timestamps only on a terminal: journald adds its own),
appends every address change and provider answer to the history (JSON Lines),
and exits cleanly on SIGTERM/SIGINT.  Exit 0 after a signal, 2 when the
configuration is unusable or every hostname was stopped by a provider refusal
(a systemd unit uses RestartPreventExitStatus=2 so it does not loop).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from checks.config import Config
    from checks.ddns.history import History
    from checks.reach import ReachPortSpec
    from checks.redact import Redactor


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="seconds between address checks (default 300; at least 10)",
    )
    parser.add_argument(
        "--history",
        metavar="FILE",
        help="history file (JSON Lines; default: history.jsonl in the platform state directory)",
    )
    parser.add_argument(
        "--allow-private", action="store_true", help="allow publishing a private, CGNAT or otherwise non-public address"
    )


def run(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from checks.ddns.history import History, check_history_path, default_history_path
    from checks.ddns.updater import check_config
    from checks.errors import UsageError
    from checks.redact import Redactor

    if args.interval < 10:
        raise UsageError("--interval must be at least 10 seconds (providers block clients that poll too often)")
    from ._config import load as _load

    config = _load(args, needs_file=True)
    check_config(config)  # exit 2 before anything starts
    from checks.reach import watch_reach_specs

    reach_ports = watch_reach_specs(config)  # [watch] reach: a malformed list is exit 2 too
    redactor = Redactor.from_config(config)
    history_path = Path(args.history).expanduser() if args.history else default_history_path()
    problem = check_history_path(history_path)
    if problem:
        raise UsageError(f"{problem}; give --history the path of a regular file")
    emit = _emitter(redactor)
    emit(f"watching {', '.join(h.hostname for h in config.hosts)} every {args.interval:g} s; history: {history_path}")
    with History(history_path, redactor=redactor) as history:
        return asyncio.run(_main(config, history, args, emit, reach_ports))


async def _main(
    config: Config,
    history: History,
    args: argparse.Namespace,
    emit: Callable[[str], None],
    reach_ports: Sequence[ReachPortSpec] = (),
) -> int:
    import asyncio
    import signal

    from checks.ddns.updater import make_provider_client
    from checks.ddns.watch import Watcher

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(name: str) -> None:
        if not stop.is_set():
            emit(f"received {name}: stopping")
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    async with make_provider_client() as client:
        from checks.ddns.notify import Notifier
        from checks.ddns.status import watch_state_path
        from checks.portmap.lasting import ForwardsLedger, watch_hooks

        renew_forwards, forwards_due = watch_hooks(ForwardsLedger.default())
        notifier = Notifier.for_config(config, history.path, strict=False, client=client, emit=emit)

        async def reach_fn(hostname, ports):  # type: ignore[no-untyped-def]
            from checks.reach import run_reach, summary_record

            return summary_record(await run_reach(hostname, ports, config))

        watcher = Watcher(
            config,
            client,
            history=history,
            interval_s=args.interval,
            emit=emit,
            allow_private=args.allow_private,
            renew_forwards=renew_forwards,
            forwards_due=forwards_due,
            notifier=notifier,
            state_path=watch_state_path(history.path),
            reach_ports=tuple(reach_ports),
            reach_every_s=max(300.0, args.interval),
            reach_fn=reach_fn if reach_ports else None,
        )
        code = await watcher.run(stop)
    emit("stopped")
    return code


def _emitter(redactor: Redactor) -> Callable[[str], None]:
    import time

    tty = sys.stdout.isatty()

    def emit(text: str) -> None:
        line = redactor.text(text)
        if tty:
            line = time.strftime("%H:%M:%S ") + line
        print(line, flush=True)

    return emit
