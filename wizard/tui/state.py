"""What the wizard has learned so far, shared by every screen."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from checks.config import Config, HostConfig
from checks.model import Diagnosis, PortResult, UpdateResult, VerifyResult

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


@dataclass
class WizardState:
    config: Config
    mode: Mode = "setup"
    diagnosis: Diagnosis | None = None
    ports: tuple[PortResult, ...] = ()
    provider: ProviderInfo | None = None
    host: HostConfig | None = None
    preflight: Preflight | None = None
    update: UpdateResult | None = None
    verify: VerifyResult | None = None
    saved_path: Path | None = None
    report_path: Path | None = None

    @property
    def hosting_blocked(self) -> bool:
        """An upstream NAT (CGNAT or double NAT) stands between the internet and the router."""
        return self.diagnosis is not None and self.diagnosis.nat.verdict in ("cgnat", "double-nat")

    def report(self) -> Diagnosis | None:
        """The diagnosis with everything else this session found attached."""
        if self.diagnosis is None:
            return None
        return replace(
            self.diagnosis,
            ports=self.ports or self.diagnosis.ports,
            verify=(self.verify,) if self.verify else self.diagnosis.verify,
            updates=(self.update,) if self.update else self.diagnosis.updates,
        )

    def config_to_save(self) -> Config:
        """The loaded configuration with this session's host added (replacing the same hostname)."""
        if self.host is None:
            return self.config
        others = tuple(h for h in self.config.hosts if h.hostname != self.host.hostname)
        return self.config.with_hosts(others + (self.host,))
