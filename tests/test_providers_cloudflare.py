"""Cloudflare v4 API: token checks, zone lookup, write-only-when-different, error mapping.

Cloudflare is replaced by a small in-memory fake behind httpx.MockTransport
(no real provider may be contacted).
"""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.config import HostConfig
from checks.ddns.providers import cloudflare
from checks.ddns.providers.registry import get_provider
from checks.idn import same_name
from checks.model import to_jsonable

TOKEN = "Ab3dEfGh1jKlMn0pQrStUvWxYz_0123456789-ab"  # 40 characters
SPEC = get_provider("cloudflare")
HOST = HostConfig(hostname="home.lab-zone.net", provider="cloudflare", token=TOKEN)


class FakeCloudflare:
    def __init__(
        self, *, token: str = TOKEN, zones: dict | None = None, records: list | None = None, permissions_ok: bool = True
    ) -> None:
        self.token = token
        self.zones = zones if zones is not None else {"lab-zone.net": "zid1"}
        self.records = (
            records
            if records is not None
            else [{"id": "r1", "type": "A", "name": "home.lab-zone.net", "content": "23.128.64.10", "proxied": False}]
        )
        self.permissions_ok = permissions_ok
        self.requests: list[httpx.Request] = []

    def env(self, result, status=200, success=True, errors=()):  # type: ignore[no-untyped-def]
        return httpx.Response(
            status, json={"success": success, "errors": list(errors), "messages": [], "result": result}
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self.env(None, 401, False, [{"code": 1000, "message": "Invalid API Token"}])
        path = request.url.path.removeprefix("/client/v4")
        if path == "/user/tokens/verify":
            return self.env({"id": "t", "status": "active"})
        if path.startswith("/accounts/") and path.endswith("/tokens/verify"):
            return self.env({"id": "t", "status": "active"})
        if path == "/zones":
            # The API answers an IDN zone's name in Unicode, whichever form was asked (ddclient
            # _cloudflare_zone_to_unicode); the fake keeps zones under their display names.
            name = request.url.params.get("name")
            return self.env(
                [{"id": zid, "name": zname} for zname, zid in self.zones.items() if name and same_name(zname, name)]
            )
        if path.endswith("/dns_records") and request.method == "GET":
            rtype = request.url.params.get("type")
            name = request.url.params.get("name")
            return self.env([r for r in self.records if r["name"] == name and (rtype is None or r["type"] == rtype)])
        if request.method == "DELETE":
            rid = path.rsplit("/", 1)[1]
            self.records = [r for r in self.records if r["id"] != rid]
            return self.env({"id": rid})
        if not self.permissions_ok:
            return self.env(None, 403, False, [{"code": 10000, "message": "Authentication error"}])
        if path.endswith("/dns_records") and request.method == "POST":
            body = json.loads(request.content)
            rec = dict(body, id=f"r{len(self.records) + 1}")
            self.records.append(rec)
            return self.env(rec)
        if request.method == "PATCH":
            rid = path.rsplit("/", 1)[1]
            rec = next(r for r in self.records if r["id"] == rid)
            rec.update(json.loads(request.content))
            return self.env(rec)
        return self.env(None, 404, False, [{"code": 7003, "message": "Could not route"}])

    def writes(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")]


async def run(fake, host=HOST, ipv4="23.128.64.20", ipv6=None):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        return await SPEC.update(host, ipv4, ipv6, client)


async def test_changed_address_patches_the_existing_record() -> None:
    fake = FakeCloudflare()
    r = await run(fake)
    assert r.result == "updated" and r.code == "success"
    (write,) = fake.writes()
    assert write.method == "PATCH" and json.loads(write.content) == {"content": "23.128.64.20"}
    assert fake.records[0]["content"] == "23.128.64.20"
    assert write.headers["user-agent"].startswith("ddns-wizard ddns-wizard/")


async def test_same_address_writes_nothing() -> None:
    fake = FakeCloudflare()
    r = await run(fake, ipv4="23.128.64.10")
    assert r.result == "unchanged" and fake.writes() == []


async def test_missing_record_is_created_with_automatic_ttl() -> None:
    fake = FakeCloudflare(records=[])
    r = await run(fake, ipv6="2a0c:b641:100::20")
    assert r.result == "updated"
    bodies = [json.loads(w.content) for w in fake.writes()]
    assert [(b["type"], b["content"], b["ttl"]) for b in bodies] == [
        ("A", "23.128.64.20", 1),
        ("AAAA", "2a0c:b641:100::20", 1),
    ]


async def test_zone_found_from_longest_suffix_first_and_server_override() -> None:
    fake = FakeCloudflare(zones={"lab-zone.net": "zid1"})
    host = HostConfig(
        hostname="a.b.lab-zone.net", provider="cloudflare", token=TOKEN, server="https://11.1.0.82/client/v4"
    )
    await run(fake, host=host)
    names = [r.url.params["name"] for r in fake.requests if r.url.path.endswith("/zones")]
    assert names == ["a.b.lab-zone.net", "b.lab-zone.net", "lab-zone.net"]
    assert all(r.url.host == "11.1.0.82" for r in fake.requests)


async def test_wrong_token_is_fatal_with_a_clear_message() -> None:
    fake = FakeCloudflare(token="X" * 40)
    r = await run(fake)
    assert r.result == "error" and r.fatal and "rejected the API token" in r.message
    assert len(fake.requests) == 1  # stops at the first refusal
    assert TOKEN not in str(to_jsonable(r))


async def test_missing_permission_names_the_permission() -> None:
    fake = FakeCloudflare(permissions_ok=False)
    r = await run(fake)
    assert r.result == "error" and r.fatal and r.code == "HTTP 403 10000"
    assert "DNS → Edit" in r.message


async def test_zone_not_visible_is_fatal() -> None:
    fake = FakeCloudflare(zones={})
    r = await run(fake)
    assert r.fatal and r.code == "zone-not-found" and "sees no Cloudflare zone" in r.message


async def test_rate_limit_retries_after_header() -> None:
    def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429,
            headers={"Retry-After": "300"},
            json={"success": False, "errors": [{"code": 971, "message": "throttled"}]},
        )

    r = await run(limited)
    assert r.result == "error" and not r.fatal and r.retry_after_s == 300


async def test_garbage_is_an_error_not_a_crash() -> None:
    r = await run(lambda req: httpx.Response(200, text="<html>captive portal</html>"))
    assert r.result == "error" and r.code == "unknown" and not r.fatal and r.retry_after_s


async def test_preflight_verifies_token_and_zone_without_writing() -> None:
    fake = FakeCloudflare()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        res = await SPEC.preflight(HOST, client)
    assert res.ok and not res.spent_update and "lab-zone.net" in res.message and "23.128.64.10" in res.message
    assert fake.writes() == []
    assert fake.requests[0].url.path.endswith("/user/tokens/verify")


async def test_preflight_bad_token() -> None:
    fake = FakeCloudflare(token="Y" * 40)
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        res = await SPEC.preflight(HOST, client)
    assert not res.ok and "rejected the API token" in res.message and "account_id" in res.message


@pytest.mark.parametrize(
    "token, ok",
    [
        (TOKEN, True),
        ("0123456789abcdef0123456789abcdef01234", False),  # 37 hex: the Global API Key
        ("short", False),
        ("Bearer " + TOKEN, False),
    ],
)
def test_token_shape(token: str, ok: bool) -> None:
    assert (cloudflare.check_token(token) is None) is ok


def test_global_api_key_is_recognised() -> None:
    assert "Global API Key" in (cloudflare.check_token("0123456789abcdef0123456789abcdef01234") or "")


@settings(max_examples=150, deadline=None)
@given(
    status=st.sampled_from([200, 400, 401, 403, 404, 429, 500]),
    body=st.one_of(
        st.text(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda kids: (
                st.lists(kids, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["success", "errors", "result", "id", "name", "content", "code", "message"]),
                    kids,
                    max_size=4,
                )
            ),
            max_leaves=12,
        ).map(json.dumps),
    ),
)
def test_no_reply_crashes_the_client(status: int, body: str) -> None:
    import asyncio

    r = asyncio.run(run(lambda req: httpx.Response(status, text=body)))
    assert r.result in ("updated", "unchanged", "error") and r.message
    if r.result == "error":
        assert r.fatal or (r.retry_after_s or 0) > 0


# ---------------------------------------------------------------- several records per name
def rec(rid: str, content: str, rtype: str = "A", proxied: bool = False, name: str = "home.lab-zone.net") -> dict:
    return {"id": rid, "type": rtype, "name": name, "content": content, "proxied": proxied, "ttl": 1}


async def test_stale_records_beside_the_current_one_are_deleted() -> None:
    # favonia/cloudflare-ddns internal/setter/setter.go: a record holding the target stays, every
    # outdated one goes -- the name serves exactly the current address afterwards.
    fake = FakeCloudflare(records=[rec("r1", "23.128.64.10"), rec("r2", "23.128.64.20"), rec("r3", "23.128.64.30")])
    r = await run(fake)
    assert r.result == "updated", r
    assert [(w.method, w.url.path.rsplit("/", 1)[1]) for w in fake.writes()] == [("DELETE", "r1"), ("DELETE", "r3")]
    assert [x["content"] for x in fake.records] == ["23.128.64.20"]
    assert "stale A 23.128.64.10 removed" in r.message and "stale A 23.128.64.30 removed" in r.message


async def test_one_stale_record_is_recycled_and_the_rest_deleted() -> None:
    # setter.go stage 1 recycles one outdated record (update, keeping its settings), stage 2 deletes the rest.
    fake = FakeCloudflare(records=[rec("r2", "23.128.64.11", proxied=True), rec("r1", "23.128.64.10")])
    r = await run(fake)
    assert r.result == "updated"
    methods = [(w.method, w.url.path.rsplit("/", 1)[1]) for w in fake.writes()]
    assert methods == [("PATCH", "r1"), ("DELETE", "r2")]  # lowest id recycled first, as favonia sorts by ID
    assert json.loads(fake.writes()[0].content) == {"content": "23.128.64.20"}
    assert [(x["id"], x["content"]) for x in fake.records] == [("r1", "23.128.64.20")]


async def test_several_records_already_right_means_unchanged() -> None:
    # setter.go recordsAlreadyUpToDate: matching duplicates are tolerated residue.
    fake = FakeCloudflare(records=[rec("r1", "23.128.64.20"), rec("r2", "23.128.64.20")])
    r = await run(fake)
    assert r.result == "unchanged" and fake.writes() == []


async def test_keep_addresses_are_never_touched() -> None:
    host = HostConfig(
        hostname="home.lab-zone.net", provider="cloudflare", token=TOKEN, options={"keep_addresses": ["198.51.100.7"]}
    )
    fake = FakeCloudflare(records=[rec("r1", "23.128.64.10"), rec("r2", "198.51.100.7")])
    r = await run(fake, host=host)
    assert r.result == "updated"
    assert sorted(x["content"] for x in fake.records) == ["198.51.100.7", "23.128.64.20"]
    assert "Kept 198.51.100.7" in r.message
    again = await run(fake, host=host)
    assert again.result == "unchanged" and len(fake.writes()) == 1


async def test_other_family_is_left_alone() -> None:
    fake = FakeCloudflare(records=[rec("r1", "23.128.64.10"), rec("r6", "2a0c:b641:100::1", "AAAA")])
    await run(fake)  # IPv4 only
    assert any(x["type"] == "AAAA" and x["content"] == "2a0c:b641:100::1" for x in fake.records)


# ---------------------------------------------------------------- proxied records
async def test_proxied_record_with_the_address_is_unchanged_and_says_why_dns_differs() -> None:
    fake = FakeCloudflare(records=[rec("r1", "23.128.64.20", proxied=True)])
    r = await run(fake)
    assert r.result == "unchanged" and fake.writes() == []
    assert "proxied" in r.message and "edge" in r.message
    assert "verification reads the API instead of DNS" not in r.message  # the old, untrue promise


async def test_proxied_record_keeps_its_proxy_when_changed() -> None:
    fake = FakeCloudflare(records=[rec("r1", "23.128.64.10", proxied=True)])
    r = await run(fake)
    assert r.result == "updated"
    assert json.loads(fake.writes()[0].content) == {"content": "23.128.64.20"}  # PATCH content only
    assert fake.records[0]["proxied"] is True


async def test_published_view_reads_the_api_record_and_its_proxy_flag() -> None:
    fake = FakeCloudflare(
        records=[
            rec("r1", "23.128.64.20", proxied=True),
            rec("r6", "2a0c:b641:100::1", "AAAA"),
            rec("t1", "hello", "TXT"),
        ]
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        view = await SPEC.published(HOST, client)
    assert view.error is None and view.ipv4 == ("23.128.64.20",) and view.ipv6 == ("2a0c:b641:100::1",)
    assert view.proxied == ("A",) and view.source == "cloudflare-api"
    assert fake.writes() == []


async def test_published_view_error_is_data_and_redacted() -> None:
    fake = FakeCloudflare(token="Z" * 40)
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        view = await SPEC.published(HOST, client)
    assert view.error and "rejected the API token" in view.error and TOKEN not in view.error


# ---------------------------------------------------------------- internationalised zones
async def test_idn_zone_answered_in_unicode_is_found_and_records_use_punycode() -> None:
    # The API answers the zone as "bücher.example" although asked "xn--bcher-kva.example"
    # (ddclient: "Cloudflare always returns zone names in Unicode"); record names are Punycode.
    host = HostConfig(hostname="home.xn--bcher-kva.example", provider="cloudflare", token=TOKEN)
    fake = FakeCloudflare(
        zones={"bücher.example": "zidIDN"}, records=[rec("r1", "23.128.64.10", name="home.xn--bcher-kva.example")]
    )
    r = await run(fake, host=host)
    assert r.result == "updated", r
    asked = [q.url.params.get("name") for q in fake.requests if q.method == "GET"]
    assert asked == ["home.xn--bcher-kva.example", "xn--bcher-kva.example", "home.xn--bcher-kva.example"]
    assert "/zones/zidIDN/dns_records/r1" in str(fake.writes()[0].url)


async def test_unicode_zone_option_is_compared_in_idna() -> None:
    host = HostConfig(
        hostname="home.xn--bcher-kva.example", provider="cloudflare", token=TOKEN, options={"zone": "Bücher.example"}
    )
    fake = FakeCloudflare(zones={"bücher.example": "zidIDN"}, records=[])
    r = await run(fake, host=host)
    assert r.result == "updated"
    create = json.loads(fake.writes()[0].content)
    assert create["name"] == "home.xn--bcher-kva.example"


# ---------------------------------------------------------------- token formats
CFUT = "cfut_" + "A1b2C3d4E5" * 4 + "0a1b2c3d"
CFAT = "cfat_" + "Z9y8X7w6V5" * 4 + "9f8e7d6c"
CFK = "cfk_" + "q1W2e3R4t5" * 4 + "12345678"


@pytest.mark.parametrize(
    "token, problem",
    [
        (CFUT, None),
        (CFAT, None),
        (TOKEN, None),
        (CFK, "Global API Key"),  # developers.cloudflare.com .../token-formats: cfk_ = Global API Key
        ("cfut_" + "A1b2C3d4E5" * 2, "cut short"),
        (f'"{CFUT}"', "quotation marks"),  # favonia env_auth.go: tokens pasted with their quotes
        (" " + CFUT, "spaces"),
    ],
)
def test_current_token_formats(token: str, problem: str | None) -> None:
    found = cloudflare.check_token(token)
    assert (found is None) if problem is None else (problem in (found or "")), found


def test_token_kind_from_the_prefix() -> None:
    assert [cloudflare.token_kind(t) for t in (CFUT, CFAT, CFK, TOKEN)] == ["user", "account", "global-key", "legacy"]


def test_permission_hint_asks_only_for_dns_edit() -> None:
    # favonia/cloudflare-ddns README: "To update DNS records, the updater needs the Zone - DNS - Edit permission".
    text = " ".join([cloudflare.PERMISSION_HINT, *SPEC.signup_steps, *SPEC.pitfalls])
    assert "Zone → DNS → Edit" in text and "Zone → Zone → Read" not in text


async def test_account_token_without_account_id_is_said_from_the_prefix() -> None:
    host = HostConfig(hostname="home.lab-zone.net", provider="cloudflare", token=CFAT)
    fake = FakeCloudflare(token=CFAT)
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        res = await SPEC.preflight(host, client)
    assert not res.ok and res.code == "account-id-needed" and "Account ID" in res.message and "cfat_" in res.message
    assert fake.requests == []  # nothing asked that could only fail


async def test_account_token_is_verified_at_the_account() -> None:
    account = "0123456789abcdef0123456789abcdef"
    host = HostConfig(hostname="home.lab-zone.net", provider="cloudflare", token=CFAT, options={"account_id": account})
    fake = FakeCloudflare(token=CFAT)
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        res = await SPEC.preflight(host, client)
    assert res.ok, res
    assert fake.requests[0].url.path.endswith(f"/accounts/{account}/tokens/verify")


async def test_preflight_describes_several_records_and_proxy() -> None:
    fake = FakeCloudflare(records=[rec("r1", "23.128.64.10", proxied=True), rec("r2", "23.128.64.11")])
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        res = await SPEC.preflight(HOST, client)
    assert res.ok and "(proxied)" in res.message and "2 A records" in res.message and fake.writes() == []


def test_account_id_and_proxied_are_validated() -> None:
    host = HostConfig(
        hostname="home.lab-zone.net",
        provider="cloudflare",
        token=TOKEN,
        options={"account_id": "not-an-id", "proxied": "yes"},
    )
    problems = " ".join(SPEC.validate(host))
    assert "Account ID" in problems and "proxied must be true or false" in problems
