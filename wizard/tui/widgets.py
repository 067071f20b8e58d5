"""Small widgets and text helpers shared by the screens."""

from __future__ import annotations

import time

from textual.reactive import reactive
from textual.widgets import Static

from .state import MODE_STEPS, STEP_KEYS, STEP_TITLES

SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

SEVERITY_ICON = {
    "ok": "[$success]✓[/]",
    "info": "[$primary]i[/]",
    "warning": "[$warning]![/]",
    "error": "[$error]✗[/]",
}

STATUS_ICON = {
    "ok": "[$success]✓[/]",
    "error": "[$error]✗[/]",
    "timeout": "[$warning]⌛[/]",
    "skipped": "[dim]–[/]",
}


def esc(value: object) -> str:
    """Engine text inside markup: never let its brackets become styles.

    (``textual.markup.escape`` leaves ``[Unit]``-like text alone, which the parser
    would still eat, so every bracket is escaped.)"""
    return str(value).replace("[", r"\[")


def ms_text(ms: float | None) -> str:
    if ms is None:
        return "–"
    if ms >= 1000:
        return f"{ms / 1000:.1f} s"
    return f"{ms:.0f} ms"


def mask(secret: str | None) -> str:
    """A secret as the wizard shows it: never any of its characters."""
    return "•" * 8 if secret else "(empty)"


class StepBar(Static):
    """``ddns-wizard · Step 2 of 9 · Your network`` with a row of dots."""

    def __init__(self, step: str, mode: str = "setup") -> None:
        steps = MODE_STEPS.get(mode, STEP_KEYS)
        if step not in steps:
            steps = STEP_KEYS
        index = steps.index(step)
        dots = "".join("●" if i <= index else "○" for i in range(len(steps)))
        text = (
            f"[b]ddns-wizard[/b]  Step {index + 1} of {len(steps)} · "
            f"[b]{esc(STEP_TITLES[step])}[/b]  [$accent]{dots}[/]"
        )
        super().__init__(text, id="stepbar")


class Spinner(Static):
    """A one-line spinner with a label and the seconds elapsed; hidden when idle."""

    label: reactive[str] = reactive("")
    running: reactive[bool] = reactive(False)

    def on_mount(self) -> None:
        self._frame = 0
        self._started = time.monotonic()
        self._timer = self.set_interval(0.1, self._tick, pause=True)

    def start(self, label: str) -> None:
        self.label = label
        self._started = time.monotonic()
        self.running = True
        self.display = True
        self._timer.resume()
        self._tick()

    def stop(self) -> None:
        self.running = False
        self.display = False
        self._timer.pause()

    def _tick(self) -> None:
        self._frame = (self._frame + 1) % len(SPINNER_FRAMES)
        elapsed = time.monotonic() - self._started
        self.update(f"[$accent]{SPINNER_FRAMES[self._frame]}[/] {esc(self.label)}  [dim]{elapsed:.1f} s[/]")
