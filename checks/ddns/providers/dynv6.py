"""dynv6: ``GET {server}/api/update?zone=Z&token=T&ipv4=IP&ipv6=ADDR``.

An absent parameter keeps the existing record (so a family we do not update is
simply left out).  Replies are text: ``addresses updated`` / ``addresses
unchanged``; 401 for a bad token, 404 for an unknown zone.  The token is in the
query string: masked by the ``token=`` pattern and the host's secrets.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from checks.config import HostConfig
from checks.model import UpdateResult

from .base import (
    REQUEST_TIMEOUT_S,
    CredentialField,
    Policy,
    PreflightResult,
    ProviderSpec,
    body_excerpt,
    hostname_field,
    http_status_result,
    join_sent,
    user_agent,
)

if TYPE_CHECKING:  # httpx is imported only by the code that sends requests (start-up time)
    import httpx

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{20,64}")


def check_token(value: str) -> str | None:
    if _TOKEN_RE.fullmatch(value.strip()):
        return None
    return "a dynv6 token is 20-64 letters, digits, '-' and '_': copy it from https://dynv6.com/keys ('HTTP Tokens')"


def parse_reply(
    spec: ProviderSpec, host: HostConfig, status: int, headers: object, body: str, sent: str | None
) -> UpdateResult:
    common = http_status_result(spec, host, status, headers, sent)
    if common is not None:
        return common
    text = body.strip()
    lower = text.lower()
    if status == 200 and "unchanged" in lower:
        return spec.ok(
            host, sent=sent, result="unchanged", code="addresses unchanged", message=f"dynv6 already had {sent}."
        )
    if status == 200 and "updated" in lower:
        return spec.ok(
            host,
            sent=sent,
            result="updated",
            code="addresses updated",
            message=f"{host.hostname} now points to {sent}.",
        )
    if status in (401, 403):
        return spec.error(
            host,
            sent=sent,
            code=f"HTTP {status}",
            fatal=True,
            message=("dynv6 rejected the token: copy an HTTP token from https://dynv6.com/keys. Updates are stopped."),
        )
    if status == 404:
        return spec.error(
            host,
            sent=sent,
            code="HTTP 404",
            fatal=True,
            message=(
                f"dynv6 does not know the zone {_zone(host)} in this account: check the "
                "spelling at https://dynv6.com/zones. Updates are stopped."
            ),
        )
    if 400 <= status < 500:
        return spec.error(
            host,
            sent=sent,
            code=f"HTTP {status}",
            fatal=True,
            message=f"dynv6 refused the update (HTTP {status}: {body_excerpt(text) or 'no details'}).",
        )
    return spec.error(
        host,
        sent=sent,
        code="unknown",
        retry_code="unknown",
        message=f"dynv6 gave a reply ddns-wizard does not understand (HTTP {status}: "
        f"{body_excerpt(text) or 'empty'}); will retry later.",
    )


def _zone(host: HostConfig) -> str:
    return str(host.options.get("zone") or host.hostname)


async def update(
    spec: ProviderSpec, host: HostConfig, ipv4: str | None, ipv6: str | None, client: httpx.AsyncClient
) -> UpdateResult:
    params = {"zone": _zone(host), "token": (host.token or "").strip()}
    if ipv4:
        params["ipv4"] = ipv4
    if ipv6:
        params["ipv6"] = ipv6
    response = await client.get(
        spec.server_for(host) + "/api/update",
        params=params,
        headers={"User-Agent": user_agent(host.options.get("contact"))},
        timeout=REQUEST_TIMEOUT_S,
    )
    return parse_reply(spec, host, response.status_code, response.headers, response.text[:4096], join_sent(ipv4, ipv6))


async def preflight(spec: ProviderSpec, host: HostConfig, client: httpx.AsyncClient) -> PreflightResult:
    return PreflightResult(
        ok=True, spent_update=True, message="dynv6's update API has no read-only check: the first update is the test."
    )


SPEC = ProviderSpec(
    name="dynv6",
    title="dynv6",
    family="dynv6",
    cost="free",
    url="https://dynv6.com/users/sign_up",
    default_server="https://dynv6.com",
    domains=("dynv6.net", "v6.army", "v6.navy", "v6.rocks", "dns.army", "dns.navy", "dynv6.com"),
    own_domain_allowed=True,
    needs="a free dynv6 account",
    signup_steps=(
        "Sign up at https://dynv6.com/users/sign_up and confirm the e-mail.",
        "Click 'Create new Zone', type a name and pick a domain (e.g. myhome.dynv6.net), then 'Create Zone'.",
        "Open https://dynv6.com/keys, section 'HTTP Tokens', and copy the token (or click 'Add HTTP Token').",
        "Give ddns-wizard the zone's full name and the token.",
    ),
    pitfalls=(
        "The update API works per zone: the hostname is the zone itself (e.g. myhome.dynv6.net).",
        "dynv6 is IPv6-friendly: set ipv6 = true to publish the AAAA record too.",
    ),
    fields=(
        hostname_field("myhome.dynv6.net"),
        CredentialField("token", "HTTP token", True, "from https://dynv6.com/keys", check_token),
    ),
    supports_ipv6=True,
    policy=Policy(
        min_interval_s=300,
        fatal_codes=frozenset(),
        retry_after_s={"http-5xx": 600, "http-429": 900, "network": 300, "unknown": 1800},
        default_retry_s=1800,
    ),
    update_fn=update,
    preflight_fn=preflight,
)
