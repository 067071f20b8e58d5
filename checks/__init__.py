"""The ddns-wizard diagnostic engine.

Everything here is async, typed and free of any UI import (no textual, rich or
wizard): the command line, the Textual app and the report exports are three
views built on top of these result objects. ``tests/test_engine_imports.py``
enforces the rule, and the layers below.

The rooms::

    model, errors, config        result objects, the one exception tree, the configuration
    addresses, nat               address classes and the one host[:port] parser; the NAT verdict
    findings, summary, diagnose  the findings rules, the headline, the diagnosis runner
    http, names, redact, ...     shared helpers (HTTP pinned to a family, lookups, secrets)
    probes/                      one look at the network each (bottom layer)
    portmap/                     mappings on the router (Mapper, ledger, UPnP errors, PCP, pinholes, kept forwards)
    portcheck/                   the inbound port check (spec, probers, verdict, run, inventory, IPv6)
    dns/                         what the world sees for a name
    ddns/                        updater, watch, history, providers/

The probe server (``probeserver/``) is a package of its own; the engine imports only its
``wire`` module.
"""

__version__ = "0.1.0"

import sys as _sys

# httpx's package __init__ imports its own command-line client (httpx._main), which
# pulls in rich, click and pygments whenever they are installed: ~150 ms of start-up
# and a UI library inside the engine. A None entry makes that optional import fail
# the way httpx expects when its CLI extras are absent; the HTTP client is unaffected.
_sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
