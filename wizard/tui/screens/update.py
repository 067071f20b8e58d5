"""Step 7: what will be sent, then the first update."""

from __future__ import annotations

from typing import Iterable

from textual import work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Button, Static

from checks.addresses import is_public
from checks.errors import DdnsWizardError
from checks.model import UpdateResult

from ..messages import UpdateDone
from ..widgets import esc, mask
from .base import WizardScreen

RESULT_TEXT = {
    "updated": "[$success]✓ Updated.[/]",
    "unchanged": "[$success]✓ Already up to date[/] (the name already pointed here).",
    "error": "[$error]✗ The update failed.[/]",
}


class UpdateScreen(WizardScreen):
    STEP = "update"
    AUTO_FOCUS = "#update-now"
    HELP = """\
This is exactly what the wizard will send to the provider: your hostname and the public
address found in the diagnosis (IPv6 too when you have a stable one and the provider takes
it). Secrets are shown masked.

**u** sends the update. If the address is not public (for example behind CGNAT), the
wizard refuses to publish it: a private address in DNS helps nobody.
"""

    BINDINGS = [Binding("u", "update", "Update now")]

    def compose_body(self) -> Iterable[Widget]:
        yield Static("[b]What will be sent[/b]", classes="section")
        yield Static(self.preview_text(), id="preview")
        yield Button("Update now (u)", id="update-now", compact=True, variant="primary")
        yield Static("", id="update-result")

    def addresses(self) -> tuple[str | None, str | None]:
        d = self.state.diagnosis
        if d is None:
            return None, None
        ipv6 = d.external.ipv6
        if ipv6 is None:
            stable = [a.address for a in d.local.ipv6_global if not a.temporary and not a.deprecated]
            ipv6 = stable[0] if stable else None
        if ipv6 and self.state.provider and not self.state.provider.supports_ipv6:
            ipv6 = None
        return d.external.ipv4, ipv6

    def preview_text(self) -> str:
        host = self.state.host
        provider = self.state.provider
        if host is None or provider is None:
            return "[$error]No hostname yet: go back to the credentials step.[/]"
        ipv4, ipv6 = self.addresses()
        rows = [
            ("Hostname", esc(host.hostname)),
            ("Provider", esc(provider.title)),
        ]
        if host.server:
            rows.append(("Server", esc(host.server)))
        if host.username:
            rows.append(("Username", esc(host.username)))
        for secret_name in ("password", "token"):
            if getattr(host, secret_name):
                rows.append((secret_name.capitalize(), mask(getattr(host, secret_name))))
        v4 = esc(ipv4) if ipv4 else "[dim]none found[/]"
        if ipv4 and not is_public(ipv4):
            v4 += "  [$error](not public: will not be published)[/]"
        rows.append(("IPv4 (A)", v4))
        rows.append(("IPv6 (AAAA)", esc(ipv6) if ipv6 else "[dim]none[/]"))
        return "\n".join(f"[b]{name:<12}[/b] {value}" for name, value in rows)

    def on_mount(self) -> None:
        super().on_mount()
        if self.state.update is not None and self.state.host is not None \
                and self.state.update.hostname == self.state.host.hostname:
            self._show(self.state.update)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "update-now":
            event.stop()
            self.action_update()
        else:
            super().on_button_pressed(event)

    def action_update(self) -> None:
        if self.is_busy or self.state.host is None:
            return
        self.query_one("#update-result", Static).update("[dim]Sending…[/]")
        self.started(self.run_update(), f"Updating {self.state.host.hostname}")

    @work(exclusive=True, exit_on_error=False)
    async def run_update(self) -> None:
        host = self.state.host
        assert host is not None
        try:
            result = await self.engine.update(host)
        except DdnsWizardError as exc:
            result = UpdateResult(host.hostname, host.provider, None, None, "error", getattr(exc, "code", None), str(exc))
        self.post_message(UpdateDone(result))

    def on_update_done(self, message: UpdateDone) -> None:
        self.state.update = message.result
        self._show(message.result)
        self.refresh_nav()

    def _show(self, r: UpdateResult) -> None:
        lines = [RESULT_TEXT.get(r.result, r.result)]
        if r.sent:
            lines.append(f"Sent: {esc(r.sent)}" + (f" (before: {esc(r.previous)})" if r.previous else ""))
        if r.code:
            lines.append(f"The provider said: [b]{esc(r.code)}[/b]")
        if r.message:
            lines.append(esc(self.wizard.redact(r.message)))
        if r.result == "error":
            if (r.code or "").lower() in ("badauth", "401", "403", "http 401", "http 403", "nohost", "notfqdn"):
                lines.append("[b]The provider rejected the hostname or credentials:[/b] go back (Esc), "
                             "fix them, check again and return here.")
            elif r.fatal:
                lines.append("The provider refuses this host: fix it in your account first.")
            else:
                lines.append("Press u to try again, or go back (Esc) to change the details.")
        self.query_one("#update-result", Static).update("\n".join(lines))

    def show_failure(self, what: str, error: str) -> None:
        self.query_one("#update-result", Static).update(f"[$error]✗ {esc(error)}[/]")

    def blocked_reason(self) -> str | None:
        if self.state.host is None:
            return "No hostname yet: go back to the credentials."
        u = self.state.update
        if u is None or u.hostname != self.state.host.hostname:
            return "Send the update first (u)."
        if u.result == "error":
            return "The update failed: fix it, then send it again."
        return None
