"""The one-paragraph answer to "can this network host a server reachable by a DDNS name?".

Shared by every view (Rich CLI, Textual, Markdown/HTML reports) so they never
disagree about the headline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .model import Diagnosis

HostingAnswer = Literal["yes", "likely", "no", "unknown"]


@dataclass(frozen=True)
class HostingVerdict:
    answer: HostingAnswer
    headline: str          # one short sentence
    reason: str            # why, in plain words


def hosting_verdict(d: Diagnosis) -> HostingVerdict:
    ext = d.external.ipv4 or d.external.ipv6
    has_v6 = bool(d.local.ipv6_global)
    if d.connectivity == "offline":
        return HostingVerdict(
            "unknown",
            "This machine is offline.",
            "Nothing outside the local network answered, so nothing about hosting can be tested yet. "
            "Check the router's internet connection first.",
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
    if verdict == "cgnat":
        alt = " IPv6 works here: publish an AAAA record instead." if has_v6 else ""
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
            "or be put in bridge mode.",
        )
    return HostingVerdict(
        "unknown",
        "Unclear: the evidence does not show how this network reaches the internet.",
        "Some probes did not answer; see the evidence and findings below, then test a port from outside.",
    )
