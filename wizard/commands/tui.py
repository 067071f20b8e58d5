"""Launch the Textual wizard (the only place Textual gets imported from the CLI)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from checks.errors import UsageError

    raise UsageError("the interactive wizard is not available yet")
