"""Small widgets and text helpers shared by the screens."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
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


def code_markup(text: object) -> str:
    """Engine or view text as markup: brackets escaped, `code` shown bold instead of raw backticks."""
    return re.sub(r"`([^`\n]+)`", r"[b]\1[/b]", esc(text))


def blocks(text: str) -> list[str | list[str]]:
    """Engine text split into paragraphs (str) and runs of "- " bullet lines (list)."""
    out: list[str | list[str]] = []
    for line in text.splitlines():
        if line.startswith("- "):
            if out and isinstance(out[-1], list):
                out[-1].append(line[2:])
            else:
                out.append([line[2:]])
        elif line.strip():
            out.append(line)
    return out


class Bullets(Vertical):
    """A bulleted list whose wrapped lines keep their hanging indent (markup items)."""

    DEFAULT_CSS = """
    Bullets { height: auto; }
    Bullets > .bullet { height: auto; }
    Bullets > .bullet > .bullet-mark { width: 2; }
    Bullets > .bullet > .bullet-text { width: 1fr; }
    """

    def __init__(
        self, items: Iterable[str], *, mark: str = "•", marks: Iterable[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.items = list(items)
        self.marks = list(marks) if marks is not None else [mark] * len(self.items)

    def compose(self) -> ComposeResult:
        for mark, item in zip(self.marks, self.items, strict=True):
            with Horizontal(classes="bullet"):
                yield Static(mark, classes="bullet-mark")
                yield Static(item, classes="bullet-text")


class Prose(Vertical):
    """Engine text: its paragraphs as lines, its "- " lines as a hanging-indent list."""

    DEFAULT_CSS = """
    Prose { height: auto; }
    """

    def __init__(self, text: str, *, extra: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = text
        self.extra = list(extra)  # markup bullets to add (e.g. the wizard's own next steps)

    def compose(self) -> ComposeResult:
        parts = blocks(self.text)
        if self.extra:
            if parts and isinstance(parts[-1], list):
                parts[-1] = [*parts[-1], *[_Raw(x) for x in self.extra]]
            else:
                parts.append([_Raw(x) for x in self.extra])
        for part in parts:
            if isinstance(part, list):
                yield Bullets([x if isinstance(x, _Raw) else code_markup(x) for x in part])
            else:
                yield Static(code_markup(part))


class _Raw(str):
    """Markup that is already markup (not engine text to escape)."""
