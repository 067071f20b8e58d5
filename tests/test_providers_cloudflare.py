"""Cloudflare v4 API: token checks, zone lookup, write-only-when-different, error mapping.

Cloudflare is replaced by a small in-memory fake behind httpx.MockTransport
(no real provider may be contacted).
"""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given, settings, strategies as st

from checks.config import HostConfig
from checks.model import to_jsonable
from checks.providers import cloudflare
from checks.providers.registry import get_provider

TOKEN = "Ab3dEfGh1jKlMn0pQrStUvWxYz_0123456789-ab"   # 40 characters
SPEC = get_provider("cloudflare")
HOST = HostConfig(hostname="home.lab-zone.net", provider="cloudflare", token=TOKEN)


class FakeCloudflare:
    def __init__(self, *, token: str = TOKEN, zones: dict | None = None, records: list | None = None,
                 permissions_ok: bool = True) -> None:
        self.token = token
        self.zones = zones if zones is not None else {"lab-zone.net": "zid1"}
        self.records = records if records is not None else [
            {"id": "r1", "type": "A", "name": "home.lab-zone.net", "content": "23.128.64.10", "proxied": False}]
        self.permissions_ok = permissions_ok
        self.requests: list[httpx.Request] = []

    def env(self, result, status=200, success=True, errors=()):  # type: ignore[no-untyped-def]
        return httpx.Response(status, json={"success": success, "errors": list(errors), "messages": [],
                                            "result": result})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self.env(None, 401, False, [{"code": 1000, "message": "Invalid API Token"}])
        path = request.url.path.removeprefix("/client/v4")
        if path == "/user/tokens/verify":
            return self.env({"id": "t", "status": "active"})
        if path == "/zones":
            name = request.url.params.get("name")
            return self.env([{"id": self.zones[name], "name": name}] if name in self.zones else [])
        if path.endswith("/dns_records") and request.method == "GET":
            rtype = request.url.params.get("type")
            name = request.url.params.get("name")
            return self.env([r for r in self.records if r["name"] == name and (rtype is None or r["type"] == rtype)])
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
        ("A", "23.128.64.20", 1), ("AAAA", "2a0c:b641:100::20", 1)]


async def test_zone_found_from_longest_suffix_first_and_server_override() -> None:
    fake = FakeCloudflare(zones={"lab-zone.net": "zid1"})
    host = HostConfig(hostname="a.b.lab-zone.net", provider="cloudflare", token=TOKEN,
                      server="https://11.1.0.82/client/v4")
    await run(fake, host=host)
    names = [r.url.params["name"] for r in fake.requests if r.url.path.endswith("/zones")]
    assert names == ["a.b.lab-zone.net", "b.lab-zone.net", "lab-zone.net"]
    assert all(r.url.host == "11.1.0.82" for r in fake.requests)


async def test_wrong_token_is_fatal_with_a_clear_message() -> None:
    fake = FakeCloudflare(token="X" * 40)
    r = await run(fake)
    assert r.result == "error" and r.fatal and "rejected the API token" in r.message
    assert len(fake.requests) == 1           # stops at the first refusal
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
        return httpx.Response(429, headers={"Retry-After": "300"},
                              json={"success": False, "errors": [{"code": 971, "message": "throttled"}]})
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


@pytest.mark.parametrize("token, ok", [
    (TOKEN, True), ("0123456789abcdef0123456789abcdef01234", False),  # 37 hex: the Global API Key
    ("short", False), ("Bearer " + TOKEN, False),
])
def test_token_shape(token: str, ok: bool) -> None:
    assert (cloudflare.check_token(token) is None) is ok


def test_global_api_key_is_recognised() -> None:
    assert "Global API Key" in (cloudflare.check_token("0123456789abcdef0123456789abcdef01234") or "")


@settings(max_examples=150, deadline=None)
@given(status=st.sampled_from([200, 400, 401, 403, 404, 429, 500]),
       body=st.one_of(st.text(max_size=200), st.recursive(
           st.none() | st.booleans() | st.integers() | st.text(max_size=20),
           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
               st.sampled_from(["success", "errors", "result", "id", "name", "content", "code", "message"]),
               kids, max_size=4), max_leaves=12).map(json.dumps)))
def test_no_reply_crashes_the_client(status: int, body: str) -> None:
    import asyncio

    r = asyncio.run(run(lambda req: httpx.Response(status, text=body)))
    assert r.result in ("updated", "unchanged", "error") and r.message
    if r.result == "error":
        assert r.fatal or (r.retry_after_s or 0) > 0
