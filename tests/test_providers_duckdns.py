"""DuckDNS: token shape, hostname domain, every reply, and the token never leaking.

DuckDNS is replaced by httpx.MockTransport: no real provider may be contacted.
"""

from __future__ import annotations

import logging

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.config import HostConfig
from checks.ddns.providers import duckdns
from checks.ddns.providers.registry import get_provider
from checks.model import to_jsonable

TOKEN = "a1b2c3d4-1234-5678-9abc-def012345678"
HOST = HostConfig(hostname="myhome.duckdns.org", provider="duckdns", token=TOKEN)
SPEC = get_provider("duckdns")


async def update(host: HostConfig, handler, ipv4="23.128.64.20", ipv6=None):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        return await SPEC.update(host, ipv4, ipv6, client)


def replying(body: str, status: int = 200, seen: list | None = None):  # type: ignore[no-untyped-def]
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, text=body)

    return handler


async def test_request_uses_subdomain_token_and_explicit_addresses() -> None:
    seen: list[httpx.Request] = []
    r = await update(
        HOST, replying("OK\n23.128.64.20\n2a0c:b641:100::20\nUPDATED", seen=seen), ipv6="2a0c:b641:100::20"
    )
    params = seen[0].url.params
    assert seen[0].url.path == "/update"
    assert params["domains"] == "myhome" and params["token"] == TOKEN
    assert params["ip"] == "23.128.64.20" and params["ipv6"] == "2a0c:b641:100::20"
    assert r.result == "updated" and r.code == "OK UPDATED"


@pytest.mark.parametrize(
    "body, result, code",
    [
        ("OK", "updated", "OK"),
        ("OK\n23.128.64.20\n\nUPDATED", "updated", "OK UPDATED"),
        ("OK\n23.128.64.20\n\nNOCHANGE", "unchanged", "OK NOCHANGE"),
        ("KO", "error", "KO"),
    ],
)
async def test_replies(body: str, result: str, code: str) -> None:
    r = await update(HOST, replying(body))
    assert (r.result, r.code) == (result, code)


async def test_ko_is_fatal_and_names_both_causes() -> None:
    r = await update(HOST, replying("KO"))
    assert r.fatal and "token is wrong" in r.message and "'myhome' is not a domain of this" in r.message


@pytest.mark.parametrize(
    "value, ok",
    [
        (TOKEN, True),
        (TOKEN.upper(), True),
        ("not-a-token", False),
        (TOKEN[:-1], False),
        (" " + TOKEN + "\n", True),
    ],
)
def test_token_must_be_a_uuid(value: str, ok: bool) -> None:
    assert (duckdns.check_token(value) is None) is ok


@pytest.mark.parametrize(
    "hostname, ok",
    [
        ("myhome.duckdns.org", True),
        ("myhome.example.org", False),
        ("duckdns.org", False),
        ("my_home.duckdns.org", False),
    ],
)
def test_hostname_must_be_under_duckdns_org(hostname: str, ok: bool) -> None:
    problems = SPEC.validate(HostConfig(hostname=hostname, provider="duckdns", token=TOKEN))
    assert (problems == []) is ok


async def test_invalid_token_is_refused_before_anything_is_sent() -> None:
    seen: list[httpx.Request] = []
    r = await update(
        HostConfig(hostname="myhome.duckdns.org", provider="duckdns", token="abc"), replying("OK", seen=seen)
    )
    assert seen == [] and r.result == "error" and r.code == "config" and r.fatal
    assert "duckdns.org" in r.message


async def test_token_never_appears_in_results_exceptions_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    """httpx puts the URL (with the token) in some exception texts: none of it may surface."""
    caplog.set_level(logging.DEBUG)

    def explode(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"failed to connect to {request.url}", request=request)

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=f"weird echo of {request.url}")

    def ko(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="KO")

    for handler in (explode, garbage, ko):
        r = await update(HOST, handler)
        assert r.result == "error"
        assert TOKEN not in str(to_jsonable(r))
    assert TOKEN not in caplog.text
    assert "myhome.duckdns.org" in caplog.text  # the log did record the attempts


async def test_preflight_says_first_update_is_the_test() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(replying("OK"))) as client:
        res = await SPEC.preflight(HOST, client)
    assert res.ok and res.spent_update and TOKEN not in res.message


@settings(max_examples=300, deadline=None)
@given(status=st.sampled_from([200, 200, 400, 401, 404, 429, 500]), body=st.text(max_size=200))
def test_no_reply_crashes_the_parser(status: int, body: str) -> None:
    r = duckdns.parse_reply(SPEC, HOST, status, {}, body, "1.2.3.4")
    assert r.result in ("updated", "unchanged", "error") and r.message
    if r.result == "error":
        assert r.fatal or (r.retry_after_s or 0) > 0
