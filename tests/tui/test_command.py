"""`ddns-wizard` without a command: the wizard needs a terminal and says so."""

from __future__ import annotations

import subprocess
import sys


def test_wizard_without_a_terminal_explains_and_exits_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = subprocess.run(
        [sys.executable, "-m", "wizard", "--config", str(tmp_path / "none.toml")],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2
    assert "the wizard needs a terminal" in out.stderr
    assert "Traceback" not in out.stderr
