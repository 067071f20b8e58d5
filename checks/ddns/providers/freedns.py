"""FreeDNS (afraid.org), "v2" update URLs: ``GET {server}/u/<token>/?address=IP``.

The token is in the URL path: it is masked everywhere (the host's secrets and
the ``/u/<token>`` pattern of checks.redact).  IPv6 goes to the v6 server
(``server_v6``, default ``https://v6.sync.afraid.org``).  Replies are text:
``Updated ...`` / ``No IP change detected ...`` / ``ERROR: ...``, matched
case-insensitively.
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

DEFAULT_V6_SERVER = "https://v6.sync.afraid.org"
_TOKEN_RE = re.compile(r"[A-Za-z0-9]{16,64}")


def check_token(value: str) -> str | None:
    token = value.strip()
    if "sync.afraid.org" in token or "/u/" in token:
        return "enter only the token: the part between /u/ and the final / of the update URL, not the whole URL"
    if _TOKEN_RE.fullmatch(token):
        return None
    return (
        "a FreeDNS v2 token is 16-64 letters and digits: on https://freedns.afraid.org/dynamic/v2/ copy the "
        "part after /u/ in your hostname's update URL"
    )


def parse_reply(
    spec: ProviderSpec, host: HostConfig, status: int, headers: object, body: str, sent: str | None
) -> UpdateResult:
    common = http_status_result(spec, host, status, headers, sent)
    if common is not None:
        return common
    text = body.strip()
    lower = text.lower()
    if lower.startswith("updated"):
        return spec.ok(
            host,
            sent=sent,
            result="updated",
            code="Updated",
            message=f"{host.hostname} now points to {sent or 'this address'}.",
        )
    if lower.startswith("no ip change detected") or "has not changed" in lower:
        return spec.ok(
            host,
            sent=sent,
            result="unchanged",
            code="No IP change",
            message=f"FreeDNS already had {sent or 'this address'}.",
        )
    if status == 404:
        # sync.afraid.org answers 404 to a token it does not know (openwrt/packages#12201: "the secret
        # token you give must be valid, otherwise it will 404"; qdm12/ddns-updater#449).
        return spec.error(
            host,
            sent=sent,
            code="HTTP 404",
            fatal=True,
            message=(
                "FreeDNS answered 404 (page not found): it does not know this update token. Copy "
                "it again from https://freedns.afraid.org/dynamic/v2/ (the part after /u/). "
                "Updates are stopped."
            ),
        )
    if lower.startswith("error"):
        detail = body_excerpt(text)
        if "invalid ip address" in lower or "is an invalid ip" in lower:
            # ERROR: "x" is an invalid IP address. -- a problem with the request's address, not with the
            # token (reference/real-world.md); the next round sends a freshly detected address.
            return spec.error(
                host,
                sent=sent,
                code="ERROR invalid address",
                retry_code="invalid-address",
                message=(
                    f"FreeDNS refused the address in the request ({detail}); this is not a "
                    "credential problem. ddns-wizard will try again later with a freshly "
                    "detected address; if it repeats, report it with this message."
                ),
            )
        if "unable to locate" in lower or "not found" in lower or "invalid update url" in lower:
            return spec.error(
                host,
                sent=sent,
                code="ERROR",
                fatal=True,
                message=(
                    f"FreeDNS does not recognise this update token ({detail}). Copy the token "
                    "again from https://freedns.afraid.org/dynamic/v2/ (the part after /u/). "
                    "Updates are stopped."
                ),
            )
        return spec.error(
            host,
            sent=sent,
            code="ERROR",
            retry_code="unknown",
            message=f"FreeDNS reported an error ({detail}); will retry later.",
        )
    if 400 <= status < 500:
        return spec.error(
            host,
            sent=sent,
            code=f"HTTP {status}",
            fatal=True,
            message=(f"FreeDNS answered HTTP {status}: check the token and the server URL. Updates are stopped."),
        )
    return spec.error(
        host,
        sent=sent,
        code="unknown",
        retry_code="unknown",
        message=f"FreeDNS gave a reply ddns-wizard does not understand (HTTP {status}: "
        f"{body_excerpt(text) or 'empty'}); will retry later.",
    )


async def _send(
    spec: ProviderSpec, host: HostConfig, server: str, address: str, client: httpx.AsyncClient
) -> UpdateResult:
    token = (host.token or "").strip()
    response = await client.get(
        f"{server.rstrip('/')}/u/{token}/",
        params={"address": address},
        headers={"User-Agent": user_agent(host.options.get("contact"))},
        timeout=REQUEST_TIMEOUT_S,
    )
    return parse_reply(spec, host, response.status_code, response.headers, response.text[:4096], address)


async def update(
    spec: ProviderSpec, host: HostConfig, ipv4: str | None, ipv6: str | None, client: httpx.AsyncClient
) -> UpdateResult:
    results: list[UpdateResult] = []
    if ipv4:
        results.append(await _send(spec, host, spec.server_for(host), ipv4, client))
        if results[-1].result == "error":
            return results[-1]
    if ipv6:
        server_v6 = str(host.options.get("server_v6") or DEFAULT_V6_SERVER)
        results.append(await _send(spec, host, server_v6, ipv6, client))
        if results[-1].result == "error":
            return results[-1]
    sent = join_sent(ipv4, ipv6)
    if any(r.result == "updated" for r in results):
        return spec.ok(
            host, sent=sent, result="updated", code="Updated", message=f"{host.hostname} now points to {sent}."
        )
    return spec.ok(host, sent=sent, result="unchanged", code="No IP change", message=f"FreeDNS already had {sent}.")


async def preflight(spec: ProviderSpec, host: HostConfig, client: httpx.AsyncClient) -> PreflightResult:
    return PreflightResult(
        ok=True,
        spent_update=True,
        message="FreeDNS update URLs have no read-only check: the first update is the test.",
    )


SPEC = ProviderSpec(
    name="freedns",
    title="FreeDNS (afraid.org)",
    family="freedns",
    cost="free",
    url="https://freedns.afraid.org/signup/",
    default_server="https://sync.afraid.org",
    needs="a free afraid.org account and a subdomain of one of its shared domains (or your own domain)",
    signup_steps=(
        "Create an account at https://freedns.afraid.org/signup/ and activate it from the e-mail.",
        "Open 'Subdomains' → 'Add', choose type A, a name and one of the shared domains, and 'Save!'.",
        "Open https://freedns.afraid.org/dynamic/v2/ (the 'Dynamic DNS' page, 'v2' interface), enable dynamic "
        "updates for the hostname, and copy its update URL; the token is the part after /u/.",
        "Give ddns-wizard the full hostname and that token.",
    ),
    pitfalls=(
        "Use the v2 page: v1 URLs carry a different, account-wide hash.",
        "The token is part of the URL: anyone who sees it can move your hostname (ddns-wizard masks it).",
        "IPv6 uses a separate server (v6.sync.afraid.org) and needs an AAAA record for the name.",
    ),
    fields=(
        hostname_field("myhome.mooo.com"),
        CredentialField("token", "Update token", True, "the part after /u/ in the v2 update URL", check_token),
    ),
    supports_ipv6=True,
    policy=Policy(
        min_interval_s=300,
        fatal_codes=frozenset(),
        retry_after_s={"http-5xx": 600, "http-429": 900, "network": 300, "unknown": 1800, "invalid-address": 900},
        default_retry_s=1800,
    ),
    update_fn=update,
    preflight_fn=preflight,
)
