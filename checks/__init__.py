"""The ddns-wizard diagnostic engine.

Everything here is async, typed and free of any UI import (no textual, rich or
wizard): the command line, the Textual app and the report exports are three
views built on top of these result objects. ``tests/test_engine_imports.py``
enforces the rule.
"""

__version__ = "0.1.0"
