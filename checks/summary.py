"""The one-paragraph answer to "can this network host a server reachable by a DDNS name?".

Shared by every view (Rich CLI, Textual, Markdown/HTML reports) so they never
disagree about the headline (an offline run says "No network" everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from checks.model import Diagnosis

HostingAnswer = Literal["yes", "likely", "no", "unknown"]


@dataclass(frozen=True)
class HostingVerdict:
    answer: HostingAnswer
    headline: str  # one short sentence
    reason: str  # why, in plain words


def ipv6_sentence(d: Diagnosis) -> str:
    """What can be said about IPv6 as the way in: "works" only once an inbound IPv6 test said
    open (issue 11); a global address alone only says it may."""
    opened = [p for p in d.ports_ipv6 if p.verdict == "open"]
    if opened:
        ports = ", ".join(f"{p.port}/{p.protocol}" for p in opened)
        return f" IPv6 works here: {ports} tested open from outside over IPv6; publish an AAAA record."
    stable = [a for a in d.local.ipv6_global if not a.temporary and not a.deprecated]
    tested = [p for p in d.ports_ipv6 if p.verdict != "unknown"]
    if stable and tested:
        return (
            " IPv6 could be the way in, but the inbound IPv6 test did not get through yet "
            "(the router's IPv6 firewall): allow the port there and test again."
        )
    if stable:
        return (
            " This computer has a public IPv6 address, so IPv6 may work: test a port from outside "
            "over IPv6 before relying on an AAAA record."
        )
    return ""


def hosting_verdict(d: Diagnosis) -> HostingVerdict:
    ext = d.external.ipv4 or d.external.ipv6
    if d.connectivity == "offline":
        # Said plainly, and the same in every view (issue 19): no NAT verdict, no router talk.
        if d.local.gateway_ipv4 is None:
            why = "This computer has no route to the internet (no default gateway)"
        else:
            why = "Nothing on the internet answered"
        return HostingVerdict(
            "unknown",
            "No network: this computer cannot reach the internet.",
            f"{why}, so nothing about hosting can be tested yet. Check the connection (cable, Wi-Fi, "
            "the router's internet connection) first, then run the diagnosis again.",
        )
    verdict = d.nat.verdict
    if verdict == "none":
        return HostingVerdict(
            "yes",
            f"Yes: this machine holds the public address {ext}.",
            "Nothing translates addresses in front of it; a DDNS name pointing at this address reaches it "
            "directly, as long as its own firewall allows the service.",
        )
    if verdict == "nat":
        how = "UPnP can open ports automatically" if d.upnp.available else "you forward ports by hand on the router"
        return HostingVerdict(
            "likely",
            f"Yes, with a port forward: your router holds the public address {ext}.",
            f"One NAT (your router) sits in front of this machine; a DDNS name for {ext} works once the "
            f"router forwards the service's port here ({how}).",
        )
    if verdict == "cgnat" and d.nat.ds_lite:
        return HostingVerdict(
            "no",
            "Not over IPv4: your line is DS-Lite, so IPv4 goes through your ISP's shared NAT; IPv6 is native.",
            "With DS-Lite your ISP carries IPv4 inside IPv6 to its own NAT (the AFTR), shared with many "
            "customers: nobody can connect to you over IPv4, and DDNS updates for IPv4 will look successful "
            "while nothing answers. Your IPv6 addresses are your own, with no NAT in the way." + ipv6_sentence(d),
        )
    if verdict == "cgnat":
        alt = ipv6_sentence(d)
        return HostingVerdict(
            "no",
            "No, not over IPv4: your ISP shares one public address among many customers (carrier-grade NAT).",
            "Connections from the internet stop at the ISP's NAT, which you cannot configure; DDNS updates "
            "will look successful but nobody can connect." + alt,
        )
    if verdict == "double-nat":
        return HostingVerdict(
            "no",
            "Not yet: two routers translate addresses in front of this machine (double NAT).",
            "A port forward on your own router is not enough; the box in front of it must forward too, "
            "or be put in bridge mode." + ipv6_sentence(d),
        )
    return HostingVerdict(
        "unknown",
        "Unclear: the evidence does not show how this network reaches the internet.",
        "Some probes did not answer; see the evidence and findings below, then test a port from outside.",
    )
