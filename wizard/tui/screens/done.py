"""Step 9: save the configuration, how to keep the name updated, export the report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from textual import work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Button, Input, Static

from checks.config import default_config_path

from ..messages import ConfigSaved, ReportExported
from ..widgets import esc, mask
from .base import WizardScreen

REPORT_NAME = "ddns-wizard-report.md"


def systemd_unit(executable: str, config_path: Path) -> str:
    return (
        "[Unit]\n"
        "Description=Keep my DDNS name updated (ddns-wizard)\n"
        "After=network-online.target\n\n"
        "[Service]\n"
        f"ExecStart={executable} --config {config_path} watch\n"
        "Restart=on-failure\n\n"
        "[Install]\n"
        "WantedBy=default.target"
    )


class DoneScreen(WizardScreen):
    STEP = "done"
    NEXT_LABEL = "Finish ▶"
    HELP = """\
**s** saves the configuration (mode 0600: only you can read it; it holds your secret).

A DDNS name goes stale unless something keeps updating it. Either run `ddns-wizard watch`
as a service on an always-on machine (the unit shown is a *user* service: put it in
`~/.config/systemd/user/ddns-wizard.service`, then `systemctl --user enable --now
ddns-wizard` and `loginctl enable-linger`), **or** enter the values shown into your
router's own DDNS page, and not both.

**e** exports the diagnosis (with ports, update and DNS results) as a report, with
secrets and your addresses' private parts redacted, for a forum or your ISP.
"""

    BINDINGS = [
        Binding("s", "save", "Save"),
        Binding("e", "export", "Export report"),
    ]

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
                lines.append(f"{r.port}/{r.protocol}: open only for the test; the forward was removed again "
                             "(keep it on the Ports step, or forward it in the router's web page).")
            elif r.verdict not in ("open", "upstream-nat"):
                lines.append(f"{r.port}/{r.protocol}: {r.verdict.replace('-', ' ')} — see the Ports step for the fix.")
        if all(line.startswith("IPv6 works") for line in lines):
            return []        # nothing that will not work: the only news is good
        return lines

    def compose_body(self) -> Iterable[Widget]:
        state = self.state
        # Focus is given while composing (before the first key can arrive), not in on_mount.
        self.AUTO_FOCUS = "#save" if self.saving else "#export"
        problems = self.not_working()
        if problems:
            with Vertical(id="not-working", classes="box"):
                yield Static("[b]Before you rely on this name: what will not work yet[/b]", classes="section")
                yield Static("\n".join(f" • {esc(line)}" for line in problems), id="not-working-list")
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
                yield Static("[b]a)[/b] run [b]ddns-wizard watch[/b] as a service "
                             "(~/.config/systemd/user/ddns-wizard.service):")
                yield Static(esc(systemd_unit(self.wizard.executable, Path(path))), id="unit", classes="code")
                yield Static("[b]b)[/b] or enter these in your router's DDNS page:")
                yield Static(self.router_values(), id="router-values", classes="code")
        elif state.mode == "setup":
            yield Static("[dim]No hostname was set up, so there is nothing to save.[/]")
        with Vertical(id="export-box", classes="box"):
            number = "3. " if self.saving else ""
            yield Static(f"[b]{number}Export a diagnostic report[/b] (secrets redacted)", classes="section")
            with Horizontal(classes="path-row"):
                yield Input(str(self.wizard.report_dir / REPORT_NAME), id="report-path", compact=True)
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

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "save" and not self.saving:
            return False   # hidden: nothing to save on this path
        return True

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
    async def run_save(self, config) -> None:  # type: ignore[no-untyped-def]
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
        self.started(self.run_export(report, Path(raw).expanduser()), "Exporting the report")

    @work(exclusive=True, exit_on_error=False)
    async def run_export(self, report, path: Path) -> None:  # type: ignore[no-untyped-def]
        written = await self.engine.export_report(report, path, redact=True, config=self.state.config_to_save())
        self.post_message(ReportExported(Path(written)))

    def on_report_exported(self, message: ReportExported) -> None:
        self.state.report_path = message.path
        self.query_one("#export-result", Static).update(f"[$success]✓ Report written to {esc(message.path)}[/]")
        self.refresh_nav()

    def show_failure(self, what: str, error: str) -> None:
        target = "#save-result" if what.startswith("Saving") else "#export-result"
        self.query_one(target, Static).update(f"[$error]✗ {esc(what)} failed: {esc(error)}[/]")

    def blocked_reason(self) -> str | None:
        if self.saving and self.state.saved_path is None:
            return "Save the configuration first (s), or Ctrl+Q to quit without saving."
        return None

    def action_next(self) -> None:
        if self.is_busy:
            return
        reason = self.blocked_reason()
        if reason is not None:
            self.set_status(f"[$warning]{esc(reason)}[/]")
            return
        self.app.exit()
