"""What a new user stumbled on in the wizard (issue 19), each checked as the user would notice it."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Static

from . import drive
from .conftest import screen_text, text_of


def visible(app, widget) -> bool:  # type: ignore[no-untyped-def]
    """The widget is on screen now (not scrolled below the fold)."""
    body = app.screen.query_one("#body")
    r, b = widget.region, body.region
    return r.height > 0 and r.y >= b.y and r.bottom <= b.bottom


async def test_export_at_80x24_shows_where_it_wrote(tmp_path: Path) -> None:
    """At 80×24 "Report written" was below the fold: now it is scrolled into view and in the status."""
    app = drive.make_app(report_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.to_done(pilot)
        field = app.screen.query_one("#report-path", Input)
        assert field.value == str(tmp_path / "ddns-wizard-report.md")  # a full path, in the folder given
        await pilot.press("e")
        await drive.wait_for(pilot, lambda: app.state.report_path is not None and drive.idle(pilot))
        await pilot.pause(0.3)
        result = app.screen.query_one("#export-result", Static)
        assert f"Report written to {tmp_path}/ddns-wizard-report.md" in text_of(result)
        body = app.screen.query_one("#body")
        assert visible(app, result), (result.region, body.region, body.scroll_y, body.max_scroll_y, body.virtual_size)
        assert "Report written to" in text_of(app.screen.query_one("#status", Static))


async def test_second_export_picks_a_new_name_instead_of_failing(tmp_path: Path) -> None:
    (tmp_path / "ddns-wizard-report.md").write_text("earlier")
    app = drive.make_app(report_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.to_done(pilot)
        assert app.screen.query_one("#report-path", Input).value == str(tmp_path / "ddns-wizard-report-2.md")


def test_default_report_folder_is_documents_or_data_never_the_current_directory(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wizard.tui import app as app_mod

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("XDG_DOCUMENTS_DIR", raising=False)
    folder = app_mod.default_report_dir()
    assert folder != tmp_path and folder.is_absolute()
    assert folder == tmp_path / "data" / "ddns-wizard"  # no Documents folder: the data directory
    docs = tmp_path / "home" / "Documents"
    docs.mkdir(parents=True)
    monkeypatch.setenv("XDG_DOCUMENTS_DIR", str(docs))
    assert app_mod.default_report_dir() == docs


async def test_offline_says_no_network_on_the_network_step() -> None:
    app = drive.make_app("offline")
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.to_network(pilot)
        verdict = text_of(app.screen.query_one("#verdict", Static))
        assert verdict.startswith("No network")
        assert "Could not tell" not in screen_text(app.screen)


async def test_troubleshoot_with_a_wrong_record_offers_update_checks_every_name_and_sums_up(tmp_path: Path) -> None:
    """Issue 19: a wrong record made the Verify step wait 180 s; troubleshooting checked only the
    first configured name and ended without a summary."""
    from checks.config import Config, HostConfig
    from wizard.tui.app import WizardApp

    from .fake_engine import FakeEngine

    engine = FakeEngine(wrong_records={"nas.example.org"})
    config = Config(
        hosts=(
            HostConfig("web.example.org", "dyndns2", username="me", password="pw"),
            HostConfig("nas.example.org", "dyndns2", username="me", password="pw"),
        ),
        path=tmp_path / "c.toml",
    )
    app = WizardApp(engine, config, report_dir=tmp_path, executable=drive.EXECUTABLE)
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.to_network(pilot, choice="2")
        await pilot.press("n")
        await drive.on_screen(pilot, "PortsScreen")
        await pilot.press("n")
        await drive.on_screen(pilot, "VerifyScreen")
        await drive.wait_for(pilot, lambda: len(app.state.verifies) == 2 and drive.idle(pilot))
        assert [c[1][0] for c in engine.calls if c[0] == "verify"] == ["web.example.org", "nas.example.org"]
        summary = text_of(app.screen.query_one("#verify-summary", Static))
        assert "web.example.org: ✓ points here" in summary and "nas.example.org: ✗ points to another" in summary
        offer = app.screen.query_one("#verify-offer", Static)
        assert "Waiting cannot fix this" in text_of(offer) and "Press u" in text_of(offer)
        assert visible(app, offer)
        await pilot.press("u")
        await drive.wait_for(pilot, lambda: len(app.state.verifies) == 2 and drive.idle(pilot))
        assert [c[1].hostname for c in engine.calls if c[0] == "update"] == ["nas.example.org"]
        assert all(v.verdict == "ok" for v in app.state.verifies.values())
        assert not app.screen.query_one("#verify-offer").display
        engine.wrong_records.add("nas.example.org")  # wrong again: the summary says so
        await pilot.press("r")
        await drive.wait_for(pilot, lambda: len(app.state.verifies) == 2 and drive.idle(pilot))
        await pilot.press("n")
        await drive.on_screen(pilot, "DoneScreen")
        summary = text_of(app.screen.query_one("#troubleshoot-summary"))
        assert "Yes, with a port forward" in summary  # the network's headline first
        assert "✗ nas.example.org points to another address (an update fixes it" in summary
        assert "✓ web.example.org points here" in summary
        assert "Ports: not tested" in summary


async def test_duckdns_ko_points_at_a_mistyped_token_first() -> None:
    from checks.model import UpdateResult

    app = drive.make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.to_update(pilot)
        screen = app.screen
        screen.post_message(
            __import__("wizard.tui.messages", fromlist=["UpdateDone"]).UpdateDone(
                UpdateResult("myhome.duckdns.org", "duckdns", None, "23.128.64.20", "error", "KO", "KO", fatal=True)
            )
        )
        await pilot.pause()
        text = text_of(screen.query_one("#update-result", Static))
        assert "mistyped" in text and "fix it in your account first" not in text
        assert app.state.preflight is not None and not app.state.preflight.ok


async def test_o_without_a_browser_shows_the_address_to_copy(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 19: on a machine without a browser "o" said "Opening … in your browser" and nothing
    happened; the message stayed after switching provider."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    opened: list[str] = []
    app = drive.make_app()
    monkeypatch.setattr(app, "open_url", lambda url, **k: opened.append(url))
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.to_provider(pilot)
        await pilot.press("o")
        await pilot.pause()
        note = app.screen.query_one("#open-note", Static)
        assert note.display and "No browser on this machine" in text_of(note)
        assert app.state.provider is not None and app.state.provider.url in text_of(note)
        assert opened == []  # nothing pretended to open
        await pilot.press("down")
        await pilot.pause()
        assert not note.display  # not left over for another provider


async def test_real_provider_table_fits_80_columns() -> None:
    """Issue 19: the Needs column was cut ("a free No-IP acc"). With the real registry's entries
    every cell of the table is shown whole at 80×24."""
    from textual.widgets import DataTable

    from wizard.engine import RealEngine

    from .fake_engine import FakeEngine

    real = RealEngine.__new__(RealEngine)  # list_providers reads the registry only: no network
    app = drive.make_app(engine=FakeEngine())
    app.engine.list_providers = lambda: RealEngine.list_providers(real)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.to_provider(pilot)
        table = app.screen.query_one("#providers", DataTable)
        assert table.row_count >= 8
        total = sum(col.get_render_width(table) for col in table.columns.values())
        assert total <= table.size.width, (total, table.size.width)


async def test_raw_probes_wrap_instead_of_cutting_at_80_columns() -> None:
    from textual.widgets import DataTable

    app = drive.make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.details(pilot)
        await pilot.pause()
        table = app.screen.query_one("#probe-table", DataTable)
        total = sum(col.get_render_width(table) for col in table.columns.values())
        assert total <= table.size.width, (total, table.size.width)
        results = [" ".join(str(table.get_row(k)[4]).split()) for k in table.rows]
        assert "IGD connected, WAN 23.128.64.20, 1 mapping" in results  # whole, over two lines


async def test_status_hints_fit_the_80_column_status_line() -> None:
    app = drive.make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.to_done(pilot)
        status = app.screen.query_one("#status", Static)
        assert len(text_of(status)) <= status.size.width, (text_of(status), status.size.width)


async def test_ports_step_warns_from_the_engines_risky_table() -> None:
    """Issue 14: the wizard had its own 5-entry list of risky ports (33 in the engine)."""
    from textual.widgets import Input

    app = drive.make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await drive.to_ports(pilot)
        await pilot.press(*["down"] * 6, "enter")  # Custom…
        field = app.screen.query_one("#custom-ports", Input)
        field.value = "3306 6379"
        await pilot.pause()
        warning = text_of(app.screen.query_one("#risk-warning", Static))
        assert "MySQL/MariaDB" in warning and "Redis" in warning


def test_the_wizard_reads_ports_with_the_engines_parser() -> None:
    from checks.portcheck.spec import PortSpec as EnginePortSpec
    from wizard.engine import PortSpec
    from wizard.tui.screens.ports import parse_ports

    assert PortSpec is EnginePortSpec  # one PortSpec
    assert parse_ports("8080, 51820/UDP") == (EnginePortSpec(8080), EnginePortSpec(51820, "udp"))
