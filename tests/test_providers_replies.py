"""Every documented reply of every provider, mapped to its meaning and policy.

One table per provider.  Each row is a reply exactly as the provider documents it, or
as a peer client's tests record it (status, headers, body), with the source in a
comment, and what it must mean to ddns-wizard: ``updated`` / ``unchanged`` / ``error``,
the code reported, and the policy -- ``fatal`` (stop until the user acts) or
``retry`` (wait at least that many seconds).  docs/providers.md carries the same
findings as a table.

No provider is contacted: the parsers are fed the replies directly, or through
httpx.MockTransport where the request matters too.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from checks.config import HostConfig
from checks.ddns.providers import desec, duckdns, dyndns2, dynv6, freedns, namecheap, rfc2136
from checks.ddns.providers.registry import get_provider

SENT = "23.128.64.20"


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    result: str  # updated | unchanged | error
    code: str | None
    fatal: bool = False
    retry_at_least: int | None = None  # for non-fatal errors: the wait must be at least this (s)
    headers: tuple[tuple[str, str], ...] = ()
    words: str = ""  # a phrase the message must contain


def check(result, reply: Reply) -> None:  # type: ignore[no-untyped-def]
    assert result.result == reply.result, (reply, result)
    assert result.code == reply.code, (reply, result)
    if reply.result == "error":
        assert result.fatal is reply.fatal, (reply, result)
        if reply.fatal:
            assert result.retry_after_s is None
        else:
            assert result.retry_after_s is not None and result.retry_after_s >= (reply.retry_at_least or 1), result
    else:
        assert not result.fatal
    if reply.words:
        assert reply.words in result.message, result.message
    assert result.message.strip()


# ---------------------------------------------------------------- dyndns2 (generic)
# Source: https://help.dyn.com/return-codes/ (the dyndns2 specification: good, nochg, the fatal
# account/host/agent codes, "good 127.0.0.1" = agent refused, dnserr/911 = server trouble);
# !yours and !active from ddclient ddclient.in nic_dyndns2_update %errors.
GENERIC = HostConfig(
    hostname="home.example.org",
    provider="dyndns2",
    server="https://members.example.org",
    username="u",
    password="p4ssword",
)
DYNDNS2_REPLIES = [
    Reply(200, f"good {SENT}\n", "updated", "good"),
    Reply(200, f"nochg {SENT}\n", "unchanged", "nochg"),
    Reply(200, "good 127.0.0.1\n", "error", "good 127.0.0.1", fatal=True, words="ignored the update"),
    Reply(200, "badauth\n", "error", "badauth", fatal=True),
    Reply(200, "!donator\n", "error", "!donator", fatal=True),
    Reply(200, "notfqdn\n", "error", "notfqdn", fatal=True),
    Reply(200, "nohost\n", "error", "nohost", fatal=True),
    Reply(200, "numhost\n", "error", "numhost", fatal=True, words="round robin"),
    Reply(200, "abuse\n", "error", "abuse", fatal=True),
    Reply(200, "badagent\n", "error", "badagent", fatal=True),
    Reply(200, "!yours\n", "error", "!yours", fatal=True),
    Reply(200, "!active\n", "error", "!active", fatal=True),
    Reply(200, "dnserr\n", "error", "dnserr", retry_at_least=1800),
    Reply(200, "911\n", "error", "911", retry_at_least=1800),
    # ddclient t/protocol_dynu.pl's test server: 401 with this body for wrong credentials.
    Reply(
        401,
        "authentication required",
        "error",
        "badauth",
        fatal=True,
        headers=(("www-authenticate", 'Basic realm="realm", charset="UTF-8"'),),
    ),
    Reply(500, "Internal Server Error", "error", "HTTP 500", retry_at_least=60),
    Reply(429, "Too Many Requests", "error", "HTTP 429", retry_at_least=120, headers=(("retry-after", "120"),)),
]


@pytest.mark.parametrize("reply", DYNDNS2_REPLIES, ids=lambda r: f"{r.status}-{r.body.strip()[:20]}")
def test_dyndns2_replies(reply: Reply) -> None:
    spec = get_provider("dyndns2")
    check(dyndns2.parse_reply(spec, GENERIC, reply.status, dict(reply.headers), reply.body, SENT), reply)


def test_good_127_0_0_1_is_success_only_when_127_0_0_1_was_sent() -> None:
    # help.dyn.com/return-codes: "good update only when 127.0.0.1 address is requested by update".
    spec = get_provider("dyndns2")
    r = dyndns2.parse_reply(spec, GENERIC, 200, {}, "good 127.0.0.1", "127.0.0.1")
    assert r.result == "updated"


# ---------------------------------------------------------------- No-IP
# Source: ddclient nic_noip_update %errors (nohost, badauth, badagent, !donator, abuse, numhost, dnserr,
# nochg) and reference/real-world.md (No-IP: 911/dnserr = retry after 30 minutes, badagent fatal); "wNNu" wait replies
# as ddclient nic_noip_update parses them.
NOIP = HostConfig(hostname="myhome.ddns.net", provider="noip", username="keyuser", password="s3cret")
NOIP_REPLIES = [
    Reply(200, f"good {SENT}", "updated", "good"),
    Reply(200, f"nochg {SENT}", "unchanged", "nochg"),
    Reply(200, "nohost", "error", "nohost", fatal=True),
    Reply(200, "badauth", "error", "badauth", fatal=True),
    Reply(200, "badagent", "error", "badagent", fatal=True),
    Reply(200, "!donator", "error", "!donator", fatal=True),
    Reply(200, "abuse", "error", "abuse", fatal=True),
    Reply(200, "911", "error", "911", retry_at_least=1800, words="30 min"),
    Reply(200, "w30m", "error", "w30m", retry_at_least=1800),
    Reply(200, "w2h", "error", "w2h", retry_at_least=7200),
]


@pytest.mark.parametrize("reply", NOIP_REPLIES, ids=lambda r: r.body[:20])
def test_noip_replies(reply: Reply) -> None:
    check(dyndns2.parse_reply(get_provider("noip"), NOIP, reply.status, {}, reply.body, SENT), reply)


# ---------------------------------------------------------------- Dynu
# Source: https://www.dynu.com/DynamicDNS/IP-Update-Protocol via ddclient nic_dynu_update %errors
# (servererror and dnserr: retry later; 911: retry in 10 minutes); bodies as t/protocol_dynu.pl serves them.
DYNU = HostConfig(hostname="myhome.dynu.net", provider="dynu", username="username", password="password")
DYNU_REPLIES = [
    Reply(200, "good\n", "updated", "good"),
    Reply(200, "nochg\n", "unchanged", "nochg"),
    Reply(200, "badauth\n", "error", "badauth", fatal=True),
    Reply(200, "notfqdn\n", "error", "notfqdn", fatal=True),
    Reply(200, "nohost\n", "error", "nohost", fatal=True),
    Reply(200, "!donator\n", "error", "!donator", fatal=True),
    Reply(200, "numhost\n", "error", "numhost", fatal=True),
    Reply(200, "abuse\n", "error", "abuse", fatal=True),
    Reply(200, "servererror\n", "error", "servererror", retry_at_least=600),
    Reply(200, "dnserr\n", "error", "dnserr", retry_at_least=600),
    Reply(200, "911\n", "error", "911", retry_at_least=600),
]


@pytest.mark.parametrize("reply", DYNU_REPLIES, ids=lambda r: r.body.strip())
def test_dynu_replies(reply: Reply) -> None:
    check(dyndns2.parse_reply(get_provider("dynu"), DYNU, reply.status, {}, reply.body, SENT), reply)


# ---------------------------------------------------------------- Hurricane Electric
# Source: reference/providers.md (dyndns2 replies, always HTTP 200;
# the undocumented "interval" for more than 10 updates in 2 minutes); qdm12/ddns-updater he/provider.go
# (badauth; good/nochg with the address).
HE = HostConfig(hostname="home.example.org", provider="he", password="k3y")
HE_REPLIES = [
    Reply(200, f"good {SENT}", "updated", "good"),
    Reply(200, f"nochg {SENT}", "unchanged", "nochg"),
    Reply(200, "badauth", "error", "badauth", fatal=True, words="per-record DDNS key"),
    Reply(200, "nohost", "error", "nohost", fatal=True),
    Reply(200, "abuse", "error", "abuse", fatal=True),
    Reply(200, "interval", "error", "interval", retry_at_least=300),
    Reply(200, "911", "error", "911", retry_at_least=1800),
]


@pytest.mark.parametrize("reply", HE_REPLIES, ids=lambda r: r.body[:20])
def test_he_replies(reply: Reply) -> None:
    check(dyndns2.parse_reply(get_provider("he"), HE, reply.status, {}, reply.body, SENT), reply)


# ---------------------------------------------------------------- DuckDNS
# Source: reference/providers.md, after duckdns.org/spec.jsp ("OK"/"KO"; verbose=true adds the addresses and
# UPDATED/NOCHANGE); qdm12/ddns-updater duckdns/provider.go ("ko" = auth); ddclient nic_duckdns_update.
DUCK = HostConfig(hostname="myhome.duckdns.org", provider="duckdns", token="a1b2c3d4-1234-5678-9abc-def012345678")
DUCK_REPLIES = [
    Reply(200, "OK", "updated", "OK"),
    Reply(200, f"OK\n{SENT}\n\nUPDATED", "updated", "OK UPDATED"),
    Reply(200, f"OK\n{SENT}\n\nNOCHANGE", "unchanged", "OK NOCHANGE"),
    Reply(200, "KO", "error", "KO", fatal=True, words="token is wrong"),
    Reply(500, "", "error", "HTTP 500", retry_at_least=60),
]


@pytest.mark.parametrize("reply", DUCK_REPLIES, ids=lambda r: r.body.replace("\n", "|")[:24] or str(r.status))
def test_duckdns_replies(reply: Reply) -> None:
    check(duckdns.parse_reply(get_provider("duckdns"), DUCK, reply.status, {}, reply.body, SENT), reply)


# ---------------------------------------------------------------- deSEC
# Source: desec-io/desec-stack api/desecapi/views/dyndns.py (200 "good"; NotFound("nohost"); ValidationError
# 400 for bad parameters) and docs/dyndns/update-api.rst ("If authentication fails, the API will return a
# 401 Unauthorized"); api/api/settings.py throttle "dyndns": "2/2min" (429 with Retry-After).
DESEC = HostConfig(hostname="myhome.dedyn.io", provider="desec", token="abcdefghijklmnopqrstuvwxyz01")
DESEC_REPLIES = [
    Reply(200, "good", "updated", "good"),
    Reply(401, '{"detail": "Invalid token."}', "error", "HTTP 401", fatal=True),
    Reply(404, '{"detail": "nohost"}', "error", "HTTP 404", fatal=True),
    Reply(
        400,
        '{"detail": "IP parameter \\"myipv4\\" is an invalid subnet"}',
        "error",
        "HTTP 400",
        retry_at_least=600,
        words="not a credential problem",
    ),
    Reply(
        429,
        '{"detail": "Request was throttled. Expected available in 60 seconds."}',
        "error",
        "HTTP 429",
        retry_at_least=60,
        headers=(("retry-after", "60"),),
    ),
]


@pytest.mark.parametrize("reply", DESEC_REPLIES, ids=lambda r: str(r.status))
def test_desec_replies(reply: Reply) -> None:
    check(desec.parse_reply(get_provider("desec"), DESEC, reply.status, dict(reply.headers), reply.body, SENT), reply)


# ---------------------------------------------------------------- FreeDNS
# Source: qdm12/ddns-updater freedns/provider.go (success bodies start "updated " or "no ip change detected");
# openwrt/packages#12201 (sync.afraid.org answers 404 to an unknown token); reference/real-world.md
# ('ERROR: "x" is an invalid IP address.' is a request problem); "Unable to locate this record" and
# "Address ... has not changed" are the v1 interface's words (unverified for v2: no primary source found).
FREEDNS = HostConfig(hostname="myhome.mooo.com", provider="freedns", token="aBcDeFgHiJkLmNoPqRsTuVwX")
FREEDNS_REPLIES = [
    Reply(200, f"Updated 1 host(s) myhome.mooo.com to {SENT} in 0.241 seconds", "updated", "Updated"),
    Reply(
        200, f"No IP change detected for myhome.mooo.com with IP {SENT}, skipping update", "unchanged", "No IP change"
    ),
    Reply(200, f"ERROR: Address {SENT} has not changed.", "unchanged", "No IP change"),
    Reply(
        200,
        'ERROR: "23.128.64.2O" is an invalid IP address.',
        "error",
        "ERROR invalid address",
        retry_at_least=600,
        words="not a credential problem",
    ),
    Reply(
        200,
        "ERROR: Unable to locate this record (changed password recently? deleted and re-created this dns entry?)",
        "error",
        "ERROR",
        fatal=True,
    ),
    Reply(404, "Error 404 : Page not found", "error", "HTTP 404", fatal=True, words="does not know this update token"),
    Reply(503, "", "error", "HTTP 503", retry_at_least=60),
]


@pytest.mark.parametrize("reply", FREEDNS_REPLIES, ids=lambda r: r.body[:24] or str(r.status))
def test_freedns_replies(reply: Reply) -> None:
    check(freedns.parse_reply(get_provider("freedns"), FREEDNS, reply.status, {}, reply.body, SENT), reply)


# ---------------------------------------------------------------- dynv6
# Source: reference/providers.md (the HTTP update API); inadyn plugins/dynv6.c (success bodies contain
# "updated" or "unchanged"); qdm12/ddns-updater dynv6/provider.go (anything but 200 is an error).
DYNV6 = HostConfig(hostname="myhome.dynv6.net", provider="dynv6", token="abcdefghijklmnopqrstuvwxyz")
DYNV6_REPLIES = [
    Reply(200, "addresses updated", "updated", "addresses updated"),
    Reply(200, "addresses unchanged", "unchanged", "addresses unchanged"),
    Reply(401, "invalid authentication token", "error", "HTTP 401", fatal=True),
    Reply(404, "zone not found", "error", "HTTP 404", fatal=True),
    Reply(500, "internal error", "error", "HTTP 500", retry_at_least=60),
]


@pytest.mark.parametrize("reply", DYNV6_REPLIES, ids=lambda r: r.body)
def test_dynv6_replies(reply: Reply) -> None:
    check(dynv6.parse_reply(get_provider("dynv6"), DYNV6, reply.status, {}, reply.body, SENT), reply)


# ---------------------------------------------------------------- Namecheap
# Source: reference/providers.md (the update URL); ddclient nic_namecheap_update (success = <ErrCount>0); qdm12/ddns-updater namecheap/provider.go
# (errors.Err1, IP); error texts as users report them (Err1 "Passwords do not match", "No Records updated.
# A record not Found;").
def _nc(err: str | None) -> str:
    errors = f"<errors><Err1>{err}</Err1></errors>" if err else "<errors />"
    count = 1 if err else 0
    return (
        '<?xml version="1.0" encoding="utf-16"?><interface-response><Command>SETDNSHOST</Command>'
        f"<Language>eng</Language><IP>{SENT}</IP><ErrCount>{count}</ErrCount>{errors}"
        "<ResponseCount>0</ResponseCount><responses /><Done>true</Done><debug><![CDATA[]]></debug>"
        "</interface-response>"
    )


NC = HostConfig(hostname="home.example.com", provider="namecheap", password="0123456789abcdef0123456789abcdef")
NAMECHEAP_REPLIES = [
    Reply(200, _nc(None), "updated", "ErrCount 0"),
    Reply(200, _nc("Passwords do not match"), "error", "Err1", fatal=True, words="Dynamic DNS password"),
    Reply(
        200, _nc("No Records updated. A record not Found;"), "error", "Err1", fatal=True, words="A + Dynamic DNS record"
    ),
    Reply(200, _nc("Domain name not found"), "error", "Err1", fatal=True),
]


@pytest.mark.parametrize("reply", NAMECHEAP_REPLIES, ids=lambda r: r.code or "")
def test_namecheap_replies(reply: Reply) -> None:
    check(namecheap.parse_reply(get_provider("namecheap"), NC, reply.status, {}, reply.body, SENT), reply)


async def test_namecheap_reply_declared_utf16_but_sent_as_utf8_is_read() -> None:
    # opnsense/plugins#2666: the reply claims UTF-16 and is UTF-8; decoding by the declared charset
    # turned a success into garbage (and "will retry later" forever).
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=_nc(None).encode("utf-8"), headers={"content-type": "text/xml; charset=utf-16"}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        r = await get_provider("namecheap").update(NC, SENT, None, client)
    assert r.result == "updated" and r.code == "ErrCount 0", r


# ---------------------------------------------------------------- RFC 2136
# Source: RFC 2136 section 2.2 (rcodes of an UPDATE) and BIND/Knot behaviour: REFUSED = the key may not
# update the name, NOTAUTH = not the primary or key refused, NOTZONE = name outside the zone, SERVFAIL =
# server trouble.
RFC = HostConfig(
    hostname="home.example.org",
    provider="rfc2136",
    server="192.0.2.53",
    options={"key_name": "k", "tsig_secret": "c2VjcmV0c2VjcmV0c2VjcmV0MTI="},
)
RFC2136_RCODES = [
    Reply(0, "NOERROR", "updated", "NOERROR"),
    Reply(0, "REFUSED", "error", "REFUSED", fatal=True),
    Reply(0, "NOTAUTH", "error", "NOTAUTH", fatal=True),
    Reply(0, "NOTZONE", "error", "NOTZONE", fatal=True),
    Reply(0, "SERVFAIL", "error", "SERVFAIL", retry_at_least=300),
]


@pytest.mark.parametrize("reply", RFC2136_RCODES, ids=lambda r: r.body)
def test_rfc2136_rcodes(reply: Reply) -> None:
    check(rfc2136._rcode_result(get_provider("rfc2136"), RFC, reply.body, SENT), reply)


# ---------------------------------------------------------------- Cloudflare
# Source: favonia/cloudflare-ddns scripts/github-actions/cloudflare-auth-error-watch/cases.go (recorded live
# replies: /zones with an invalid token = 403 code 9109 "Invalid access token"; a malformed token = 400
# 6003 with error_chain 6111); reference/providers.md (403 code 10000 = missing permission; 429 for 5 min).
def _cf(status: int, code: int, message: str, chain: list | None = None) -> httpx.Response:
    err: dict = {"code": code, "message": message}
    if chain:
        err["error_chain"] = chain
    return httpx.Response(status, json={"success": False, "errors": [err], "messages": [], "result": None})


CLOUDFLARE_REPLIES = [
    (_cf(403, 9109, "Invalid access token"), "error", "HTTP 403 9109", True, "rejected the API token"),
    (
        _cf(
            400, 6003, "Invalid request headers", [{"code": 6111, "message": "Invalid format for Authorization header"}]
        ),
        "error",
        "HTTP 400 6003",
        True,
        "rejected the API token",
    ),
    (_cf(403, 10000, "Authentication error"), "error", "HTTP 403 10000", True, "Zone → DNS → Edit"),
    (_cf(401, 10000, "Authentication error"), "error", "HTTP 401 10000", True, "rejected the API token"),
]


@pytest.mark.parametrize(
    "response, result, code, fatal, words",
    CLOUDFLARE_REPLIES,
    ids=lambda x: getattr(x, "status_code", None) or str(x)[:12],
)
async def test_cloudflare_error_replies(response, result, code, fatal, words) -> None:  # type: ignore[no-untyped-def]
    host = HostConfig(hostname="home.example.org", provider="cloudflare", token="cfut_" + "a" * 40 + "0123abcd")
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: response)) as client:
        r = await get_provider("cloudflare").update(host, SENT, None, client)
    assert (r.result, r.code, r.fatal) == (result, code, fatal), r
    assert words in r.message


async def test_cloudflare_rate_limit_waits_the_retry_after() -> None:
    host = HostConfig(hostname="home.example.org", provider="cloudflare", token="cfut_" + "a" * 40 + "0123abcd")
    limited = httpx.Response(
        429,
        headers={"retry-after": "300"},
        json={"success": False, "errors": [{"code": 971, "message": "Please wait"}]},
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: limited)) as client:
        r = await get_provider("cloudflare").update(host, SENT, None, client)
    assert r.result == "error" and not r.fatal and r.retry_after_s == 300
