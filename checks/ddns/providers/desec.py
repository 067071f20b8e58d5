"""deSEC (dedyn.io): ``GET {server}/?hostname=H&myipv4=..&myipv6=..``, Basic auth hostname:token.

A missing or empty address parameter DELETES that record at deSEC, so a family
we are not updating is sent as ``preserve`` (docs/dyndns/update-api.rst in
desec-io/desec-stack).  Replies (api/desecapi/views/dyndns.py): 200 ``good``; 401
bad credentials; 404 ``nohost``; 400 bad parameters; 429 with Retry-After (the
``dyndns`` throttle is 2 per 2 minutes per domain, api/api/settings.py).
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

_TOKEN_RE = re.compile(r"[A-Za-z0-9_.-]{20,64}")


def check_token(value: str) -> str | None:
    if value != value.strip():
        return "the token has spaces at the start or end (copy it again)"
    if _TOKEN_RE.fullmatch(value):
        return None
    return (
        "a deSEC token is a string of about 28 letters and digits; create one at https://desec.io/tokens "
        "('+' button) and copy the secret shown once"
    )


def parse_reply(
    spec: ProviderSpec, host: HostConfig, status: int, headers: object, body: str, sent: str | None
) -> UpdateResult:
    common = http_status_result(spec, host, status, headers, sent)
    if common is not None:
        return common
    text = body.strip()
    word = text.split(None, 1)[0].lower() if text else ""
    if status == 200 and word == "good":
        return spec.ok(host, sent=sent, result="updated", code="good", message=f"{host.hostname} now points to {sent}.")
    if status == 200 and word == "nochg":
        return spec.ok(host, sent=sent, result="unchanged", code="nochg", message=f"deSEC already had {sent}.")
    if status == 401 or word == "badauth":
        return spec.error(
            host,
            sent=sent,
            code="badauth" if word == "badauth" else "HTTP 401",
            fatal=True,
            message=(
                "deSEC rejected the credentials: the username must be the domain (e.g. "
                "myhome.dedyn.io) and the password a token from https://desec.io/tokens. "
                "Updates are stopped until you fix the configuration."
            ),
        )
    if status == 200 and word == "badrequest":
        # A malformed address parameter (qdm12/ddns-updater desec: "badrequest" → ErrBadRequest):
        # a problem with this request, not with the account; the next round sends a fresh one.
        return spec.error(
            host,
            sent=sent,
            code="badrequest",
            retry_code="badrequest",
            message=(
                f"deSEC refused the request's parameters (badrequest: {body_excerpt(text)}); "
                "not a credential problem. ddns-wizard will try again later."
            ),
        )
    if status == 400:
        # ValidationError in desec-stack api/desecapi/views/dyndns.py: bad address parameters
        # ("invalid-subnet", "preserve" mixed with addresses) -- a problem with this request.
        return spec.error(
            host,
            sent=sent,
            code="HTTP 400",
            retry_code="badrequest",
            message=(
                f"deSEC refused the request's parameters (HTTP 400: "
                f"{body_excerpt(text) or 'no details'}); not a credential problem. "
                "ddns-wizard will try again later."
            ),
        )
    if status == 404 or word in ("nohost", "notfqdn"):
        return spec.error(
            host,
            sent=sent,
            code=word if status == 200 and word else f"HTTP {status}",
            fatal=True,
            message=(
                f"deSEC does not know {host.hostname} in this account (HTTP {status}: "
                f"{body_excerpt(text) or 'no details'}). Check the spelling and that the "
                "domain exists at https://desec.io/domains. Updates are stopped."
            ),
        )
    if 400 <= status < 500:
        return spec.error(
            host,
            sent=sent,
            code=f"HTTP {status}",
            fatal=True,
            message=f"deSEC refused the update (HTTP {status}: {body_excerpt(text) or 'no details'}).",
        )
    return spec.error(
        host,
        sent=sent,
        code="unknown",
        retry_code="unknown",
        message=f"deSEC gave a reply ddns-wizard does not understand (HTTP {status}: "
        f"{body_excerpt(text) or 'empty'}); will retry later.",
    )


async def update(
    spec: ProviderSpec, host: HostConfig, ipv4: str | None, ipv6: str | None, client: httpx.AsyncClient
) -> UpdateResult:
    # Never send an empty family: deSEC would delete that record.
    params = {"hostname": host.hostname, "myipv4": ipv4 or "preserve", "myipv6": ipv6 or "preserve"}
    response = await client.get(
        spec.server_for(host) + "/",
        params=params,
        auth=(host.username or host.hostname, (host.token or host.password or "").strip()),
        headers={"User-Agent": user_agent(host.options.get("contact"))},
        timeout=REQUEST_TIMEOUT_S,
    )
    return parse_reply(spec, host, response.status_code, response.headers, response.text[:4096], join_sent(ipv4, ipv6))


async def preflight(spec: ProviderSpec, host: HostConfig, client: httpx.AsyncClient) -> PreflightResult:
    return PreflightResult(
        ok=True,
        spent_update=True,
        message=(
            "deSEC's update service has no read-only check: the first update is the test (ddns-wizard sends "
            "'preserve' for the address family it does not update, so nothing is deleted)."
        ),
    )


SPEC = ProviderSpec(
    name="desec",
    title="deSEC (dedyn.io)",
    family="desec",
    cost="free",
    url="https://desec.io/signup",
    default_server="https://update.dedyn.io",
    domains=("dedyn.io",),
    own_domain_allowed=True,
    needs="an e-mail address; a free name under dedyn.io",
    signup_steps=(
        "Open https://desec.io/signup, choose 'Register a new domain under dedyn.io', type the name you want "
        "(e.g. myhome) and your e-mail, and solve the captcha.",
        "Confirm the e-mail: the link also shows the first token for dynamic DNS updates — copy it.",
        "For a further token: sign in, open 'Token Management' (https://desec.io/tokens) and click '+'; copy the "
        "secret shown once.",
        "Give ddns-wizard myhome.dedyn.io and the token (the username is the domain name itself).",
    ),
    pitfalls=(
        "An empty or missing address parameter DELETES that record: ddns-wizard always sends 'preserve' for the "
        "family it is not updating (other clients often do not).",
        "At most one update per minute per domain (429 with Retry-After), 2000 requests a day: ddns-wizard compares "
        "with DNS first and never sends no-op updates.",
        "Records have a TTL of 60 seconds.",
    ),
    fields=(
        hostname_field("myhome.dedyn.io"),
        CredentialField("token", "Token", True, "a token from https://desec.io/tokens", check_token),
    ),
    supports_ipv6=True,
    policy=Policy(
        min_interval_s=60,
        fatal_codes=frozenset({"badauth"}),
        retry_after_s={"http-5xx": 600, "http-429": 120, "network": 300, "unknown": 1800, "badrequest": 900},
        default_retry_s=1800,
    ),
    update_fn=update,
    preflight_fn=preflight,
)
