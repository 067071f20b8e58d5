"""The committed pictures: one per screen, linked from the README, no secret in any."""

from __future__ import annotations

import re
from pathlib import Path

from . import drive
from .fake_engine import WRONG_SECRETS

ROOT = Path(__file__).resolve().parents[2]
PICTURES = sorted((ROOT / "screenshots").glob("*.svg")) + sorted(
    (ROOT / "tests" / "tui" / "__snapshots__").rglob("*.svg")
)


def test_no_secret_is_ever_drawn() -> None:
    assert PICTURES
    for picture in PICTURES:
        text = picture.read_text(encoding="utf-8").replace("&#160;", " ")
        for secret in (drive.GOOD_TOKEN, *(s for s in WRONG_SECRETS if len(s) >= 8)):
            assert secret not in text, f"{picture.name} shows a secret"


def test_every_readme_screenshot_exists_and_every_screen_has_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((screenshots/[^)]+\.svg)\)", readme))
    assert linked, "the README shows no screenshot"
    for link in linked:
        assert (ROOT / link).is_file(), f"README links a missing picture: {link}"
    names = {p.stem.split("-", 1)[1] for p in (ROOT / "screenshots").glob("*.svg")}
    for step in (
        "welcome",
        "network",
        "hosting-cgnat",
        "ports",
        "provider",
        "credentials-ok",
        "update",
        "verify",
        "done",
        "help",
    ):
        assert step in names, f"no screenshot of the {step} screen"
