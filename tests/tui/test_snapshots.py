"""SVG snapshots of every wizard screen at 80×24 and 100×32 (pytest-textual-snapshot).

After an intended UI change: `pytest tests/tui/test_snapshots.py --snapshot-update`,
look at the report, commit tests/tui/__snapshots__/.  The fake engine supplies the
data (no network)."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from . import drive

SIZES = {"80x24": (80, 24), "100x32": (100, 32)}


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("name,scenario,steps,light", drive.SCREENS, ids=[s[0] for s in drive.SCREENS])
def test_screen_snapshot(snap_compare, name, scenario, steps, light, size) -> None:  # type: ignore[no-untyped-def]
    app = drive.make_app(scenario, light=light)

    async def run_before(pilot: Pilot) -> None:
        await steps(pilot)
        await drive.steady(pilot)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
