"""Step 9: save the configuration, how to keep the name updated, export the report."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from textual import work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Button, Input, Static

from checks.config import Config, default_config_path
from checks.model import Diagnosis

from ..messages import ConfigSaved, NotifyTested, ReportExported, ServiceInstalled
from ..widgets import Bullets, code_markup, esc, mask
from .base import WizardScreen

REPORT_NAME = "ddns-wizard-report.md"


def service_summary(scope: str) -> str:
    """What the install button does, said before it is pressed (no unit text to copy: a
    wrapped ExecStart line copied from an 80-column screen breaks the unit)."""
    if scope == "system":
        return (
            "Writes /etc/systemd/system/ddns-wizard.service (hardened; the configuration is copied to "
            "/etc/ddns-wizard, mode 0600), then runs systemctl enable --now."
        )
    return (
        "Writes ~/.config/systemd/user/ddns-wizard.service, runs systemctl --user enable --now, and "
        "loginctl enable-linger: without linger a user service runs only while you are logged in."
    )


def free_report_path(folder: Path, name: str = REPORT_NAME) -> Path:
    """``folder/name``, or ``name-2``, ``-3``… when that exists: the export never overwrites."""
    path = folder / name
    stem, suffix = path.stem, path.suffix
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}{suffix}"
        n += 1
    return path.absolute()


class DoneScreen(WizardScreen):
    STEP = "done"
    NEXT_LABEL = "Finish ▶"
    HELP = """\
**s** saves the configuration (mode 0600: only you can read it; it holds your secret).

A DDNS name goes stale unless something keeps updating it. Either install `ddns-wizard watch`
as a service on an always-on machine (**i**: the same as `ddns-wizard service install`; as
root a hardened system service, else a user service with `loginctl enable-linger` so it keeps
running after you log out; without systemd you get a cron line instead), **or** enter the values
shown into your router's own DDNS page, and not both.

**Notifications** (optional): paste an apprise URL (`ntfy://topic`, `discord://…`, `tgram://…`,
`mailto://…`, `json://host/path` …) and **t** sends a test. It is saved with the configuration
and treated as a secret; you hear when the address changes, an update fails, or it works again.

**e** exports the diagnosis (with ports, update and DNS results) as a report, with
secrets and your addresses' private parts redacted, for a forum or your ISP.
"""

    BINDINGS = [
        Binding("s", "save", "Save"),
        Binding("i", "install_service", "Install service"),
        Binding("t", "notify_test", "Test notification", show=False),
        Binding("e", "export", "Export report"),
    ]

    @property
    def service_scope(self) -> str:
        """system as root, else user (like `service install`); the app may fix it (tests)."""
        from checks.ddns.service import default_scope

        return getattr(self.wizard, "service_scope", None) or default_scope()

    @property
    def saving(self) -> bool:
        return self.state.host is not None and self.state.mode == "setup"

    def not_working(self) -> list[str]:
        """What the diagnosis and the tests said will not work (yet): repeated here so the last
        screen does not read as "all done" under CGNAT or double NAT (issue 11)."""
        state = self.state
        lines: list[str] = []
        caveat = state.ipv4_caveat()
        if caveat:
            lines.append(f"IPv4: {caveat}")
        six = state.ipv6_status()
        if six and (state.hosting_blocked or state.ports6 or (state.host and state.host.options.get("ipv6"))):
            lines.append(six if six.startswith("IPv6") else f"IPv6: {six}")
        for r in state.ports:
            if r.verdict == "open" and r.mapping == "temporary":
                lines.append(
                    f"{r.port}/{r.protocol}: open only for the test; the forward was removed again "
                    "(keep it on the Ports step, or forward it in the router's web page)."
                )
            elif r.verdict not in ("open", "upstream-nat"):
                lines.append(f"{r.port}/{r.protocol}: {r.verdict.replace('-', ' ')} — see the Ports step for the fix.")
        if state.reach is not None:
            from wizard.commands.reach import summary_lines
            from wizard.tui.words import action_hints

            # The Verify step's end-to-end check: a name that does not open from outside, a broken
            # certificate, or one that expires within 14 days is something that will not work (soon).
            lines += [text for sev, text in summary_lines(state.reach, action_hints) if sev in ("error", "warning")]
        if all(line.startswith("IPv6 works") for line in lines):
            return []  # nothing that will not work: the only news is good
        return lines

    def troubleshoot_summary(self) -> list[tuple[str, str]]:
        """Every problem this troubleshooting run found as (mark, text) markup, the network's first."""
        from checks.summary import hosting_verdict

        from .verify import SHORT_VERDICT

        ok, bad, warn = "[$success]✓[/]", "[$error]✗[/]", "[$warning]![/]"
        state = self.state
        lines: list[tuple[str, str]] = []
        d = state.diagnosis
        if d is not None:
            v = hosting_verdict(d)
            lines.append((ok if v.answer in ("yes", "likely") else bad, esc(v.headline)))
            lines += [
                (bad if f.severity == "error" else warn, esc(f.title))
                for f in d.findings
                if f.severity in ("error", "warning")
            ]
        for r in state.ports:
            lines.append(
                (ok if r.verdict == "open" else bad, f"Port {r.port}/{r.protocol}: {esc(r.verdict.replace('-', ' '))}")
            )
        for name, checked in state.verifies.items():
            mark, _, words = SHORT_VERDICT.get(checked.verdict, f"? {esc(checked.verdict)}").partition(" ")
            lines.append(
                (
                    mark,
                    f"{esc(name)} {words}"
                    + (" (an update fixes it: u on the Verify step)" if checked.next_step == "update" else ""),
                )
            )
        if not state.ports:
            lines.append(("[dim]–[/]", "[dim]Ports: not tested (the Ports step tests them from outside).[/]"))
        return lines

    def compose_body(self) -> Iterable[Widget]:
        state = self.state
        if state.mode == "troubleshoot":
            with Vertical(id="summary-box", classes="box"):
                yield Static("[b]What this check found[/b]", classes="section")
                summary = self.troubleshoot_summary()
                yield Bullets(
                    [text for _, text in summary], marks=[mark for mark, _ in summary], id="troubleshoot-summary"
                )
        # Focus is given while composing (before the first key can arrive), not in on_mount.
        # Textual types AUTO_FOCUS a ClassVar but reads it through the instance (Screen._on_screen_resume).
        self.AUTO_FOCUS = "#save" if self.saving else "#export"  # type: ignore[misc]
        problems = self.not_working()
        if state.reach is not None:
            from wizard.commands.reach import summary_lines
            from wizard.tui.words import action_hints

            sev, text = summary_lines(state.reach, action_hints)[0]
            if sev == "ok":  # the bad news is in the "will not work yet" list below
                yield Static(f"[$success]✓ {esc(text)}[/]", id="reach-result")
        if problems:
            with Vertical(id="not-working", classes="box"):
                yield Static("[b]Before you rely on this name: what will not work yet[/b]", classes="section")
                yield Bullets([code_markup(line) for line in problems], id="not-working-list")
        if self.saving:
            path = state.saved_path or state.config.path or default_config_path()
            with Vertical(id="save-box", classes="box"):
                yield Static("[b]1. Save the configuration[/b]", classes="section")
                with Horizontal(classes="path-row"):
                    yield Input(str(path), id="config-path", compact=True)
                    yield Button("Save (s)", id="save", compact=True, variant="primary")
                yield Static("", id="save-result")
            with Vertical(id="keep-box", classes="box"):
                yield Static("[b]2. Keep it updated[/b] (one of the two)", classes="section")
                with Horizontal(classes="path-row"):
                    yield Static("[b]a)[/b] run [b]ddns-wizard watch[/b] as a service", classes="row-text")
                    yield Button("Install service (i)", id="install-service", compact=True)
                yield Static(f"[dim]{esc(service_summary(self.service_scope))}[/]", id="service-summary")
                yield Static("", id="service-result")
                yield Static("[b]b)[/b] or enter these in your router's DDNS page:")
                yield Static(self.router_values(), id="router-values", classes="code")
            with Vertical(id="notify-box", classes="box"):
                yield Static("[b]3. Notifications[/b] (optional)", classes="section")
                with Horizontal(classes="path-row"):
                    yield Input(
                        placeholder="apprise URL, e.g. ntfy://topic or json://host/path",
                        password=True,
                        id="notify-url",
                        compact=True,
                    )
                    yield Button("Send test (t)", id="notify-test", compact=True)
                yield Static(self._notify_note(), id="notify-result")
        elif state.mode == "setup":
            yield Static("[dim]No hostname was set up, so there is nothing to save.[/]")
        with Vertical(id="export-box", classes="box"):
            number = "4. " if self.saving else ""
            yield Static(f"[b]{number}Export a diagnostic report[/b] (secrets redacted)", classes="section")
            with Horizontal(classes="path-row"):
                yield Input(str(free_report_path(self.wizard.report_dir)), id="report-path", compact=True)
                yield Button("Export (e)", id="export", compact=True)
            yield Static("[dim].md, .html or .json, by the file name.[/]", id="export-result")

    def router_values(self) -> str:
        host = self.state.host
        provider = self.state.provider
        assert host is not None
        rows = [("Service", provider.title if provider else host.provider), ("Hostname", host.hostname)]
        if host.server:
            rows.append(("Server", host.server))
        if host.username:
            rows.append(("Username", host.username))
        if host.password:
            rows.append(("Password", mask(host.password) + " (the one you entered)"))
        if host.token:
            rows.append(("Token", mask(host.token) + " (the one you entered)"))
        return "\n".join(f"{name:<9} {esc(value)}" for name, value in rows)

    def on_mount(self) -> None:
        super().on_mount()
        if self.saving and self.state.saved_path:
            self._show_saved(self.state.saved_path)

    def _notify_note(self) -> str:
        from checks.ddns.notify import notify_settings

        try:
            known = len(notify_settings(self.state.config).urls)
        except Exception:
            known = 0
        added = len(self.state.notify_urls)
        if not known and not added:
            return "[dim]Saved with the configuration (s); kept secret like a password.[/]"
        parts = [f"{known} configured" if known else "", f"{added} added (saved with s)" if added else ""]
        return f"[dim]Notification URLs: {', '.join(p for p in parts if p)}.[/]"

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "install-service":
            event.stop()
            self.action_install_service()
        elif event.button.id == "notify-test":
            event.stop()
            self.action_notify_test()
        elif event.button.id == "save":
            event.stop()
            self.action_save()
        elif event.button.id == "export":
            event.stop()
            self.action_export()
        else:
            super().on_button_pressed(event)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "config-path":
            self.action_save()
        elif event.input.id == "report-path":
            self.action_export()
        elif event.input.id == "notify-url":
            self.action_notify_test()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("save", "install_service", "notify_test") and not self.saving:
            return False  # hidden: nothing to save on this path
        return True

    # -- service ---------------------------------------------------------------
    def action_install_service(self) -> None:
        if self.is_busy or not self.saving:
            return
        if self.state.saved_path is None:
            self.set_status("[$warning]Save the configuration first (s): the service reads the saved file.[/]")
            return
        self.query_one("#service-result", Static).update("[dim]Installing…[/]")
        self.started(self.run_install(self.state.saved_path, self.service_scope), "Installing the service")

    @work(exclusive=True, exit_on_error=False)
    async def run_install(self, path: Path, scope: str) -> None:
        outcome = await self.engine.install_service(path, scope)
        self.post_message(ServiceInstalled(outcome))

    def on_service_installed(self, message: ServiceInstalled) -> None:
        from wizard.keep_text import service_outcome_lines

        outcome = message.outcome
        lines = service_outcome_lines(outcome)
        if outcome.ok:
            head = "[$success]✓ Service installed and started.[/]"
        elif not outcome.systemd:
            head = "[$warning]systemd is not running here: nothing was installed. Add this line with crontab -e:[/]"
            lines = [outcome.plan.cron_line]
        else:
            head = "[$error]✗ The service was not installed completely:[/]"
        body = "\n".join(esc(line) for line in lines if line and not line.startswith("Not installed"))
        self.query_one("#service-result", Static).update(f"{head}\n{body}")
        self.refresh_nav()

    # -- notifications ---------------------------------------------------------
    def action_notify_test(self) -> None:
        if self.is_busy or not self.saving:
            return
        url = self.query_one("#notify-url", Input).value.strip()
        if not url and not self.state.notify_urls:
            self.set_status("[$warning]Paste a notification URL first (e.g. ntfy://your-topic).[/]")
            return
        if url:
            if "://" not in url:
                self.query_one("#notify-result", Static).update(
                    "[$error]That is not a URL: an apprise URL looks like ntfy://topic or json://host/path.[/]"
                )
                return
            if url not in self.state.notify_urls:
                self.state.notify_urls.append(url)
            self.query_one("#notify-url", Input).value = ""
            if self.state.saved_path is not None:
                self.state.saved_path = None  # the configuration changed: save again
                self.query_one("#save-result", Static).update(
                    "[$warning]A notification URL was added: save again (s) to keep it.[/]"
                )
        self.query_one("#notify-result", Static).update("[dim]Sending a test…[/]")
        self.started(self.run_notify_test(list(self.state.notify_urls)), "Sending a test notification")

    @work(exclusive=True, exit_on_error=False)
    async def run_notify_test(self, urls: list[str]) -> None:
        deliveries = await self.engine.notify_test(urls)
        self.post_message(NotifyTested(tuple(deliveries)))

    def on_notify_tested(self, message: NotifyTested) -> None:
        lines = []
        for d in message.deliveries:
            lines.append(
                f"[$success]✓ {esc(d.url)}: accepted[/]"
                if d.ok
                else f"[$error]✗ {esc(d.url)}: not accepted: {esc(d.detail)}[/]"
            )
        lines.append(self._notify_note())
        self.query_one("#notify-result", Static).update("\n".join(lines))
        self.refresh_nav()

    # -- save ------------------------------------------------------------------
    def action_save(self) -> None:
        if self.is_busy or not self.saving:
            return
        raw = self.query_one("#config-path", Input).value.strip()
        if not raw:
            self.set_status("[$error]Type where to save the configuration.[/]")
            return
        config = self.state.config_to_save()
        from dataclasses import replace

        config = replace(config, path=Path(raw).expanduser())
        self.started(self.run_save(config), "Saving the configuration")

    @work(exclusive=True, exit_on_error=False)
    async def run_save(self, config: Config) -> None:
        path = await self.engine.save_config(config)
        self.post_message(ConfigSaved(Path(path)))

    def on_config_saved(self, message: ConfigSaved) -> None:
        self.state.saved_path = message.path
        self._show_saved(message.path)
        self.refresh_nav()

    def _show_saved(self, path: Path) -> None:
        try:
            mode = f"{os.stat(path).st_mode & 0o777:04o}"
        except OSError:
            mode = "?"
        self.query_one("#save-result", Static).update(
            f"[$success]✓ Saved to {esc(path)}[/] (mode {mode}: only you can read it)."
        )

    # -- export ----------------------------------------------------------------
    def action_export(self) -> None:
        if self.is_busy:
            return
        report = self.state.report()
        if report is None:
            self.set_status("[$error]There is no diagnosis to export.[/]")
            return
        raw = self.query_one("#report-path", Input).value.strip()
        if not raw:
            self.set_status("[$error]Type where to write the report.[/]")
            return
        self.started(self.run_export(report, Path(raw).expanduser().absolute()), "Exporting the report")

    @work(exclusive=True, exit_on_error=False)
    async def run_export(self, report: Diagnosis, path: Path) -> None:
        if path.parent == self.wizard.report_dir.absolute() and not path.parent.exists():
            path.parent.mkdir(parents=True, mode=0o700)  # the default data directory, first use
        written = await self.engine.export_report(report, path, redact=True, config=self.state.config_to_save())
        self.post_message(ReportExported(Path(written)))

    def on_report_exported(self, message: ReportExported) -> None:
        self.state.report_path = message.path
        result = self.query_one("#export-result", Static)
        result.update(f"[$success]✓ Report written to {esc(message.path)}[/]")
        # At 80×24 the export box is below the fold: bring the result into view, and say it in
        # the status line too (issue 19: "e" gave no visible feedback).
        self._bring_into_view(result)
        self.set_status(f"[$success]✓ Report written to {esc(message.path)}[/]", keep=True)
        self.refresh_nav()

    def show_failure(self, what: str, error: str) -> None:
        target = {"Saving": "#save-result", "Installing": "#service-result", "Sending": "#notify-result"}.get(
            what.split(" ")[0], "#export-result"
        )
        # The engine's refusal names the command line's --force: here the way out is another name.
        error = error.replace("; use --force to overwrite it", ": type another file name")
        result = self.query_one(target, Static)
        result.update(f"[$error]✗ {esc(what)} failed: {esc(error)}[/]")
        self._bring_into_view(result)

    def _bring_into_view(self, widget: Widget) -> None:
        """Scroll to a result once its new text is laid out (the first refresh only re-renders it)."""

        def scroll() -> None:
            body = self.query_one("#body")
            if widget.region.bottom > body.region.bottom or widget.region.y < body.region.y:
                widget.scroll_visible(animate=False, immediate=True)

        self.set_timer(0.05, scroll)

    def blocked_reason(self) -> str | None:
        if self.saving and self.state.saved_path is None:
            return "Save first (s), or Ctrl+Q quits without saving."
        return None

    def action_next(self) -> None:
        if self.is_busy:
            return
        reason = self.blocked_reason()
        if reason is not None:
            self.set_status(f"[$warning]{esc(reason)}[/]")
            return
        self.app.exit()
