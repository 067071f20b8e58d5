"""What the wizard has learned so far, shared by every screen."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from checks.config import Config, HostConfig
from checks.model import Diagnosis, Port6Result, PortResult, UpdateResult, VerifyResult

from ..engine import Preflight, ProviderInfo

Mode = Literal["setup", "troubleshoot", "report"]

# (key, title) of every step, in order; the step bar counts them.
STEPS: tuple[tuple[str, str], ...] = (
    ("welcome", "Welcome"),
    ("network", "Your network"),
    ("hosting", "Can you host here?"),
    ("ports", "Ports"),
    ("provider", "Provider"),
    ("credentials", "Credentials"),
    ("update", "Hostname & update"),
    ("verify", "Verify"),
    ("done", "Done"),
)
STEP_TITLES = dict(STEPS)
STEP_KEYS = tuple(k for k, _ in STEPS)
# The steps each path can visit (the step bar counts these).
MODE_STEPS: dict[str, tuple[str, ...]] = {
    "setup": STEP_KEYS,
    "troubleshoot": ("welcome", "network", "hosting", "ports", "verify", "done"),
    "report": ("welcome", "network", "done"),
}


@dataclass
class WizardState:
    config: Config
    mode: Mode = "setup"
    diagnosis: Diagnosis | None = None
    ports: tuple[PortResult, ...] = ()
    ports6: tuple[Port6Result, ...] = ()  # when tested over IPv6 too
    provider: ProviderInfo | None = None
    host: HostConfig | None = None
    preflight: Preflight | None = None
    update: UpdateResult | None = None
    verify: VerifyResult | None = None
    verifies: dict[str, VerifyResult] = field(default_factory=dict)  # every name checked, by hostname
    reach: Any = None  # checks.reach.ReachResult: the Verify step's end-to-end proof
    saved_path: Path | None = None
    report_path: Path | None = None
    # What was typed into a provider's form (kept when the user steps back and returns).
    drafts: dict[str, dict[str, str]] = field(default_factory=dict)
    notify_urls: list[str] = field(default_factory=list)  # added on the Done step (secrets: apprise URLs)
    editing: str | None = None  # the configured hostname being edited (replaced on save)
    adding: bool = False  # "add another": start from empty fields, not a configured host

    @property
    def hosting_blocked(self) -> bool:
        """An upstream NAT (CGNAT or double NAT) stands between the internet and the router."""
        return self.diagnosis is not None and self.diagnosis.nat.verdict in ("cgnat", "double-nat")

    def ipv4_caveat(self, address: str | None = None) -> str | None:
        """Why a name pointing at this network's IPv4 address still reaches nobody, or None.

        Later steps repeat the diagnosis rather than undo it (issue 11): an update to a shared
        address is no plain success."""
        d = self.diagnosis
        if d is None:
            return None
        address = address or d.external.ipv4 or "that address"
        if d.nat.verdict == "cgnat":
            what = "DS-Lite: IPv4 goes through your ISP's shared NAT" if d.nat.ds_lite else "carrier-grade NAT"
            return (
                f"{address} is your ISP's shared address ({what}): nobody on the internet can connect to "
                "you through it over IPv4."
            )
        if d.nat.verdict == "double-nat":
            return (
                f"{address} belongs to the box in front of your router (double NAT): connections stop "
                "there until that box forwards the port too, or is put in bridge mode."
            )
        return None

    def ipv6_status(self) -> str | None:
        """IPv6 as the way in, as far as it was tested from outside: "works" only when it was."""
        if self.stable_ipv6() is None:
            return None
        opened = [p for p in self.ports6 if p.verdict == "open"]
        if opened:
            return (
                "IPv6 works: "
                + ", ".join(f"{p.port}/{p.protocol}" for p in opened)
                + " tested open from outside over IPv6."
            )
        shut = [p for p in self.ports6 if p.verdict in ("firewalled", "no-ipv6")]
        if shut:
            return (
                "IPv6 does not get through yet: "
                + ", ".join(f"{p.port}/{p.protocol} {p.verdict}" for p in shut)
                + " (allow the port in the router's IPv6 firewall, then test again)."
            )
        return (
            "IPv6 is not tested from outside yet: it may work; test it on the Ports step (Also test over "
            "IPv6) or with `ddns-wizard ports check PORT --ipv6`."
        )

    def public_ipv4(self) -> str | None:
        return self.diagnosis.external.ipv4 if self.diagnosis else None

    def stable_ipv6(self) -> str | None:
        """The IPv6 address worth publishing: the one the internet saw if it is stable, else a
        stable global address of this host (privacy addresses change daily: never those)."""
        if self.diagnosis is None:
            return None
        stable = [a.address for a in self.diagnosis.local.ipv6_global if not a.temporary and not a.deprecated]
        seen = self.diagnosis.external.ipv6
        if seen and (seen in stable or not self.diagnosis.local.ipv6_global):
            return seen
        return stable[0] if stable else None

    def expected_addresses(self, host: HostConfig | None) -> tuple[str | None, str | None]:
        """What ``host``'s records should hold, following its ipv4/ipv6 options (as the updater does)."""
        if host is None:
            return self.public_ipv4(), None
        want4 = host.options.get("ipv4", True) is not False
        want6 = host.options.get("ipv6", False) is True
        return (self.public_ipv4() if want4 else None), (self.stable_ipv6() if want6 else None)

    def reach_ports(self) -> tuple[int, ...]:
        """The service's port(s) chosen on the Ports step (TCP), else 443."""
        chosen = tuple(dict.fromkeys(p.port for p in self.ports if p.protocol == "tcp"))
        return chosen[:2] or (443,)

    def report(self) -> Diagnosis | None:
        """The diagnosis with everything else this session found attached."""
        if self.diagnosis is None:
            return None
        extra = dict(self.diagnosis.extra)
        if self.reach is not None:
            from checks.reach import result_json

            extra["reach"] = [result_json(self.reach)]
        return replace(
            self.diagnosis,
            extra=extra,
            ports=self.ports or self.diagnosis.ports,
            ports_ipv6=self.ports6 or self.diagnosis.ports_ipv6,
            verify=(
                tuple(self.verifies.values())
                if self.verifies
                else (self.verify,)
                if self.verify
                else self.diagnosis.verify
            ),
            updates=(self.update,) if self.update else self.diagnosis.updates,
        )

    def config_to_save(self) -> Config:
        """The loaded configuration with this session's host added (replacing the same hostname)."""
        config = self.config
        if self.notify_urls:
            from checks.ddns.notify import notify_settings, with_notify

            try:
                known = list(notify_settings(config).urls)
            except Exception:  # a malformed [notify] table: the new URLs replace it
                known = []
            urls = known + [u for u in self.notify_urls if u not in known]
            config = replace(config, settings=with_notify(config.settings, urls=urls))
        if self.host is None:
            return config
        gone = {self.host.hostname, self.editing}
        kept = [h for h in config.hosts if h.hostname not in gone]
        if self.editing is not None:  # an edited host keeps its place in the file
            at = next((i for i, h in enumerate(config.hosts) if h.hostname == self.editing), len(kept))
            return config.with_hosts(tuple(kept[:at]) + (self.host,) + tuple(kept[at:]))
        return config.with_hosts(tuple(kept) + (self.host,))
