"""Namecheap: ``GET {server}/update?host=SUB&domain=D&password=P&ip=V4`` (IPv4 only).

The reply is XML, always HTTP 200: ``<ErrCount>0</ErrCount>`` is success,
otherwise the reason is in ``<errors><Err1>``.  The password travels in the
query string (masked by the ``password=`` pattern and the host's secrets).
The reply is read with regular expressions, not an XML parser: it is small and
a hostile or broken body must not be able to do anything but fail to match.
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
    check_fqdn,
    hostname_field,
    http_status_result,
    user_agent,
)

if TYPE_CHECKING:  # httpx is imported only by the code that sends requests (start-up time)
    import httpx

_PASSWORD_RE = re.compile(r"[0-9a-fA-F]{32}")
_ERRCOUNT_RE = re.compile(r"<ErrCount>\s*(\d+)\s*</ErrCount>", re.I)
_ERR1_RE = re.compile(r"<Err1>(.*?)</Err1>", re.I | re.S)


def check_password(value: str) -> str | None:
    if _PASSWORD_RE.fullmatch(value.strip()):
        return None
    return (
        "the Dynamic DNS password is 32 hexadecimal characters: in Namecheap's Domain List → Manage → "
        "Advanced DNS, switch 'Dynamic DNS' on and copy the password shown (not your account password)"
    )


def split_host(host: HostConfig) -> tuple[str, str]:
    """(host part, domain): ``home.example.com`` → (``home``, ``example.com``); apex → ``@``."""
    name = host.hostname.lower().rstrip(".")
    domain = str(host.options.get("domain") or ".".join(name.split(".")[-2:])).lower().rstrip(".")
    if name == domain:
        return "@", domain
    if name.endswith("." + domain):
        return name[: -len(domain) - 1], domain
    return name.split(".")[0], domain


def parse_reply(
    spec: ProviderSpec, host: HostConfig, status: int, headers: object, body: str, sent: str | None
) -> UpdateResult:
    common = http_status_result(spec, host, status, headers, sent)
    if common is not None:
        return common
    count = _ERRCOUNT_RE.search(body)
    if status == 200 and count is not None and int(count.group(1)) == 0:
        return spec.ok(
            host, sent=sent, result="updated", code="ErrCount 0", message=f"{host.hostname} now points to {sent}."
        )
    err = _ERR1_RE.search(body)
    detail = body_excerpt(err.group(1)) if err else (body_excerpt(body) or "empty reply")
    lower = detail.lower()
    if err is not None:
        if "password" in lower:
            return spec.error(
                host,
                sent=sent,
                code="Err1",
                fatal=True,
                message=(
                    f"Namecheap rejected the password ({detail}). Use the Dynamic DNS password "
                    "from Advanced DNS, not the account password. Updates are stopped."
                ),
            )
        if "not found" in lower or "no records" in lower or "domain name" in lower:
            return spec.error(
                host,
                sent=sent,
                code="Err1",
                fatal=True,
                message=(
                    f"Namecheap has no such record ({detail}): create an A + Dynamic DNS record "
                    f"for '{split_host(host)[0]}' under Advanced DNS. Updates are stopped."
                ),
            )
        return spec.error(
            host,
            sent=sent,
            code="Err1",
            retry_code="unknown",
            message=f"Namecheap reported an error ({detail}); will retry later.",
        )
    if 400 <= status < 500:
        return spec.error(
            host,
            sent=sent,
            code=f"HTTP {status}",
            fatal=True,
            message=f"Namecheap answered HTTP {status}; check the server URL. Updates are stopped.",
        )
    return spec.error(
        host,
        sent=sent,
        code="unknown",
        retry_code="unknown",
        message=f"Namecheap gave a reply ddns-wizard does not understand (HTTP {status}: {detail}); will retry later.",
    )


async def update(
    spec: ProviderSpec, host: HostConfig, ipv4: str | None, ipv6: str | None, client: httpx.AsyncClient
) -> UpdateResult:
    if not ipv4:
        return spec.error(
            host,
            sent=None,
            code="no-ipv6",
            fatal=True,
            message="Namecheap's dynamic DNS updates IPv4 (A records) only.",
        )
    sub, domain = split_host(host)
    params = {"host": sub, "domain": domain, "password": (host.password or host.token or "").strip(), "ip": ipv4}
    response = await client.get(
        spec.server_for(host) + "/update",
        params=params,
        headers={"User-Agent": user_agent(host.options.get("contact"))},
        timeout=REQUEST_TIMEOUT_S,
    )
    # The XML prolog (and sometimes the header) claims UTF-16 while the bytes are UTF-8
    # (opnsense/plugins#2666): decode the bytes as UTF-8, never by the declared charset.
    body = response.content[:8192].decode("utf-8", errors="replace")
    return parse_reply(spec, host, response.status_code, response.headers, body, ipv4)


async def preflight(spec: ProviderSpec, host: HostConfig, client: httpx.AsyncClient) -> PreflightResult:
    return PreflightResult(
        ok=True,
        spent_update=True,
        message="Namecheap's dynamic DNS has no read-only check: the first update is the test.",
    )


def _check_domain(value: str) -> str | None:
    return check_fqdn(value)


SPEC = ProviderSpec(
    name="namecheap",
    title="Namecheap",
    family="namecheap",
    cost="own domain at Namecheap",
    url="https://www.namecheap.com",
    default_server="https://dynamicdns.park-your-domain.com",
    needs="your own domain at Namecheap using Namecheap's DNS",
    signup_steps=(
        "Sign in at https://www.namecheap.com, open 'Domain List' and click 'Manage' next to the domain.",
        "Open the 'Advanced DNS' tab; in 'Dynamic DNS' switch the status on and copy the 'Dynamic DNS Password'.",
        "Under 'Host Records' click 'Add new record', choose 'A + Dynamic DNS Record', enter the host part (e.g. "
        "home, or @ for the domain itself) and save.",
        "Give ddns-wizard the full hostname (e.g. home.example.com) and the Dynamic DNS password.",
    ),
    pitfalls=(
        "IPv4 only: Namecheap's dynamic DNS cannot set AAAA records.",
        "The password is the Dynamic DNS password from Advanced DNS, not the account password.",
        'For domains like example.co.uk set domain = "example.co.uk" so the host part is split correctly.',
    ),
    fields=(
        hostname_field("home.example.com"),
        CredentialField(
            "password", "Dynamic DNS password", True, "32 hex characters from Advanced DNS", check_password
        ),
        CredentialField(
            "domain",
            "Domain",
            False,
            "the registered domain (default: the last two labels)",
            _check_domain,
            required=False,
        ),
    ),
    supports_ipv6=False,
    policy=Policy(
        min_interval_s=300,
        fatal_codes=frozenset(),
        retry_after_s={"http-5xx": 600, "http-429": 900, "network": 300, "unknown": 1800},
        default_retry_s=1800,
    ),
    update_fn=update,
    preflight_fn=preflight,
)
