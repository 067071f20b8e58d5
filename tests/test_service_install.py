"""`service install|status|remove` (checks/ddns/service.py).

systemd does not run as PID 1 on this machine or in CI, so ``systemctl``/``loginctl`` are
replaced by a recorder (said per test); the written units are checked with the real
``systemd-analyze verify`` (system and user manager), the way tests/test_systemd_units.py
checks the shipped unit.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from checks.ddns import service
from tests.test_systemd_units import VENV_TOOL, _need, exposure

CONFIG = '[[hosts]]\nhostname = "a.duckdns.org"\nprovider = "duckdns"\ntoken = "a1b2c3d4-1234-5678-9abc-def012345678"\n'


def _verify(unit: Path, *, user: bool, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if user:
        runtime = tmp_path / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)  # the user manager's lookup needs one
    return subprocess.run(
        ["systemd-analyze", *(["--user"] if user else []), "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.parametrize("scope", ["system", "user"])
def test_written_units_pass_systemd_analyze_verify(scope: str, tmp_path: Path) -> None:
    _need("systemd-analyze")
    text = service.render_unit(scope, executable=str(VENV_TOOL), config_path=tmp_path / "my dir" / "c%1.toml")
    unit = tmp_path / service.UNIT_NAME
    unit.write_text(text)
    r = _verify(unit, user=scope == "user", tmp_path=tmp_path)
    assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", r.stdout + r.stderr
    if scope == "user":
        assert "\nAfter=network-online.target" not in text and "WantedBy=default.target" in text
        assert '"' + str(tmp_path / "my dir" / "c%%1.toml") + '"' in text  # quoted, % escaped
    else:
        assert "LoadCredential=config.toml:/etc/ddns-wizard/config.toml" in text
        assert "--config %d/config.toml" in text


def test_verify_catches_a_typo_in_a_user_unit(tmp_path: Path) -> None:
    _need("systemd-analyze")
    unit = tmp_path / service.UNIT_NAME
    unit.write_text(
        service.render_unit("user", executable=str(VENV_TOOL), config_path=tmp_path / "c.toml").replace(
            "NoNewPrivileges", "NoNewPrivilegs"
        )
    )
    assert "Unknown key" in _verify(unit, user=True, tmp_path=tmp_path).stderr


def test_system_unit_keeps_the_shipped_hardening(tmp_path: Path) -> None:
    _need("systemd-analyze")
    unit = tmp_path / service.UNIT_NAME
    unit.write_text(
        service.render_unit("system", executable="/usr/local/bin/ddns-wizard", config_path=tmp_path / "c.toml")
    )
    unit.write_text(unit.read_text().replace("/usr/local/bin/ddns-wizard", str(VENV_TOOL)))
    score, table = exposure(unit)
    assert score <= 1.2, table
    assert "ProtectHome=yes" in unit.read_text()


def test_user_install_writes_the_unit_and_runs_reload_enable_linger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemctl/loginctl are recorded, not run (no systemd as PID 1 here)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    calls: list[tuple[str, ...]] = []

    def run(argv):  # type: ignore[no-untyped-def]
        calls.append(tuple(argv))
        return (1, "Could not enable linger: Access denied") if argv[0] == "loginctl" else (0, "")

    plan = service.plan_install("user", config_path=tmp_path / "c.toml", executable="/usr/bin/ddns-wizard")
    out = service.install(plan, run=run, systemd=True)
    unit = tmp_path / "xdg" / "systemd" / "user" / service.UNIT_NAME
    assert unit.read_text() == plan.unit_text and unit.stat().st_mode & 0o777 == 0o644
    assert calls[0] == ("systemctl", "--user", "daemon-reload")
    assert calls[1] == ("systemctl", "--user", "enable", "--now", service.UNIT_NAME)
    assert calls[2][:2] == ("loginctl", "enable-linger")
    assert out.ok  # linger failing is a warning, not a failed install
    from wizard.keep_text import service_outcome_lines

    text = "\n".join(service_outcome_lines(out))
    assert "only while you are logged in" in text
    # remove: disable, delete, reload
    calls.clear()
    gone = service.remove(service.plan_remove("user"), run=run, systemd=True)
    assert not unit.exists() and gone.ok
    assert calls == [
        ("systemctl", "--user", "disable", "--now", service.UNIT_NAME),
        ("systemctl", "--user", "daemon-reload"),
    ]


def test_a_failed_step_stops_the_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    calls: list[tuple[str, ...]] = []

    def run(argv):  # type: ignore[no-untyped-def]
        calls.append(tuple(argv))
        return (1, "Failed to connect to bus") if "daemon-reload" in argv else (0, "")

    out = service.install(service.plan_install("user", config_path=tmp_path / "c.toml"), run=run, systemd=True)
    assert not out.ok and len(calls) == 1


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    cfg.chmod(0o600)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    return subprocess.run(
        [str(VENV_TOOL), "--config", str(cfg), "service", *args], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="this check is for machines without systemd")
def test_without_systemd_nothing_is_written_and_a_cron_line_is_printed(tmp_path: Path) -> None:
    r = _cli(tmp_path, "install", "--user")
    assert r.returncode == 1, r.stderr
    assert "systemd is not running" in r.stdout and "*/5 * * * *" in r.stdout and " update" in r.stdout
    assert not (tmp_path / "xdg" / "systemd").exists()


def test_dry_run_prints_the_unit_and_the_commands_and_writes_nothing(tmp_path: Path) -> None:
    r = _cli(tmp_path, "install", "--user", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "would write" in r.stdout and "ExecStart=" in r.stdout
    assert "would run: systemctl --user enable --now ddns-wizard.service" in r.stdout
    assert "loginctl enable-linger" in r.stdout and "logged in" in r.stdout
    assert not (tmp_path / "xdg" / "systemd").exists()
    # every ExecStart line is whole (never wrapped), whatever the terminal width
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("ExecStart="))
    assert line.endswith("watch --interval 300")


def test_install_refuses_a_config_that_cannot_work(tmp_path: Path) -> None:
    cfg = tmp_path / "empty.toml"
    cfg.write_text("")
    r = subprocess.run(
        [str(VENV_TOOL), "--config", str(cfg), "service", "install", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "no hostnames configured" in r.stderr


def test_the_installed_system_unit_is_the_shipped_one(tmp_path: Path) -> None:
    """The template (package data) and docs/systemd/ddns-wizard.service never drift apart:
    the same settings, but for the binary's path and the credential's source."""
    from tests.test_systemd_units import WATCH_UNIT
    from tests.unitsandbox import service_settings

    unit = tmp_path / service.UNIT_NAME
    unit.write_text(
        service.render_unit(
            "system", executable="/usr/local/bin/ddns-wizard", config_path=Path("/etc/ddns-wizard/config.toml")
        )
    )
    assert service_settings(unit) == service_settings(WATCH_UNIT)
    shipped = [ln for ln in WATCH_UNIT.read_text().splitlines() if ln and not ln.startswith("#")]
    written = [ln for ln in unit.read_text().splitlines() if ln and not ln.startswith("#")]
    assert written == shipped


def test_system_install_copies_the_config_privately_and_enables_the_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/etc is replaced by a temporary directory and systemctl by a recorder (no systemd as PID 1)."""
    monkeypatch.setattr(service, "SYSTEM_UNIT_DIR", tmp_path / "etc" / "systemd" / "system")
    monkeypatch.setattr(service, "SYSTEM_CONFIG", tmp_path / "etc" / "ddns-wizard" / "config.toml")
    monkeypatch.setattr(service.os, "geteuid", lambda: 0)
    cfg = tmp_path / "home" / "config.toml"
    cfg.parent.mkdir()
    cfg.write_text(CONFIG)
    calls: list[tuple[str, ...]] = []

    def run(argv):  # type: ignore[no-untyped-def]
        calls.append(tuple(argv))
        return 0, ""

    plan = service.plan_install("system", config_path=cfg, executable="/usr/local/bin/ddns-wizard")
    out = service.install(plan, run=run, systemd=True)
    assert out.ok, out
    copy = tmp_path / "etc" / "ddns-wizard" / "config.toml"
    assert copy.read_text() == CONFIG and copy.stat().st_mode & 0o777 == 0o600
    assert copy.parent.stat().st_mode & 0o777 == 0o700
    unit = tmp_path / "etc" / "systemd" / "system" / service.UNIT_NAME
    assert unit.stat().st_mode & 0o777 == 0o644 and "LoadCredential=config.toml:" in unit.read_text()
    assert calls == [("systemctl", "daemon-reload"), ("systemctl", "enable", "--now", service.UNIT_NAME)]
    assert any("a copy of" in n for n in plan.notes)
