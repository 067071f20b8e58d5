"""The configured hostnames: list, edit, remove, add another (from the Welcome step).

A modal over the Welcome step. Remove saves at once (atomically, mode 0600, after a
second press to confirm); Edit and Add start the setup path — the provider, the
credentials (prefilled for an edit), an update and a DNS check — and the Done step saves
the host in place of the edited one, next to the others.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Static

from ..widgets import esc


class HostsScreen(ModalScreen[tuple[str, str | None] | None]):
    """Dismisses with ("edit", hostname), ("add", None) or None (closed)."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("e", "edit", "Edit"),
        Binding("d,delete", "remove", "Remove"),
        Binding("a", "add", "Add another"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._confirm: str | None = None

    @property
    def state(self):  # type: ignore[no-untyped-def]
        return self.app.state  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        with Vertical(id="hosts-box"):
            yield Static("[b]Configured hostnames[/b]", id="hosts-title")
            yield DataTable(id="hosts-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="hosts-note")
            with Horizontal(id="hosts-buttons"):
                yield Button("Edit (e)", id="hosts-edit", compact=True)
                yield Button("Remove (d)", id="hosts-remove", compact=True)
                yield Button("Add another (a)", id="hosts-add", compact=True, variant="primary")
                yield Button("Close (Esc)", id="hosts-close", compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#hosts-table", DataTable)
        table.add_columns("Hostname", "Provider", "Publishes")
        self._fill()
        table.focus()

    def _fill(self) -> None:
        from checks.ddns.hosts import list_hosts

        table = self.query_one("#hosts-table", DataTable)
        table.clear()
        for s in list_hosts(self.state.config):
            publishes = s.families + (f" ({s.device})" if s.device else "")
            table.add_row(s.hostname, s.provider, publishes, key=s.hostname)
        where = self.state.config.path
        self.query_one("#hosts-note", Static).update(
            f"[dim]{len(self.state.config.hosts)} in {esc(where)}. Secrets are not shown.[/]" if where else ""
        )

    def _selected(self) -> str | None:
        table = self.query_one("#hosts-table", DataTable)
        hosts = self.state.config.hosts
        if not hosts or table.cursor_row is None or not 0 <= table.cursor_row < len(hosts):
            return None
        hostname: str = hosts[table.cursor_row].hostname
        return hostname

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        action = {
            "hosts-edit": self.action_edit,
            "hosts-remove": self.action_remove,
            "hosts-add": self.action_add,
            "hosts-close": self.action_close,
        }.get(event.button.id or "")
        if action:
            action()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_add(self) -> None:
        self.dismiss(("add", None))

    def action_edit(self) -> None:
        name = self._selected()
        if name:
            self.dismiss(("edit", name))

    def action_remove(self) -> None:
        name = self._selected()
        if name is None:
            return
        if self._confirm != name:
            self._confirm = name
            self.query_one("#hosts-note", Static).update(
                f"[$warning]Remove {esc(name)} from the configuration? Press d again to remove it.[/]"
            )
            return
        self._confirm = None
        self.run_remove(name)

    @work(exclusive=True, exit_on_error=False)
    async def run_remove(self, name: str) -> None:
        from checks.ddns.hosts import without_host

        try:
            new = without_host(self.state.config, name)
            path = await self.app.engine.save_config(new)  # type: ignore[attr-defined]
        except Exception as exc:
            text = self.app.redact(str(exc))  # type: ignore[attr-defined]
            self.query_one("#hosts-note", Static).update(f"[$error]✗ Not removed: {esc(text)}[/]")
            return
        from dataclasses import replace

        self.state.config = replace(new, path=path)
        self._fill()
        self.query_one("#hosts-note", Static).update(f"[$success]✓ Removed {esc(name)}; saved to {esc(path)}.[/]")
