"""Cloudflare API v4 (``{server}`` = ``https://api.cloudflare.com/client/v4``).

Pre-flight is free here: ``GET /user/tokens/verify`` (a user token, ``cfut_``) or
``GET /accounts/ID/tokens/verify`` (an account token, ``cfat_``) proves the token, and
``GET /zones?name=`` plus the record list prove it can see the zone, without touching
a record.

Update (after favonia/cloudflare-ddns ``internal/setter/setter.go``): read every
A/AAAA record of the name and reconcile the set per family -- a record that already
holds the address is kept, otherwise one stale record is changed to it (``PATCH``,
which keeps its proxy and TTL settings) or one is created (``POST``), and the other
stale records are deleted, so the name serves exactly the current address.
Addresses listed in the host's ``keep_addresses`` are never touched (a round robin
the user keeps on purpose).

Proxied ("orange cloud") records are served from Cloudflare's edge: public DNS
answers Cloudflare's addresses, never the record's.  ``published`` reads the API
record, and the updater and ``watch`` compare with it instead of DNS.

Names: zones come back in Unicode for IDN zones, record names in Punycode
(``checks.idn``); both are compared in their ASCII form.  Every reply is the envelope
``{"success", "errors": [{"code", "message"}], "result"}``; 403 with code 10000 means
the token lacks a permission.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from checks.config import HostConfig
from checks.idn import IdnError, same_name, to_ascii
from checks.model import ProviderView, UpdateResult

from .base import (
    REQUEST_TIMEOUT_S,
    CredentialField,
    Policy,
    PreflightResult,
    ProviderSpec,
    body_excerpt,
    hostname_field,
    join_sent,
    keep_addresses,
    retry_after_header,
    user_agent,
)

if TYPE_CHECKING:  # httpx is imported only by the code that sends requests (start-up time)
    import httpx

# Only Zone -> DNS -> Edit is needed: listing zones by name works with it (favonia/cloudflare-ddns
# README: "To update DNS records, the updater needs the Zone - DNS - Edit permission", while its
# code looks zones up by name: internal/api/cloudflare_records.go listZoneMeta).
PERMISSION_HINT = (
    "create the token at https://dash.cloudflare.com/profile/api-tokens with the 'Edit zone DNS' "
    "template (its one permission, Zone → DNS → Edit, is all ddns-wizard needs) and include this "
    "zone under 'Zone Resources'"
)
ACCOUNT_ID_HINT = (
    "the Account ID is on the dashboard's account home page (⋯ menu → 'Copy account ID'), 32 hexadecimal characters"
)
# Scannable formats: "Each credential type has a distinct prefix followed by 40 characters and a
# checksum" (developers.cloudflare.com/fundamentals/api/get-started/token-formats).
TOKEN_PREFIXES = {"cfk_": "global-key", "cfut_": "user", "cfat_": "account"}
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{40,}")
_PREFIXED_BODY_RE = re.compile(r"[A-Za-z0-9_-]{40,}")
_GLOBAL_KEY_RE = re.compile(r"[0-9a-f]{37}")
_ACCOUNT_ID_RE = re.compile(r"[0-9a-f]{32}")
# 9109 "Invalid access token" on /zones (favonia scripts/github-actions/cloudflare-auth-error-watch/cases.go),
# 6003/6111 malformed Authorization header, 1000 "Invalid API Token" on /user/tokens/verify.
_BAD_TOKEN_CODES = {1000, 6003, 6111, 9106, 9109, 10001}


def token_kind(token: str) -> str:
    """``global-key`` | ``user`` | ``account`` from the prefix, ``legacy`` for an unprefixed token."""
    t = token.strip()
    for prefix, kind in TOKEN_PREFIXES.items():
        if t.startswith(prefix):
            return kind
    return "global-key" if _GLOBAL_KEY_RE.fullmatch(t) else "legacy"


def check_token(value: str) -> str | None:
    token = value.strip()
    if value != token:
        return "the token has spaces at the start or end (copy it again)"
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return "the token is wrapped in quotation marks; enter only the token itself"
    if token.lower().startswith("bearer "):
        return "enter only the token itself, without 'Bearer '"
    kind = token_kind(token)
    if kind == "global-key":
        return (
            "this is the Global API Key (cfk_… or 37 hexadecimal characters), which ddns-wizard does not use: "
            "it controls your whole account. " + PERMISSION_HINT[0].upper() + PERMISSION_HINT[1:] + "."
        )
    if kind in ("user", "account"):
        prefix = next(p for p, k in TOKEN_PREFIXES.items() if k == kind)
        if not _PREFIXED_BODY_RE.fullmatch(token[len(prefix) :]):
            return (
                f"a {prefix}… token is the prefix, 40 characters and a checksum: this one looks cut short "
                "(copy it again; Cloudflare shows it only once)"
            )
        return None
    if not _TOKEN_RE.fullmatch(token):
        return (
            "a Cloudflare API token starts with cfut_ (or cfat_ for an account token) followed by 40 or more "
            "letters and digits (older tokens have no prefix); "
            + PERMISSION_HINT
            + ", then copy the token shown once after 'Create Token'"
        )
    return None


def check_account_id(value: str) -> str | None:
    return None if _ACCOUNT_ID_RE.fullmatch(value.strip().lower()) else f"not an account ID: {ACCOUNT_ID_HINT}"


def check_ttl(value: str) -> str | None:
    try:
        ttl = int(value)
    except ValueError:
        return "ttl must be a number of seconds (1 = automatic, or 60..86400)"
    if ttl == 1 or 60 <= ttl <= 86400:
        return None
    return "ttl must be 1 (automatic) or between 60 and 86400 seconds"


def check_host(host: HostConfig) -> list[str]:
    problems = []
    proxied = host.options.get("proxied")
    if proxied is not None and not isinstance(proxied, bool):
        problems.append(f"{host.hostname}: proxied must be true or false")
    return problems


class _Stop(Exception):
    """An API call failed; ``result`` is what the update returns."""

    def __init__(self, result: UpdateResult | PreflightResult) -> None:
        super().__init__("cloudflare api call failed")
        self.result = result


def _headers(host: HostConfig) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {(host.token or '').strip()}",
        "User-Agent": user_agent(host.options.get("contact")),
        "Accept": "application/json",
    }


def _errors(data: Any) -> list[tuple[int | None, str]]:
    out: list[tuple[int | None, str]] = []
    if isinstance(data, dict) and isinstance(data.get("errors"), list):
        for e in data["errors"]:
            if isinstance(e, dict):
                code = e.get("code")
                out.append((code if isinstance(code, int) else None, str(e.get("message", ""))[:200]))
    return out


def failure(
    spec: ProviderSpec, host: HostConfig, response: httpx.Response, sent: str | None, what: str, zone: str | None = None
) -> UpdateResult:
    """Map a failed API reply onto an error UpdateResult (never raises)."""
    status = response.status_code
    try:
        data = response.json()
    except ValueError:
        data = None
    errors = _errors(data)
    codes = [c for c, _ in errors if c is not None]
    detail = "; ".join(f"{c}: {m}" if c is not None else m for c, m in errors) or (
        body_excerpt(response.text) if response.text.strip() else "no details"
    )
    code = f"HTTP {status}" + (f" {codes[0]}" if codes else "")
    zone_text = zone or host.options.get("zone") or "the zone"
    if status == 429:
        wait = retry_after_header(response.headers.get("retry-after"), spec.policy.retry_for("http-429"))
        return spec.error(
            host,
            sent=sent,
            code=code,
            retry_after_s=wait,
            message=f"Cloudflare's rate limit was hit while trying to {what}; waiting {wait} s.",
        )
    if status >= 500:
        wait = retry_after_header(response.headers.get("retry-after"), spec.policy.retry_for("http-5xx"))
        return spec.error(
            host,
            sent=sent,
            code=code,
            retry_after_s=wait,
            message=f"Cloudflare had a server problem (HTTP {status}) while trying to {what}; retrying in {wait} s.",
        )
    if status == 401 or any(c in _BAD_TOKEN_CODES for c in codes):
        return spec.error(
            host,
            sent=sent,
            code=code,
            fatal=True,
            message=(
                f"Cloudflare rejected the API token ({detail}). Check that the token was copied "
                f"whole and is not expired or disabled; {PERMISSION_HINT}. Updates are stopped."
            ),
        )
    if status == 403 or 10000 in codes:
        return spec.error(
            host,
            sent=sent,
            code=code,
            fatal=True,
            message=(
                f"The API token may not {what} in {zone_text} ({detail}): {PERMISSION_HINT}. Updates are stopped."
            ),
        )
    if 400 <= status < 500:
        return spec.error(
            host,
            sent=sent,
            code=code,
            fatal=True,
            message=f"Cloudflare refused to {what} (HTTP {status}: {detail}). Updates are stopped.",
        )
    return spec.error(
        host,
        sent=sent,
        code=code if data is not None else "unknown",
        retry_code="unknown",
        message=f"Cloudflare gave an unexpected reply while trying to {what} (HTTP {status}: {detail}); "
        "will retry later.",
    )


async def _call(
    spec: ProviderSpec,
    host: HostConfig,
    client: httpx.AsyncClient,
    method: str,
    path: str,
    what: str,
    sent: str | None,
    *,
    params: dict[str, str] | None = None,
    json_body: dict[str, Any] | None = None,
    zone: str | None = None,
) -> Any:
    """One API call; returns ``result`` of a successful envelope or raises _Stop."""
    response = await client.request(
        method,
        spec.server_for(host) + path,
        params=params,
        json=json_body,
        headers=_headers(host),
        timeout=REQUEST_TIMEOUT_S,
    )
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 400 or not isinstance(data, dict) or data.get("success") is not True:
        if response.status_code < 400 and isinstance(data, dict) and data.get("success") is False:
            raise _Stop(failure(spec, host, response, sent, what, zone))
        if response.status_code < 400:
            raise _Stop(
                spec.error(
                    host,
                    sent=sent,
                    code="unknown",
                    retry_code="unknown",
                    message=(
                        f"Cloudflare gave a reply ddns-wizard does not understand while trying "
                        f"to {what} (HTTP {response.status_code}: "
                        f"{body_excerpt(response.text) or 'empty'}); will retry later. "
                        "Is the server URL right?"
                    ),
                )
            )
        raise _Stop(failure(spec, host, response, sent, what, zone))
    return data.get("result")


def zone_candidates(hostname: str) -> list[str]:
    labels = _ascii(hostname).split(".")
    return [".".join(labels[i:]) for i in range(0, len(labels) - 1)]


def _ascii(name: str) -> str:
    try:
        return to_ascii(name)
    except IdnError:
        return name.strip().rstrip(".").lower()


async def find_zone(
    spec: ProviderSpec, host: HostConfig, client: httpx.AsyncClient, sent: str | None
) -> tuple[str, str]:
    """(zone id, zone name in ASCII) of the hostname's zone; raises _Stop when not visible to the token.

    The API answers an IDN zone's name in Unicode (``bücher.example``) even when asked with
    its Punycode (ddclient ``_cloudflare_zone_to_unicode``): names are compared in IDNA.
    """
    configured = host.options.get("zone")
    if host.options.get("zone_id"):  # known id: no zone lookup at all
        return str(host.options["zone_id"]), _ascii(str(configured or host.hostname))
    candidates = [_ascii(str(configured))] if configured else zone_candidates(host.hostname)
    for name in candidates:
        result = await _call(
            spec, host, client, "GET", "/zones", f"look up the zone {name}", sent, params={"name": name}, zone=name
        )
        if isinstance(result, list):
            for z in result:
                if isinstance(z, dict) and z.get("id") and same_name(str(z.get("name", "")), name):
                    return str(z["id"]), name
    shown = ", ".join(candidates)
    raise _Stop(
        spec.error(
            host,
            sent=sent,
            code="zone-not-found",
            fatal=True,
            message=(
                f"The API token sees no Cloudflare zone for {host.hostname} (tried {shown}). Check that the domain "
                "is in this Cloudflare account and that the token's 'Zone Resources' include it (or set zone_id); "
                f"{PERMISSION_HINT}. Updates are stopped."
            ),
        )
    )


def _canonical(content: Any) -> str | None:
    try:
        return ipaddress.ip_address(str(content).strip()).compressed
    except ValueError:
        return None


async def read_records(
    spec: ProviderSpec, host: HostConfig, client: httpx.AsyncClient, zone_id: str, zone: str, sent: str | None
) -> list[dict[str, Any]]:
    """Every record of the name (one call; A, AAAA and anything else), names compared in ASCII."""
    name = _ascii(host.hostname)
    result = await _call(
        spec,
        host,
        client,
        "GET",
        f"/zones/{zone_id}/dns_records",
        f"read the records of {host.hostname}",
        sent,
        params={"name": name, "per_page": "100"},
        zone=zone,
    )
    records = [r for r in result if isinstance(r, dict)] if isinstance(result, list) else []
    return [r for r in records if same_name(str(r.get("name", name)), name)]


def _rid(record: dict[str, Any]) -> str:
    return str(record.get("id") or "")


async def _reconcile(
    spec: ProviderSpec,
    host: HostConfig,
    client: httpx.AsyncClient,
    zone_id: str,
    zone: str,
    rtype: str,
    address: str,
    records: list[dict[str, Any]],
    sent: str | None,
) -> list[str]:
    """Make the name's ``rtype`` records exactly ``address`` (plus ``keep_addresses``); returns what was done.

    favonia/cloudflare-ddns ``SetIPs``: records already holding the target stay (duplicates
    are tolerated); otherwise one outdated record is recycled (updated) or a new one
    created; every other outdated record is deleted.  Writes go in that order, so the name
    never serves nothing in between.
    """
    target = ipaddress.ip_address(address).compressed
    keep = keep_addresses(host) or frozenset()
    mine = [r for r in records if r.get("type") == rtype]
    matched = [r for r in mine if _canonical(r.get("content")) == target]
    outdated = sorted(
        (r for r in mine if _canonical(r.get("content")) != target and _canonical(r.get("content")) not in keep),
        key=_rid,
    )
    done: list[str] = []
    if not matched:
        if outdated:
            recycled = outdated.pop(0)
            if not _rid(recycled):
                raise _Stop(
                    spec.error(
                        host,
                        sent=sent,
                        code="unknown",
                        retry_code="unknown",
                        message="Cloudflare listed a record without an id; will retry later.",
                    )
                )
            await _call(
                spec,
                host,
                client,
                "PATCH",
                f"/zones/{zone_id}/dns_records/{_rid(recycled)}",
                f"change the {rtype} record of {host.hostname}",
                sent,
                json_body={"content": address},
                zone=zone,
            )
            done.append(f"{rtype} {recycled.get('content')} → {address}")
        else:
            ttl = int(host.options.get("ttl", 1))
            body = {
                "type": rtype,
                "name": _ascii(host.hostname),
                "content": address,
                "ttl": ttl,
                "proxied": bool(host.options.get("proxied", False)),
            }
            await _call(
                spec,
                host,
                client,
                "POST",
                f"/zones/{zone_id}/dns_records",
                f"create the {rtype} record of {host.hostname}",
                sent,
                json_body=body,
                zone=zone,
            )
            done.append(f"{rtype} {address} created")
    for stale in outdated:
        if not _rid(stale):
            continue
        await _call(
            spec,
            host,
            client,
            "DELETE",
            f"/zones/{zone_id}/dns_records/{_rid(stale)}",
            f"delete the stale {rtype} record {stale.get('content')} of {host.hostname}",
            sent,
            zone=zone,
        )
        done.append(f"stale {rtype} {stale.get('content')} removed")
    return done


def _notes(host: HostConfig, records: list[dict[str, Any]], families: list[str]) -> str:
    notes = []
    proxied = sorted({str(r.get("type")) for r in records if r.get("proxied") and r.get("type") in families})
    if proxied:
        notes.append(
            f" The {'/'.join(proxied)} record is proxied: public DNS answers Cloudflare's edge addresses, "
            "not yours, by design; ddns-wizard compares and verifies it against the record in the API, and "
            "only HTTP(S) ports reach you through the proxy."
        )
    keep = keep_addresses(host) or frozenset()
    kept = sorted(
        {str(r.get("content")) for r in records if r.get("type") in families and _canonical(r.get("content")) in keep}
    )
    if kept:
        notes.append(f" Kept {', '.join(kept)} as configured (keep_addresses).")
    return "".join(notes)


async def update(
    spec: ProviderSpec, host: HostConfig, ipv4: str | None, ipv6: str | None, client: httpx.AsyncClient
) -> UpdateResult:
    sent = join_sent(ipv4, ipv6)
    families = [(t, a) for t, a in (("A", ipv4), ("AAAA", ipv6)) if a]
    try:
        zone_id, zone = await find_zone(spec, host, client, sent)
        records = await read_records(spec, host, client, zone_id, zone, sent)
        done: list[str] = []
        for rtype, address in families:
            done += await _reconcile(spec, host, client, zone_id, zone, rtype, address, records, sent)
    except _Stop as stop:
        assert isinstance(stop.result, UpdateResult)
        return stop.result
    notes = _notes(host, records, [t for t, _ in families])
    if not done:
        return spec.ok(
            host,
            sent=sent,
            result="unchanged",
            code="unchanged",
            message=f"Cloudflare already had {sent} for {host.hostname}; nothing written.{notes}",
        )
    return spec.ok(
        host,
        sent=sent,
        result="updated",
        code="success",
        message=f"{host.hostname} now points to {sent} ({'; '.join(done)}).{notes}",
    )


def view_of(records: list[dict[str, Any]]) -> ProviderView:
    v4 = sorted({c for r in records if r.get("type") == "A" and (c := _canonical(r.get("content")))})
    v6 = sorted({c for r in records if r.get("type") == "AAAA" and (c := _canonical(r.get("content")))})
    proxied = tuple(sorted({str(r["type"]) for r in records if r.get("proxied") and r.get("type") in ("A", "AAAA")}))
    return ProviderView(ipv4=tuple(v4), ipv6=tuple(v6), proxied=proxied, source="cloudflare-api")


async def published(spec: ProviderSpec, host: HostConfig, client: httpx.AsyncClient) -> ProviderView:
    """The name's A/AAAA records as the API holds them (read-only: zone lookup and one list)."""
    try:
        zone_id, zone = await find_zone(spec, host, client, None)
        records = await read_records(spec, host, client, zone_id, zone, None)
    except _Stop as stop:
        return ProviderView(error=stop.result.message, source="cloudflare-api")
    return view_of(records)


async def preflight(spec: ProviderSpec, host: HostConfig, client: httpx.AsyncClient) -> PreflightResult:
    token = (host.token or "").strip()
    kind = token_kind(token)
    account = str(host.options.get("account_id") or "").strip()
    try:
        if kind == "account" and not account:
            # Account tokens verify only at /accounts/{account_id}/tokens/verify; /user/tokens/verify
            # refuses them (favonia removed its user-token preflight for this: c6d35980, #1240).
            return PreflightResult(
                False,
                "This is an Account API token (cfat_…): Cloudflare checks those only "
                f"together with the account they belong to. Enter the Account ID: "
                f"{ACCOUNT_ID_HINT}.",
                code="account-id-needed",
            )
        path = f"/accounts/{account}/tokens/verify" if account else "/user/tokens/verify"
        result = await _call(spec, host, client, "GET", path, "verify the token", None)
        status = result.get("status") if isinstance(result, dict) else None
        if status != "active":
            return PreflightResult(
                False,
                f"Cloudflare says the token is {status or 'not active'}: create a new one; {PERMISSION_HINT}.",
                code=str(status),
            )
        zone_id, zone = await find_zone(spec, host, client, None)
        records = await read_records(spec, host, client, zone_id, zone, None)
    except _Stop as stop:
        res = stop.result
        if isinstance(res, UpdateResult):
            if res.code and res.code.startswith("HTTP 401") and not account and kind == "legacy":
                return PreflightResult(
                    False,
                    res.message + " If this is an account-owned token, set account_id "
                    f"so it is verified at /accounts/ID/tokens/verify ({ACCOUNT_ID_HINT}).",
                    code=res.code,
                )
            return PreflightResult(False, res.message, code=res.code)
        return res
    return PreflightResult(
        True,
        f"The token is active and can see the zone {zone} ({host.hostname}: "
        f"{_describe_records(records)}). No record was changed.",
        code="active",
    )


def _describe_records(records: list[dict[str, Any]]) -> str:
    addr = [r for r in records if r.get("type") in ("A", "AAAA")]
    other = [r for r in records if r.get("type") not in ("A", "AAAA")]
    if not addr and not other:
        return "no record yet: the first update creates it"
    parts = [f"{r.get('type')} {r.get('content')}" + (" (proxied)" if r.get("proxied") else "") for r in addr]
    parts += [f"{r.get('type')} {r.get('content')}" for r in other]
    text = "currently " + ", ".join(parts)
    for rtype in ("A", "AAAA"):
        n = sum(1 for r in addr if r.get("type") == rtype)
        if n > 1:
            text += (
                f"; {n} {rtype} records: an update keeps one with your address and removes the others "
                "unless they are listed in keep_addresses"
            )
    if any(r.get("type") == "CNAME" for r in other):
        text += "; a CNAME cannot live beside A/AAAA records: remove it before the first update"
    return text


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
        "Use the 'Edit zone DNS' template: its one permission, Zone → DNS → Edit, is all ddns-wizard needs. Under "
        "'Zone Resources' choose 'Include → Specific zone → your domain'.",
        "Click 'Continue to summary', then 'Create Token', and copy the token (it starts with cfut_ and is shown "
        "only once).",
        "Give ddns-wizard the full hostname (e.g. home.example.org) and the token. An account token (cfat_…, made under "
        "Manage Account → API Tokens) also needs the Account ID.",
    ),
    pitfalls=(
        "Use an API token (cfut_… or cfat_…), not the Global API Key (cfk_…): the key controls the whole account.",
        "The token needs Zone → DNS → Edit on the zone, nothing more. A token limited to other zones sees no zone "
        "for your hostname; a missing permission answers 403 / code 10000.",
        "Proxied (orange-cloud) records resolve to Cloudflare's addresses, not yours, by design: ddns-wizard compares "
        "and verifies them against the API record, and only HTTP(S) ports are reachable through the proxy.",
        "Several A (or AAAA) records for one name form a round robin: ddns-wizard keeps one with your address and "
        "removes the stale ones; list addresses you keep on purpose in keep_addresses.",
        "Account-owned tokens (cfat_…) are verified at /accounts/ID/tokens/verify: set account_id for those.",
    ),
    fields=(
        hostname_field("home.example.org"),
        CredentialField(
            "token", "API token", True, "an API token (cfut_… or cfat_…) with Zone → DNS → Edit", check_token
        ),
        CredentialField(
            "account_id",
            "Account ID",
            False,
            "only for account tokens (cfat_…): the 32-character Account ID",
            check_account_id,
            required=False,
        ),
        CredentialField(
            "zone",
            "Zone",
            False,
            "the domain as added to Cloudflare (default: found from the hostname)",
            None,
            required=False,
        ),
        CredentialField(
            "ttl",
            "TTL",
            False,
            "1 = automatic, or 60..86400 seconds (used when creating the record)",
            check_ttl,
            required=False,
        ),
    ),
    supports_ipv6=True,
    policy=Policy(
        min_interval_s=60,
        fatal_codes=frozenset(),
        retry_after_s={"http-5xx": 300, "http-429": 300, "network": 300, "unknown": 900},
        default_retry_s=900,
    ),
    update_fn=update,
    preflight_fn=preflight,
    options={"multi_record": True},
    check_host=check_host,
    published_fn=published,
)
