"""Keeping secrets out of everything a person or a file can see.

``Redactor.text`` masks (1) every secret value from the configuration and (2)
secret-shaped pieces of URLs and headers even when the secret is unknown:
``token=``/``password=``/``key=`` query values, ``user:pass@`` userinfo, FreeDNS's
``/u/<token>/`` path, ``Authorization`` headers.  Use it on every string that may
be printed, logged or written to a report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

MASK = "***"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # query parameters that carry secrets
    (re.compile(r"(?i)([?&;](?:token|password|pass|pwd|key|secret|api_key|apikey|auth)=)[^&\s\"'#]+"), r"\1" + MASK),
    # user:password@ in URLs
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@/\s]+@"), r"\1" + MASK + "@"),
    # FreeDNS v2 sync URLs: https://sync.afraid.org/u/<token>/
    (re.compile(r"(?i)(/u/)[A-Za-z0-9_-]{8,}"), r"\1" + MASK),
    # Authorization headers
    (re.compile(r"(?i)(authorization:\s*(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + MASK),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{16,}"), r"\1" + MASK),
]


@dataclass
class Redactor:
    secrets: list[str] = field(default_factory=list)

    @classmethod
    def from_config(cls, config: Any) -> "Redactor":
        return cls(secrets=list(config.secret_values()))

    def add(self, values: Iterable[str | None]) -> None:
        for v in values:
            if v and v not in self.secrets:
                self.secrets.append(v)

    def text(self, value: str) -> str:
        out = value
        # Longest first so a secret containing another is masked whole.
        for secret in sorted(self.secrets, key=len, reverse=True):
            if len(secret) >= 3:
                out = out.replace(secret, MASK)
        for pattern, repl in _PATTERNS:
            out = pattern.sub(repl, out)
        return out

    def data(self, value: Any) -> Any:
        """Redact every string inside JSON-like data."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value
