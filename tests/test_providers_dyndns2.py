"""dyndns2 family (generic, No-IP, Dynu, Hurricane Electric): request shape and every reply word.

The provider is replaced by httpx.MockTransport: no real provider may be contacted.
"""

from __future__ import annotations

import base64

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.config import HostConfig
from checks.ddns.providers import dyndns2
from checks.ddns.providers.registry import get_provider

NOIP_HOST = HostConfig(hostname="myhome.ddns.net", provider="noip", username="keyuser", password="s3cretKeyPass")
GENERIC_HOST = HostConfig(
    hostname="home.example.org",
    provider="dyndns2",
    server="https://members.example.org",
    username="u",
    password="p4ssword",
)


def client_for(handler) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def replying(body: str, status: int = 200, headers: dict | None = None, seen: list | None = None):  # type: ignore[no-untyped-def]
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, text=body, headers=headers or {})

    return handler


async def update(host: HostConfig, handler, ipv4="23.128.64.20", ipv6=None):  # type: ignore[no-untyped-def]
    async with client_for(handler) as client:
        return await get_provider(host.provider).update(host, ipv4, ipv6, client)


async def test_request_has_hostname_myip_basic_auth_and_descriptive_user_agent() -> None:
    seen: list[httpx.Request] = []
    result = await update(NOIP_HOST, replying("good 23.128.64.20", seen=seen))
    assert result.result == "updated" and result.code == "good"
    (req,) = seen
    assert str(req.url).startswith("https://dynupdate.no-ip.com/nic/update?")
    assert req.url.params["hostname"] == "myhome.ddns.net"
    assert req.url.params["myip"] == "23.128.64.20"
    assert req.headers["authorization"] == "Basic " + base64.b64encode(b"keyuser:s3cretKeyPass").decode()
    ua = req.headers["user-agent"]
    # No-IP's form: "Company NameOfProgram/OSVersion-ReleaseVersion maintainer-contact@example.com"
    company, program, contact = ua.split(" ")
    assert company == "ddns-wizard" and program.startswith("ddns-wizard/") and "@" in contact


async def test_server_override_is_used_and_nic_update_not_doubled() -> None:
    seen: list[httpx.Request] = []
    host = HostConfig(
        hostname="h.dyn.lab-ddns.net",
        provider="dyndns2",
        server="https://11.1.0.80/nic/update",
        username="u",
        password="pw",
    )
    await update(host, replying("good 1.2.3.4", seen=seen), ipv4="1.2.3.4")
    assert str(seen[0].url).startswith("https://11.1.0.80/nic/update?")


async def test_noip_dual_stack_sends_both_in_myip() -> None:
    seen: list[httpx.Request] = []
    result = await update(
        NOIP_HOST, replying("good 23.128.64.20,2a0c:b641:100::20", seen=seen), ipv6="2a0c:b641:100::20"
    )
    assert seen[0].url.params["myip"] == "23.128.64.20,2a0c:b641:100::20"
    assert result.sent == "23.128.64.20,2a0c:b641:100::20"


async def test_dynu_sends_myipv6_and_myip_no_for_ipv6_only() -> None:
    seen: list[httpx.Request] = []
    host = HostConfig(hostname="me.freeddns.org", provider="dynu", username="me", password="pw")
    await update(host, replying("good", seen=seen), ipv4=None, ipv6="2a0c:b641:100::20")
    assert seen[0].url.params["myip"] == "no"
    assert seen[0].url.params["myipv6"] == "2a0c:b641:100::20"


async def test_he_uses_hostname_as_username_and_one_call_per_family() -> None:
    seen: list[httpx.Request] = []
    host = HostConfig(hostname="home.example.org", provider="he", password="perRecordKey1")
    result = await update(host, replying("good 1", seen=seen), ipv4="23.128.64.20", ipv6="2a0c:b641:100::20")
    assert [r.url.params["myip"] for r in seen] == ["23.128.64.20", "2a0c:b641:100::20"]
    assert seen[0].headers["authorization"] == "Basic " + base64.b64encode(b"home.example.org:perRecordKey1").decode()
    assert result.result == "updated"


@pytest.mark.parametrize(
    "body, result, fatal, words",
    [
        ("good 23.128.64.20", "updated", False, ["now points to"]),
        ("nochg 23.128.64.20", "unchanged", False, ["already had"]),
        ("badauth", "error", True, ["credentials", "DDNS Key"]),
        ("!donator", "error", True, ["paid account"]),
        ("notfqdn", "error", True, ["fully-qualified"]),
        ("nohost", "error", True, ["does not exist in this account"]),
        ("numhost", "error", True, ["too many hosts"]),
        ("abuse", "error", True, ["blocked", "Stop"]),
        ("badagent", "error", True, ["rejected this client"]),
        ("dnserr", "error", False, ["retry later"]),
        ("911", "error", False, ["retry later"]),
        ("BADAUTH\r\n", "error", True, ["credentials"]),
    ],
)
async def test_every_documented_reply_maps_to_a_result_with_an_actionable_message(body, result, fatal, words) -> None:
    r = await update(NOIP_HOST, replying(body))
    assert r.result == result
    assert r.fatal is fatal
    for w in words:
        assert w in r.message
    if result == "error" and not fatal:
        assert r.retry_after_s is not None and r.retry_after_s > 0


async def test_noip_911_waits_at_least_30_minutes_and_dynu_10() -> None:
    assert (await update(NOIP_HOST, replying("911"))).retry_after_s >= 1800
    dynu = HostConfig(hostname="me.freeddns.org", provider="dynu", username="me", password="pw")
    assert (await update(dynu, replying("911"))).retry_after_s == 600


async def test_he_interval_reply_backs_off() -> None:
    host = HostConfig(hostname="home.example.org", provider="he", password="perRecordKey1")
    r = await update(host, replying("interval"))
    assert r.result == "error" and not r.fatal and r.retry_after_s == 300


@pytest.mark.parametrize(
    "status, body, fatal, retry",
    [
        (401, "", True, None),
        (404, "<html>not found</html>", True, None),
        (500, "", False, 600),
        (503, "oops", False, 600),
    ],
)
async def test_http_errors(status, body, fatal, retry) -> None:
    r = await update(GENERIC_HOST, replying(body, status))
    assert r.result == "error" and r.fatal is fatal
    if retry:
        assert r.retry_after_s == retry


async def test_http_429_honours_retry_after() -> None:
    r = await update(GENERIC_HOST, replying("", 429, {"Retry-After": "120"}))
    assert r.result == "error" and not r.fatal and r.retry_after_s == 120
    assert r.code == "HTTP 429"


async def test_garbage_reply_is_an_error_not_a_crash() -> None:
    r = await update(GENERIC_HOST, replying("\x00\x01 <html><body>welcome</body></html>"))
    assert r.result == "error" and r.code == "unknown" and "does not understand" in r.message
    assert "\x00" not in r.message


async def test_connection_failure_is_data_with_retry() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    r = await update(GENERIC_HOST, fail)
    assert r.result == "error" and not r.fatal and r.retry_after_s
    assert "could not reach" in r.message


async def test_preflight_explains_that_the_first_update_is_the_test() -> None:
    async with client_for(replying("good")) as client:
        res = await get_provider("noip").preflight(NOIP_HOST, client)
    assert res.ok and res.spent_update and "first update is the test" in res.message


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from([200, 200, 200, 201, 301, 400, 401, 403, 404, 429, 500, 502, 503]),
    body=st.text(max_size=300),
)
def test_no_reply_crashes_the_parser(status: int, body: str) -> None:
    spec = get_provider("noip")
    r = dyndns2.parse_reply(spec, NOIP_HOST, status, {}, body, "23.128.64.20")
    assert r.result in ("updated", "unchanged", "error")
    assert r.message
    if r.result == "error":
        assert r.fatal or (r.retry_after_s or 0) > 0  # every error says stop or when to retry


@settings(max_examples=200, deadline=None)
@given(
    word=st.sampled_from(
        [
            "good",
            "nochg",
            "badauth",
            "!donator",
            "notfqdn",
            "nohost",
            "numhost",
            "abuse",
            "badagent",
            "dnserr",
            "911",
            "interval",
        ]
    ),
    tail=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
)
def test_known_words_with_any_tail_map_consistently(word: str, tail: str) -> None:
    spec = get_provider("he")
    host = HostConfig(hostname="home.example.org", provider="he", password="k3y")
    r = dyndns2.parse_reply(spec, host, 200, {}, f"{word} {tail}", "1.2.3.4")
    expected = {"good": "updated", "nochg": "unchanged"}.get(word, "error")
    assert r.result == expected
