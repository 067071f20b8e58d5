"""`ddns-wizard notify test`: send a test message to every configured notification URL.

Says per URL whether it was accepted (URLs shown without their secret parts).
Exit 0 when every URL accepted it, 1 when any did not, 2 when none is configured.
"""

from __future__ import annotations

import argparse

from wizard.commands import SubcommandsWithConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = SubcommandsWithConfig(parser.add_subparsers(dest="notify_action", metavar="ACTION", required=True))
    sub.add_parser("test", help="send a test notification to every [notify] URL and the ping URL")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from checks.config import load_config
    from checks.ddns.notify import Delivery, Notifier, shown_url
    from checks.errors import ConfigError

    config = load_config(args.config)
    notifier = Notifier.for_config(config, None)
    settings = notifier.settings
    if not settings.enabled:
        where = config.path or "the configuration"
        raise ConfigError(
            f"no notification URL is configured in {where}: add a [notify] table, e.g.\n"
            '  [notify]\n  urls = ["ntfy://my-topic"]   # any apprise URL\n'
            '  ping = "https://hc-ping.com/UUID"   # optional, healthchecks.io-style'
        )

    async def go() -> tuple[list[Delivery], tuple[bool, str] | None]:
        deliveries = await notifier.test()
        pinged = await notifier.ping("success", "ddns-wizard notify test") if settings.ping else None
        return deliveries, pinged

    deliveries, pinged = asyncio.run(go())
    ok = True
    for i, d in enumerate(deliveries, start=1):
        print(f"{i}. {d.url}: " + ("accepted" if d.ok else f"NOT accepted: {d.detail}"))
        ok = ok and d.ok
    if pinged is not None:
        good, why = pinged
        print(f"ping {shown_url(settings.ping or '')}: " + ("accepted" if good else f"NOT accepted: {why}"))
        ok = ok and good
    return 0 if ok else 1
