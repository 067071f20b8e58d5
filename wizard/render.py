"""Rich views of the engine's result objects (the command line's output).

Plain functions taking result objects and returning Rich renderables, so every
command (diagnose, ports, verify, ...) and the report preview can reuse them.
Nothing here touches the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.status import Status
from rich.table import Table
from rich.text import Text

from checks.addresses import classify, parse_ip
from checks.model import Diagnosis, ExternalSource, Finding, ProbeRecord
from checks.summary import hosting_verdict

from .words import action_commands

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan", "ok": "green"}
SEVERITY_MARK = {"error": "✖", "warning": "⚠", "info": "ℹ", "ok": "✔"}
STATUS_MARK = {"ok": ("✔", "green"), "error": ("✖", "red"), "timeout": ("⧗", "yellow"), "skipped": ("–", "dim")}
ANSWER_STYLE = {"yes": "green", "likely": "green", "no": "red", "unknown": "yellow"}
VERDICT_TEXT = {
    "none": "no NAT: this host holds the public address",
    "nat": "one NAT (your router)",
    "double-nat": "double NAT (two routers translate)",
    "cgnat": "carrier-grade NAT (the ISP translates)",
    "unknown": "unknown",
}


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.0f} ms"


def _addr_kind(address: str | None) -> str:
    if not address:
        return ""
    ip = parse_ip(address)
    return classify(ip).value if ip is not None else "not an address"


# --- progress ------------------------------------------------------------------------------


def probe_line(record: ProbeRecord) -> Text:
    """One finished probe: mark, name, target, time, what it found or why it failed."""
    mark, style = STATUS_MARK.get(record.status, ("?", ""))
    line = Text()
    line.append(f"{mark} ", style=style)
    line.append(f"{record.name:<13}", style="bold")
    target = record.target if len(record.target) <= 26 else record.target[:25] + "…"
    line.append(f" {target:<26} ", style="dim")
    line.append(f"{_ms(record.ms):>7}  ")
    if record.status == "ok":
        line.append(record.summary or "ok")
    else:
        line.append(record.error or record.status, style=style)
    return line


class DiagnoseProgress:
    """Live progress on a (stderr) console: a spinner, and a line per finished probe.

    ``with DiagnoseProgress(console) as p: await run_diagnosis(..., on_progress=p.update)``.
    """

    def __init__(self, console: Console, title: str = "Diagnosing your connection") -> None:
        self.console = console
        self.title = title
        self.finished = 0
        self._status: Status | None = None

    def __enter__(self) -> DiagnoseProgress:
        status = self.console.status(f"{self.title}…", spinner="dots")
        status.__enter__()
        self._status = status
        return self

    def update(self, record: ProbeRecord) -> None:
        self.finished += 1
        if self._status is not None:  # before printing: the print redraws the status line
            self._status.update(f"{self.title}… {self.finished} probe{'s' if self.finished != 1 else ''} done")
        self.console.print(probe_line(record), overflow="ellipsis", no_wrap=True)

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(None, None, None)
            self._status = None


# --- the diagnosis ---------------------------------------------------------------------------


def verdict_panel(d: Diagnosis) -> Panel:
    """Can this network host a server reachable by a DDNS name, and if not, why."""
    v = hosting_verdict(d)
    style = ANSWER_STYLE.get(v.answer, "")
    body = Group(Text(v.headline, style=f"bold {style}"), Text(v.reason))
    return Panel(
        body,
        title="Can this network host a server under a DDNS name?",
        title_align="left",
        border_style=style or "white",
        padding=(0, 1),
    )


def addresses_table(d: Diagnosis) -> Table:
    """Internal vs external addresses, and every source's answer with its time."""
    t = Table(title="Addresses", title_justify="left", show_edge=False, pad_edge=False, expand=False)
    t.add_column("what", style="bold", no_wrap=True)
    t.add_column("address", overflow="fold")
    t.add_column("kind / source", style="dim", overflow="fold")
    t.add_column("time", justify="right", no_wrap=True)
    loc = d.local
    t.add_row(
        "this host (LAN)",
        loc.ipv4 or "—",
        " ".join(x for x in (_addr_kind(loc.ipv4), f"on {loc.interface}" if loc.interface else "") if x),
        "",
    )
    t.add_row("default gateway", loc.gateway_ipv4 or "—", "", "")
    for a in loc.ipv6_global:
        t.add_row(
            "this host (IPv6)", a.address, f"global, {'temporary' if a.temporary else 'stable'}, on {a.interface}", ""
        )
    if d.nat.router_wan_ipv4:
        t.add_row("router WAN", d.nat.router_wan_ipv4, _addr_kind(d.nat.router_wan_ipv4), "")
    t.add_row(
        "public IPv4 (agreed)",
        d.external.ipv4 or "—",
        ("all sources agree" if d.external.agreement else "sources disagree") if d.external.ipv4 else "",
        "",
    )
    if d.external.ipv6:
        t.add_row("public IPv6 (seen)", d.external.ipv6, "", "")
    tried = [s for s in d.external.sources if not (s.error and s.error.startswith("not tried"))]
    if tried and not any(s.value for s in tried):
        # Nothing answered: one line says it better than a row of identical errors.
        errors = sorted({s.error or "no answer" for s in tried})
        t.add_row(
            Text("  outside services", style="dim"),
            Text("no answer", style="red"),
            f"{len(tried)} tried: " + "; ".join(errors),
            "",
        )
        return t
    for s in tried:
        t.add_row(Text(f"  {s.method}", style="dim"), _source_value(s), s.endpoint, _ms(s.ms))
    return t


def _source_value(s: ExternalSource) -> Text:
    if s.value:
        return Text(s.value + (f" :{s.mapped_port}" if s.mapped_port else ""))
    return Text(s.error or "no answer", style="red")


def nat_panel(d: Diagnosis) -> Panel:
    n = d.nat
    style = {"none": "green", "nat": "green", "double-nat": "yellow", "cgnat": "red"}.get(n.verdict, "yellow")
    word = VERDICT_TEXT.get(n.verdict, n.verdict)
    if n.ds_lite:
        word = "carrier-grade NAT for IPv4 (DS-Lite: the ISP's AFTR translates); IPv6 native"
    title = f"NAT: {n.verdict}"
    if d.connectivity == "offline":
        word, title = "not known: no network to look at", "NAT: no network"
    lines: list[RenderableType] = [Text(word, style=f"bold {style}")]
    lines.append(bulleted("\n".join(f"- {e}" for e in n.evidence)))
    identity = router_identity_line(d.upnp)
    if identity:
        lines.append(Text(identity))
    if d.upnp.found or d.upnp.natpmp_available or d.upnp.pcp_available:
        router = []
        if d.upnp.found:
            router.append(
                f"UPnP IGD{'v' + str(d.upnp.igd_version) if d.upnp.igd_version else ''}: "
                f"{'usable' if d.upnp.available else 'found, not usable'}"
                + (
                    f", {len(d.upnp.mappings)} port mapping{'s' if len(d.upnp.mappings) != 1 else ''}"
                    if d.upnp.mappings
                    else ""
                )
            )
        if d.upnp.pcp_available:
            router.append("PCP: answered")
        if d.upnp.natpmp_available:
            router.append(f"NAT-PMP: WAN {d.upnp.natpmp_wan_ipv4}")
        lines.append(Text("Router: " + "; ".join(router), style="dim"))
    why = upnp_absent_words(d.upnp)
    if why:
        lines.append(Text(why, style="dim"))
    if d.upnp.carrier_pcp_detail:
        lines.append(Text(f"Carrier PCP: {d.upnp.carrier_pcp_detail}", style="dim"))
    return Panel(Group(*lines), title=title, title_align="left", border_style=style, padding=(0, 1))


def router_identity_line(up: Any) -> str | None:
    """ "Your router: Maker Model — admin page: URL" (issue 16), or None when nothing is known."""
    r = up.router
    maker, model = r.manufacturer or "", r.model or ""
    if maker and model.lower().startswith(maker.lower()):
        maker = ""
    name = " ".join(p for p in (maker, model) if p) or r.friendly_name
    if not name and not r.presentation_url:
        return None
    text = f"Your router: {name or 'unknown model'}"
    if r.source == "mac-vendor":
        text += " (the maker, from its network card's address)"
    if r.presentation_url:
        text += f" — admin page: {r.presentation_url} (port forwarding and DDNS are set up there)"
    return text


UPNP_ABSENT_WORDS = {
    "no-ssdp-answer": "UPnP not found: nothing answered UPnP discovery (UPnP is off on the router, or it has none).",
    "no-igd": "UPnP not found: devices answered UPnP discovery, but none is an Internet Gateway Device",
    "wan-not-connected": "UPnP: the router's IGD says its WAN connection is not up.",
    "description-failed": "UPnP: a gateway answered, but its description could not be read.",
}


def upnp_absent_words(up: Any) -> str | None:
    """Why no usable UPnP IGD, in words (``upnp.not_found``)."""
    if up.found and up.ssdp_seen:
        return (
            "UPnP: " + "; ".join(up.ssdp_seen[:2]) + " — a firewall on other computers that lets in "
            'UPnP replies only from port 1900 drops these, so programs there may say "UPnP not found".'
        )
    words = UPNP_ABSENT_WORDS.get(up.not_found or "")
    if words and up.not_found == "no-igd" and up.ssdp_seen:
        words += " (" + "; ".join(up.ssdp_seen[:4]) + ")."
    elif words and up.not_found == "no-igd":
        words += "."
    return words


def hanging(mark: str | Text, text: str | Text, indent: int = 0) -> Table:
    """One line with a hanging indent: ``mark`` then ``text``, its wrapped lines under the text
    (also when the output is piped: Rich wraps to 80 columns there)."""
    grid = Table.grid(padding=0)
    if indent:
        grid.add_column(width=indent, no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column()
    head = mark.copy() if isinstance(mark, Text) else Text(mark)
    head.append(" ")
    cells: list[RenderableType] = [head, text if isinstance(text, Text) else Text(text)]
    grid.add_row(*([""] if indent else []), *cells)
    return grid


def bulleted(text: str) -> RenderableType:
    """Text whose "- " lines become bullets with a hanging indent (fixes are written that way)."""
    lines = text.splitlines()
    if not any(line.startswith("- ") for line in lines):
        return Text(text)
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for line in lines:
        if line.startswith("- "):
            grid.add_row("•", Text(line[2:]))
        else:
            grid.add_row("", Text(line))
    return grid


def finding_renderable(f: Finding) -> RenderableType:
    style = SEVERITY_STYLE.get(f.severity, "")
    head = Text()
    head.append(f"{SEVERITY_MARK.get(f.severity, '•')} ", style=style)
    head.append(f.title, style=f"bold {style}")
    head.append(f"  [{f.id}]", style="dim")
    parts: list[RenderableType] = [head, bulleted(f.detail)]
    commands = action_commands(f.actions)
    if f.fix or commands:
        parts.append(Text("What to do:", style="bold"))
        fix = f.fix + "".join(f"\n- Run `{c}`" for c in commands)
        parts.append(bulleted(fix.strip("\n")))
    return Panel(Group(*parts), border_style=style or "white", padding=(0, 1))


def findings_group(findings: Sequence[Finding]) -> RenderableType:
    if not findings:
        return Text("No findings.", style="dim")
    return Group(*(finding_renderable(f) for f in findings))


def probes_table(records: Iterable[ProbeRecord]) -> Table:
    t = Table(title="Probes", title_justify="left", show_edge=False, pad_edge=False)
    for col in ("", "probe", "target", "time", "result"):
        t.add_column(col, overflow="fold")
    for r in records:
        mark, style = STATUS_MARK.get(r.status, ("?", ""))
        t.add_row(
            Text(mark, style=style),
            r.name,
            r.target,
            _ms(r.ms),
            r.summary if r.status == "ok" else Text(r.error or r.status, style=style),
        )
    return t


def render_diagnosis(d: Diagnosis, console: Console, *, show_probes: bool = False) -> None:
    """The whole diagnosis: verdict, addresses, NAT evidence, findings with fixes."""
    console.print(verdict_panel(d))
    console.print(addresses_table(d))
    console.print()
    console.print(nat_panel(d))
    console.print(findings_group(d.findings))
    if show_probes:
        console.print(probes_table(d.probes))
    console.print(Text(f"Connectivity: {d.connectivity}. Took {d.duration_ms / 1000:.1f} s.", style="dim"))
