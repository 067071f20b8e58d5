"""`ddns-wizard status [--json] [--history FILE]`: what the updater did and whether it runs.

Reads the history (shared by `update` and `watch`) and the watch's state; changes nothing,
contacts nobody.  Exit 0 (whatever it found), 2 for a configuration problem.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.add_argument(
        "--history",
        metavar="FILE",
        help="history file (default: the installed system service's, else history.jsonl in the "
        "platform state directory)",
    )


def history_path_for(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """--history, else the system unit's history when that unit is installed and its history
    readable, else the default (the user's state directory)."""
    from pathlib import Path

    from checks.ddns.history import default_history_path
    from checks.ddns.service import SYSTEM_UNIT_DIR, UNIT_NAME, installed_history_path

    if args.history:
        return Path(args.history).expanduser()
    default = default_history_path()
    if not default.exists():
        installed = installed_history_path(SYSTEM_UNIT_DIR / UNIT_NAME)
        if installed is not None and installed.exists():
            return installed
    return default


def run(args: argparse.Namespace) -> int:
    from checks.config import load_config
    from checks.ddns.history import check_history_path
    from checks.ddns.status import gather_status
    from checks.errors import UsageError
    from checks.redact import Redactor

    config = load_config(args.config)
    redactor = Redactor.from_config(config)
    path = history_path_for(args)
    problem = check_history_path(path)
    if problem:
        raise UsageError(f"{problem}; give --history the path of a regular file")
    status = gather_status(config, path)
    if args.json:
        print(json.dumps(redactor.data(status.to_json()), indent=2))
        return 0
    from wizard.keep_text import status_lines

    for line in status_lines(status, config):
        print(redactor.text(line))
    return 0
