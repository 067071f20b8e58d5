"""Every supported provider, by the name used in the configuration's ``provider`` key.

``PROVIDERS`` is read by ``ddns-wizard providers``, the wizard's provider screen
and the updater.  ``update_host`` / ``preflight`` dispatch a HostConfig to its
provider and never raise for network or provider trouble.
"""

from __future__ import annotations

from typing import Any

from checks.config import HostConfig
from checks.errors import ConfigError
from checks.model import UpdateResult

from . import cloudflare, desec, duckdns, dyndns2, dynv6, freedns, namecheap, rfc2136
from .base import PreflightResult, ProviderSpec

_ORDER: tuple[ProviderSpec, ...] = (
    duckdns.SPEC,
    dyndns2.NOIP,
    cloudflare.SPEC,
    desec.SPEC,
    dyndns2.DYNU,
    freedns.SPEC,
    dynv6.SPEC,
    dyndns2.HE,
    namecheap.SPEC,
    dyndns2.GENERIC,
    rfc2136.SPEC,
)

PROVIDERS: dict[str, ProviderSpec] = {spec.name: spec for spec in _ORDER}

# Other spellings people type; the configuration keeps the canonical name.
ALIASES: dict[str, str] = {
    "no-ip": "noip",
    "noip.com": "noip",
    "duck": "duckdns",
    "dedyn": "desec",
    "dedyn.io": "desec",
    "afraid": "freedns",
    "afraid.org": "freedns",
    "hurricane": "he",
    "he.net": "he",
    "dns.he.net": "he",
    "nsupdate": "rfc2136",
    "tsig": "rfc2136",
    "bind": "rfc2136",
    "knot": "rfc2136",
    "generic": "dyndns2",
    "dyndns": "dyndns2",
    "cf": "cloudflare",
}


def get_provider(name: str) -> ProviderSpec:
    """The spec for a provider name (or alias); ConfigError naming the known ones otherwise."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    try:
        return PROVIDERS[key]
    except KeyError:
        raise ConfigError(
            f"unknown provider {name!r}; known providers: {', '.join(PROVIDERS)} (see `ddns-wizard providers`)"
        ) from None


def validate_host(host: HostConfig) -> list[str]:
    """Problems with one configured host (unknown provider, bad fields), as sentences."""
    try:
        spec = get_provider(host.provider)
    except ConfigError as exc:
        return [f"{host.hostname}: {exc}"]
    return spec.validate(host)


async def update_host(host: HostConfig, ipv4: str | None, ipv6: str | None, client: Any) -> UpdateResult:
    return await get_provider(host.provider).update(host, ipv4, ipv6, client)


async def preflight(host: HostConfig, client: Any) -> PreflightResult:
    return await get_provider(host.provider).preflight(host, client)
