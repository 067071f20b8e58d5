"""The ddns-wizard Textual app: a stack of step screens over one shared state.

Back pops a screen (so a step keeps what it found); Next asks ``advance`` which
step comes after this one, given the mode the user chose and what the diagnosis
found (the "Can you host here?" step appears only under CGNAT or double NAT).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from checks.config import Config

from ..engine import WizardEngine
from .state import Mode, WizardState

if TYPE_CHECKING:
    from .screens.base import WizardScreen

LIGHT_THEME = "textual-light"
DARK_THEME = "textual-dark"


def default_report_dir() -> Path:
    """Where the wizard offers to write a report: the user's documents folder, or when there is
    none (a server without XDG folders) ddns-wizard's data directory (created on export)."""
    from platformdirs import user_data_dir, user_documents_dir

    docs = Path(user_documents_dir())
    return docs if docs.is_dir() and docs != Path.home() else Path(user_data_dir("ddns-wizard"))


class WizardApp(App[None]):
    CSS_PATH = "wizard.tcss"
    TITLE = "ddns-wizard"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS = [
        Binding("f2", "toggle_theme", "Theme"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        engine: WizardEngine,
        config: Config | None = None,
        *,
        report_dir: Path | None = None,
        light: bool = False,
        executable: str | None = None,
    ) -> None:
        super().__init__()
        # Shown in the systemd unit on the last step (tests pass a fixed one).
        self.executable = executable or _own_executable()
        self.engine = engine
        self.state = WizardState(config=config or Config())
        # Never the current directory (issue 19: it wrote into a source checkout).
        self.report_dir = report_dir or default_report_dir()
        self.theme = LIGHT_THEME if light else DARK_THEME

    def _fatal_error(self) -> None:
        """An unhandled exception: Textual's own report shows every frame's local variables,
        which here include passwords and tokens. Ours shows no locals and is redacted.
        (Textual has no public hook for this; it is pinned, and tests/tui checks it.)"""
        import sys
        import traceback

        from rich.text import Text

        self.bell()
        text = self.redact("".join(traceback.format_exception(*sys.exc_info())))
        self._exit_renderables.append(
            Text(f"{text}\nddns-wizard stopped on an internal error (shown above, secrets removed). Please report it.")
        )
        self._close_messages_no_wait()

    def on_mount(self) -> None:
        from .screens.welcome import WelcomeScreen

        self._quit_on_signals()
        self.push_screen(WelcomeScreen())

    def _quit_on_signals(self) -> None:
        """SIGTERM / SIGHUP (kill, a closed terminal) quit like Ctrl+Q: running work is
        cancelled and allowed to clean up (router mappings) first."""
        import signal

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                loop.add_signal_handler(sig, lambda: asyncio.ensure_future(self.action_quit()))
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
                pass

    # -- flow ------------------------------------------------------------------
    def can_go_back(self) -> bool:
        # screen_stack[0] is Textual's empty default screen, [1] the welcome step.
        return len(self.screen_stack) > 2

    def start(self, mode: Mode) -> None:
        """The welcome choice: every path starts with the diagnosis."""
        self.state.mode = mode
        self.advance("welcome")

    def next_step(self, step: str) -> str | None:
        state = self.state
        if step == "welcome":
            return "network"
        if step == "network":
            if state.mode == "report":
                return "done"
            return "hosting" if state.hosting_blocked else "ports"
        if step == "hosting":
            return "ports"
        if step == "ports":
            if state.mode == "troubleshoot":
                return "verify" if state.config.hosts else "done"
            return "provider"
        order = ("provider", "credentials", "update", "verify", "done")
        if step in order[:-1]:
            return order[order.index(step) + 1]
        return None

    def advance(self, step: str) -> None:
        target = self.next_step(step)
        if target is None:
            self.exit()
            return
        self.push_screen(make_screen(target))

    # -- helpers for screens ---------------------------------------------------
    def redact(self, text: str) -> str:
        """Remove every secret this session knows from ``text`` before showing it."""
        from checks.redact import Redactor

        redactor = Redactor.from_config(self.state.config_to_save())
        # What is typed but not yet checked counts too (short values are left: they would
        # blank out ordinary words).
        from checks.ddns.providers.registry import PROVIDERS

        secret_fields = {(p.name, f.name) for p in PROVIDERS.values() for f in p.fields if f.secret}
        redactor.add(
            value
            for provider, draft in self.state.drafts.items()
            for field, value in draft.items()
            if (provider, field) in secret_fields and len(value) >= 4
        )
        return redactor.text(text)

    async def action_quit(self) -> None:
        """Quit — but first let running engine work stop cleanly: a port test cancelled
        mid-way removes the router mappings it made, and that must finish before we go."""
        running = [w for w in self.workers if w.state in (WorkerState.PENDING, WorkerState.RUNNING)]
        if running:
            self.notify("Stopping: undoing what the running step started…", timeout=3)
            for worker in running:
                worker.cancel()
            try:
                await asyncio.wait_for(asyncio.gather(*(_finished(w) for w in running)), QUIT_GRACE_S)
            except TimeoutError:
                pass
        self.exit()

    def action_toggle_theme(self) -> None:
        self.theme = DARK_THEME if self.theme == LIGHT_THEME else LIGHT_THEME


def _own_executable() -> str:
    """The ddns-wizard command that is running (for the service unit), else the usual place."""
    import os
    import shutil
    import sys

    launched = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(launched) == "ddns-wizard" and os.access(launched, os.X_OK):
        return launched
    return shutil.which("ddns-wizard") or "/usr/local/bin/ddns-wizard"


QUIT_GRACE_S = 10.0  # longest wait for cancelled work to clean up before quitting anyway


async def _finished(worker: Worker[object]) -> None:
    """Wait until a (cancelled) worker's task has really ended, whatever its outcome."""
    try:
        await worker.wait()
    except Exception:  # WorkerCancelled / WorkerFailed: the outcome does not matter here
        pass


def make_screen(step: str) -> WizardScreen:
    from .screens import credentials, done, hosting, network, ports, provider, update, verify, welcome

    factories: dict[str, type[WizardScreen]] = {
        "welcome": welcome.WelcomeScreen,
        "network": network.NetworkScreen,
        "hosting": hosting.HostingScreen,
        "ports": ports.PortsScreen,
        "provider": provider.ProviderScreen,
        "credentials": credentials.CredentialsScreen,
        "update": update.UpdateScreen,
        "verify": verify.VerifyScreen,
        "done": done.DoneScreen,
    }
    return factories[step]()
