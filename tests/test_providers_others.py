"""deSEC, FreeDNS, dynv6 and Namecheap: request shape, replies, secrets kept out of messages.

Each provider is replaced by httpx.MockTransport: no real provider may be contacted.
"""

from __future__ import annotations

import logging

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.config import HostConfig
from checks.ddns.providers import desec, dynv6, freedns, namecheap
from checks.ddns.providers.registry import get_provider
from checks.model import to_jsonable


def replying(body: str, status: int = 200, seen: list | None = None, headers: dict | None = None):  # type: ignore[no-untyped-def]
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, text=body, headers=headers or {})

    return handler


async def update(host: HostConfig, handler, ipv4="23.128.64.20", ipv6=None):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        return await get_provider(host.provider).update(host, ipv4, ipv6, client)


# ---------------------------------------------------------------- deSEC

DESEC_TOKEN = "i-T3b1h2yp_T5-abcdefghijklmn"
DESEC = HostConfig(hostname="myhome.dedyn.io", provider="desec", token=DESEC_TOKEN)


async def test_desec_sends_preserve_for_the_family_not_updated() -> None:
    """An empty myipv6 would DELETE the AAAA record at deSEC."""
    seen: list[httpx.Request] = []
    r = await update(DESEC, replying("good", seen=seen))
    assert r.result == "updated"
    assert seen[0].url.params["myipv4"] == "23.128.64.20"
    assert seen[0].url.params["myipv6"] == "preserve"
    assert seen[0].url.params["hostname"] == "myhome.dedyn.io"


@pytest.mark.parametrize(
    "status, body, result, fatal",
    [
        (200, "good", "updated", False),
        (401, "badauth", "error", True),
        (401, "", "error", True),
        (404, "Not found.", "error", True),
        (400, "bad request", "error", False),  # a parameter problem (desec-stack ValidationError), not the account
        (500, "", "error", False),
    ],
)
async def test_desec_replies(status: int, body: str, result: str, fatal: bool) -> None:
    r = await update(DESEC, replying(body, status))
    assert r.result == result and r.fatal is fatal


async def test_desec_429_uses_retry_after() -> None:
    r = await update(DESEC, replying("", 429, headers={"Retry-After": "59"}))
    assert r.result == "error" and r.retry_after_s == 59 and not r.fatal


def test_desec_hostname_must_be_dedyn_io_unless_own_domain() -> None:
    spec = get_provider("desec")
    assert spec.validate(HostConfig(hostname="home.example.org", provider="desec", token=DESEC_TOKEN))
    assert not spec.validate(
        HostConfig(hostname="home.example.org", provider="desec", token=DESEC_TOKEN, options={"own_domain": True})
    )


# ---------------------------------------------------------------- FreeDNS

FREEDNS_TOKEN = "AbCdEfGhIjKlMnOpQrStUvWx"
FREEDNS = HostConfig(hostname="myhome.mooo.com", provider="freedns", token=FREEDNS_TOKEN)


async def test_freedns_url_carries_token_in_path() -> None:
    seen: list[httpx.Request] = []
    await update(FREEDNS, replying("Updated 1 host(s) myhome.mooo.com to 23.128.64.20 in 0.1 seconds", seen=seen))
    assert seen[0].url.path == f"/u/{FREEDNS_TOKEN}/"
    assert seen[0].url.params["address"] == "23.128.64.20"


@pytest.mark.parametrize(
    "body, result, fatal",
    [
        ("Updated 1 host(s) myhome.mooo.com to 23.128.64.20 in 0.2 seconds", "updated", False),
        ("No IP change detected for myhome.mooo.com with IP 23.128.64.20, skipping update", "unchanged", False),
        ("ERROR: Address 23.128.64.20 has not changed.", "unchanged", False),
        ("ERROR: Unable to locate this record (changed password recently?)", "error", True),
        ("ERROR: something odd", "error", False),
    ],
)
async def test_freedns_replies(body: str, result: str, fatal: bool) -> None:
    r = await update(FREEDNS, replying(body))
    assert r.result == result and r.fatal is fatal


async def test_freedns_token_never_printed_or_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def explode(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    for handler in (
        explode,
        replying("ERROR: Unable to locate this record"),
        lambda req: httpx.Response(200, text=f"echo {req.url}"),
    ):
        r = await update(FREEDNS, handler)
        assert FREEDNS_TOKEN not in str(to_jsonable(r))
    assert FREEDNS_TOKEN not in caplog.text


def test_freedns_whole_url_pasted_as_token_is_explained() -> None:
    problem = freedns.check_token(f"https://sync.afraid.org/u/{FREEDNS_TOKEN}/")
    assert problem and "only the token" in problem


# ---------------------------------------------------------------- dynv6

DYNV6_TOKEN = "zXcVbNmAsDfGhJkL_123456789"
DYNV6 = HostConfig(hostname="myhome.dynv6.net", provider="dynv6", token=DYNV6_TOKEN)


@pytest.mark.parametrize(
    "status, body, result",
    [
        (200, "addresses updated", "updated"),
        (200, "addresses unchanged", "unchanged"),
        (401, "invalid authentication token", "error"),
        (404, "zone not found", "error"),
    ],
)
async def test_dynv6_replies(status: int, body: str, result: str) -> None:
    seen: list[httpx.Request] = []
    r = await update(DYNV6, replying(body, status, seen=seen))
    assert r.result == result
    assert seen[0].url.params["zone"] == "myhome.dynv6.net" and "ipv6" not in seen[0].url.params
    if status != 200:
        assert r.fatal and DYNV6_TOKEN not in r.message


# ---------------------------------------------------------------- Namecheap

NC_PASSWORD = "0123456789abcdef0123456789abcdef"
NAMECHEAP = HostConfig(hostname="home.example.com", provider="namecheap", password=NC_PASSWORD)
NC_OK = (
    '<?xml version="1.0"?><interface-response><Command>SETDNSHOST</Command><Language>eng</Language>'
    "<IP>23.128.64.20</IP><ErrCount>0</ErrCount><errors /><ResponseCount>0</ResponseCount>"
    "<Done>true</Done></interface-response>"
)
NC_BADPW = (
    '<?xml version="1.0"?><interface-response><ErrCount>1</ErrCount><errors><Err1>Passwords do not '
    "match</Err1></errors><Done>true</Done></interface-response>"
)
NC_NOREC = (
    '<?xml version="1.0"?><interface-response><ErrCount>1</ErrCount><errors><Err1>No Records updated. '
    "A record not Found;</Err1></errors></interface-response>"
)


async def test_namecheap_splits_host_and_domain() -> None:
    seen: list[httpx.Request] = []
    r = await update(NAMECHEAP, replying(NC_OK, seen=seen))
    p = seen[0].url.params
    assert (p["host"], p["domain"], p["ip"]) == ("home", "example.com", "23.128.64.20")
    assert r.result == "updated"


def test_namecheap_apex_and_explicit_domain() -> None:
    apex = HostConfig(hostname="example.com", provider="namecheap", password=NC_PASSWORD)
    assert namecheap.split_host(apex) == ("@", "example.com")
    couk = HostConfig(
        hostname="home.example.co.uk", provider="namecheap", password=NC_PASSWORD, options={"domain": "example.co.uk"}
    )
    assert namecheap.split_host(couk) == ("home", "example.co.uk")


@pytest.mark.parametrize(
    "body, fatal, words",
    [
        (NC_BADPW, True, "Dynamic DNS password"),
        (NC_NOREC, True, "no such record"),
    ],
)
async def test_namecheap_errors(body: str, fatal: bool, words: str) -> None:
    r = await update(NAMECHEAP, replying(body))
    assert r.result == "error" and r.fatal is fatal and words in r.message
    assert NC_PASSWORD not in str(to_jsonable(r))


def test_namecheap_refuses_ipv6_config() -> None:
    host = HostConfig(hostname="home.example.com", provider="namecheap", password=NC_PASSWORD, options={"ipv6": True})
    assert any("IPv6" in p for p in get_provider("namecheap").validate(host))


# ---------------------------------------------------------------- every parser vs arbitrary replies

PARSERS = [
    (desec.parse_reply, "desec", DESEC),
    (freedns.parse_reply, "freedns", FREEDNS),
    (dynv6.parse_reply, "dynv6", DYNV6),
    (namecheap.parse_reply, "namecheap", NAMECHEAP),
]


@settings(max_examples=300, deadline=None)
@given(
    which=st.sampled_from(range(len(PARSERS))),
    status=st.sampled_from([200, 200, 400, 401, 403, 404, 429, 500, 503]),
    body=st.one_of(
        st.text(max_size=300),
        st.builds(lambda a, b: f"<ErrCount>{a}</ErrCount><Err1>{b}</Err1>", st.integers(-5, 5), st.text(max_size=40)),
    ),
)
def test_no_reply_crashes_any_parser(which: int, status: int, body: str) -> None:
    parse, name, host = PARSERS[which]
    r = parse(get_provider(name), host, status, {}, body, "23.128.64.20")
    assert r.result in ("updated", "unchanged", "error") and r.message
    if r.result == "error":
        assert r.fatal or (r.retry_after_s or 0) > 0
