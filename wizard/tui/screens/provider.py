"""Step 5: choose a DDNS provider; its sign-up steps, with links."""

from __future__ import annotations

from collections.abc import Iterable

from textual.binding import Binding
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Link, Static

from ...engine import ProviderInfo
from ..widgets import esc
from .base import WizardScreen


def browser_available() -> bool:
    """Whether "open in the browser" can show anything here: a desktop session with a graphical
    browser. (Without one, Python's webbrowser may fall back to a text browser that would take
    over this terminal, or do nothing at all.)"""
    import os
    import sys
    import webbrowser

    if sys.platform in ("darwin", "win32"):
        return True
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    return not isinstance(browser, webbrowser.GenericBrowser) or browser.name not in ("lynx", "w3m", "links", "elinks")


class ProviderScreen(WizardScreen):
    STEP = "provider"
    AUTO_FOCUS = "#providers"
    HELP = """\
A DDNS provider hosts the name and changes its address when your updater asks.
Free hostnames exist (DuckDNS, No-IP, Dynu, deSEC); with your own domain, Cloudflare's API
or an RFC 2136 server works too. Prefer a provider that gives a **per-host key or API
token**, so your account password never sits on this machine.

**↑/↓** choose, the panel shows how to sign up; **o** opens the sign-up page in your
browser (or copy the address shown). **Enter** or **n** goes on with the highlighted one.
"""

    BINDINGS = [Binding("o", "open_link", "Sign-up page")]

    def compose_body(self) -> Iterable[Widget]:
        yield Static("[b]Choose a provider[/b] [dim](↑/↓, Enter)[/]", classes="section")
        yield DataTable(id="providers", cursor_type="row", zebra_stripes=True)
        with Vertical(id="signup"):
            yield Static(id="signup-title")
            yield Static(id="signup-steps")
            yield Link("", id="signup-link")
            yield Static("", id="open-note")
            yield Static(id="pitfalls")

    def on_mount(self) -> None:
        super().on_mount()
        self.providers: tuple[ProviderInfo, ...] = ()
        table = self.query_one("#providers", DataTable)
        # What a provider needs is a sentence: it is in the sign-up panel ("You need: …"), not in
        # a column that 80 columns would cut (issue 19).
        table.add_columns("Provider", "IPv6", "Cost")
        try:
            self.providers = tuple(self.engine.list_providers())
        except Exception as exc:  # a missing registry must not kill the wizard
            self.set_status(f"[$error]Cannot list providers: {esc(exc)}[/]")
        for p in self.providers:
            # The cost's conditions are in the sign-up panel: the table keeps its columns in 80.
            cost = p.cost.split(" (", 1)[0]
            table.add_row(p.title, "yes" if p.supports_ipv6 else "no", cost, key=p.name)
        start = 0
        if self.state.provider is not None:
            names = [p.name for p in self.providers]
            if self.state.provider.name in names:
                start = names.index(self.state.provider.name)
        if self.providers:
            table.move_cursor(row=start)
            self._show(self.providers[start])
        self.refresh_nav()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self.providers):
            self._show(self.providers[event.cursor_row])

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if 0 <= event.cursor_row < len(self.providers):
            self._show(self.providers[event.cursor_row])
            self.action_next()

    def _show(self, p: ProviderInfo) -> None:
        if self.state.provider is None or self.state.provider.name != p.name:
            # A different provider: credentials checked for the old one no longer count.
            self.state.preflight = None
            self.state.host = None
        self.state.provider = p
        self.query_one("#open-note", Static).display = False  # it was about another provider's page
        self.query_one("#signup-title", Static).update(
            f"[b]Sign up with {esc(p.title)}[/b] · {esc(p.cost)}\n[dim]You need: {esc(p.needs_text)}[/]"
        )
        steps = "\n".join(f" {i}. {esc(s)}" for i, s in enumerate(p.signup_steps, 1))
        self.query_one("#signup-steps", Static).update(steps or "[dim]No sign-up needed.[/]")
        link = self.query_one("#signup-link", Link)
        link.text = p.url
        link.url = p.url
        link.display = bool(p.url)
        pitfalls = "\n".join(f" [$warning]![/] {esc(s)}" for s in p.pitfalls)
        self.query_one("#pitfalls", Static).update(pitfalls)
        self.refresh_nav()

    def action_open_link(self) -> None:
        if not (self.state.provider and self.state.provider.url):
            return
        url = self.state.provider.url
        note = self.query_one("#open-note", Static)
        if browser_available():
            self.app.open_url(url)
            note.update(f"[dim]Opening {esc(url)} in your browser.[/]")
        else:
            # Over SSH or on a server nothing would open (issue 19): say so and give the address.
            note.update(
                f"No browser on this machine: open [b]{esc(url)}[/b] on another device "
                "(select it with the mouse to copy; in tmux hold Shift)."
            )
        note.display = True

    def blocked_reason(self) -> str | None:
        if self.state.provider is None:
            return "Choose a provider first."
        return None
