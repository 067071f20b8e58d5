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


# --- --redact: public addresses and hostnames, consistently -------------------------------

_IPV4_RE = re.compile(r"(?<!\d)(?<!\d\.)(?:\d{1,3}\.){3}\d{1,3}(?!\d)(?!\.\d)")
# Candidate IPv6 strings (validated with ipaddress before use).
_IPV6_RE = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")


@dataclass
class AddressRedactor:
    """Masks public IP addresses and the user's hostnames with stable placeholders.

    The same value always becomes the same placeholder (203.0.113.N / 2001:db8::N,
    documentation ranges, and host-N.example), so a redacted report still reads:
    "the router's WAN 203.0.113.1 equals the external address 203.0.113.1".
    Private-range addresses are kept: they identify nobody and carry the diagnosis.
    """

    hostnames: list[str] = field(default_factory=list)
    _map: dict[str, str] = field(default_factory=dict)
    _n4: int = 0
    _n6: int = 0
    _nh: int = 0

    def _v4(self, addr: str) -> str:
        if addr not in self._map:
            self._n4 += 1
            n = self._n4
            self._map[addr] = f"203.0.113.{n}" if n < 255 else f"198.51.100.{(n - 254) % 255}"
        return self._map[addr]

    def _v6(self, addr: str) -> str:
        if addr not in self._map:
            self._n6 += 1
            self._map[addr] = f"2001:db8::{self._n6:x}"
        return self._map[addr]

    def _host(self, name: str) -> str:
        key = name.lower().rstrip(".")
        if key not in self._map:
            self._nh += 1
            self._map[key] = f"host-{self._nh}.example"
        return self._map[key]

    def text(self, value: str) -> str:
        from .addresses import is_public, parse_ip

        out = value
        for name in sorted(self.hostnames, key=len, reverse=True):
            if name:
                out = re.sub(re.escape(name.rstrip(".")), lambda m: self._host(m.group(0)), out, flags=re.I)

        def sub4(m: re.Match[str]) -> str:
            ip = parse_ip(m.group(0))
            return self._v4(str(ip)) if ip is not None and is_public(ip) else m.group(0)

        def sub6(m: re.Match[str]) -> str:
            ip = parse_ip(m.group(0))
            if ip is None or ip.version != 6:
                return m.group(0)
            return self._v6(str(ip)) if is_public(ip) else m.group(0)

        out = _IPV4_RE.sub(sub4, out)
        out = _IPV6_RE.sub(sub6, out)
        return out

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value
