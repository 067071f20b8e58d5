"""The command line's own behaviour: version, help, errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from checks import __version__


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wizard", *args], capture_output=True, text=True, timeout=60, env=env)


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"ddns-wizard {__version__}"


def test_help_lists_every_command() -> None:
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("diagnose", "ports", "upnp", "providers", "update", "verify", "watch", "probe-server"):
        assert cmd in out.stdout


def test_unknown_command_is_usage_error() -> None:
    out = run("frobnicate")
    assert out.returncode == 2
    assert "invalid choice" in out.stderr


def test_malformed_config_is_exit_2_with_line_and_no_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[hosts]]\nhostname = "a.duckdns.org"\ntoken = "abc\n')
    out = run("--config", str(cfg), "update", "--dry-run")
    assert out.returncode == 2, out.stderr
    assert "line 3" in out.stderr
    assert "Traceback" not in out.stderr
    assert cfg.read_text() == '[[hosts]]\nhostname = "a.duckdns.org"\ntoken = "abc\n'  # untouched


def test_config_is_accepted_after_the_command_too(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[endpoints\n")
    before = run("--config", str(cfg), "update", "--dry-run")
    after = run("update", "--dry-run", "--config", str(cfg))
    assert before.returncode == after.returncode == 2
    assert str(cfg) in after.stderr and "line 1" in after.stderr
