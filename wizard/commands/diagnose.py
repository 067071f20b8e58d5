"""`ddns-wizard diagnose`: addresses, NAT/CGNAT and router facts; changes nothing.

Progress goes to stderr (only when it is a terminal); stdout carries either the
Rich report or, with ``--json``, exactly the report@1 JSON object.  Exit status
0 whatever the diagnosis found (DESIGN.md).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEFAULT_BUDGET_S = 4.0  # checks.diagnose's defaults (not imported here: --help stays cheap)
SLOW_LINE_BUDGET_S = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print the report as JSON (schema ddns-wizard/report@1) and nothing else"
    )
    parser.add_argument(
        "--report", metavar="FILE", help="also write a report you can share: .json, .md or .html by the file's suffix"
    )
    parser.add_argument(
        "--redact",
        action="store_true",
        help="replace public addresses and your hostnames with placeholders in the report (and in --json output)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite the --report FILE if it exists")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"give up on probes still running after this long (default {DEFAULT_BUDGET_S:g}, "
        f"up to {SLOW_LINE_BUDGET_S:g} when the line turns out slow)",
    )
    parser.add_argument("--probes", action="store_true", help="also list every probe with its timing")


def _probe_set() -> Any:
    """The probe functions to run (tests replace this to run without a network)."""
    from checks.diagnose import default_probes

    return default_probes()


def _check_report_target(path: str, force: bool) -> None:
    """Fail before probing when the report could not be written anyway."""
    from pathlib import Path

    from wizard.report import format_for

    p = Path(path).expanduser()
    format_for(p)  # raises UsageError for an unknown suffix
    from checks.errors import UsageError

    if p.exists() and not force:
        raise UsageError(f"{p} already exists; use --force to overwrite it")
    if not p.parent.exists():
        raise UsageError(f"directory {p.parent} does not exist")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from checks.diagnose import run_diagnosis
    from checks.errors import UsageError

    budget = None if args.budget is None else float(args.budget)
    if budget is not None and not (0.2 <= budget <= 120):
        raise UsageError("--budget must be between 0.2 and 120 seconds")
    from ._config import load as _load

    config = _load(args)
    if args.report:
        _check_report_target(args.report, args.force)

    progress = None
    if sys.stderr.isatty():
        from rich.console import Console

        from wizard.render import DiagnoseProgress

        progress = DiagnoseProgress(Console(stderr=True))

    async def diagnose() -> Any:
        return await run_diagnosis(
            config, budget_s=budget, probes=_probe_set(), on_progress=progress.update if progress else None
        )

    if progress is not None:
        with progress:
            diagnosis = asyncio.run(diagnose())
    else:
        diagnosis = asyncio.run(diagnose())

    if args.report:
        from wizard.report import write_report

        written = write_report(diagnosis, args.report, config=config, redact=args.redact, force=args.force)
        print(f"report written to {written}", file=sys.stderr)

    if args.json:
        import json

        from wizard.report import report_data

        sys.stdout.write(
            json.dumps(report_data(diagnosis, config=config, redact=args.redact), indent=2, ensure_ascii=False) + "\n"
        )
        return 0

    from rich.console import Console

    from wizard.render import render_diagnosis

    render_diagnosis(diagnosis, Console(), show_probes=args.probes)
    return 0
