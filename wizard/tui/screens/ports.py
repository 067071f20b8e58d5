"""Step 4: which service, tested from outside; the verdict and the fix."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual import work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, RadioButton, RadioSet, Static

from checks.errors import DdnsWizardError, UsageError
from checks.model import PortResult
from checks.portcheck.spec import parse_port_spec
from checks.portcheck.verdict import HAIRPIN_NOTE
from checks.risky import risky_service

from ...engine import PortSpec
from ..messages import MappingDone, PortChecked, PortsReady, PortsReadyOverIpv6, StatusNote
from ..widgets import Bullets, code_markup, esc
from ..words import action_hints
from .base import WizardScreen

PRESETS: tuple[tuple[str, str, tuple[PortSpec, ...]], ...] = (
    ("web", "Web server", (PortSpec(80), PortSpec(443))),
    ("ssh", "SSH", (PortSpec(22),)),
    ("minecraft", "Minecraft", (PortSpec(25565),)),
    ("wireguard", "WireGuard VPN", (PortSpec(51820, "udp"),)),
    ("plex", "Plex", (PortSpec(32400),)),
    ("rdp", "Remote Desktop (RDP)", (PortSpec(3389),)),
    ("custom", "Custom", ()),
)


VERDICT_TEXT = {
    "open": ("[$success]✓ open[/]", "reachable from the internet"),
    "not-forwarded": ("[$error]✗ not forwarded[/]", "your router does not pass it to this computer"),
    "isp-blocked": ("[$error]✗ blocked by your ISP[/]", "filtered before it reaches your router"),
    "blocked-or-not-forwarded": (
        "[$error]✗ blocked or not forwarded[/]",
        "nothing got in, and the test cannot tell a missing forward from a block",
    ),
    "upstream-nat": ("[$error]✗ upstream NAT[/]", "CGNAT or double NAT stops it before your router"),
    "unknown": ("[$warning]? unknown[/]", "no outside prober answered"),
}


def parse_ports(text: str) -> tuple[PortSpec, ...]:
    """``"8080, 9000/udp"`` → PortSpecs, each read by the engine's one parser
    (``parse_port_spec``).  Raises ``ValueError`` with a readable reason."""
    specs: list[PortSpec] = []
    for item in text.replace(",", " ").split():
        try:
            specs.append(parse_port_spec(item))
        except UsageError as exc:
            raise ValueError(str(exc)) from None
    if not specs:
        raise ValueError("type one or more ports, e.g. 8080 or 9000/udp")
    return tuple(specs)


VERDICT6_TEXT = {
    "open": ("[$success]✓ open over IPv6[/]", "reachable from the internet at this computer's IPv6 address"),
    "firewalled": ("[$error]✗ firewalled[/]", "a firewall stops it, usually the router's IPv6 firewall"),
    "no-ipv6": ("[$error]✗ no IPv6[/]", "this computer has no stable IPv6 address"),
    "unknown": ("[$warning]? unknown over IPv6[/]", "the test could not decide"),
}


def result6_parts(r: Any) -> tuple[str, list[str], list[str]]:
    """One IPv6 verdict (checks.portcheck.ipv6.Port6Result): headline, evidence, fix (markup)."""
    word, meaning = VERDICT6_TEXT.get(r.verdict, (r.verdict, ""))
    head = f"[b]{r.port}/{r.protocol} IPv6[/b]  {word}: {esc(meaning)}"
    tail = [f"[b]Fix:[/b] {code_markup(r.fix)}"] if r.fix and r.verdict != "open" else []
    return head, [code_markup(e) for e in r.evidence], tail


def result_parts(r: PortResult) -> tuple[str, list[str], list[str]]:
    """One IPv4 verdict: headline, evidence bullets, and what to do (markup)."""
    word, meaning = VERDICT_TEXT.get(r.verdict, (r.verdict, ""))
    if r.verdict == "open" and r.mapping == "temporary":
        word, meaning = (
            "[$success]✓ open for the test[/]",
            "reached through a temporary mapping, which was removed again",
        )
    head = f"[b]{r.port}/{r.protocol}[/b]  {word}: {esc(meaning)}"
    tail: list[str] = []
    if r.fix and r.verdict != "open":
        tail.append(f"[b]Fix:[/b] {code_markup(r.fix)}")
    elif r.fix and r.mapping == "temporary":
        tail.append(
            "[b]To keep it open:[/b] press [b]k[/b] (keep this forward), or forward it in the router's web page."
        )
    elif r.fix:
        tail.append(f"[dim]{code_markup(r.fix)}[/]")
    # The engine's next steps (codes), worded as this wizard's keys; keeping a forward is "k"/"m" here.
    hints = action_hints(s for s in r.next_steps if s in ("map-and-retest", "probe-server"))
    tail += [f"[b]Next:[/b] {esc(h[0].upper() + h[1:])}." for h in hints]
    if r.mapping == "kept":
        tail.append(
            f"[dim](the forward is kept: remove it later with [b]ddns-wizard upnp remove {r.port}/{r.protocol}[/b])[/]"
        )
    return head, [code_markup(e) for e in r.evidence], tail


def result_text(r: PortResult) -> str:
    """The verdict as plain markup lines (for tests and logs); the screen shows ``PortVerdict``."""
    head, evidence, tail = result_parts(r)
    return "\n".join([head, *(f"   • {e}" for e in evidence), *(f"   {t}" for t in tail)])


class PortVerdict(Vertical):
    """A port's verdict: the headline, then evidence and fix with hanging indents (issue 19)."""

    DEFAULT_CSS = """
    PortVerdict { height: auto; }
    PortVerdict > Bullets, PortVerdict > .verdict-tail { margin-left: 3; }
    """

    def __init__(self, parts: tuple[str, list[str], list[str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.parts = parts

    def compose(self) -> Iterable[Widget]:
        head, evidence, tail = self.parts
        yield Static(head)
        if evidence:
            yield Bullets(evidence)
        for line in tail:
            yield Static(line, classes="verdict-tail")

    async def show(self, parts: tuple[str, list[str], list[str]]) -> None:
        self.parts = parts
        await self.recompose()


class PortsScreen(WizardScreen):
    STEP = "ports"
    AUTO_FOCUS = "#presets"
    HELP = """\
Choose the service you want to reach from outside, then **t** tests it *from outside*:
an outside prober tries to connect to your public address while the wizard listens here.

- **open**: it works.
- **not forwarded**: add a port forward on your router to this computer (give the computer
  a fixed LAN address first), or let UPnP do it (**m**).
- **blocked by your ISP**: the forward is there but the ISP filters the port (80, 25 and 445
  often); use another port, a tunnel, or a business line.
- **blocked or not forwarded**: nothing got in, and without a router to ask the test cannot
  tell a missing forward from a block: check the forward, then try another external port.
- **open for the test**: it worked through a temporary mapping, removed again: **k** keeps it
  as a lasting forward (then reserve this computer's LAN address in the router).
- **upstream NAT**: CGNAT or double NAT; see the previous step.

**Also test over IPv6** (offered when this computer has a stable IPv6 address, ticked under
CGNAT or double NAT) tests the same ports at that address: **firewalled** means the router's
IPv6 firewall (or this computer's) drops them; allow that one address and port there.

Never expose SSH, RDP, SMB or camera admin pages directly: put them behind a VPN
(WireGuard) and expose only the VPN's port. Testing is optional: **n** skips it.
"""

    BINDINGS = [
        Binding("t", "test", "Test"),
        Binding("m", "map", "UPnP"),
        Binding("k", "keep", "Keep forward"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.results: dict[str, PortResult] = {}  # "80/tcp" -> verdict, as they arrive

    @property
    def _upnp_available(self) -> bool:
        """The router can map ports for us (UPnP IGD, or NAT-PMP, which the port check also uses)."""
        d = self.state.diagnosis
        return d is not None and (d.upnp.available or d.upnp.natpmp_available)

    @property
    def _has_stable_ipv6(self) -> bool:
        d = self.state.diagnosis
        return d is not None and any(not a.temporary and not a.deprecated for a in d.local.ipv6_global)

    def compose_body(self) -> Iterable[Widget]:
        yield Static("[b]Which service should be reachable from outside?[/b]", classes="section")
        with Horizontal(id="port-choice"):
            with RadioSet(id="presets"):
                for i, (key, label, specs) in enumerate(PRESETS):
                    ports = ", ".join(str(s) for s in specs)
                    text = f"{label} ({ports})" if ports else f"{label}…"
                    yield RadioButton(text, value=(i == 0), id=f"preset-{key}")
            with Vertical(id="port-side"):
                yield Input(placeholder="e.g. 8080 9000/udp", id="custom-ports", compact=True)
                yield Static("", id="custom-error", classes="field-error")
                yield Checkbox("Forward with UPnP (test only)", value=False, id="use-upnp", compact=True)
                yield Checkbox("Also test over IPv6", value=False, id="use-ipv6", compact=True)
                yield Button("Test from outside (t)", id="test", compact=True, variant="primary")
        yield Static("", id="risk-warning")
        yield Static("", id="mapping")  # the UPnP offer: above the (long) verdicts
        yield Vertical(id="port-results")
        yield Static(f"[dim]{esc(HAIRPIN_NOTE)}[/]", id="hairpin-note")  # once per run, not per port

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#use-upnp").display = self._upnp_available
        # Offered when this computer has a stable IPv6 address; ticked when IPv4 cannot work
        # (CGNAT, double NAT): then IPv6 is the way in worth knowing about.
        ipv6 = self.query_one("#use-ipv6", Checkbox)
        ipv6.display = self._has_stable_ipv6
        d = self.state.diagnosis
        ipv6.value = self._has_stable_ipv6 and d is not None and d.nat.verdict in ("cgnat", "double-nat")
        self.query_one("#custom-ports").display = False
        self.query_one("#mapping").display = False
        self.query_one("#hairpin-note").display = False
        self._update_warning()

    # -- choice ----------------------------------------------------------------
    def selected_key(self) -> str:
        pressed = self.query_one("#presets", RadioSet).pressed_button
        return (pressed.id or "preset-web").removeprefix("preset-") if pressed else "web"

    def selected_ports(self) -> tuple[PortSpec, ...]:
        key = self.selected_key()
        if key == "custom":
            return parse_ports(self.query_one("#custom-ports", Input).value)
        return next(specs for k, _, specs in PRESETS if k == key)

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        custom = self.selected_key() == "custom"
        field = self.query_one("#custom-ports", Input)
        field.display = custom
        if custom:
            field.focus()
        self._update_warning()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "custom-ports":
            self._update_warning()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "custom-ports":
            self.action_test()

    def _update_warning(self) -> None:
        error = self.query_one("#custom-error", Static)
        try:
            specs = self.selected_ports()
            error.update("")
        except ValueError as exc:
            specs = ()
            if self.query_one("#custom-ports", Input).value:
                error.update(f"[$error]{esc(exc)}[/]")
        # The engine's table of services that should not face the internet (checks.risky).
        risky = sorted({name for s in specs if (name := risky_service(s.port, s.protocol))})
        warning = self.query_one("#risk-warning", Static)
        if risky:
            names = " and ".join(risky)
            warning.update(
                f"[$warning][b]! Think twice before exposing {names} directly.[/b][/] It will be "
                "scanned and attacked within hours. Prefer a VPN (WireGuard preset) and reach "
                f"{names} through it; if you must expose it, use keys/MFA, no password logins, "
                "and keep it updated."
            )
            warning.display = True
        else:
            warning.display = False

    # -- test ------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "test":
            event.stop()
            self.action_test()
        elif event.button.id == "map-now":
            event.stop()
            self.action_map()
        else:
            super().on_button_pressed(event)

    def action_test(self) -> None:
        if self.is_busy:
            return
        try:
            specs = self.selected_ports()
        except ValueError as exc:
            self.set_status(f"[$error]{esc(exc)}[/]")
            return
        use_upnp = self._upnp_available and self.query_one("#use-upnp", Checkbox).value
        use_ipv6 = self._has_stable_ipv6 and self.query_one("#use-ipv6", Checkbox).value
        self.results = {}
        self.query_one("#port-results").remove_children()
        self._offer("")
        self.started(self.run_check(specs, use_upnp, use_ipv6), f"Testing {', '.join(map(str, specs))} from outside")

    @work(exclusive=True, exit_on_error=False)
    async def run_check(self, specs: tuple[PortSpec, ...], use_upnp: bool, use_ipv6: bool = False) -> None:
        def status(text: str) -> None:
            self.post_message(StatusNote(text))

        def checked(result: PortResult) -> None:
            self.post_message(PortChecked(result))

        results = await self.engine.check_ports(
            specs,
            upnp=use_upnp,
            on_progress=checked,
            on_status=status,
        )
        self.post_message(PortsReady(tuple(results)))
        if use_ipv6:
            self.post_message(PortsReadyOverIpv6(tuple(await self.engine.check_ports_ipv6(specs, on_status=status))))

    async def on_ports_ready_over_ipv6(self, message: PortsReadyOverIpv6) -> None:
        box = self.query_one("#port-results")
        for r in message.results:
            css = {"open": "verdict-open", "unknown": "verdict-unknown"}.get(r.verdict, "verdict-not-forwarded")
            await box.mount(
                PortVerdict(result6_parts(r), id=f"port6-{r.port}-{r.protocol}", classes=f"port-result {css}")
            )
        self.state.ports6 = tuple(message.results)

    async def _show_result(self, r: PortResult) -> None:
        """Draw (or redraw) one port's verdict and wait until it is in the layout."""
        key = f"{r.port}/{r.protocol}"
        self.results[key] = r
        box = self.query_one("#port-results")
        widget_id = f"port-{r.port}-{r.protocol}"
        existing = box.query(f"#{widget_id}")
        parts = result_parts(r)
        if existing:
            view = existing.first(PortVerdict)
            view.set_classes(f"port-result verdict-{r.verdict}")
            if view.parts != parts:
                await view.show(parts)
        else:
            await box.mount(PortVerdict(parts, id=widget_id, classes=f"port-result verdict-{r.verdict}"))

    async def on_port_checked(self, message: PortChecked) -> None:
        await self._show_result(message.result)

    async def on_ports_ready(self, message: PortsReady) -> None:
        # Awaited one by one so that the scroll below measures the drawn verdicts: with the
        # redraws left to workers, whether the outcome was scrolled into view depended on
        # which finished first (a flaky snapshot in CI, stop 22).
        for r in message.results:
            await self._show_result(r)
        self.state.ports = tuple(self.results.values())
        self.query_one("#hairpin-note").display = any(r.verdict == "open" for r in self.results.values())
        opened = sum(1 for r in self.results.values() if r.verdict == "open")
        self.set_status(f"Tested: {opened} of {len(self.results)} reachable from outside.")
        if self.temporary_opens() and self._upnp_available:
            self._offer(
                "[b]Open for the test only:[/b] the test's mapping was removed again. Press [b]k[/b] to keep "
                "this forward ("
                + ", ".join(f"{r.port}/{r.protocol}" for r in self.temporary_opens())
                + f" → this computer, lasting). {self._reserve_reminder()}"
            )
        elif self.unforwarded() and self._upnp_available:
            self._offer(
                "[b]Your router supports UPnP.[/b] Press [b]m[/b] to forward "
                + ", ".join(f"{r.port}/{r.protocol}" for r in self.unforwarded())
                + " to this computer now (you can remove it later with [b]ddns-wizard upnp remove[/b])."
            )
        # Bring the outcome into view: the router offer (map now / keep) if any, else the first verdict.
        offer = self.query_one("#mapping", Static)
        target = offer if offer.display else self.query_one("#port-results")
        self.call_after_refresh(lambda: target.scroll_visible(top=True, animate=False))
        self.refresh_bindings()

    def _reserve_reminder(self) -> str:
        d = self.state.diagnosis
        lan = d.local.ipv4 if d is not None and d.local.ipv4 else "this computer's LAN address"
        return (
            f"Reserve {esc(lan)} for this computer in the router's DHCP settings, so the forward keeps pointing here."
        )

    def temporary_opens(self) -> list[PortResult]:
        return [r for r in self.results.values() if r.verdict == "open" and r.mapping == "temporary"]

    def _offer(self, markup: str) -> None:
        """Show (or, with "", hide) the line about the router mapping."""
        offer = self.query_one("#mapping", Static)
        offer.update(markup)
        offer.display = bool(markup)

    def unforwarded(self) -> list[PortResult]:
        return [r for r in self.results.values() if r.verdict in ("not-forwarded", "blocked-or-not-forwarded")]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "map":
            return bool(self._upnp_available and self.unforwarded())  # False hides it
        if action == "keep":
            return bool(self._upnp_available and self.temporary_opens())
        return True

    def action_keep(self) -> None:
        if self.is_busy or not (self._upnp_available and self.temporary_opens()):
            return
        specs = tuple(PortSpec(r.port, r.protocol) for r in self.temporary_opens())
        self.started(self.run_mapping(specs), "Asking the router to keep the forward")

    def action_map(self) -> None:
        if self.is_busy or not (self._upnp_available and self.unforwarded()):
            return
        specs = tuple(PortSpec(r.port, r.protocol) for r in self.unforwarded())
        self.started(self.run_mapping(specs), "Asking the router to forward")

    @work(exclusive=True, exit_on_error=False)
    async def run_mapping(self, specs: tuple[PortSpec, ...]) -> None:
        texts = []
        ok = True
        for spec in specs:
            try:
                texts.append(await self.engine.add_port_mapping(spec))
            except DdnsWizardError as exc:
                ok = False
                texts.append(f"{spec}: the router refused: {exc}")
        self.post_message(MappingDone(ok, "\n".join(texts)))

    def on_mapping_done(self, message: MappingDone) -> None:
        colour = "$success" if message.ok else "$error"
        remind = f"\n{self._reserve_reminder()}" if message.ok and "DHCP reservation" not in message.text else ""
        self._offer(f"[{colour}]{esc(message.text)}[/]{remind}\nPress [b]t[/b] to test again.")

    def show_failure(self, what: str, error: str) -> None:
        self._offer(f"[$error]{esc(what)} failed: {esc(error)}[/]")
