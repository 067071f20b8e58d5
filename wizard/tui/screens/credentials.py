"""Step 6: the provider's credential fields, checked as you type and by a pre-flight."""

from __future__ import annotations

from collections.abc import Iterable

from textual import work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Static

from checks.config import HostConfig
from checks.errors import DdnsWizardError
from checks.idn import IdnError, is_idn, to_ascii
from checks.idn import display as idn_display

from ...engine import FieldInfo, Preflight
from ..messages import PreflightDone
from ..widgets import esc
from .base import WizardScreen

HOST_ATTRS = ("server", "username", "password", "token")
HOSTNAME_FIELD = FieldInfo("hostname", "Hostname", help="the full name, e.g. myhome.example.org")


class CredentialsScreen(WizardScreen):
    STEP = "credentials"
    HELP = """\
Type the hostname you created at the provider and the credential it gave you. Secrets are
masked and are only written to your configuration file (mode 0600) at the end.

Each field is checked as you type. **Ctrl+R** (or Enter in the last field) runs a
**pre-flight check**: the wizard asks the provider whether these credentials work, without
changing your record where the provider allows that. You go on only once it passes.

Rejected? Check for a copy-paste space, use the DDNS key or API token rather than the
account password where the provider asks for one, and check the hostname belongs to
the account.
"""

    BINDINGS = [
        Binding("ctrl+r", "check", "Check credentials"),
        Binding("ctrl+n", "next", "Next"),  # plain n types into the fields
    ]

    def __init__(self) -> None:
        super().__init__()
        self.errors: dict[str, str] = {}  # field name -> what is wrong with it now

    def fields(self) -> tuple[FieldInfo, ...]:
        provider = self.state.provider
        own = provider.fields if provider else ()
        if any(f.name == "hostname" for f in own):
            return tuple(own)
        return (HOSTNAME_FIELD,) + tuple(own)

    def _base_host(self) -> HostConfig | None:
        """Values to start from: this session's, else the configuration's host for this provider."""
        provider = self.state.provider
        if provider is None:
            return None
        if self.state.host is not None and self.state.host.provider == provider.name:
            return self.state.host
        if self.state.adding:
            return None  # another hostname: nothing of the configured ones carries over
        return next((h for h in self.state.config.hosts if h.provider == provider.name), None)

    def compose_body(self) -> Iterable[Widget]:
        provider = self.state.provider
        title = provider.title if provider else "(no provider chosen)"
        yield Static(f"[b]Your {esc(title)} details[/b]", classes="section")
        base = self._base_host()
        draft = self.state.drafts.get(provider.name, {}) if provider else {}
        first_empty: str | None = None
        for f in self.fields():
            initial = f.default or ""
            if base is not None:
                if f.name == "hostname":
                    initial = base.hostname
                elif f.name in HOST_ATTRS:
                    initial = getattr(base, f.name) or ""
                else:
                    initial = str(base.options.get(f.name, initial) or "")
            initial = draft.get(f.name, initial)
            if not initial and first_empty is None:
                first_empty = f.name
            placeholder = f.placeholder or (provider.hostname_hint if f.name == "hostname" and provider else "")
            # (the help line under the field already says what goes in; no placeholder echo)
            with Horizontal(classes="field-row"):
                yield Label(f.label + ("" if f.required else " (optional)"), classes="field-label")
                with Vertical(classes="field-box"):
                    yield Input(
                        value=initial,
                        placeholder=placeholder,
                        password=f.secret,
                        id=f"field-{f.name}",
                        compact=True,
                    )
                    yield Static("", id=f"error-{f.name}", classes="field-error")
        # Focus is given while composing (Screen.AUTO_FOCUS), so keys typed at once land here.
        # Textual types AUTO_FOCUS a ClassVar but reads it through the instance (Screen._on_screen_resume).
        self.AUTO_FOCUS = f"#field-{first_empty or self.fields()[0].name}"  # type: ignore[misc]
        with Horizontal(id="check-row"):
            yield Button("Check credentials (Ctrl+R)", id="check", compact=True, variant="primary")
        yield Static("", id="preflight")

    def on_mount(self) -> None:
        super().on_mount()
        for f in self.fields():
            self._validate(f, self.query_one(f"#field-{f.name}", Input).value, quiet=True)
        if self.state.preflight is not None:
            self._show_preflight(self.state.preflight)
        self.refresh_nav()

    def on_screen_resume(self) -> None:
        # Back from the update step: a refused update turned the check into a rejection (issue 19).
        if self.state.preflight is not None:
            self._show_preflight(self.state.preflight)
            self.refresh_nav()

    # -- validation as you type ------------------------------------------------
    def _field(self, name: str) -> FieldInfo:
        return next(f for f in self.fields() if f.name == name)

    def _validate(self, f: FieldInfo, value: str, *, quiet: bool = False) -> None:
        value = value.strip()
        if not value:
            problem = f"{f.label} is needed" if f.required else None
        else:
            provider = self.state.provider.name if self.state.provider else ""
            problem = self.engine.validate_field(provider, f.name, value)
        if problem:
            self.errors[f.name] = problem
        else:
            self.errors.pop(f.name, None)
        box = self.query_one(f"#error-{f.name}", Static)
        field = self.query_one(f"#field-{f.name}", Input)
        show = problem is not None and not (quiet and not value)
        help_text = f"[dim]{esc(f.help)}[/]" if f.help else ""
        if f.name == "hostname" and not problem and value and is_idn(value):
            # An internationalised name: DNS and the provider get the ASCII spelling; show both.
            help_text = f"[dim]DNS spells it {esc(idn_display(value))}[/]"
        box.update(f"[$error]{esc(problem)}[/]" if show else help_text)
        field.set_class(show, "-invalid-field")

    def on_input_changed(self, event: Input.Changed) -> None:
        name = (event.input.id or "").removeprefix("field-")
        if not name:
            return
        self._validate(self._field(name), event.value)
        if self.state.provider is not None:
            self.state.drafts.setdefault(self.state.provider.name, {})[name] = event.value
        # Anything typed after a check makes that check stale.
        if self.state.preflight is not None and self.build_host() != self.state.host:
            self.state.preflight = None
            self.query_one("#preflight", Static).update("[dim]Changed: check again (Ctrl+R).[/]")
        self.refresh_nav()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        if event.input is not inputs[-1]:
            self.focus_next()
        elif self.state.preflight is not None and self.state.preflight.ok:
            self.action_next()
        else:
            self.action_check()

    def build_host(self) -> HostConfig:
        provider = self.state.provider
        assert provider is not None
        base = self._base_host()
        values = {f.name: self.query_one(f"#field-{f.name}", Input).value.strip() for f in self.fields()}
        typed = values.pop("hostname")
        try:
            hostname = to_ascii(typed)  # bücher.example → xn--bcher-kva.example
        except IdnError:
            hostname = typed.rstrip(".").lower()
        attrs: dict[str, str | None] = {a: (getattr(base, a) if base else None) for a in HOST_ATTRS}
        options = dict(base.options) if base else {}
        for name, value in values.items():
            if name in HOST_ATTRS:
                attrs[name] = value or None
            else:
                options[name] = value
        return HostConfig(hostname=hostname, provider=provider.name, options=options, **attrs)

    # -- pre-flight ------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "check":
            event.stop()
            self.action_check()
        else:
            super().on_button_pressed(event)

    def action_check(self) -> None:
        if self.is_busy or self.state.provider is None:
            return
        for f in self.fields():
            self._validate(f, self.query_one(f"#field-{f.name}", Input).value)
        if self.errors:
            self.set_status("[$error]Fix the fields marked in red first.[/]")
            return
        host = self.build_host()
        if host != self.state.host:
            # Other credentials: an earlier update or verification says nothing about these.
            self.state.update = None
            self.state.verify = None
        self.state.host = host
        self.query_one("#preflight", Static).update("[dim]Asking the provider…[/]")
        self.started(self.run_preflight(host), f"Checking the credentials with {self.state.provider.title}")

    @work(exclusive=True, exit_on_error=False)
    async def run_preflight(self, host: HostConfig) -> None:
        try:
            result = await self.engine.preflight(host)
        except DdnsWizardError as exc:  # a refusal is an answer, not a crash
            result = Preflight(ok=False, message=str(exc))
        self.post_message(PreflightDone(result))

    def on_preflight_done(self, message: PreflightDone) -> None:
        self.state.preflight = message.preflight
        self._show_preflight(message.preflight)
        self.refresh_nav()

    def _show_preflight(self, p: Preflight) -> None:
        text = self.wizard.redact(p.message)
        title = self.state.provider.title if self.state.provider else "The provider"
        if p.ok and p.spent_update:
            # Nothing could be proved without a real update (dyndns2 and friends).
            out = (
                f"[$success]✓ The fields look right.[/] {esc(title)} can only check credentials with "
                f"a real update, so the next step is the test.\n[dim]{esc(text)}[/]"
            )
        elif p.ok:
            out = f"[$success]✓ The provider accepts these credentials.[/] {esc(text)}"
        else:
            out = (
                f"[$error]✗ The provider rejected this: {esc(text)}[/]\n"
                "Check the hostname belongs to this account, look for a pasted space, and use the "
                "DDNS key / API token where the provider asks for one. Then Ctrl+R again."
            )
        self.query_one("#preflight", Static).update(out)

    def on_work_cancelled(self) -> None:
        self.query_one("#preflight", Static).update("[dim]Check cancelled.[/]")

    def show_failure(self, what: str, error: str) -> None:
        self.query_one("#preflight", Static).update(f"[$error]✗ {esc(error)}[/]")

    def blocked_reason(self) -> str | None:
        errors = self.errors
        if errors:
            empty = [
                f.label
                for f in self.fields()
                if f.name in errors and not self.query_one(f"#field-{f.name}", Input).value.strip()
            ]
            if len(empty) == len(errors):
                return "Fill in: " + ", ".join(empty) + "."
            return "Fix the fields marked in red."
        p = self.state.preflight
        if p is None:
            return "Check the credentials first (Ctrl+R)."
        if not p.ok:
            return "The provider rejected these credentials: fix them and check again."
        return None
