"""Step 7: what will be sent, then the first update."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from textual import work
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Static

from checks.addresses import is_public
from checks.config import HostConfig
from checks.errors import DdnsWizardError
from checks.model import UpdateResult

from ..messages import UpdateDone
from ..widgets import code_markup, esc, mask
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
        self._default_families()
        host = self.state.host
        yield Static("[b]What will be sent[/b]", classes="section")
        with Horizontal(id="families"):
            yield Checkbox("IPv4 (A record)", value=self._wants(host, 4), id="want-v4", compact=True)
            yield Checkbox("IPv6 (AAAA record)", value=self._wants(host, 6), id="want-v6", compact=True)
        yield Static(self.preview_text(), id="preview")
        yield Button("Update now (u)", id="update-now", compact=True, variant="primary")
        yield Static("", id="update-result")

    # -- which records ------------------------------------------------------------
    @staticmethod
    def _wants(host: HostConfig | None, family: int) -> bool:
        if host is None:
            return family == 4
        if family == 4:
            return host.options.get("ipv4", True) is not False
        return host.options.get("ipv6", False) is True

    def _can_ipv6(self) -> bool:
        provider = self.state.provider
        return self.state.stable_ipv6() is not None and (provider is None or provider.supports_ipv6)

    def _default_families(self) -> None:
        """First visit: IPv6 on when it is the way through (CGNAT, double NAT) and possible;
        IPv4 off under CGNAT (that address is the ISP's, shared with strangers)."""
        host = self.state.host
        if host is None or "ipv4" in host.options or "ipv6" in host.options:
            return
        verdict = self.state.diagnosis.nat.verdict if self.state.diagnosis else None
        self._set_families(
            ipv4=verdict != "cgnat" or not self._can_ipv6(), ipv6=self.state.hosting_blocked and self._can_ipv6()
        )

    def _set_families(self, *, ipv4: bool, ipv6: bool) -> None:
        host = self.state.host
        if host is None:
            return
        options = {k: v for k, v in host.options.items() if k not in ("ipv4", "ipv6")}
        if not ipv4:
            options["ipv4"] = False  # the configuration keeps only what differs from the default
        if ipv6:
            options["ipv6"] = True
        if options != dict(host.options):
            self.state.host = replace(host, options=options)
            self.state.update = None  # an update for other records no longer counts
            self.state.verify = None

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self._set_families(
            ipv4=self.query_one("#want-v4", Checkbox).value, ipv6=self.query_one("#want-v6", Checkbox).value
        )
        self.query_one("#preview", Static).update(self.preview_text())
        if self.state.update is None:
            self.query_one("#update-result", Static).update("")
        self.refresh_nav()

    def addresses(self) -> tuple[str | None, str | None]:
        return self.state.expected_addresses(self.state.host)

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
        if not self._wants(host, 4):
            v4 = "[dim]not published[/]"
        elif ipv4:
            v4 = esc(ipv4)
            if not is_public(ipv4):
                v4 += "  [$error](not public: will not be published)[/]"
            elif self.state.diagnosis and self.state.diagnosis.nat.verdict == "cgnat":
                v4 += "  [$warning](your ISP's shared CGNAT address: unreachable)[/]"
            elif self.state.diagnosis and self.state.diagnosis.nat.verdict == "double-nat":
                v4 += "  [$warning](the box in front of your router: unreachable until it forwards)[/]"
        else:
            v4 = "[dim]none found[/]"
        if not self._wants(host, 6):
            v6 = (
                "[dim]not published[/]"
                if self._can_ipv6()
                else "[dim]none (no stable IPv6 here, or the provider has no IPv6)[/]"
            )
        else:
            v6 = esc(ipv6) if ipv6 else "[dim]none found[/]"
        rows.append(("IPv4 (A)", v4))
        rows.append(("IPv6 (AAAA)", v6))
        return "\n".join(f"[b]{name:<12}[/b] {value}" for name, value in rows)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#want-v6", Checkbox).disabled = not self._can_ipv6()
        if (
            self.state.update is not None
            and self.state.host is not None
            and self.state.update.hostname == self.state.host.hostname
        ):
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
            result = UpdateResult(
                host.hostname, host.provider, None, None, "error", getattr(exc, "code", None), str(exc)
            )
        self.post_message(UpdateDone(result))

    def on_update_done(self, message: UpdateDone) -> None:
        r = message.result
        self.state.update = r
        if r.result == "error" and _refused_credentials(r):
            # The credentials step must not keep saying "✓ The fields look right" (issue 19).
            from dataclasses import replace

            words = _refusal_words(r)
            self.state.preflight = (
                replace(self.state.preflight, ok=False, message=words) if self.state.preflight is not None else None
            )
        self._show(r)
        self.refresh_nav()

    def _show(self, r: UpdateResult) -> None:
        lines = [RESULT_TEXT.get(r.result, r.result)]
        ipv4, ipv6 = self.addresses()
        sent = (r.sent or "").replace(" ", "").split(",") if r.sent else []
        if r.result in ("updated", "unchanged"):
            # No plain ✓ for a name that now points at an address nobody can reach (issue 11).
            caveat = self.state.ipv4_caveat(ipv4) if ipv4 and (ipv4 in sent or not sent) else None
            if caveat:
                done = "Updated" if r.result == "updated" else "Already up to date"
                lines[0] = f"[$warning]! {done}, but not reachable over IPv4:[/] {esc(caveat)}"
            if ipv6 and (ipv6 in sent or not sent):
                status = self.state.ipv6_status()
                if status:
                    lines.append(code_markup(status))
        if r.sent:
            lines.append(f"Sent: {esc(r.sent)}" + (f" (before: {esc(r.previous)})" if r.previous else ""))
        if r.code:
            lines.append(f"The provider said: [b]{esc(r.code)}[/b]")
        if r.message:
            lines.append(esc(self.wizard.redact(r.message)))
        if r.result == "error":
            if _refused_credentials(r):
                lines.append(f"[b]{esc(_refusal_words(r))}[/b] Go back (Esc), fix it, and send again.")
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
        if self.addresses() == (None, None):
            return "Choose at least one record with an address (IPv4 or IPv6)."
        u = self.state.update
        if u is None or u.hostname != self.state.host.hostname:
            return "Send the update first (u)."
        if u.result == "error":
            return "The update failed: fix it, then send it again."
        return None


# Provider codes that mean "these credentials or this hostname are not accepted".
_CREDENTIAL_CODES = ("badauth", "401", "403", "http 401", "http 403", "nohost", "notfqdn", "ko", "badagent")


def _refused_credentials(r: UpdateResult) -> bool:
    return (r.code or "").lower() in _CREDENTIAL_CODES


def _refusal_words(r: UpdateResult) -> str:
    """What a refusal most likely means, in the order a user should check it."""
    code = (r.code or "").lower()
    if code == "ko":
        # DuckDNS answers KO for a wrong token and for a domain not in the account alike
        # (checks/providers/duckdns.py); a mistyped or half-pasted token is the likelier one.
        return (
            "DuckDNS answered KO: most often the token is mistyped or only partly pasted (copy it "
            "again from the top of duckdns.org); otherwise the domain is not in your account."
        )
    if code in ("nohost", "notfqdn"):
        return "The provider does not know this hostname in your account: check its spelling."
    return "The provider rejected the credentials: check the username and password or token."
