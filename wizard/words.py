"""How the command line and the reports word the engine's next-step codes.

The engine (``checks``) returns codes (``Finding.actions``, ``PortResult.next_step``,
``VerifyResult.next_step``) and never names a command or a flag; the TUI words the same
codes as keys and steps (``wizard/tui/words.py``).
"""

from __future__ import annotations

from collections.abc import Iterable

# checks.findings.ACTIONS -> the command that does it.
ACTION_COMMANDS: dict[str, str] = {
    "diagnose-longer": "ddns-wizard diagnose --budget 30",
    "keep-updated": "ddns-wizard watch",
    "map-port": "ddns-wizard upnp add PORT",
    "map-and-test": "ddns-wizard ports check PORT --upnp --keep",
    "test-port": "ddns-wizard ports check PORT",
    "test-port-ipv6": "ddns-wizard ports check PORT --ipv6",
    "remove-mapping": "ddns-wizard upnp remove PORT/PROTO",
    "update": "ddns-wizard update",
    "verify": "ddns-wizard verify",
    "diagnose": "ddns-wizard diagnose",
    "list-mappings": "ddns-wizard upnp list",
    "probe-server": "ddns-wizard probe-server --listen 0.0.0.0:443 --tls-cert CERT --tls-key KEY",
    # checks.portcheck.verdict.NEXT_STEPS besides the shared ones:
    "map-and-retest": "ddns-wizard ports check PORT --upnp",
}


def action_commands(actions: Iterable[str], port: str | None = None) -> list[str]:
    """The commands for these codes, in order, unknown codes left out; ``port`` ("8080/tcp")
    fills in PORT (and PORT/PROTO)."""
    out = [ACTION_COMMANDS[a] for a in actions if a in ACTION_COMMANDS]
    if port:
        out = [c.replace("PORT/PROTO", port).replace("PORT", port) for c in out]
    return out
