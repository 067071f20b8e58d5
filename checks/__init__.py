"""The ddns-wizard diagnostic engine.

Everything here is async, typed and free of any UI import (no textual, rich or
wizard): the command line, the Textual app and the report exports are three
views built on top of these result objects. ``tests/test_engine_imports.py``
enforces the rule.
"""

__version__ = "0.1.0"

import sys as _sys

# httpx's package __init__ imports its own command-line client (httpx._main), which
# pulls in rich, click and pygments whenever they are installed: ~150 ms of start-up
# and a UI library inside the engine. A None entry makes that optional import fail
# the way httpx expects when its CLI extras are absent; the HTTP client is unaffected.
_sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
