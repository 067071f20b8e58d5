"""`ddns-wizard probe-server` (not built yet)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from checks.errors import UsageError

    raise UsageError("'probe-server' is not available yet")
