#!/usr/bin/env python3
"""Write screenshots/NN-name.svg: every wizard screen, from the fake engine.

    .venv/bin/python scripts/screenshots.py [--size 100x32] [--out screenshots]

Runs the real app headless (Textual's Pilot) against tests/tui/fake_engine.py:
no network, fixed data, secrets masked exactly as a user would see them.
Regenerate whenever the UI changes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.tui import drive  # noqa: E402
from tests.tui.fake_engine import FakeEngine  # noqa: E402


async def shoot(
    name: str,
    scenario: str,
    steps,
    size: tuple[int, int],
    out: Path,
    *,  # type: ignore[no-untyped-def]
    light: bool = False,
    press: tuple[str, ...] = (),
) -> Path:
    if True:
        app = drive.make_app(scenario, light=light, config_path=drive.CONFIG_PATH, engine=FakeEngine(scenario=scenario))
        async with app.run_test(size=size) as pilot:
            await steps(pilot)
            if press:
                await pilot.press(*press)
            await pilot.pause(0.3)
            await pilot.wait_for_scheduled_animations()
            svg = app.export_screenshot(title=f"ddns-wizard · {name.split('-', 1)[1]}")
    path = out / f"{name}.svg"
    path.write_text(svg, encoding="utf-8")
    return path


async def running_network(pilot) -> None:  # type: ignore[no-untyped-def]
    """The diagnosis mid-way: four probes in, the rest still running."""
    engine: FakeEngine = pilot.app.engine
    engine.hold = asyncio.Event()
    await drive.on_screen(pilot, "WelcomeScreen")
    await pilot.press("1")
    await drive.wait_for(pilot, lambda: len(pilot.app.screen.query(".probe")) >= 4)


async def failed_credentials(pilot) -> None:  # type: ignore[no-untyped-def]
    await drive.fill_duckdns(pilot, token="00000000-0000-0000-0000-000000000000")


async def help_on_ports(pilot) -> None:  # type: ignore[no-untyped-def]
    await drive.ports_tested(pilot)
    await pilot.press("f1")


SHOTS = (
    ("01-welcome", "home", lambda p: drive.on_screen(p, "WelcomeScreen"), {}),
    ("02-network-running", "home", running_network, {}),
    ("03-network", "home", drive.to_network, {}),
    ("04-network-details", "home", drive.to_network, {"press": ("d",)}),
    ("05-hosting-cgnat", "cgnat", lambda p: _to_hosting(p), {}),
    ("06-ports", "home", drive.ports_tested, {}),
    ("07-provider", "home", drive.to_provider, {}),
    ("08-credentials-rejected", "home", failed_credentials, {}),
    ("09-credentials-ok", "home", drive.fill_duckdns, {}),
    ("10-update", "home", drive.updated, {}),
    ("11-verify", "home", drive.to_verify, {}),
    ("12-done", "home", drive.to_done, {}),
    ("13-help", "home", help_on_ports, {}),
    ("14-light-theme", "home", drive.to_network, {"light": True}),
    ("15-ports-open-for-the-test", "home", drive.ports_tested_with_upnp, {}),
    ("16-update-cgnat", "cgnat", drive.updated, {}),
    ("17-done-cgnat", "cgnat", drive.to_done, {}),
    ("18-verify-wrong-record", "home", drive.verify_wrong_record, {}),
    ("19-troubleshoot-summary", "home", drive.troubleshoot_summary, {}),
)


async def _to_hosting(pilot) -> None:  # type: ignore[no-untyped-def]
    await drive.to_network(pilot)
    await pilot.press("n")
    await drive.on_screen(pilot, "HostingScreen")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100x32", help="terminal COLSxROWS (default 100x32)")
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--only", help="substring of the shot names to make")
    args = parser.parse_args()
    cols, rows = (int(x) for x in args.size.lower().split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, scenario, steps, opts in SHOTS:
        if args.only and args.only not in name:
            continue
        path = await shoot(name, scenario, steps, (cols, rows), args.out, **opts)
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
