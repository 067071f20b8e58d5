"""Step 1: what will happen, what will not, and what the user wants to do."""

from __future__ import annotations

from collections.abc import Iterable

from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ..state import Mode
from ..widgets import esc
from .base import WizardScreen

CHOICES: tuple[tuple[Mode, str], ...] = (
    ("setup", "Set up DDNS: a name that follows this network's address"),
    ("troubleshoot", "Troubleshoot: why can't people reach my server?"),
    ("report", "Just export a diagnostic report (for a forum or your ISP)"),
)

INTRO = """\
[b]Get a server at home reachable under a name[/b], or find out plainly why it can't be.

[b]What will happen[/b]
 • a look at your network: addresses, router, NAT (read-only)
 • a port test from outside, a provider, your credentials, an update, a DNS check
[b]What will not[/b]
[b] • nothing changes on your router without asking you first[/b]
 • nothing is saved until the last step; secrets only go to your config file (0600)"""


class WelcomeScreen(WizardScreen):
    STEP = "welcome"
    AUTO_FOCUS = "#choices"
    NEXT_LABEL = "Start ▶"
    HELP = """\
**ddns-wizard** walks you from nothing to a working DDNS name, one step at a time.

- **Set up DDNS**: diagnosis, port test, provider, credentials, first update, DNS check, save.
- **Troubleshoot**: diagnosis and port test (and a DNS check of your configured name), so you
  see *why* your server is unreachable: CGNAT, double NAT, a missing forward, an ISP block.
- **Export a report**: the diagnosis as a file you can paste into a forum or send to your ISP.

With hostnames already configured, **h** lists them: edit one, remove one (press **d** twice)
or add another; the change is saved to the configuration file (mode 0600).

Keys: **↑/↓** choose, **Enter** or **n** goes on, **Esc** goes back (or cancels what is running),
**F1** this help, **F2** light/dark theme, **Ctrl+Q** quit.
"""

    BINDINGS = [
        Binding("1", "choose(0)", "Set up", show=False),
        Binding("2", "choose(1)", "Troubleshoot", show=False),
        Binding("3", "choose(2)", "Report", show=False),
        Binding("h", "hosts", "Hostnames"),
    ]

    def compose_body(self) -> Iterable[Widget]:
        yield Static(INTRO, id="intro")
        hosts = self.state.config.hosts
        if hosts:
            names = ", ".join(f"{h.hostname} ({h.provider})" for h in hosts[:3])
            more = f" and {len(hosts) - 3} more" if len(hosts) > 3 else ""
            yield Static(
                f"[b]Already configured:[/b] {esc(names)}{more}. Troubleshoot (2) checks "
                f"{'it' if len(hosts) == 1 else 'the first'} at the DNS servers; "
                "[b]h[/b] lists, edits, removes or adds hostnames.",
                id="configured",
            )
        yield Static("[b]What do you want to do?[/b]", classes="section")
        yield OptionList(
            *(Option(f"{i + 1}. {label}", id=mode) for i, (mode, label) in enumerate(CHOICES)),
            id="choices",
        )

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#choices", OptionList).highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._start(event.option.id)  # type: ignore[arg-type]

    def _start(self, mode: Mode) -> None:
        """One of the three paths, not an edit or an addition from the hostnames list."""
        self.state.adding, self.state.editing = False, None
        self.wizard.start(mode)

    def action_choose(self, index: int) -> None:
        self._start(CHOICES[index][0])

    def action_next(self) -> None:
        index = self.query_one("#choices", OptionList).highlighted or 0
        self._start(CHOICES[index][0])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "hosts" and not self.state.config.hosts:
            return False  # nothing configured yet: the setup path adds the first
        return True

    def action_hosts(self) -> None:
        from .hosts import HostsScreen

        self.app.push_screen(HostsScreen(), self._hosts_done)

    def _hosts_done(self, choice: tuple[str, str | None] | None) -> None:
        if choice is None:
            self.refresh_configured()
            return
        what, name = choice
        state = self.state
        state.editing = None
        state.adding = what == "add"
        if what == "edit" and name:
            host = next((h for h in state.config.hosts if h.hostname == name), None)
            if host is not None:
                state.editing = name
                state.host = host
                state.provider = next((p for p in self.engine.list_providers() if p.name == host.provider), None)
        else:
            state.host = None
        self.wizard.start("setup")

    def refresh_configured(self) -> None:
        """After removing hosts: say what is left (the step is recomposed cheaply)."""
        self.refresh(recompose=True)
