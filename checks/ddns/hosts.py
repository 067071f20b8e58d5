"""Managing the configured hosts: list, add, replace, remove — saved atomically, mode 0600.

Every change goes through ``checks.config.save_config`` (temporary file, fsync, rename,
0600; a damaged file is copied aside first), so a crash mid-save never loses the file.
Only ``[[hosts]]`` changes: endpoints, ``[notify]`` and other tables are kept as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config, HostConfig, save_config
from ..errors import ConfigError


@dataclass(frozen=True)
class HostSummary:
    """What ``hosts list`` shows: no secret, only whether one is set."""

    hostname: str
    provider: str
    families: str  # "IPv4", "IPv6", "IPv4+IPv6"
    device: str | None  # "suffix ::1234..." / "MAC 00:11:..." for another device's IPv6
    server: str | None
    has_secret: bool


def summarize(host: HostConfig) -> HostSummary:
    from .providers.base import wants_ipv4, wants_ipv6

    fams = [f for f, on in (("IPv4", wants_ipv4(host)), ("IPv6", wants_ipv6(host))) if on]
    device = None
    if host.options.get("ipv6_suffix") is not None:
        device = f"suffix {host.options['ipv6_suffix']}"
    elif host.options.get("ipv6_mac") is not None:
        device = f"MAC {host.options['ipv6_mac']}"
    return HostSummary(
        host.hostname, host.provider, "+".join(fams) or "none", device, host.server, bool(host.secret_values())
    )


def list_hosts(config: Config) -> list[HostSummary]:
    return [summarize(h) for h in config.hosts]


def _canonical(name: str) -> str:
    from ..config import _dns_spelling

    return _dns_spelling(name)


def find(config: Config, hostname: str) -> HostConfig | None:
    want = _canonical(hostname)
    return next((h for h in config.hosts if h.hostname == want), None)


def _where(config: Config) -> str:
    return str(config.path) if config.path else "the configuration"


def without_host(config: Config, hostname: str) -> Config:
    host = find(config, hostname)
    if host is None:
        known = ", ".join(h.hostname for h in config.hosts) or "none"
        raise ConfigError(
            f"{hostname} is not configured in {_where(config)} (configured: {known})",
            path=str(config.path) if config.path else None,
        )
    return config.with_hosts(tuple(h for h in config.hosts if h is not host))


def with_host(config: Config, host: HostConfig, *, replacing: str | None = None) -> Config:
    """``config`` with ``host`` added, or put in the place of ``replacing`` (an edit).
    ConfigError when the hostname is already configured (other than the one replaced)."""
    old = find(config, replacing) if replacing else None
    if replacing and old is None:
        raise ConfigError(f"{replacing} is not configured in {_where(config)}")
    clash = find(config, host.hostname)
    if clash is not None and clash is not old:
        raise ConfigError(f"{host.hostname} is already configured in {_where(config)}: edit or remove it instead")
    if old is None:
        return config.with_hosts(config.hosts + (host,))
    return config.with_hosts(tuple(host if h is old else h for h in config.hosts))


def remove_host(config: Config, hostname: str) -> tuple[Config, Path]:
    """Remove ``hostname`` and save. Returns (the new configuration, the path written)."""
    new = without_host(config, hostname)
    return new, save_config(new)


def add_host(config: Config, host: HostConfig, *, replacing: str | None = None) -> tuple[Config, Path]:
    new = with_host(config, host, replacing=replacing)
    return new, save_config(new)


def host_json(s: HostSummary) -> dict[str, Any]:
    return {
        "hostname": s.hostname,
        "provider": s.provider,
        "families": s.families,
        "device": s.device,
        "server": s.server,
        "has_secret": s.has_secret,
    }
