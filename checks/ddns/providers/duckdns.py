"""DuckDNS: ``GET {server}/update?domains=SUB&token=T&ip=V4&ipv6=V6&verbose=true``.

The reply is ``OK`` or ``KO``; with ``verbose=true`` it is
``OK\\n<v4>\\n<v6>\\nUPDATED|NOCHANGE``.  ``KO`` covers both a wrong token and a
domain that is not in the account, so the message names both.  The token
travels in the URL: it is masked in every message (the host's secrets and the
``token=`` pattern), and httpx's own exception texts are never printed with URLs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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

_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def check_token(value: str) -> str | None:
    token = value.strip().lower()
    if _UUID_RE.fullmatch(token):
        return None
    if value != value.strip():
        return "the token has spaces at the start or end (copy it again)"
    return (
        "a DuckDNS token looks like a1b2c3d4-1234-5678-9abc-def012345678 (36 characters); "
        "copy it from the 'token' line at the top of https://www.duckdns.org after signing in"
    )


def subdomain(hostname: str) -> str:
    """``myhome.duckdns.org`` → ``myhome`` (the label just before duckdns.org)."""
    labels = hostname.lower().rstrip(".").split(".")
    return labels[-3] if len(labels) >= 3 else labels[0]


def parse_reply(
    spec: ProviderSpec, host: HostConfig, status: int, headers: object, body: str, sent: str | None
) -> UpdateResult:
    """Map a DuckDNS reply onto an UpdateResult. Never raises."""

    common = http_status_result(spec, host, status, headers, sent)
    if common is not None:
        return common
    lines = [line.strip() for line in body.replace("\r", "").split("\n")]
    first = lines[0].upper() if lines else ""
    if status == 200 and first == "OK":
        state = next((ln.upper() for ln in reversed(lines) if ln.strip()), "")
        if state == "NOCHANGE":
            return spec.ok(
                host,
                sent=sent,
                result="unchanged",
                code="OK NOCHANGE",
                message=f"DuckDNS already had {sent or 'this address'}.",
            )
        return spec.ok(
            host,
            sent=sent,
            result="updated",
            code="OK" + (" UPDATED" if state == "UPDATED" else ""),
            message=f"{host.hostname} now points to {sent or 'this address'}.",
        )
    if first == "KO":
        return spec.error(
            host,
            sent=sent,
            code="KO",
            fatal=True,
            message=(
                f"DuckDNS refused the update (KO): either the token is wrong or "
                f"'{subdomain(host.hostname)}' is not a domain of this DuckDNS account. "
                "Sign in at https://www.duckdns.org, compare the token at the top of the page "
                "and the domain list. Updates are stopped until you fix the configuration."
            ),
        )
    if status in (401, 403):
        return spec.error(
            host,
            sent=sent,
            code=f"HTTP {status}",
            fatal=True,
            message=f"DuckDNS refused the request (HTTP {status}): check the token.",
        )
    if 400 <= status < 500:
        return spec.error(
            host,
            sent=sent,
            code=f"HTTP {status}",
            fatal=True,
            message=(
                f"DuckDNS answered HTTP {status}: check the server URL ({spec.server_for(host)}). Updates are stopped."
            ),
        )
    excerpt = body_excerpt(body) if body.strip() else "an empty reply"
    return spec.error(
        host,
        sent=sent,
        code="unknown",
        retry_code="unknown",
        message=f"DuckDNS gave a reply ddns-wizard does not understand (HTTP {status}: {excerpt}); will retry later.",
    )


async def update(
    spec: ProviderSpec, host: HostConfig, ipv4: str | None, ipv6: str | None, client: httpx.AsyncClient
) -> UpdateResult:
    params = {"domains": subdomain(host.hostname), "token": (host.token or "").strip(), "verbose": "true"}
    if ipv4:
        params["ip"] = ipv4
    if ipv6:
        params["ipv6"] = ipv6
    sent = join_sent(ipv4, ipv6)
    response = await client.get(
        spec.server_for(host) + "/update",
        params=params,
        headers={"User-Agent": user_agent(host.options.get("contact"))},
        timeout=REQUEST_TIMEOUT_S,
    )
    return parse_reply(spec, host, response.status_code, response.headers, response.text[:4096], sent)


async def update_batch(
    spec: ProviderSpec, hosts: Sequence[HostConfig], ipv4: str | None, ipv6: str | None, client: httpx.AsyncClient
) -> list[UpdateResult]:
    """``domains=a,b``: one request for several names of one account (duckdns.org/spec.jsp;
    ddclient nic_duckdns_update groups hosts by token).  The one reply is every name's."""
    first = hosts[0]
    params = {
        "domains": ",".join(subdomain(h.hostname) for h in hosts),
        "token": (first.token or "").strip(),
        "verbose": "true",
    }
    if ipv4:
        params["ip"] = ipv4
    if ipv6:
        params["ipv6"] = ipv6
    sent = join_sent(ipv4, ipv6)
    response = await client.get(
        spec.server_for(first) + "/update",
        params=params,
        headers={"User-Agent": user_agent(first.options.get("contact"))},
        timeout=REQUEST_TIMEOUT_S,
    )
    return [parse_reply(spec, h, response.status_code, response.headers, response.text[:4096], sent) for h in hosts]


async def preflight(spec: ProviderSpec, host: HostConfig, client: httpx.AsyncClient) -> PreflightResult:
    return PreflightResult(
        ok=True,
        spent_update=True,
        message=(
            "DuckDNS has no read-only check: the first update is the test. A wrong token or a domain "
            "not in your account both answer KO, and ddns-wizard stops there instead of retrying."
        ),
    )


SPEC = ProviderSpec(
    name="duckdns",
    title="DuckDNS",
    family="duckdns",
    cost="free",
    url="https://www.duckdns.org",
    default_server="https://www.duckdns.org",
    domains=("duckdns.org",),
    needs="a GitHub, Google, Reddit or X account to sign in with",
    signup_steps=(
        "Open https://www.duckdns.org and sign in with one of the listed accounts (GitHub, Google, ...).",
        "In 'sub domain' type a name (e.g. myhome) and click 'add domain': you now own myhome.duckdns.org.",
        "Copy the token shown at the top of the page (the line 'token', 36 characters like "
        "a1b2c3d4-1234-5678-9abc-def012345678).",
        "Give ddns-wizard myhome.duckdns.org and the token.",
    ),
    pitfalls=(
        "The token gives control of ALL your DuckDNS domains: keep it secret (it is sent in the URL, and "
        "ddns-wizard masks it everywhere it prints).",
        "A wrong token and a domain that is not yours give the same answer, KO.",
        "IPv6 is never detected automatically by DuckDNS: it must be sent explicitly (set ipv6 = true).",
    ),
    fields=(
        hostname_field("myhome.duckdns.org", "your name under duckdns.org, e.g. myhome.duckdns.org"),
        CredentialField("token", "Token", True, "the 36-character token from the top of duckdns.org", check_token),
    ),
    supports_ipv6=True,
    policy=Policy(
        min_interval_s=300,
        fatal_codes=frozenset({"KO"}),
        retry_after_s={"http-5xx": 600, "http-429": 900, "network": 300, "unknown": 1800},
        default_retry_s=900,
    ),
    update_fn=update,
    preflight_fn=preflight,
    batch_fn=update_batch,
)
