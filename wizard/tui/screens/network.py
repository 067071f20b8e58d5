"""Step 2: the diagnosis, live, then what it means."""

from __future__ import annotations

from collections.abc import Iterable

from textual import work
from textual.binding import Binding
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Static

from checks.model import Diagnosis, ProbeRecord
from checks.summary import hosting_verdict

from ..messages import DiagnosisReady, ProbeFinished
from ..widgets import SEVERITY_ICON, STATUS_ICON, Bullets, Prose, Spinner, code_markup, esc, ms_text
from ..words import action_hints
from .base import WizardScreen

PROBE_LABELS = {
    "local": "This computer",
    "http-echo": "Public IPv4 (HTTPS)",
    "http-echo-v6": "Public IPv6 (HTTPS)",
    "dns-echo": "Public IP (DNS)",
    "dns-echo-v6": "Public IPv6 (DNS)",
    "stun": "NAT behaviour (STUN)",
    "upnp": "Router (UPnP)",
    "natpmp": "Router (NAT-PMP)",
    "traceroute": "Path (traceroute)",
}

TARGET_W = 24


def short_target(target: str) -> str:
    """A probe's target in at most TARGET_W characters: no scheme, then no path, then cut."""
    t = target.split("://", 1)[-1]
    if len(t) > TARGET_W:
        t = t.split("/", 1)[0]
    return t if len(t) <= TARGET_W else t[: TARGET_W - 1] + "…"


def probe_line(record: ProbeRecord) -> str:
    icon = STATUS_ICON.get(record.status, "?")
    label = PROBE_LABELS.get(record.name, record.name)
    what = record.summary if record.status == "ok" else (record.error or record.status)
    return f"{icon} {esc(label):<22} [dim]{ms_text(record.ms):>7}[/]  {esc(what)}"


def summary_text(d: Diagnosis) -> str:
    local, ext = d.local, d.external
    if local.ipv4:
        here = f"{local.ipv4}" + (f" on {local.interface}" if local.interface else "")
        if local.gateway_ipv4:
            here += f", gateway {local.gateway_ipv4}"
    else:
        here = local.error or "no IPv4 address"
    answered = [s for s in ext.sources if s.value]
    if ext.ipv4:
        note = "all agree" if ext.agreement else "they disagree"
        public = f"{esc(ext.ipv4)}  [dim]({len(answered)} of {len(ext.sources)} sources answered, {note})[/]"
    else:
        public = "[$error]unknown: no outside service answered[/]"
    wan = d.nat.router_wan_ipv4 or d.upnp.wan_ipv4 or d.upnp.natpmp_wan_ipv4
    lines = [
        f"[b]This computer[/b]   {esc(here)}",
        f"[b]Public address[/b]  {public}",
        f"[b]Router's WAN[/b]    {esc(wan) if wan else '[dim]unknown (the router did not say)[/]'}",
    ]
    stable = [a.address for a in local.ipv6_global if not a.temporary and not a.deprecated]
    v6 = ext.ipv6 or (stable[0] if stable else None)
    lines.append(f"[b]IPv6[/b]            {esc(v6) if v6 else '[dim]none[/]'}")
    if ext.explanation:
        lines.append(f"[$warning]{esc(ext.explanation)}[/]")
    return "\n".join(lines)


class NetworkScreen(WizardScreen):
    STEP = "network"
    HELP = """\
The wizard asks several independent services what your public address is, looks at this
computer's own address and route, and asks your router (UPnP, NAT-PMP) what *it* thinks
its outside address is. Comparing them tells whether you are behind **one NAT** (normal),
**double NAT** (two routers) or **carrier-grade NAT** (your ISP's NAT, which you cannot
forward through). Nothing is changed anywhere.

**d** shows the raw probes (every service asked, its answer and time). **r** runs the
diagnosis again. **Esc** cancels a running diagnosis.
"""

    BINDINGS = [
        Binding("d", "toggle_details", "Details"),
        Binding("r", "rerun", "Rerun"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.failed = False  # the diagnosis stopped (error or cancelled): Next may skip it

    def compose_body(self) -> Iterable[Widget]:
        yield Spinner(id="spinner")
        yield Vertical(id="probes")
        with Vertical(id="result"):
            yield Static(id="summary")
            yield Static(id="verdict")
            yield Vertical(id="evidence")
            yield Static("[b]Findings[/b]", classes="section")
            yield Vertical(id="findings")
        with Vertical(id="details"):
            yield Static("[b]Raw probes[/b]", classes="section")
            yield DataTable(id="probe-table", cursor_type="none", zebra_stripes=True)
            yield Static("[b]Public address sources[/b]", classes="section")
            yield DataTable(id="source-table", cursor_type="none", zebra_stripes=True)
            yield Static(id="router-facts")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#result").display = False
        self.query_one("#details").display = False
        self.query_one("#probe-table", DataTable).add_columns("", "probe", "target", "time", "result")
        self.query_one("#source-table", DataTable).add_columns("method", "endpoint", "answer", "time")
        self.action_rerun()

    # -- work ------------------------------------------------------------------
    def action_rerun(self) -> None:
        if self.is_busy:
            return
        self.failed = False
        self.state.diagnosis = None
        self.query_one("#probes").remove_children()
        self.query_one("#probes").display = True
        self.query_one("#result").display = False
        self.query_one("#probe-table", DataTable).clear()
        self.query_one("#spinner", Spinner).start("Looking at your network… (read-only)")
        self.started(self.run_diagnosis(), "Diagnosis")

    @work(exclusive=True, exit_on_error=False)
    async def run_diagnosis(self) -> None:
        def finished(record: ProbeRecord) -> None:
            self.post_message(ProbeFinished(record))

        diagnosis = await self.engine.diagnose(on_progress=finished)
        self.post_message(DiagnosisReady(diagnosis))

    def on_work_cancelled(self) -> None:
        self.query_one("#spinner", Spinner).stop()
        self.failed = True
        self.refresh_nav()

    # -- results ---------------------------------------------------------------
    def on_probe_finished(self, message: ProbeFinished) -> None:
        record = message.record
        self.query_one("#probes").mount(Static(probe_line(record), classes="probe"))
        self._add_probe_row(record)

    def _add_probe_row(self, record: ProbeRecord) -> None:
        """One probe as a table row that fits the terminal: the target shortened, the result
        wrapped onto more lines (issue 19: at 80 columns it was cut to "23.")."""
        import textwrap

        what = record.summary if record.status == "ok" else (record.error or "")
        target = short_target(record.target)
        # status 2, probe 13, target ≤ TARGET_W, time 7, and two columns of padding for each.
        room = max(16, self.app.size.width - 4 - (2 + 13 + TARGET_W + 7) - 10)
        self.query_one("#probe-table", DataTable).add_row(
            record.status,
            record.name,
            target,
            ms_text(record.ms),
            "\n".join(textwrap.wrap(what, room)) or "",
            height=None,
        )

    def on_diagnosis_ready(self, message: DiagnosisReady) -> None:
        d = message.diagnosis
        self.state.diagnosis = d
        self.query_one("#spinner", Spinner).stop()
        table = self.query_one("#probe-table", DataTable)
        if table.row_count == 0:  # an engine without live progress: fill from the report
            for record in d.probes:
                self._add_probe_row(record)
        self.query_one("#probes").display = False
        self.query_one("#result").display = True
        self.query_one("#summary", Static).update(summary_text(d))
        verdict = self.query_one("#verdict", Static)
        # The one headline every view shows (checks.summary): offline says "No network" here too.
        v = hosting_verdict(d)
        verdict.update(f"[b]{esc(v.headline)}[/b]")
        verdict.set_classes(f"verdict-{d.nat.verdict}")
        evidence = self.query_one("#evidence", Vertical)
        evidence.remove_children()
        if d.nat.evidence:
            evidence.mount(Bullets([code_markup(e) for e in d.nat.evidence]))
        else:
            evidence.mount(Static("[dim]no evidence recorded[/]"))
        findings = self.query_one("#findings")
        findings.remove_children()
        order = {"error": 0, "warning": 1, "info": 2, "ok": 3}
        for f in sorted(d.findings, key=lambda f: order.get(f.severity, 9)):
            parts: list[Widget] = [
                Static(f"{SEVERITY_ICON.get(f.severity, '?')} [b]{esc(f.title)}[/b]"),
                Prose(f.detail, classes="finding-detail"),
            ]
            hints = [esc(h[0].upper() + h[1:]) + "." for h in action_hints(f.actions)]
            if f.fix or hints:
                parts.append(Static("[b]What to do:[/b]", classes="finding-label"))
                parts.append(Prose(f.fix, extra=hints, classes="finding-fix"))
            findings.mount(Vertical(*parts, classes=f"finding finding-{f.severity}", id=f"finding-{f.id}"))
        if not d.findings:
            findings.mount(Static("[dim]Nothing to report.[/]"))
        sources = self.query_one("#source-table", DataTable)
        sources.clear()
        for s in d.external.sources:
            sources.add_row(f"{s.method}/v{s.family}", s.endpoint, s.value or f"error: {s.error}", ms_text(s.ms))
        up = d.upnp
        from wizard.render import router_identity_line, upnp_absent_words

        facts = [line for line in (router_identity_line(up), upnp_absent_words(up)) if line] + [
            f"UPnP IGD: {'usable' if up.available else ('found, not usable' if up.found else 'not found')}"
            + (f" ({up.error})" if up.error else ""),
            f"NAT-PMP: {'answered' if up.natpmp_available else 'no answer'}"
            + (f", WAN {up.natpmp_wan_ipv4}" if up.natpmp_wan_ipv4 else ""),
            f"PCP: {'answered' if up.pcp_available else 'no answer'}"
            + (f"; carrier: {up.carrier_pcp_detail}" if up.carrier_pcp_detail else ""),
            f"Router port mappings: {len(up.mappings)}",
        ]
        facts += [f"  {m.external_port}/{m.protocol} → {m.internal}  {m.description}" for m in up.mappings]
        if d.nat.traceroute_hops:
            facts.append("Path: " + " → ".join(d.nat.traceroute_hops))
        self.query_one("#router-facts", Static).update(esc("\n".join(facts)))
        self.set_status(f"[$success]Diagnosis done in {ms_text(d.duration_ms)}.[/]")
        self.refresh_nav()
        self.query_one("#body").scroll_home(animate=False)

    def show_failure(self, what: str, error: str) -> None:
        self.failed = True
        self.query_one("#probes").mount(
            Static(
                f"[$error]✗ The diagnosis stopped: {esc(error)}[/]\n  Press r to try again, or n to go on without it.",
                classes="probe",
            )
        )
        self.refresh_nav()

    def blocked_reason(self) -> str | None:
        if self.state.diagnosis is None and not self.failed:
            return "The diagnosis is still running."
        return None

    def action_toggle_details(self) -> None:
        details = self.query_one("#details")
        details.display = not details.display
        if details.display:
            self.call_after_refresh(details.scroll_visible)
