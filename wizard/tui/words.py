"""How the wizard words the engine's next-step codes: as its own keys and steps, not commands.

The command line's wording is ``wizard/words.py``; the codes are ``checks.findings.ACTIONS``.
"""

from __future__ import annotations

from collections.abc import Iterable

ACTION_HINTS: dict[str, str] = {
    "diagnose-longer": "press r on the Network step to run the diagnosis again",
    "keep-updated": "the Done step shows how to keep the name updated",
    "map-port": "on the Ports step, m forwards a tested port through the router",
    "map-and-test": "on the Ports step, tick “Forward with UPnP” and test; k keeps the forward",
    "test-port": "test a port on the Ports step",
    "test-port-ipv6": "on the Ports step, tick “Also test over IPv6”",
    "remove-mapping": "remove it in the router's web page (or with ddns-wizard upnp remove)",
    "update": "send the address on the Hostname & update step",
    "verify": "the Verify step asks the name's servers again",
    "diagnose": "see the Network step",
    "list-mappings": "check the router's forwarding page",
    # checks.portcheck.verdict.NEXT_STEPS besides the shared ones:
    "map-and-retest": "tick “Forward with UPnP” and test again: with the port and a control port mapped "
    "the same way, an ISP block shows",
    "probe-server": "run the project's probe server (ddns-wizard probe-server) on a machine outside your "
    "network and add it to [endpoints] port_check",
}


def action_hints(actions: Iterable[str]) -> list[str]:
    return [ACTION_HINTS[a] for a in actions if a in ACTION_HINTS]
