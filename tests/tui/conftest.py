"""Helpers for the TUI tests: read what the screens show, record typed messages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, DataTable, Label, Static


def shown(widget: Widget) -> bool:
    node: Widget | None = widget
    while isinstance(node, Widget):
        if not node.display:
            return False
        node = node.parent  # type: ignore[assignment]
    return True


def text_of(widget: Widget) -> str:
    """The plain text a Static/Label/Button currently displays."""
    if not isinstance(widget, (Static, Label, Button)) and widget.children:
        # A container (a finding, a port verdict, a bullet list): the text of what it holds.
        from textual.containers import Horizontal

        glue = " " if isinstance(widget, Horizontal) else "\n"  # a bullet row: mark, then text
        return glue.join(text_of(child) for child in widget.children)
    if isinstance(widget, Button):
        label = widget.label
        return label.plain if isinstance(label, Content) else str(label)
    visual = widget.visual if isinstance(widget, Static) else widget.render()
    if isinstance(visual, Content):
        return visual.plain
    if hasattr(visual, "plain"):
        return str(visual.plain)  # type: ignore[union-attr]
    return str(widget.render())


def screen_text(screen: Screen) -> str:
    """Everything the screen shows as text: statics, labels, buttons and table cells."""
    parts: list[str] = []
    for widget in screen.query("*"):
        if not shown(widget):
            continue
        if isinstance(widget, (Static, Label, Button)):
            parts.append(text_of(widget))
        elif isinstance(widget, DataTable):
            for row_key in widget.rows:
                parts.append("  ".join(str(c) for c in widget.get_row(row_key)))
    return "\n".join(parts)


class MessageLog:
    """Every message the app processed (Pilot's message_hook), filterable by type."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def __call__(self, message: Message) -> None:
        if not any(m is message for m in self.messages):  # once, even if it bubbles
            self.messages.append(message)

    def of(self, kind: type[Message]) -> list[Message]:
        return [m for m in self.messages if isinstance(m, kind)]


@pytest.fixture
def messages() -> Iterator[MessageLog]:
    yield MessageLog()
