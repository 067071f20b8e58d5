"""Render the sample diagnostic report as HTML and photograph it with headless Chromium.

    .venv/bin/python scripts/report_screenshot.py [OUT.png]

Writes screenshots/report-html.png (and screenshots/report-sample.html beside it).
Chromium runs with every background-networking feature off and a throwaway profile,
so it loads nothing but the local file.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def screenshot(html_path: Path, png_path: Path, *, width: int = 900, height: int = 1800) -> None:
    exe = chromium()
    if exe is None:
        raise RuntimeError("Chromium is not installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                exe,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={png_path}",
                html_path.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=90,
        )


def dump_dom(html_path: Path) -> str:
    exe = chromium()
    if exe is None:
        raise RuntimeError("Chromium is not installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", html_path.resolve().as_uri()],
            check=True,
            capture_output=True,
            text=True,
            timeout=90,
        )
    return out.stdout


def main() -> int:
    from tests.samples import home_diagnosis
    from wizard.report import render_report

    out_png = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "screenshots" / "report-html.png"
    html_path = out_png.with_name("report-sample.html")
    html_path.write_text(render_report(home_diagnosis(), "html"))
    screenshot(html_path, out_png)
    print(f"wrote {out_png} and {html_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
