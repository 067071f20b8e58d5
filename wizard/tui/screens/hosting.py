"""Step 3 (only under CGNAT or double NAT): can you host here, and what instead."""

from __future__ import annotations

from collections.abc import Iterable

from textual.widget import Widget
from textual.widgets import Static

from ..widgets import esc
from .base import WizardScreen

CGNAT_MEANING = """\
Your ISP puts many customers behind one public IPv4 address (carrier-grade NAT).
Connections from the internet stop at the ISP's NAT: no forward on your own router
can reach through it, and a DDNS name would point at an address shared with strangers.
A DDNS update may even "succeed" while nothing is reachable."""

DS_LITE_MEANING = """\
Your ISP carries IPv4 inside IPv6 to its own NAT (DS-Lite's AFTR), shared with many
customers: nobody can connect to you over IPv4, and no forward on your router changes
that. IPv6 is native: your devices hold public IPv6 addresses, reachable once the
router's IPv6 firewall lets a port in. Test it on the Ports step before relying on it."""

DOUBLE_NAT_MEANING = """\
Two routers translate your traffic: the ISP's box and yours. A port forward on your
router alone does nothing, because the ISP's box in front of it drops the connection."""

CGNAT_ALTERNATIVES = (
    (
        "Use IPv6",
        "if your line has IPv6, publish an AAAA record and allow the port in the "
        "router's IPv6 firewall; no NAT is involved. Continue anyway to set that up.",
    ),
    (
        "Ask your ISP for a public IPv4",
        'often free on request, sometimes a small fee; ask for "a public IPv4 address" or "opt out of CGNAT".',
    ),
    (
        "Use a tunnel",
        "Cloudflare Tunnel, ngrok or Tailscale Funnel carry connections out to you; no forward and no DDNS needed.",
    ),
    (
        "Use a VPN with a static exit address",
        "a VPS or a VPN provider with port forwarding gives you a reachable public address.",
    ),
)

DOUBLE_NAT_ALTERNATIVES = (
    ("Bridge mode", "put the ISP's box in bridge (modem-only) mode so your router gets the public address."),
    (
        "Forward on both boxes",
        "forward the port on the ISP's box to your router (or set your "
        "router as its DMZ host), then forward on your router to the server.",
    ),
    ("Use IPv6", "publish an AAAA record if the line has IPv6."),
    ("Use a tunnel", "Cloudflare Tunnel, ngrok or Tailscale Funnel need no forward at all."),
)


class HostingScreen(WizardScreen):
    STEP = "hosting"
    NEXT_LABEL = "Continue anyway ▶"
    HELP = """\
Hosting at home needs inbound connections to reach your server. Under **carrier-grade NAT**
your ISP's NAT drops them before they reach your router; under **double NAT** the ISP's
box does. The alternatives listed work without that. You may **continue anyway**: for
example to publish an IPv6 (AAAA) record, or to set the name up now and fix the NAT later.
"""

    def compose_body(self) -> Iterable[Widget]:
        d = self.state.diagnosis
        verdict = d.nat.verdict if d else "unknown"
        if verdict == "cgnat" and d is not None and d.nat.ds_lite:
            title = "Your line is DS-Lite: IPv4 is shared (carrier-grade NAT), IPv6 is your own"
            meaning, alternatives = DS_LITE_MEANING, CGNAT_ALTERNATIVES
        elif verdict == "cgnat":
            title = "You are behind carrier-grade NAT (CGNAT)"
            meaning, alternatives = CGNAT_MEANING, CGNAT_ALTERNATIVES
        else:
            title = "You are behind double NAT"
            meaning, alternatives = DOUBLE_NAT_MEANING, DOUBLE_NAT_ALTERNATIVES
        yield Static(f"[b]{title}[/b]", id="hosting-title", classes=f"verdict-{verdict}")
        yield Static(meaning, id="meaning")
        yield Static("[b]What you can do instead[/b]", classes="section")
        lines = [f"[b]{i}. {esc(name)}[/b]: {esc(text)}" for i, (name, text) in enumerate(alternatives, 1)]
        yield Static("\n".join(lines), id="alternatives")
        yield Static(
            "[dim]Continue anyway (n) to test ports and set up the name, e.g. for IPv6.[/]",
            id="continue-hint",
        )
        if d and d.nat.evidence:
            yield Static("[b]Why the wizard thinks so[/b]", classes="section")
            yield Static("\n".join(f" • {esc(e)}" for e in d.nat.evidence), id="hosting-evidence")
