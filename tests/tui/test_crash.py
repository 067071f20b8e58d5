"""What the user sees when the wizard itself crashes: no local variables, no secrets.

Textual's own crash report prints every frame's locals (``show_locals=True``); in a
wizard that holds passwords and tokens that would put them on the screen, and from
there into a forum post. The app replaces it (WizardApp._fatal_error).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.binding import Binding

from checks.config import Config
from wizard.tui.app import WizardApp

from .fake_engine import FakeEngine

TOKEN = "a1b2c3d4-1234-5678-9abc-def012345678"


class CrashingApp(WizardApp):
    CSS_PATH = str(Path(__import__("wizard.tui.app").tui.app.__file__).with_name("wizard.tcss"))
    BINDINGS = [*WizardApp.BINDINGS, Binding("f9", "crash", "crash")]

    def action_crash(self) -> None:
        token = self.state.drafts["duckdns"]["token"]  # a local holding the secret
        raise RuntimeError(f"could not use {token}")  # ...and a message quoting it


async def test_a_crash_report_has_no_locals_and_no_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = CrashingApp(
        FakeEngine(), Config(path=tmp_path / "config.toml"), report_dir=tmp_path, executable="ddns-wizard"
    )
    with pytest.raises(RuntimeError):
        async with app.run_test(size=(100, 32)) as pilot:
            app.state.drafts["duckdns"] = {"token": TOKEN}  # typed, not yet checked
            await pilot.press("f9")
            await pilot.pause()
    shown = capsys.readouterr().err  # printed once the screen is gone
    assert "RuntimeError: could not use" in shown and "action_crash" in shown
    assert "internal error" in shown
    assert TOKEN not in shown
    assert "locals" not in shown.lower()
