"""Step 8: what the authoritative servers and public resolvers answer, until consistent; then the
end-to-end reach check of the service's port (from outside, TLS, hairpin) as the proof."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from textual import work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, ProgressBar, Static

from checks.config import HostConfig
from checks.model import VerifyResult

from ..messages import ReachDone, StatusNote, UpdateDone, VerifyDone, VerifyProgress
from ..widgets import Spinner, code_markup, esc
from .base import WizardScreen

VERDICT_TEXT = {
    "ok": "[$success]✓ The name points here, at every server asked.[/]",
    "propagating": "[$warning]… Propagating:[/] the authoritative servers have the new address; "
    "some resolvers still serve the old one from their cache.",
    "wrong-ip": "[$error]✗ The name points to another address.[/]",
    "nxdomain": "[$error]✗ The name does not exist (yet).[/]",
    "no-answer": "[$error]✗ The name exists but has no address record.[/]",
    "unknown": "[$warning]? Could not ask the DNS servers.[/]",
}

WAIT_S = 180.0  # the engine stops sooner when the record itself is wrong (waiting cannot fix it)

SHORT_VERDICT = {
    "ok": "[$success]✓[/] points here",
    "propagating": "[$warning]…[/] propagating",
    "wrong-ip": "[$error]✗[/] points to another address",
    "nxdomain": "[$error]✗[/] does not exist",
    "no-answer": "[$error]✗[/] has no address record",
    "unknown": "[$warning]?[/] DNS could not be asked",
}


class VerifyScreen(WizardScreen):
    STEP = "verify"
    HELP = """\
The wizard asks the hostname's **authoritative** servers directly (they have the truth the
moment the update lands) and several **public resolvers** (they cache answers for the
record's TTL, so they may show the old address for a few minutes). It keeps asking until
every answer agrees.

When the authoritative servers themselves hold another address, waiting cannot fix it:
**u** sends the current address to the provider now, then checks again. When
troubleshooting, every configured name is checked.

Then the proof: a prober **outside** your network connects to the name on the service's
port (the one from the Ports step, else 443), checks the certificate on TLS ports, and this
computer connects to its own public address too (if that fails while outside works, your
router has no NAT loopback: the name works for visitors but not at home). A ping from
inside would prove nothing: your router answers its own address itself.
**r** asks again; **Esc** stops waiting.
"""

    BINDINGS = [Binding("r", "recheck", "Recheck"), Binding("u", "update_now", "Update now")]

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="verify-title")
        yield Static("", id="verify-summary")
        yield Spinner(id="spinner")
        yield ProgressBar(id="consistency", show_eta=False)
        yield Static("", id="verify-offer", classes="box")
        yield Static("", id="verify-verdict")
        yield DataTable(id="answers", cursor_type="none", zebra_stripes=True)
        yield Static("", id="ping")  # the reach check's result (the proof; no LAN ping any more)

    def hosts(self) -> list[HostConfig]:
        """The names to check: this session's, or (troubleshooting) every configured one."""
        if self.state.host is not None:
            return [self.state.host]
        hosts = list(self.state.config.hosts)
        return hosts if self.state.mode == "troubleshoot" else hosts[:1]

    def target(self) -> tuple[str | None, str | None, str | None]:
        hosts = self.hosts()
        host = hosts[0] if hosts else None
        ipv4, ipv6 = self.state.expected_addresses(host)
        return (host.hostname if host else None), ipv4, ipv6

    def needs_update(self) -> list[HostConfig]:
        """Configured names whose record itself is wrong: an update fixes them, waiting does not."""
        by_name = {h.hostname: h for h in self.hosts()}
        return [
            by_name[r.hostname]
            for r in self.state.verifies.values()
            if r.next_step == "update" and r.hostname in by_name
        ]

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#answers", DataTable).add_columns("kind", "server", "answer", "TTL", "")
        self.query_one("#verify-offer").display = False
        self.query_one("#verify-summary").display = False
        self.action_recheck()

    def action_recheck(self) -> None:
        if self.is_busy:
            return
        hosts = self.hosts()
        title = self.query_one("#verify-title", Static)
        if not hosts:
            title.update("[$error]No hostname to verify.[/]")
            return
        if len(hosts) == 1:
            ipv4, ipv6 = self.state.expected_addresses(hosts[0])
            expected = " and ".join(esc(a) for a in (ipv4, ipv6) if a) or "[dim]no public address[/]"
            title.update(f"[b]{esc(hosts[0].hostname)}[/b] should point to {expected}")
        else:
            title.update(f"[b]Checking {len(hosts)} configured names[/b]")
        self._offer("")
        self.state.verifies = {}
        self.query_one("#spinner", Spinner).start("Asking authoritative servers and resolvers…")
        what = hosts[0].hostname if len(hosts) == 1 else f"{len(hosts)} names"
        self.started(self.run_verify(hosts), f"Verifying {what}")

    def action_update_now(self) -> None:
        if self.is_busy or not self.needs_update():
            return
        hosts = self.needs_update()
        self._offer("")
        self.state.verifies = {}
        self.query_one("#spinner", Spinner).start("Sending the current address…")
        self.started(
            self.run_verify(self.hosts(), update_first=hosts), "Updating " + ", ".join(h.hostname for h in hosts)
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "update_now":
            return bool(self.needs_update())  # False hides it
        return True

    @work(exclusive=True, exit_on_error=False)
    async def run_verify(self, hosts: list[HostConfig], update_first: Sequence[HostConfig] = ()) -> None:
        def progress(partial: VerifyResult, waited: float) -> None:
            self.post_message(VerifyProgress(partial, waited))

        for host in update_first:
            self.post_message(StatusNote(f"Sending the current address for {host.hostname}"))
            self.post_message(UpdateDone(await self.engine.update(host)))
        for host in hosts:
            ipv4, ipv6 = self.state.expected_addresses(host)
            result = await self.engine.verify(
                host.hostname,
                ipv4,
                ipv6,
                wait_s=WAIT_S,
                on_progress=progress,
                host=host,
            )
            self.post_message(VerifyDone(result))

    def on_update_done(self, message: UpdateDone) -> None:
        r = message.result
        self.state.update = r
        if r.result == "error":
            self._offer(f"[$error]✗ The update for {esc(r.hostname)} failed:[/] {esc(r.message)}")

    def on_verify_progress(self, message: VerifyProgress) -> None:
        self._show(message.result)
        self.query_one(
            "#spinner", Spinner
        ).label = f"Waiting until every answer agrees… ({message.waited_s:.0f} s of at most {WAIT_S:.0f} s)"

    def on_verify_done(self, message: VerifyDone) -> None:
        r = message.result
        self.state.verify = r
        self.state.verifies[r.hostname] = r
        self._show(r)
        self._show_summary()
        if all(h.hostname in self.state.verifies for h in self.hosts()):
            self.query_one("#spinner", Spinner).stop()
            # The details shown: the first name with a problem (the summary lists them all).
            worst = next((v for v in self.state.verifies.values() if v.verdict != "ok"), r)
            if worst is not r:
                self._show(worst)
        fixable = self.needs_update()
        if fixable:
            names = ", ".join(h.hostname for h in fixable)
            self._offer(
                f"[b]Waiting cannot fix this:[/b] the authoritative servers themselves hold another address "
                f"for {esc(names)}. Press [b]u[/b] to send the current address now, then it is checked again."
            )
        self.refresh_bindings()
        self.refresh_nav()
        hosts = self.hosts()
        first = self.state.verifies.get(hosts[0].hostname) if hosts else None
        if (
            first is not None
            and all(h.hostname in self.state.verifies for h in hosts)
            and first.verdict in ("ok", "propagating")
        ):  # a wrong record: update first (u)
            # The proof, for the session's name (the first one): from outside, on the service's port.
            ports = self.state.reach_ports()
            words = ", ".join(str(p) for p in ports)
            self.query_one("#spinner", Spinner).start(f"Connecting to {first.hostname}:{words} from outside…")
            self.started(self.run_reach(first.hostname, ports), f"Checking {first.hostname} from outside")

    @work(exclusive=True, group="reach", exit_on_error=False)
    async def run_reach(self, hostname: str, ports: tuple[int, ...]) -> None:
        d = self.state.diagnosis
        public = (d.external.ipv4, d.external.ipv6) if d else (None, None)
        result = await self.engine.reach(hostname, ports, public)
        self.post_message(ReachDone(result))

    def on_reach_done(self, message: ReachDone) -> None:
        from wizard.commands.reach import summary_lines
        from wizard.tui.words import action_hints

        self.state.reach = message.result
        self.query_one("#spinner", Spinner).stop()
        style = {"ok": "$success", "error": "$error", "warning": "$warning", "info": "$text-muted"}
        mark = {"ok": "✓", "error": "✗", "warning": "!", "info": "i"}
        lines = [
            f"[{style.get(sev, '$text')}]{mark.get(sev, '•')} {esc(text)}[/]"
            for sev, text in summary_lines(message.result, action_hints)
        ]
        self.query_one("#ping", Static).update("\n".join(lines))
        self.refresh_nav()
        self.set_status("")

    def _offer(self, markup: str) -> None:
        offer = self.query_one("#verify-offer", Static)
        offer.update(markup)
        offer.display = bool(markup)

    def _show_summary(self) -> None:
        summary = self.query_one("#verify-summary", Static)
        if len(self.hosts()) < 2:
            summary.display = False
            return
        lines = []
        for h in self.hosts():
            r = self.state.verifies.get(h.hostname)
            word = SHORT_VERDICT.get(r.verdict, r.verdict) if r else "[dim]waiting…[/]"
            lines.append(f" {esc(h.hostname)}: {word}")
        summary.update("\n".join(lines))
        summary.display = True

    def _show(self, r: VerifyResult) -> None:
        answers = r.authoritative + r.resolvers
        bar = self.query_one("#consistency", ProgressBar)
        bar.update(total=max(len(answers), 1), progress=sum(1 for a in answers if a.ok))
        lines = [VERDICT_TEXT.get(r.verdict, r.verdict)]
        caveat = self.state.ipv4_caveat(r.expected_ipv4) if r.expected_ipv4 else None
        if r.verdict == "ok" and caveat:
            # The name is right; the network behind it still cannot be reached over IPv4 (issue 11).
            lines[0] = "[$warning]! The name points here, but that does not make it reachable over IPv4:[/] " + esc(
                caveat
            )
        if r.verdict == "ok" and r.expected_ipv6:
            status = self.state.ipv6_status()
            if status:
                lines.append(code_markup(status))
        if r.explanation:
            lines.append(esc(r.explanation))
        if r.caches_settle_s and r.verdict != "ok":
            lines.append(f"Every cache should have the new address within {r.caches_settle_s} s.")
        self.query_one("#verify-verdict", Static).update("\n".join(lines))
        table = self.query_one("#answers", DataTable)
        table.clear()
        for kind, group in (("authoritative", r.authoritative), ("resolver", r.resolvers)):
            for a in group:
                answer = ", ".join(a.answers) or (a.error or a.rcode or "no answer")
                table.add_row(kind, a.server, answer, "–" if a.ttl is None else str(a.ttl), "✓" if a.ok else "✗")
        if self.state.reach is None or self.state.reach.hostname != r.hostname:
            self.query_one("#ping", Static).update("")

    def on_work_cancelled(self) -> None:
        self.query_one("#spinner", Spinner).stop()

    def show_failure(self, what: str, error: str) -> None:
        self.query_one("#verify-verdict", Static).update(f"[$error]✗ {esc(error)}[/]")
