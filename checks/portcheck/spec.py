"""What a port check is asked about: ``8080``, ``8080/tcp``, ``51820/udp``."""

from __future__ import annotations

from dataclasses import dataclass

from checks.errors import UsageError
from checks.model import PortProtocol
from checks.model import PortProtocol as Protocol


@dataclass(frozen=True)
class PortSpec:
    port: int
    protocol: Protocol = "tcp"

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol}"


def parse_port_spec(text: str) -> PortSpec:
    """``"8080"``, ``"8080/tcp"``, ``"51820/udp"`` → PortSpec; UsageError otherwise."""
    raw = text.strip().lower()
    port_text, _, word = raw.partition("/")
    proto: PortProtocol | None = "tcp" if word in ("", "tcp") else "udp" if word == "udp" else None
    if proto is None:
        raise UsageError(f"'{text}': protocol must be tcp or udp (e.g. 8080/tcp, 51820/udp)")
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:  # '²'.isdigit()
        raise UsageError(f"'{text}': a port is a number from 1 to 65535")
    return PortSpec(int(port_text), proto)
