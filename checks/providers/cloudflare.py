"""Cloudflare API v4 (``{server}`` = ``https://api.cloudflare.com/client/v4``).

Pre-flight is free here: ``GET /user/tokens/verify`` proves the token and
``GET /zones?name=`` proves it can see the zone, without touching a record.
Update: find the zone, read the A/AAAA record, and write only when its content
differs (``PATCH``), or create it (``POST``) when missing.  Every reply is the
envelope ``{"success", "errors": [{"code", "message"}], "result"}``; 403 with
code 10000 means the token lacks a permission.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any


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
    join_sent,
    retry_after_header,
    user_agent,
)

if TYPE_CHECKING:   # httpx is imported only by the code that sends requests (start-up time)
    import httpx

PERMISSION_HINT = ("create the token at https://dash.cloudflare.com/profile/api-tokens with the 'Edit zone DNS' "
                   "template (permission Zone → DNS → Edit), add Zone → Zone → Read, and include this zone "
                   "under 'Zone Resources'")
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{40,}")
_GLOBAL_KEY_RE = re.compile(r"[0-9a-f]{37}")
_BAD_TOKEN_CODES = {1000, 6003, 6111, 9106, 9109, 10001}


def check_token(value: str) -> str | None:
    token = value.strip()
    if value != token:
        return "the token has spaces at the start or end (copy it again)"
    if token.lower().startswith("bearer "):
        return "enter only the token itself, without 'Bearer '"
    if _GLOBAL_KEY_RE.fullmatch(token):
        return ("this looks like the Global API Key, which ddns-wizard does not use (it controls your whole "
                "account). " + PERMISSION_HINT[0].upper() + PERMISSION_HINT[1:] + ".")
    if not _TOKEN_RE.fullmatch(token):
        return ("a Cloudflare API token is 40 or more letters, digits, '-' and '_'; " + PERMISSION_HINT
                + ", then copy the token shown once after 'Create Token'")
    return None


def check_ttl(value: str) -> str | None:
    try:
        ttl = int(value)
    except ValueError:
        return "ttl must be a number of seconds (1 = automatic, or 60..86400)"
    if ttl == 1 or 60 <= ttl <= 86400:
        return None
    return "ttl must be 1 (automatic) or between 60 and 86400 seconds"


class _Stop(Exception):
    """An API call failed; ``result`` is what the update returns."""

    def __init__(self, result: UpdateResult | PreflightResult) -> None:
        super().__init__("cloudflare api call failed")
        self.result = result


def _headers(host: HostConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {(host.token or '').strip()}",
            "User-Agent": user_agent(host.options.get("contact")),
            "Accept": "application/json"}


def _errors(data: Any) -> list[tuple[int | None, str]]:
    out: list[tuple[int | None, str]] = []
    if isinstance(data, dict) and isinstance(data.get("errors"), list):
        for e in data["errors"]:
            if isinstance(e, dict):
                code = e.get("code")
                out.append((code if isinstance(code, int) else None, str(e.get("message", ""))[:200]))
    return out


def failure(spec: ProviderSpec, host: HostConfig, response: httpx.Response, sent: str | None,
            what: str, zone: str | None = None) -> UpdateResult:
    """Map a failed API reply onto an error UpdateResult (never raises)."""
    status = response.status_code
    try:
        data = response.json()
    except ValueError:
        data = None
    errors = _errors(data)
    codes = [c for c, _ in errors if c is not None]
    detail = "; ".join(f"{c}: {m}" if c is not None else m for c, m in errors) or (
        body_excerpt(response.text) if response.text.strip() else "no details")
    code = f"HTTP {status}" + (f" {codes[0]}" if codes else "")
    zone_text = zone or host.options.get("zone") or "the zone"
    if status == 429:
        wait = retry_after_header(response.headers.get("retry-after"), spec.policy.retry_for("http-429"))
        return spec.error(host, sent=sent, code=code, retry_after_s=wait,
                          message=f"Cloudflare's rate limit was hit while trying to {what}; waiting {wait} s.")
    if status >= 500:
        wait = retry_after_header(response.headers.get("retry-after"), spec.policy.retry_for("http-5xx"))
        return spec.error(host, sent=sent, code=code, retry_after_s=wait,
                          message=f"Cloudflare had a server problem (HTTP {status}) while trying to {what}; "
                                  f"retrying in {wait} s.")
    if status == 401 or any(c in _BAD_TOKEN_CODES for c in codes):
        return spec.error(host, sent=sent, code=code, fatal=True,
                          message=(f"Cloudflare rejected the API token ({detail}). Check that the token was copied "
                                   f"whole and is not expired or disabled; {PERMISSION_HINT}. Updates are stopped."))
    if status == 403 or 10000 in codes:
        return spec.error(host, sent=sent, code=code, fatal=True,
                          message=(f"The API token may not {what} in {zone_text} ({detail}): {PERMISSION_HINT}. "
                                   "Updates are stopped."))
    if 400 <= status < 500:
        return spec.error(host, sent=sent, code=code, fatal=True,
                          message=f"Cloudflare refused to {what} (HTTP {status}: {detail}). Updates are stopped.")
    return spec.error(host, sent=sent, code=code if data is not None else "unknown", retry_code="unknown",
                      message=f"Cloudflare gave an unexpected reply while trying to {what} (HTTP {status}: {detail}); "
                              "will retry later.")


async def _call(spec: ProviderSpec, host: HostConfig, client: httpx.AsyncClient, method: str, path: str,
                what: str, sent: str | None, *, params: dict[str, str] | None = None,
                json_body: dict[str, Any] | None = None, zone: str | None = None) -> Any:
    """One API call; returns ``result`` of a successful envelope or raises _Stop."""
    response = await client.request(method, spec.server_for(host) + path, params=params, json=json_body,
                                    headers=_headers(host), timeout=REQUEST_TIMEOUT_S)
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 400 or not isinstance(data, dict) or data.get("success") is not True:
        if response.status_code < 400 and isinstance(data, dict) and data.get("success") is False:
            raise _Stop(failure(spec, host, response, sent, what, zone))
        if response.status_code < 400:
            raise _Stop(spec.error(host, sent=sent, code="unknown", retry_code="unknown",
                                   message=(f"Cloudflare gave a reply ddns-wizard does not understand while trying "
                                            f"to {what} (HTTP {response.status_code}: "
                                            f"{body_excerpt(response.text) or 'empty'}); will retry later. "
                                            "Is the server URL right?")))
        raise _Stop(failure(spec, host, response, sent, what, zone))
    return data.get("result")


def zone_candidates(hostname: str) -> list[str]:
    labels = hostname.lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(0, len(labels) - 1)]


async def find_zone(spec: ProviderSpec, host: HostConfig, client: httpx.AsyncClient,
                    sent: str | None) -> tuple[str, str]:
    """(zone id, zone name) of the hostname's zone; raises _Stop when not visible to the token."""
    configured = host.options.get("zone")
    if host.options.get("zone_id"):   # known id: no Zone:Read permission needed
        return str(host.options["zone_id"]), str(configured or host.hostname)
    candidates = [str(configured).lower().rstrip(".")] if configured else zone_candidates(host.hostname)
    for name in candidates:
        result = await _call(spec, host, client, "GET", "/zones", f"look up the zone {name}", sent,
                             params={"name": name}, zone=name)
        if isinstance(result, list):
            for z in result:
                if isinstance(z, dict) and str(z.get("name", "")).lower() == name and z.get("id"):
                    return str(z["id"]), name
    shown = ", ".join(candidates)
    raise _Stop(spec.error(
        host, sent=sent, code="zone-not-found", fatal=True,
        message=(f"The API token sees no Cloudflare zone for {host.hostname} (tried {shown}). Add the domain to "
                 f"this Cloudflare account, or {PERMISSION_HINT}. Updates are stopped.")))


async def _update_family(spec: ProviderSpec, host: HostConfig, client: httpx.AsyncClient, zone_id: str,
                         zone: str, rtype: str, address: str, sent: str | None) -> tuple[str, str]:
    """Returns (outcome "updated"|"unchanged"|"created", note)."""
    records = await _call(spec, host, client, "GET", f"/zones/{zone_id}/dns_records",
                          f"read the {rtype} record of {host.hostname}", sent,
                          params={"type": rtype, "name": host.hostname}, zone=zone)
    records = [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []
    note = ""
    if not records:
        ttl = int(host.options.get("ttl", 1))
        body = {"type": rtype, "name": host.hostname, "content": address, "ttl": ttl,
                "proxied": bool(host.options.get("proxied", False))}
        await _call(spec, host, client, "POST", f"/zones/{zone_id}/dns_records",
                    f"create the {rtype} record of {host.hostname}", sent, json_body=body, zone=zone)
        return "created", note
    record = records[0]
    if len(records) > 1:
        note = f" ({len(records)} {rtype} records exist for this name; only the first was changed)"
    if record.get("proxied"):
        note += (" The record is proxied: DNS answers show Cloudflare's addresses, not yours, so "
                 "verification reads the API instead of DNS.")
    if str(record.get("content", "")) == address:
        return "unchanged", note
    rid = record.get("id")
    if not rid:
        raise _Stop(spec.error(host, sent=sent, code="unknown", retry_code="unknown",
                               message="Cloudflare listed the record without an id; will retry later."))
    await _call(spec, host, client, "PATCH", f"/zones/{zone_id}/dns_records/{rid}",
                f"change the {rtype} record of {host.hostname}", sent, json_body={"content": address}, zone=zone)
    return "updated", note


async def update(spec: ProviderSpec, host: HostConfig, ipv4: str | None, ipv6: str | None,
                 client: httpx.AsyncClient) -> UpdateResult:
    sent = join_sent(ipv4, ipv6)
    try:
        zone_id, zone = await find_zone(spec, host, client, sent)
        outcomes: list[tuple[str, str, str]] = []
        for rtype, address in (("A", ipv4), ("AAAA", ipv6)):
            if address:
                outcome, note = await _update_family(spec, host, client, zone_id, zone, rtype, address, sent)
                outcomes.append((rtype, outcome, note))
    except _Stop as stop:
        assert isinstance(stop.result, UpdateResult)
        return stop.result
    changed = [f"{t} {o}" for t, o, _ in outcomes if o != "unchanged"]
    notes = "".join(n for _, _, n in outcomes)
    if not changed:
        return spec.ok(host, sent=sent, result="unchanged", code="unchanged",
                       message=f"Cloudflare already had {sent} for {host.hostname}; nothing written.{notes}")
    return spec.ok(host, sent=sent, result="updated", code="success",
                   message=f"{host.hostname} now points to {sent} ({', '.join(changed)}).{notes}")


async def preflight(spec: ProviderSpec, host: HostConfig, client: httpx.AsyncClient) -> PreflightResult:
    try:
        account = host.options.get("account_id")
        path = f"/accounts/{account}/tokens/verify" if account else "/user/tokens/verify"
        result = await _call(spec, host, client, "GET", path, "verify the token", None)
        status = result.get("status") if isinstance(result, dict) else None
        if status != "active":
            return PreflightResult(False, f"Cloudflare says the token is {status or 'not active'}: create a new one; "
                                          f"{PERMISSION_HINT}.", code=str(status))
        zone_id, zone = await find_zone(spec, host, client, None)
        records = await _call(spec, host, client, "GET", f"/zones/{zone_id}/dns_records",
                              f"read the records of {host.hostname}", None,
                              params={"name": host.hostname}, zone=zone)
    except _Stop as stop:
        res = stop.result
        if isinstance(res, UpdateResult):
            if res.code and res.code.startswith("HTTP 401") and not host.options.get("account_id"):
                return PreflightResult(False, res.message + " If this is an account-owned token, set account_id "
                                       "so it is verified at /accounts/ID/tokens/verify.", code=res.code)
            return PreflightResult(False, res.message, code=res.code)
        return res
    existing = [f"{r.get('type')} {r.get('content')}" for r in records if isinstance(r, dict)] if isinstance(
        records, list) else []
    where = f"currently {', '.join(existing)}" if existing else "no record yet: the first update creates it"
    return PreflightResult(True, f"The token is active and can see the zone {zone} ({host.hostname}: {where}). "
                                 "No record was changed.", code="active")


SPEC = ProviderSpec(
    name="cloudflare",
    title="Cloudflare",
    family="cloudflare",
    cost="free, own domain",
    url="https://dash.cloudflare.com/sign-up",
    default_server="https://api.cloudflare.com/client/v4",
    needs="your own domain added to a Cloudflare account",
    signup_steps=(
        "Sign up at https://dash.cloudflare.com/sign-up, click 'Add a domain', choose the Free plan and change "
        "the name servers at your registrar to the two Cloudflare shows.",
        "Open https://dash.cloudflare.com/profile/api-tokens and click 'Create Token'.",
        "Pick the 'Edit zone DNS' template; under Permissions add 'Zone → Zone → Read'; under 'Zone Resources' "
        "choose 'Include → Specific zone → your domain'.",
        "Click 'Continue to summary', then 'Create Token', and copy the token (it is shown only once).",
        "Enter the full hostname (e.g. home.example.org) and the token here.",
    ),
    pitfalls=(
        "Use an API token, not the Global API Key: the key controls the whole account.",
        "The token needs Zone → DNS → Edit on the zone; add Zone → Zone → Read so the zone can be found by name "
        "(or set zone_id). A missing permission answers 403 / code 10000.",
        "Proxied (orange-cloud) records resolve to Cloudflare's addresses, not yours: DNS checks cannot "
        "confirm them, and only HTTP(S) ports are reachable through the proxy.",
        "Account-owned tokens verify at /accounts/ID/tokens/verify: set account_id for those.",
    ),
    fields=(
        hostname_field("home.example.org"),
        CredentialField("token", "API token", True, "an API token with Zone.DNS Edit (and Zone.Zone Read)",
                        check_token),
        CredentialField("zone", "Zone", False, "the domain as added to Cloudflare (default: found from the hostname)",
                        None, required=False),
        CredentialField("ttl", "TTL", False, "1 = automatic, or 60..86400 seconds (used when creating the record)",
                        check_ttl, required=False),
    ),
    supports_ipv6=True,
    policy=Policy(min_interval_s=60, fatal_codes=frozenset(),
                  retry_after_s={"http-5xx": 300, "http-429": 300, "network": 300, "unknown": 900},
                  default_retry_s=900),
    update_fn=update,
    preflight_fn=preflight,
)
