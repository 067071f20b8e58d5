"""The Done step's service installer and notifications, and managing configured hostnames
(Pilot, fake engine: no network; the installer is the real checks.ddns.service code with
systemctl/loginctl recorded, since systemd does not run as PID 1 here)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from checks.config import load_config

from . import drive
from .conftest import screen_text
from .fake_engine import FakeEngine


async def test_done_installs_the_user_service_with_linger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    config_path = tmp_path / "config.toml"
    engine = FakeEngine(systemd=True)
    app = drive.make_app(config_path=config_path, report_dir=tmp_path, engine=engine)
    app.service_scope = "user"  # the tests run as root: no system unit here
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.to_done(pilot)
        text = screen_text(app.screen)
        assert "ExecStart" not in text  # nothing to copy off the screen any more
        assert "loginctl enable-linger" in text and "Install service (i)" in text
        await pilot.press("i")  # not saved yet: says so, installs nothing
        assert "Save the configuration first" in screen_text(app.screen)
        assert not any(c[0] == "install_service" for c in engine.calls)
        await pilot.press("s")
        await drive.wait_for(pilot, lambda: app.state.saved_path is not None and drive.idle(pilot))
        await pilot.press("i")
        await drive.wait_for(pilot, lambda: "installed" in screen_text(app.screen) and drive.idle(pilot))
        text = screen_text(app.screen)
        assert "✓ Service installed and started." in text
    unit = tmp_path / "xdg" / "systemd" / "user" / "ddns-wizard.service"
    body = unit.read_text()
    exec_line = next(line for line in body.splitlines() if line.startswith("ExecStart="))
    assert exec_line == f"ExecStart=/usr/local/bin/ddns-wizard --config {config_path} watch --interval 300"
    assert "\nAfter=network-online.target" not in body and "WantedBy=default.target" in body
    runs = [c[1] for c in engine.calls if c[0] == "run"]
    assert ("systemctl", "--user", "enable", "--now", "ddns-wizard.service") in runs
    assert any(r[:2] == ("loginctl", "enable-linger") for r in runs)


async def test_done_without_systemd_offers_a_cron_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    config_path = tmp_path / "config.toml"
    app = drive.make_app(config_path=config_path, report_dir=tmp_path, engine=FakeEngine(systemd=False))
    app.service_scope = "user"
    async with app.run_test(size=(100, 32)) as pilot:
        await drive.saved(pilot)
        await pilot.press("i")
        await drive.wait_for(pilot, lambda: "cron" in screen_text(app.screen) and drive.idle(pilot))
        text = screen_text(app.screen)
        assert "systemd is not running here" in text and f"--config {config_path} update" in text
    assert not (tmp_path / "xdg" / "systemd").exists()


async def test_done_notification_url_is_tested_kept_secret_and_saved(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    good = "json://hooks.example.net/good/TopS3cretHookT0ken"
    bad = "ntfy://Pr1vateTopicName"
    app = drive.make_app(config_path=config_path, report_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=(100, 40)) as pilot:
        await drive.to_done(pilot)
        for url in (good, bad):
            field = app.screen.query_one("#notify-url", Input)
            field.focus()
            field.value = url
            await pilot.press("enter")
            await drive.wait_for(pilot, lambda: "accepted" in screen_text(app.screen) and drive.idle(pilot))
        text = screen_text(app.screen)
        assert "✓ json://hooks.example.net/***: accepted" in text
        assert "✗ ntfy://***: not accepted: HTTP 500" in text
        assert "TopS3cretHookT0ken" not in text and "Pr1vateTopicName" not in text
        app.screen.query_one("#config-path", Input).focus()
        await pilot.press("enter")  # save
        await drive.wait_for(pilot, lambda: app.state.saved_path is not None and drive.idle(pilot))
    saved = tomllib.loads(config_path.read_text())
    assert saved["notify"]["urls"] == [good, bad]
    assert load_config(config_path).secret_values()[-4:]  # the URLs count as secrets


CONFIG = """\
[[hosts]]
hostname = "one.duckdns.org"
provider = "duckdns"
token = "3f2b8c1e-9d4a-4e7b-a1c5-6d0e2f9b7a41"

[[hosts]]
hostname = "two.duckdns.org"
provider = "duckdns"
token = "3f2b8c1e-9d4a-4e7b-a1c5-6d0e2f9b7a41"
"""


def _app_with_hosts(tmp_path: Path):  # type: ignore[no-untyped-def]
    from wizard.tui.app import WizardApp

    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    path.chmod(0o600)
    engine = FakeEngine()
    return WizardApp(engine, load_config(path), report_dir=tmp_path, executable=drive.EXECUTABLE), path, engine


async def test_hosts_are_listed_and_removed_after_a_confirmation(tmp_path: Path) -> None:
    app, path, _ = _app_with_hosts(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.on_screen(pilot, "WelcomeScreen")
        assert "h lists, edits, removes or adds hostnames" in screen_text(app.screen)
        await pilot.press("h")
        await drive.on_screen(pilot, "HostsScreen")
        table = app.screen.query_one("#hosts-table", DataTable)
        assert [table.get_row_at(i)[0] for i in range(table.row_count)] == ["one.duckdns.org", "two.duckdns.org"]
        assert "3f2b8c1e" not in screen_text(app.screen)
        await pilot.press("d")
        assert "Press d again" in screen_text(app.screen)
        assert len(load_config(path).hosts) == 2  # nothing removed yet
        await pilot.press("d")
        await drive.wait_for(pilot, lambda: "Removed one.duckdns.org" in screen_text(app.screen))
        assert table.row_count == 1
        await pilot.press("escape")
        await drive.on_screen(pilot, "WelcomeScreen")
        assert "two.duckdns.org" in screen_text(app.screen) and "one.duckdns.org" not in screen_text(app.screen)
    assert [h.hostname for h in load_config(path).hosts] == ["two.duckdns.org"]
    assert path.stat().st_mode & 0o777 == 0o600


async def test_editing_a_host_prefills_it_and_saves_it_in_its_place(tmp_path: Path) -> None:
    app, _path, _ = _app_with_hosts(tmp_path)
    async with app.run_test(size=(100, 32)) as pilot:
        await drive.on_screen(pilot, "WelcomeScreen")
        await pilot.press("h")
        await drive.on_screen(pilot, "HostsScreen")
        await pilot.press("e")  # edit the first
        await drive.on_screen(pilot, "NetworkScreen")
        assert app.state.mode == "setup" and app.state.editing == "one.duckdns.org"
        # walk on to the credentials: they hold the configured host
        await drive.wait_for(pilot, lambda: drive.idle(pilot), timeout_s=20)
        await pilot.press("n")
        await drive.on_screen(pilot, "PortsScreen")
        await pilot.press("n")
        await drive.on_screen(pilot, "ProviderScreen")
        await pilot.press("n")
        await drive.on_screen(pilot, "CredentialsScreen")
        field = app.screen.query_one("#field-hostname", Input)
        assert field.value == "one.duckdns.org"
        field.value = "three.duckdns.org"  # renamed while editing
        await pilot.press("ctrl+r")
        await drive.wait_for(pilot, lambda: app.state.preflight is not None and drive.idle(pilot))
        config = app.state.config_to_save()
    assert [h.hostname for h in config.hosts] == ["three.duckdns.org", "two.duckdns.org"]


async def test_adding_another_host_starts_empty_and_keeps_the_others(tmp_path: Path) -> None:
    app, _path, _ = _app_with_hosts(tmp_path)
    async with app.run_test(size=(100, 32)) as pilot:
        await drive.on_screen(pilot, "WelcomeScreen")
        await pilot.press("h")
        await drive.on_screen(pilot, "HostsScreen")
        await pilot.press("a")
        await drive.on_screen(pilot, "NetworkScreen")
        await drive.wait_for(pilot, lambda: drive.idle(pilot), timeout_s=20)
        await pilot.press("n")
        await drive.on_screen(pilot, "PortsScreen")
        await pilot.press("n")
        await drive.on_screen(pilot, "ProviderScreen")
        await pilot.press("n")
        await drive.on_screen(pilot, "CredentialsScreen")
        assert app.screen.query_one("#field-hostname", Input).value == ""  # not a copy of one.duckdns.org
        await pilot.press(*"three.duckdns.org", "tab", *drive.GOOD_TOKEN)
        await pilot.press("ctrl+r")
        await drive.wait_for(pilot, lambda: app.state.preflight is not None and drive.idle(pilot))
        config = app.state.config_to_save()
    assert [h.hostname for h in config.hosts] == ["one.duckdns.org", "two.duckdns.org", "three.duckdns.org"]
