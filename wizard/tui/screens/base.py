"""What every wizard step shares: step bar, scrolling body, back/next bar, footer,
help, cancellable engine work."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Button, Footer, Markdown, Static
from textual.worker import Worker, WorkerState

from ..messages import StatusNote, StepFailed
from ..widgets import StepBar, esc

if TYPE_CHECKING:
    from ...engine import WizardEngine
    from ..app import WizardApp
    from ..state import WizardState


class HelpScreen(ModalScreen[None]):
    """The current step explained; any of Escape, F1, ? or q closes it."""

    BINDINGS = [
        Binding("escape,f1,question_mark,q", "close", "Close help"),
    ]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self._title = title
        self._text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(f"[b]Help · {esc(self._title)}[/b]", id="help-title")
            yield Markdown(self._text, id="help-text")
            yield Static("[dim]Esc closes this help.[/]", id="help-close")

    def action_close(self) -> None:
        self.dismiss(None)


class WizardScreen(Screen[None]):
    """Base of every step.  Subclasses give ``STEP``, ``HELP`` and ``compose_body``;
    ``blocked_reason`` says why Next is not possible yet."""

    STEP: ClassVar[str] = "welcome"
    HELP: ClassVar[str] = ""
    NEXT_LABEL: ClassVar[str] = "Next ▶"

    BINDINGS = [
        Binding("escape", "back_or_cancel", "Back"),
        Binding("n", "next", "Next"),
        Binding("ctrl+n", "next", "Next", show=False),
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(classes=f"step-{self.STEP}")
        self.work: Worker[None] | None = None
        self.busy_what = ""
        self._status_is_reason = False
        self._status_is_busy = False  # the status line still says "working on ..."

    # -- shortcuts -------------------------------------------------------------
    @property
    def wizard(self) -> WizardApp:
        return self.app  # type: ignore[return-value]

    @property
    def state(self) -> WizardState:
        return self.wizard.state

    @property
    def engine(self) -> WizardEngine:
        return self.wizard.engine

    # -- layout ----------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StepBar(self.STEP, self.state.mode)
        with VerticalScroll(id="body"):
            yield from self.compose_body()
        with Horizontal(id="nav"):
            yield Button("◀ Back", id="back", compact=True)
            yield Static("", id="status")
            yield Button(self.NEXT_LABEL, id="next", compact=True, variant="primary")
        yield Footer()

    def compose_body(self) -> Iterable[Widget]:
        return ()

    def on_mount(self) -> None:
        self.query_one("#back", Button).disabled = not self.wizard.can_go_back()
        self.refresh_nav()

    # -- navigation ------------------------------------------------------------
    def blocked_reason(self) -> str | None:
        """Why the user cannot go on yet, or ``None``."""
        return None

    def refresh_nav(self) -> None:
        reason = self.blocked_reason()
        self.query_one("#next", Button).disabled = reason is not None
        if self.is_busy:
            return
        if getattr(self, "_status_keep", False):
            return  # news the user just caused (e.g. "Report written"): not replaced by a hint
        if reason is not None:
            self.set_status(f"[dim]{esc(reason)}[/]")
            self._status_is_reason = True
        elif self._status_is_reason:
            self.set_status("")

    def set_status(self, markup: str, *, keep: bool = False) -> None:
        self._status_is_reason = False
        self._status_is_busy = False
        self._status_keep = keep
        self.query_one("#status", Static).update(markup)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "back":
            event.stop()
            self.action_back()
        elif event.button.id == "next":
            event.stop()
            self.action_next()

    def action_next(self) -> None:
        if self.is_busy:
            self.set_status("[$warning]Still working: wait, or press Esc to cancel.[/]")
            return
        reason = self.blocked_reason()
        if reason is not None:
            self.set_status(f"[$warning]{esc(reason)}[/]")
            self.app.bell()
            return
        self.wizard.advance(self.STEP)

    def action_back(self) -> None:
        if self.is_busy:
            self.cancel_work()
        if self.wizard.can_go_back():
            self.app.pop_screen()

    def action_back_or_cancel(self) -> None:
        if self.is_busy:
            self.cancel_work()
        else:
            self.action_back()

    def action_help(self) -> None:
        from ..state import STEP_TITLES

        self.app.push_screen(HelpScreen(STEP_TITLES[self.STEP], self.HELP))

    # -- engine work -----------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        return self.work is not None and self.work.state in (WorkerState.PENDING, WorkerState.RUNNING)

    def started(self, worker: Worker[None], what: str) -> None:
        """Record the running worker (so Escape can cancel it) and say what it does."""
        self.work = worker
        self.busy_what = what
        self.set_status(f"[$accent]{esc(what)}…[/] [dim](Esc cancels)[/]")
        self._status_is_busy = True
        self.query_one("#next", Button).disabled = True

    def cancel_work(self) -> None:
        if self.work is not None:
            self.work.cancel()
        self.on_work_cancelled()
        # The work may need a moment to undo what it started (router mappings, listeners);
        # "Cancelled" is said when it has really ended (on_worker_state_changed).
        self.set_status(f"[$warning]Cancelling: {esc(self.busy_what)}…[/]")
        self._status_is_busy = True

    def on_work_cancelled(self) -> None:
        """Subclasses stop spinners and the like."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self.work:
            return
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.post_message(StepFailed(self.busy_what, _error_text(error)))
        if event.state == WorkerState.CANCELLED:
            self.set_status(f"[$warning]Cancelled: {esc(self.busy_what)}.[/]")
            self.query_one("#next", Button).disabled = self.blocked_reason() is not None
        elif event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            if self._status_is_busy:  # nobody reported anything better: don't leave "working…"
                self.set_status("")
            self.refresh_nav()

    def on_status_note(self, message: StatusNote) -> None:
        if self.is_busy:
            self.set_status(f"[$accent]{esc(message.text)}…[/] [dim](Esc cancels)[/]")
            self._status_is_busy = True

    def on_step_failed(self, message: StepFailed) -> None:
        error = self.wizard.redact(message.error)
        self.on_work_cancelled()
        self.set_status(f"[$error]{esc(message.what)} failed: {esc(error)}[/]")
        self.show_failure(message.what, error)

    def show_failure(self, what: str, error: str) -> None:
        """Subclasses show the error where it belongs (the status line always has it)."""


def _error_text(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    text = str(error) or type(error).__name__
    return text
