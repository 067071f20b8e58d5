"""The wizard driven end to end with a Pilot against the fake engine
(tests/tui/fake_engine.py: real checks.model results, no network — the network
paths are covered by the lab test tests/lab/test_tui_e2e.py)."""

from __future__ import annotations

import asyncio
import json
import stat
import tomllib
from pathlib import Path

from textual.widgets import Button, DataTable, Input, Static

from wizard.engine import PortSpec
from wizard.tui.messages import (
    ConfigSaved,
    DiagnosisReady,
    PortChecked,
    PreflightDone,
    ProbeFinished,
    ReportExported,
    UpdateDone,
    VerifyDone,
)

from . import drive
from .conftest import MessageLog, screen_text, text_of
from .fake_engine import FakeEngine

BAD_TOKEN = "00000000-0000-0000-0000-000000000000"


async def test_happy_path_reaches_a_saved_private_config(tmp_path: Path, messages: MessageLog) -> None:
    config_path = tmp_path / "conf" / "config.toml"
    engine = FakeEngine()
    app = drive.make_app(config_path=config_path, report_dir=tmp_path, engine=engine)
    async with app.run_test(size=(100, 32), message_hook=messages) as pilot:
        await drive.to_network(pilot)
        text = screen_text(app.screen)
        assert "Yes, with a port forward: your router holds the public address" in text  # checks.summary
        assert "192.168.1.100 on eth0, gateway 192.168.1.1" in text
        assert "23.128.64.20" in text and "5 of 5 sources answered, all agree" in text
        assert "What to do:" in text and "Remove it if you do not use it" in text  # findings come with their fix
        assert len(messages.of(ProbeFinished)) == 8  # each probe arrived on its own
        assert len(messages.of(DiagnosisReady)) == 1

        await pilot.press("n")
        await drive.on_screen(pilot, "PortsScreen")  # one NAT: no "can you host" step
        await pilot.press("n")
        await drive.on_screen(pilot, "ProviderScreen")
        assert "DuckDNS" in screen_text(app.screen)
        assert "Add a subdomain: NAME.duckdns.org." in screen_text(app.screen)  # sign-up steps
        await pilot.press("enter")
        await drive.on_screen(pilot, "CredentialsScreen")
        await pilot.press(*"MyHome.duckdns.org", "tab", *drive.GOOD_TOKEN, "enter")
        await drive.wait_for(pilot, lambda: app.state.preflight is not None and drive.idle(pilot))
        assert "The provider accepts these credentials." in screen_text(app.screen)
        assert drive.GOOD_TOKEN not in screen_text(app.screen)  # the secret stays masked
        assert messages.of(PreflightDone)[0].preflight.ok  # type: ignore[attr-defined]

        await pilot.press("ctrl+n")
        await drive.on_screen(pilot, "UpdateScreen")
        preview = text_of(app.screen.query_one("#preview", Static))
        assert "myhome.duckdns.org" in preview and "23.128.64.20" in preview
        assert "••••••••" in preview and drive.GOOD_TOKEN not in preview
        assert "IPv6 (AAAA)  not published" in preview  # one NAT: IPv4 only by default
        await pilot.press("n")  # not before the update
        assert drive.screen_name(pilot) == "UpdateScreen"
        await pilot.press("shift+tab", "space")  # tick "IPv6 (AAAA record)"
        preview = text_of(app.screen.query_one("#preview", Static))
        assert "IPv6 (AAAA)  2a0c:b641:100:1::100" in preview
        await pilot.press("u")
        await drive.wait_for(pilot, lambda: app.state.update is not None and drive.idle(pilot))
        assert "Updated." in screen_text(app.screen)
        assert messages.of(UpdateDone)[0].result.code == "good"  # type: ignore[attr-defined]

        await pilot.press("n")
        await drive.on_screen(pilot, "VerifyScreen")
        await drive.wait_for(pilot, lambda: app.state.reach is not None and drive.idle(pilot))
        text = screen_text(app.screen)
        assert "The name points here, at every server asked." in text
        # The proof is the end-to-end check of the Ports step's port from outside, not a LAN ping.
        assert "LAN check" not in text
        assert "myhome.duckdns.org is reachable from outside on 443/tcp." in text
        assert "no NAT loopback" in text
        assert ("reach", ("myhome.duckdns.org", (443,))) in engine.calls
        assert "IPv6 is not tested from outside yet" in text  # the AAAA record: "may work" only
        assert [m.result.verdict for m in messages.of(VerifyDone)] == ["ok"]  # type: ignore[attr-defined]
        assert ("verify", ("myhome.duckdns.org", "23.128.64.20", "2a0c:b641:100:1::100")) in engine.calls

        await pilot.press("n")
        await drive.on_screen(pilot, "DoneScreen")
        text = screen_text(app.screen)
        assert "Install service (i)" in text  # the service to keep it updated
        assert "Hostname  myhome.duckdns.org" in text  # values for the router's page
        assert drive.GOOD_TOKEN not in text
        await pilot.press("n")  # Finish needs a save first
        assert drive.screen_name(pilot) == "DoneScreen"
        assert "Save first (s)" in text_of(app.screen.query_one("#status", Static))
        await pilot.press("s")
        await drive.wait_for(pilot, lambda: app.state.saved_path is not None and drive.idle(pilot))
        assert "(mode 0600: only you can read it)" in screen_text(app.screen)
        assert messages.of(ConfigSaved)[0].path == config_path  # type: ignore[attr-defined]
        await pilot.press("n")
        await pilot.pause()
    assert app.return_code == 0 and not app.is_running

    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    saved = tomllib.loads(config_path.read_text())
    assert saved["hosts"] == [
        {"hostname": "myhome.duckdns.org", "provider": "duckdns", "token": drive.GOOD_TOKEN, "ipv6": True}
    ]
    assert saved["endpoints"]["resolvers"] == ["1.1.1.1", "8.8.8.8", "9.9.9.9"]


async def test_cgnat_path_explains_and_offers_alternatives(messages: MessageLog) -> None:
    app = drive.make_app("cgnat")
    async with app.run_test(size=(80, 24), message_hook=messages) as pilot:
        await drive.to_network(pilot)
        assert "carrier-grade NAT" in text_of(app.screen.query_one("#verdict", Static))
        assert "100.64.0.0/10" in screen_text(app.screen)  # the evidence, in words
        await pilot.press("n")
        await drive.on_screen(pilot, "HostingScreen")
        text = screen_text(app.screen)
        assert "You are behind carrier-grade NAT (CGNAT)" in text
        for alternative in (
            "Use IPv6",
            "Ask your ISP for a public IPv4",
            "Use a tunnel",
            "Use a VPN with a static exit address",
        ):
            assert alternative in text
        assert "Continue anyway" in text_of(app.screen.query_one("#next", Button))
        await pilot.press("n")  # continue anyway
        await drive.on_screen(pilot, "PortsScreen")
        await pilot.press("t")
        await drive.wait_for(pilot, lambda: bool(app.state.ports) and drive.idle(pilot))
        assert "upstream NAT" in screen_text(app.screen)
        await pilot.press("escape", "escape")  # back through the steps
        await drive.on_screen(pilot, "NetworkScreen")
        assert app.state.diagnosis is not None  # the diagnosis is kept


async def test_double_nat_gets_its_own_advice() -> None:
    app = drive.make_app("double-nat")
    async with app.run_test(size=(100, 32)) as pilot:
        await drive.to_network(pilot)
        await pilot.press("n")
        await drive.on_screen(pilot, "HostingScreen")
        text = screen_text(app.screen)
        assert "You are behind double NAT" in text and "Bridge mode" in text


async def test_rejected_credentials_block_until_fixed(messages: MessageLog) -> None:
    app = drive.make_app()
    async with app.run_test(size=(100, 32), message_hook=messages) as pilot:
        await drive.fill_duckdns(pilot, token=BAD_TOKEN)
        text = text_of(app.screen.query_one("#preflight", Static))
        assert "The provider rejected this: badauth" in text
        await pilot.press("ctrl+n")
        assert drive.screen_name(pilot) == "CredentialsScreen"  # cannot go on
        assert app.screen.query_one("#next", Button).disabled
        assert "rejected these credentials" in text_of(app.screen.query_one("#status", Static))

        token = app.screen.query_one("#field-token", Input)
        token.focus()
        await pilot.press("ctrl+u", *drive.GOOD_TOKEN)
        assert "Changed: check again" in text_of(app.screen.query_one("#preflight", Static))
        await pilot.press("ctrl+r")
        await drive.wait_for(pilot, lambda: app.state.preflight is not None and drive.idle(pilot))
        assert [m.preflight.ok for m in messages.of(PreflightDone)] == [False, True]  # type: ignore[attr-defined]
        await pilot.press("ctrl+n")
        await drive.on_screen(pilot, "UpdateScreen")
        assert app.state.host is not None and app.state.host.token == drive.GOOD_TOKEN


async def test_fields_are_validated_as_you_type() -> None:
    app = drive.make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.to_credentials(pilot)
        await pilot.press(*"myhome")
        assert "not a hostname" in text_of(app.screen.query_one("#error-hostname", Static))
        await pilot.press(*".example.org")
        assert "DuckDNS names end in .duckdns.org" in text_of(app.screen.query_one("#error-hostname", Static))
        await pilot.press("ctrl+u", *"myhome.duckdns.org", "tab", *"abc")
        assert "8-4-4-4-12 hex digits" in text_of(app.screen.query_one("#error-token", Static))
        assert text_of(app.screen.query_one("#error-hostname", Static)) == "the full name, e.g. myhome.example.org"
        assert app.screen.query_one("#field-token", Input).password  # masked
        await pilot.press("ctrl+r")
        assert app.state.preflight is None  # no check with bad fields
        assert "Fix the fields marked in red first." in text_of(app.screen.query_one("#status", Static))


async def test_under_cgnat_the_port_test_also_tries_ipv6_and_says_what_to_open(messages: MessageLog) -> None:
    from textual.widgets import Checkbox

    from wizard.tui.messages import PortsReadyOverIpv6

    engine = FakeEngine(scenario="cgnat")
    app = drive.make_app(engine=engine)
    async with app.run_test(size=(100, 32), message_hook=messages) as pilot:
        await drive.to_ports(pilot)
        ipv6 = app.screen.query_one("#use-ipv6", Checkbox)
        assert ipv6.display and ipv6.value  # IPv4 cannot work here: IPv6 is ticked
        await pilot.press("t")
        await drive.wait_for(pilot, lambda: bool(app.state.ports6) and drive.idle(pilot))
        assert messages.of(PortsReadyOverIpv6)
        text = text_of(app.screen.query_one("#port6-443-tcp"))
        assert "firewalled" in text and "router's IPv6 firewall" in text and "2a0c:b641:100:1::100" in text
        assert "upstream NAT" in text_of(app.screen.query_one("#port-443-tcp"))  # IPv4 said too


async def test_at_home_ipv6_is_offered_but_not_tested_unless_ticked() -> None:
    from textual.widgets import Checkbox

    engine = FakeEngine()
    app = drive.make_app(engine=engine)
    async with app.run_test(size=(100, 32)) as pilot:
        await drive.to_ports(pilot)
        ipv6 = app.screen.query_one("#use-ipv6", Checkbox)
        assert ipv6.display and not ipv6.value
        await pilot.press("t")
        await drive.wait_for(pilot, lambda: bool(app.state.ports) and drive.idle(pilot))
        assert not any(name == "check_ports_ipv6" for name, _ in engine.calls)
        assert not app.screen.query("#port6-443-tcp")


async def test_isp_blocked_port_shows_verdict_and_fix(messages: MessageLog) -> None:
    app = drive.make_app()
    async with app.run_test(size=(100, 32), message_hook=messages) as pilot:
        await drive.ports_tested(pilot)
        blocked = text_of(app.screen.query_one("#port-80-tcp"))
        assert "blocked by your ISP" in blocked
        assert "Control port 8443/tcp reached the same listener" in blocked
        assert "Fix: Your ISP filters inbound port 80: serve on another port" in blocked
        assert "open: reachable from the internet" in text_of(app.screen.query_one("#port-443-tcp"))
        assert sorted(m.result.port for m in messages.of(PortChecked)) == [80, 443]  # type: ignore[attr-defined]
        assert "Tested: 1 of 2 reachable from outside." in text_of(app.screen.query_one("#status", Static))


async def test_ssh_warns_and_offers_upnp_forward(messages: MessageLog) -> None:
    engine = FakeEngine()
    app = drive.make_app(engine=engine)
    async with app.run_test(size=(80, 24), message_hook=messages) as pilot:
        await drive.to_ports(pilot)
        assert not app.screen.query_one("#risk-warning", Static).display
        await pilot.press("down", "enter")  # the SSH preset
        warning = app.screen.query_one("#risk-warning", Static)
        assert warning.display and "Prefer a VPN" in text_of(warning)
        await pilot.press("t")
        await drive.wait_for(pilot, lambda: bool(app.state.ports) and drive.idle(pilot))
        assert "not forwarded" in text_of(app.screen.query_one("#port-22-tcp"))
        assert "Press m to forward 22/tcp" in text_of(app.screen.query_one("#mapping", Static))
        await pilot.press("m")
        await drive.wait_for(
            pilot, lambda: "Kept as a lasting forward" in text_of(app.screen.query_one("#mapping", Static))
        )
        assert "Reserve 192.168.1.100" in text_of(app.screen.query_one("#mapping", Static))
        assert ("add_port_mapping", PortSpec(22)) in engine.calls  # type: ignore[attr-defined]


async def test_custom_ports_are_parsed_and_tested_with_upnp() -> None:
    engine = FakeEngine()
    app = drive.make_app(engine=engine)
    async with app.run_test(size=(100, 32)) as pilot:
        await drive.to_ports(pilot)
        await pilot.press(*["down"] * 6, "enter")  # "Custom…"
        await pilot.press(*"70000")
        assert "1 to 65535" in text_of(app.screen.query_one("#custom-error", Static))
        await pilot.press("ctrl+u", *"22 51820/udp")
        app.screen.query_one("#use-upnp").value = True  # type: ignore[attr-defined]
        await pilot.press("enter")
        await drive.wait_for(pilot, lambda: bool(app.state.ports) and drive.idle(pilot))
        call = [c for c in engine.calls if c[0] == "check_ports"][-1]
        assert call[1] == ((PortSpec(22), PortSpec(51820, "udp")), True)  # type: ignore[attr-defined]
        assert "temporary UPnP mapping" in text_of(app.screen.query_one("#port-22-tcp"))


async def test_a_success_through_a_temporary_mapping_offers_to_keep_the_forward() -> None:
    """Issue 11: "open" through the test's own (removed) mapping is open *for the test*; the wizard
    offers to keep it as a lasting forward and reminds to reserve the LAN address."""
    engine = FakeEngine()
    app = drive.make_app(engine=engine)
    async with app.run_test(size=(100, 32)) as pilot:
        await drive.ports_tested_with_upnp(pilot)
        opened = text_of(app.screen.query_one("#port-443-tcp"))
        assert "open for the test" in opened and "removed again" in opened
        offer = text_of(app.screen.query_one("#mapping", Static))
        assert "Press k to keep this forward (443/tcp → this computer, lasting)" in offer
        assert "Reserve 192.168.1.100 for this computer in the router's DHCP settings" in offer
        await pilot.press("k")
        await drive.wait_for(
            pilot, lambda: "Kept as a lasting forward" in text_of(app.screen.query_one("#mapping", Static))
        )
        assert ("add_port_mapping", PortSpec(443)) in engine.calls  # type: ignore[attr-defined]
        assert ("add_port_mapping", PortSpec(80)) not in engine.calls  # type: ignore[attr-defined]


async def test_under_cgnat_later_steps_do_not_undo_the_diagnosis() -> None:
    """No plain ✓ for a name updated to the shared address; "IPv6 works" only after an inbound
    IPv6 test said open; the Done screen repeats what will not work."""
    app = drive.make_app("cgnat")
    async with app.run_test(size=(100, 32)) as pilot:
        await drive.to_ports(pilot)
        await pilot.press("t")  # IPv6 ticked: the router's firewall drops it
        await drive.wait_for(pilot, lambda: bool(app.state.ports6) and drive.idle(pilot))
        await pilot.press("n")
        await drive.on_screen(pilot, "ProviderScreen")
        await pilot.press("enter")
        await drive.on_screen(pilot, "CredentialsScreen")
        await pilot.press(*"myhome.duckdns.org", "tab", *drive.GOOD_TOKEN, "ctrl+r")
        await drive.wait_for(pilot, lambda: app.state.preflight is not None and drive.idle(pilot))
        await pilot.press("ctrl+n")
        await drive.on_screen(pilot, "UpdateScreen")
        await pilot.press("shift+tab", "shift+tab", "space")  # IPv4 on too, despite the warning
        await pilot.press("u")
        await drive.wait_for(pilot, lambda: app.state.update is not None and drive.idle(pilot))
        result = text_of(app.screen.query_one("#update-result", Static))
        assert "✓" not in result and "Updated, but not reachable over IPv4" in result
        assert "shared address" in result
        assert "IPv6 does not get through yet: 80/tcp firewalled, 443/tcp firewalled" in result
        await pilot.press("n")
        await drive.on_screen(pilot, "VerifyScreen")
        await drive.wait_for(pilot, lambda: app.state.verify is not None and drive.idle(pilot))
        verdict = text_of(app.screen.query_one("#verify-verdict", Static))
        assert "✓" not in verdict and "does not make it reachable over IPv4" in verdict
        await pilot.press("n")
        await drive.on_screen(pilot, "DoneScreen")
        listed = text_of(app.screen.query_one("#not-working-list"))
        assert "IPv4: 23.128.64.200 is your ISP's shared address" in listed
        assert "IPv6 does not get through yet" in listed and "IPv6 works" not in screen_text(app.screen)


async def test_running_diagnosis_keeps_ui_live_and_escape_cancels() -> None:
    engine = FakeEngine()
    engine.hold = asyncio.Event()
    app = drive.make_app(engine=engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.on_screen(pilot, "WelcomeScreen")
        await pilot.press("1")
        await drive.on_screen(pilot, "NetworkScreen")
        await drive.wait_for(pilot, lambda: len(app.screen.query(".probe")) == 4)
        assert app.screen.query_one("#spinner").display  # still running
        await pilot.press("f1")  # the UI answers meanwhile
        await drive.on_screen(pilot, "HelpScreen")
        assert "carrier-grade NAT" in screen_text(app.screen)
        await pilot.press("escape")
        await drive.on_screen(pilot, "NetworkScreen")
        await pilot.press("n")
        assert drive.screen_name(pilot) == "NetworkScreen"  # no Next while running
        await pilot.press("escape")  # cancels, stays here
        await pilot.pause()
        assert drive.screen_name(pilot) == "NetworkScreen"
        assert "Cancelled: Diagnosis." in text_of(app.screen.query_one("#status", Static))
        assert not app.screen.query_one("#spinner").display
        engine.hold.set()
        await pilot.press("r")  # run again
        await drive.wait_for(pilot, lambda: app.state.diagnosis is not None and drive.idle(pilot))
        assert [c[0] for c in engine.calls].count("diagnose") == 2


async def test_details_toggle_shows_raw_probes() -> None:
    app = drive.make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.to_network(pilot)
        details = app.screen.query_one("#details")
        assert not details.display
        await pilot.press("d")
        assert details.display
        probes = app.screen.query_one("#probe-table", DataTable)
        assert probes.row_count == 8
        assert "https://ipv4.icanhazip.com" in screen_text(app.screen)
        assert "NAT-PMP: answered, WAN 23.128.64.20" in screen_text(app.screen)


async def test_help_theme_and_back_keys() -> None:
    app = drive.make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.to_ports(pilot)
        await pilot.press("f1")
        await drive.on_screen(pilot, "HelpScreen")
        assert "Never expose SSH, RDP, SMB" in screen_text(app.screen)
        await pilot.press("escape")
        await drive.on_screen(pilot, "PortsScreen")
        await pilot.press("question_mark")  # ? works too
        await drive.on_screen(pilot, "HelpScreen")
        await pilot.press("escape")
        await drive.on_screen(pilot, "PortsScreen")
        assert app.theme == "textual-dark"
        await pilot.press("f2")
        assert app.theme == "textual-light"
        await pilot.press("escape")
        await drive.on_screen(pilot, "NetworkScreen")
        await pilot.press("escape")
        await drive.on_screen(pilot, "WelcomeScreen")
        assert app.screen.query_one("#back", Button).disabled  # nothing before the welcome


async def test_report_only_path_exports_without_secrets(tmp_path: Path, messages: MessageLog) -> None:
    app = drive.make_app(report_dir=tmp_path)
    async with app.run_test(size=(80, 24), message_hook=messages) as pilot:
        await drive.to_network(pilot, choice="3")
        await pilot.press("n")
        await drive.on_screen(pilot, "DoneScreen")
        assert not app.screen.query("#save-box")  # nothing to save here
        await pilot.press("e")
        await drive.wait_for(pilot, lambda: app.state.report_path is not None and drive.idle(pilot))
        assert "Report written to" in screen_text(app.screen)
        assert len(messages.of(ReportExported)) == 1
    report = json.loads((tmp_path / "ddns-wizard-report.md").read_text())
    assert report["nat"]["verdict"] == "nat"
    assert report["schema"] == "ddns-wizard/report@1"


async def test_troubleshoot_verifies_the_configured_name(tmp_path: Path) -> None:
    from checks.config import Config, HostConfig

    engine = FakeEngine()
    from wizard.tui.app import WizardApp

    config = Config(
        hosts=(HostConfig("nas.example.org", "dyndns2", username="me", password="pw"),), path=tmp_path / "c.toml"
    )
    app = WizardApp(engine, config, report_dir=tmp_path, executable=drive.EXECUTABLE)
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.on_screen(pilot, "WelcomeScreen")
        assert "Already configured: nas.example.org (dyndns2)" in screen_text(app.screen)
        await drive.to_network(pilot, choice="2")
        await pilot.press("n")
        await drive.on_screen(pilot, "PortsScreen")
        await pilot.press("n")
        await drive.on_screen(pilot, "VerifyScreen")
        await drive.wait_for(pilot, lambda: app.state.verify is not None and drive.idle(pilot))
        assert "nas.example.org should point to 23.128.64.20" in screen_text(app.screen)


async def test_dyndns2_credentials_are_tested_by_the_first_update(messages: MessageLog) -> None:
    """dyndns2 has no read-only call: the pre-flight says so, the update catches a bad
    password, and going back to fix it leads to a clean update."""
    app = drive.make_app()
    async with app.run_test(size=(100, 32), message_hook=messages) as pilot:
        await drive.to_credentials(pilot, provider_row=2)  # "Other (dyndns2)"
        await pilot.press(
            *"nas.example.org", "tab", *"https://members.example.org", "tab", *"me", "tab", *"wrong", "enter"
        )
        await drive.wait_for(pilot, lambda: app.state.preflight is not None and drive.idle(pilot))
        text = text_of(app.screen.query_one("#preflight", Static))
        assert "can only check credentials with a real update, so the next step is the test" in text
        await pilot.press("ctrl+n")
        await drive.on_screen(pilot, "UpdateScreen")
        await pilot.press("u")
        await drive.wait_for(pilot, lambda: app.state.update is not None and drive.idle(pilot))
        text = text_of(app.screen.query_one("#update-result", Static))
        assert "The update failed." in text and "badauth" in text
        assert "The provider rejected the credentials" in text and "Go back (Esc), fix it" in text
        await pilot.press("n")
        assert drive.screen_name(pilot) == "UpdateScreen"  # blocked
        await pilot.press("escape")
        await drive.on_screen(pilot, "CredentialsScreen")
        await pilot.pause()
        shown = text_of(app.screen.query_one("#preflight", Static))  # issue 19: no stale "✓ look right"
        assert "look right" not in shown and "✗ The provider rejected this" in shown
        app.screen.query_one("#field-password", Input).focus()
        await pilot.press("ctrl+u", *"right-one", "ctrl+r")
        await drive.wait_for(pilot, lambda: app.state.preflight is not None and drive.idle(pilot))
        assert app.state.update is None  # the old failure no longer counts
        await pilot.press("ctrl+n")
        await drive.on_screen(pilot, "UpdateScreen")
        assert "Send the update first" in text_of(app.screen.query_one("#status", Static))
        await pilot.press("u")
        await drive.wait_for(pilot, lambda: app.state.update is not None and drive.idle(pilot))
        assert [m.result.result for m in messages.of(UpdateDone)] == ["error", "updated"]  # type: ignore[attr-defined]
        assert app.state.host is not None and app.state.host.server == "https://members.example.org"


async def test_cgnat_update_publishes_ipv6_not_the_shared_ipv4() -> None:
    app = drive.make_app("cgnat")
    async with app.run_test(size=(100, 32)) as pilot:
        await drive.fill_duckdns(pilot)  # through "Can you host here?"
        await pilot.press("ctrl+n")
        await drive.on_screen(pilot, "UpdateScreen")
        preview = text_of(app.screen.query_one("#preview", Static))
        assert "IPv4 (A)     not published" in preview
        assert "IPv6 (AAAA)  2a0c:b641:100:1::100" in preview
        await pilot.press("shift+tab", "shift+tab", "space")  # IPv4 back on: warned
        preview = text_of(app.screen.query_one("#preview", Static))
        assert "23.128.64.200  (your ISP's shared CGNAT address: unreachable)" in preview
        assert app.state.host is not None and app.state.host.options == {"ipv6": True}


def test_blocked_or_not_forwarded_reads_as_undecided() -> None:
    from checks.model import PortResult
    from wizard.tui.screens.ports import result_text

    r = PortResult(
        80,
        "tcp",
        "blocked-or-not-forwarded",
        ("Nobody could confirm a forward.",),
        "1) The forward ... 2) An ISP block ...",
    )
    text = result_text(r)
    assert "blocked or not forwarded" in text and "cannot tell a missing forward from a block" in text
    assert "[b]Fix:[/b] 1) The forward" in text


def test_port_next_steps_are_worded_as_the_wizard_s_own() -> None:
    """The engine gives next-step codes (no CLI flags in its sentences); the wizard words them
    as its own checkbox, with no string replacement of CLI words (issue 14)."""
    from checks.model import PortResult
    from wizard.tui.screens.ports import result_text

    r = PortResult(
        22,
        "tcp",
        "blocked-or-not-forwarded",
        ("Nobody could confirm a forward for this port.",),
        next_steps=("map-and-retest", "map-port"),
    )
    text = result_text(r)
    assert "--upnp" not in text and "ddns-wizard ports" not in text
    assert "Tick “Forward with UPnP” and test again" in text


async def test_typed_credentials_survive_a_step_back() -> None:
    app = drive.make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.to_credentials(pilot)
        await pilot.press(*"myhome.duckdns.org", "tab", *"abc")
        await pilot.press("escape")  # back to the provider table
        await drive.on_screen(pilot, "ProviderScreen")
        await pilot.press("enter")
        await drive.on_screen(pilot, "CredentialsScreen")
        assert app.screen.query_one("#field-hostname", Input).value == "myhome.duckdns.org"
        assert app.screen.query_one("#field-token", Input).value == "abc"


async def test_a_unicode_hostname_is_shown_in_both_spellings_and_saved_as_dns_spells_it() -> None:
    app = drive.make_app()
    async with app.run_test(size=(100, 32)) as pilot:
        await drive.to_credentials(pilot, provider_row=2)  # "Other (dyndns2)"
        await pilot.press(*"nas.bücher.example")
        help_line = text_of(app.screen.query_one("#error-hostname", Static))
        assert "nas.xn--bcher-kva.example (nas.bücher.example)" in help_line
        await pilot.press("tab", *"https://members.example.org", "tab", *"me", "tab", *"secret", "enter")
        await drive.wait_for(pilot, lambda: app.state.preflight is not None and drive.idle(pilot))
        assert app.state.host is not None and app.state.host.hostname == "nas.xn--bcher-kva.example"
