"""Command-line messages a new user stumbled on (issue 19), asserted as printed."""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from checks.config import Config, HostConfig, save_config
from checks.ddns.updater import PublicAddress, UpdateRun
from checks.errors import ConfigError
from checks.model import UpdateResult
from checks.redact import Redactor


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wizard", *args], capture_output=True, text=True, timeout=60, env=env)


def test_dry_run_says_would_update_a_to_b(capsys: pytest.CaptureFixture[str]) -> None:
    from wizard.commands.update import _print_human

    r = UpdateResult(
        "home.example.org",
        "duckdns",
        "23.128.64.5",
        None,
        "unchanged",
        "dry-run",
        "would send 23.128.64.20 to DuckDNS (DNS serves 23.128.64.5); dry run: nothing sent.",
        would_send="23.128.64.20",
    )
    _print_human(UpdateRun(PublicAddress("23.128.64.20", None), (r,)), Redactor())
    out = capsys.readouterr().out
    assert "would update 23.128.64.5 → 23.128.64.20" in out
    assert "unchanged" not in out


def test_missing_config_file_says_it_does_not_exist(tmp_path: Path) -> None:
    out = run("--config", str(tmp_path / "missing.toml"), "update")
    assert out.returncode == 2
    assert "missing.toml does not exist" in out.stderr
    assert "no hostnames configured" not in out.stderr and "Traceback" not in out.stderr


def test_config_with_secrets_readable_by_others_gets_a_warning_with_the_chmod(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wizard.commands._config import load

    path = tmp_path / "config.toml"
    save_config(Config(hosts=(HostConfig("home.duckdns.org", "duckdns", token="t" * 36),), path=path))
    load(argparse.Namespace(config=str(path)), needs_file=True)
    assert capsys.readouterr().err == ""  # saved 0600: nothing to say
    os.chmod(path, 0o644)
    load(argparse.Namespace(config=str(path)), needs_file=True)
    err = capsys.readouterr().err
    assert "mode 0644" in err and f"chmod 600 {path}" in err
    assert "t" * 36 not in err
    with pytest.raises(ConfigError, match="does not exist"):
        load(argparse.Namespace(config=str(tmp_path / "nope.toml")), needs_file=True)


def test_providers_duckdns_says_where_the_token_goes_in_the_config(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".config")}
    out = run("providers", "duckdns", env=env)
    assert out.returncode == 0
    assert "here." not in out.stdout  # "Enter … the token here" on a command line
    assert "[[hosts]]" in out.stdout and 'provider = "duckdns"' in out.stdout
    assert 'token = "YOUR-TOKEN"' in out.stdout
    assert str(tmp_path / ".config" / "ddns-wizard" / "config.toml") in out.stdout.replace("\n", "")


def test_wrapped_bullets_keep_their_hanging_indent_when_piped() -> None:
    """Issue 19: piped output (Rich wraps at 80 there) lost the indent of wrapped bullet lines."""
    from checks.findings import build_findings
    from checks.model import ExternalInfo, LocalInfo, NatResult, UpnpInfo
    from wizard.render import finding_renderable

    local = LocalInfo("eth0", "192.168.1.100", "192.168.1.1")
    (f,) = [
        f
        for f in build_findings(
            "online",
            local,
            ExternalInfo("23.128.64.20", None, True),
            NatResult("nat", "23.128.64.20"),
            UpnpInfo(False, found=False),
        )
        if f.id == "port-forward-possible"
    ]
    buf = io.StringIO()
    Console(file=buf, width=60, force_terminal=False).print(finding_renderable(f))
    lines = [re.sub(r"^│ ?|\s*│$", "", line) for line in buf.getvalue().splitlines()]
    bullet = next(i for i, line in enumerate(lines) if line.startswith("• Give this host"))
    assert lines[bullet + 1].startswith("  ") and lines[bullet + 1].strip()  # the wrapped line, indented
    assert any("• Run `ddns-wizard ports check PORT`" in line for line in lines)  # next steps as commands


def test_port_evidence_keeps_its_hanging_indent_when_piped() -> None:
    from checks.model import PortResult
    from wizard.commands.ports import VERDICT_STYLE, VERDICT_WORDS, _print_verdict

    r = PortResult(
        8080,
        "tcp",
        "not-forwarded",
        (
            "The outside prober got no answer within five seconds although our listener was up and "
            "the router answered every question about its table.",
        ),
        "Forward 8080/tcp on your router to 192.168.1.100 and give this computer a fixed LAN address.",
    )
    buf = io.StringIO()
    _print_verdict(Console(file=buf, width=60, force_terminal=False), r, VERDICT_WORDS, VERDICT_STYLE)
    lines = buf.getvalue().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("  • The outside"))
    assert lines[first + 1].startswith("    ")
    fix = next(i for i, line in enumerate(lines) if line.startswith("  Fix: "))
    assert lines[fix + 1].startswith("       ")


def test_ports_check_says_the_nat_evidence_and_the_hairpin_note_once_per_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 19: the NAT evidence came under every port and the hairpin paragraph after every result."""
    from checks.model import NatResult, PortResult
    from checks.portcheck.run import PortCheckReport
    from wizard.commands.ports import _print_check

    nat = NatResult("cgnat", "100.64.1.20", ("Your router's WAN address 100.64.1.20 is in 100.64.0.0/10.",))
    results = tuple(
        PortResult(p, "tcp", "upstream-nat", ("Nothing got through the carrier-grade NAT.",), "Ask the ISP.")
        for p in (80, 443)
    )
    _print_check(PortCheckReport(results=results, nat=nat, facts=None))
    out = capsys.readouterr().out
    assert out.count("is in 100.64.0.0/10") == 1
    assert out.count("hairpin NAT") == 1


def test_port_next_steps_are_printed_as_commands_for_that_port(capsys: pytest.CaptureFixture[str]) -> None:
    from checks.model import PortResult
    from wizard.commands.ports import VERDICT_STYLE, VERDICT_WORDS, _print_verdict

    r = PortResult(
        8080,
        "tcp",
        "blocked-or-not-forwarded",
        ("Nobody could confirm a forward.",),
        "Check the forward.",
        next_steps=("map-and-retest", "map-port"),
    )
    _print_verdict(Console(width=100), r, VERDICT_WORDS, VERDICT_STYLE)
    out = capsys.readouterr().out
    assert "Next: `ddns-wizard ports check 8080/tcp --upnp`" in out
    assert "Next: `ddns-wizard upnp add 8080/tcp`" in out
