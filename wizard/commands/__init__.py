"""One module per subcommand: ``add_arguments(parser)`` and ``run(args) -> exit code``.

Command modules import nothing heavy at module level (``--help`` imports them
all); engine and UI imports go inside ``run``.
"""

from __future__ import annotations

import argparse
from typing import Any

# (command name, module in wizard.commands, one-line help)
COMMANDS: list[tuple[str, str, str]] = [
    ("diagnose", "diagnose", "find addresses, NAT/CGNAT and router facts; changes nothing"),
    ("ports", "ports", "test inbound port forwarding from outside, and outbound ISP blocks"),
    ("upnp", "upnp", "list, add and remove the router's UPnP port mappings"),
    ("providers", "providers", "list supported DDNS providers and the credentials each needs"),
    ("update", "update", "update the configured hostnames when the public address changed"),
    ("verify", "verify", "check what authoritative servers and public resolvers answer; ping"),
    ("reach", "reach", "can someone outside open HOSTNAME:PORT, with a valid certificate? (end to end)"),
    ("watch", "watch", "keep the configured hostnames updated (long-running)"),
    ("status", "status", "what the updater did per hostname, and whether watch is running"),
    ("hosts", "hosts", "list or remove configured hostnames"),
    ("notify", "notify", "send a test notification to the configured [notify] URLs"),
    ("service", "service", "install, check or remove the watch as a systemd service"),
    ("probe-server", "probe_server", "run a self-hostable outside prober (IP echo, port checks)"),
]


class SubcommandsWithConfig:
    """Subcommands that accept the global --config after them too (`hosts list --config F`).

    SUPPRESS keeps a value given before the command when this one is absent (as wizard.cli
    does for the commands themselves)."""

    def __init__(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self.sub = sub

    def add_parser(self, *a: Any, **kw: Any) -> argparse.ArgumentParser:
        p = self.sub.add_parser(*a, **kw)
        p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="configuration file")
        return p
