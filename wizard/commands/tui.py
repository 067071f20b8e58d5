"""Launch the Textual wizard (the only place Textual gets imported from the CLI)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from checks.config import load_config
    from checks.errors import UsageError

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "the wizard needs a terminal; for scripts use the commands "
            "(ddns-wizard diagnose --json, ports check, update, verify ...)"
        )
    config = load_config(getattr(args, "config", None))

    from ..engine import RealEngine
    from ..tui.app import WizardApp

    light = os.environ.get("DDNS_WIZARD_THEME", "").lower() == "light"
    WizardApp(RealEngine(config), config, light=light).run()
    return 0
