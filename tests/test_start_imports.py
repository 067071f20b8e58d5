"""Cheap commands stay cheap (issue 18): what each start imports (`python -X importtime` shows the cost).

`--version`, `--help`, a command's `--help` and `providers` do their work without an
event loop, an HTTP stack, dnspython's async query code, the report writer or the TUI;
a diagnosis that writes no report (and prints no JSON) never loads the report module.
Timings are in bench/ (bench/run.py `cold`); this checks what is loaded, which does
not depend on how busy the machine is.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("asyncio", "httpx", "httpcore", "dns.asyncquery", "dns.asyncresolver", "wizard.report", "textual", "ssl")


def imported(code: str) -> set[str]:
    """The modules loaded after running ``code`` in a fresh interpreter."""
    wrapped = code + "\nimport json as _j, sys as _s\n_s.stderr.write('MODULES ' + _j.dumps(sorted(_s.modules)))\n"
    proc = subprocess.run(
        [sys.executable, "-c", wrapped],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "DDNS_WIZARD_CONFIG": "/nonexistent/config.toml"},
    )
    assert "MODULES " in proc.stderr, proc.stderr[-2000:]
    return set(json.loads(proc.stderr.rsplit("MODULES ", 1)[1]))


def run_cli(argv: list[str]) -> str:
    return f"import sys\nfrom wizard.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["--help"],
        ["diagnose", "--help"],
        ["update", "--help"],
        ["ports", "--help"],
        ["verify", "--help"],
        ["watch", "--help"],
        ["providers"],
    ],
)
def test_cheap_commands_import_nothing_heavy(argv: list[str]) -> None:
    names = imported(run_cli(argv))
    assert sorted(n for n in names if n in HEAVY) == []
    # every command's module is loaded for the parser: they must stay small at import
    assert {"wizard.commands.update", "wizard.commands.ports"} <= names


def test_version_and_help_load_no_engine_beyond_the_parser() -> None:
    names = imported(run_cli(["--version"]))
    assert not any(n.startswith(("checks.ddns", "checks.dns", "checks.portcheck", "rich")) for n in names), sorted(
        n for n in names if n.startswith(("checks", "rich"))
    )


def test_a_diagnosis_without_a_report_does_not_load_the_report_module() -> None:
    # What `diagnose` (no --report, no --json) imports to probe and print, without probing.
    names = imported("import wizard.commands.diagnose, checks.diagnose, wizard.render, rich.console")
    assert "wizard.report" not in names
    assert "checks.diagnose" in names
