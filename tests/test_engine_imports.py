"""checks/ must never import the UI: each engine module is imported alone in a
fresh interpreter and sys.modules is inspected afterwards (harlequin does the same)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import checks

FORBIDDEN = ("textual", "rich", "wizard")

ENGINE_MODULES = sorted(
    m.name for m in pkgutil.walk_packages(checks.__path__, prefix="checks.")
)


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_engine_module_imports_no_ui(module: str) -> None:
    code = (
        "import sys, importlib\n"
        f"importlib.import_module({module!r})\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{module} pulls in UI modules: {out.stdout.strip()}"


def test_cli_help_does_not_import_textual() -> None:
    code = (
        "import sys\n"
        "from wizard.cli import build_parser\n"
        "build_parser().format_help()\n"
        "print('textual' in sys.modules, 'rich' in sys.modules, 'httpx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "False"]
