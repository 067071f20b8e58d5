"""`ddns-wizard` without a command: the wizard needs a terminal and says so."""

from __future__ import annotations

import subprocess
import sys


def test_wizard_without_a_terminal_explains_and_exits_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = subprocess.run(
        [sys.executable, "-m", "wizard", "--config", str(tmp_path / "none.toml")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "the wizard needs a terminal" in out.stderr
    assert "Traceback" not in out.stderr


def test_what_c_libraries_print_waits_until_the_screen_is_gone() -> None:
    """Textual draws on stderr; a C library writing to fd 2 (miniupnpc's "connect:
    Connection refused") must not land between two frames. A child process stands in for
    the wizard: its frames go to sys.__stderr__, the library's line to fd 2 directly."""
    child = (
        "import os, sys\n"
        "from wizard.commands.tui import library_output_off_screen\n"
        "with library_output_off_screen():\n"
        "    sys.__stderr__.write('FRAME-1|'); sys.__stderr__.flush()\n"
        "    for _ in range(3):\n"
        "        os.write(2, b'connect: Connection refused\\n')\n"
        "    sys.__stderr__.write('FRAME-2|'); sys.__stderr__.flush()\n"
        "sys.stderr.write('after\\n')\n"
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "FRAME-1|FRAME-2|connect: Connection refused (×3)\nafter\n"
