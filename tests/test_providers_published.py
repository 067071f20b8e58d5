"""What is published, as the provider itself and DNS see it: several records per name,
proxied Cloudflare records (DNS shows the edge), the updater's and the watch's decisions,
`verify`'s verdict, and internationalised names.

Providers are httpx.MockTransport fakes (tests/test_providers_cloudflare.py's FakeCloudflare)
and DNS is an injected lookup; the lab tests (tests/lab/test_providers_lab.py) run the
real ones.
"""

from __future__ import annotations

import httpx
import pytest

from checks import idn
from checks.config import Config, Endpoints, HostConfig, load_config
from checks.ddns.updater import PublicAddress, decide, publishes, run_update
from checks.ddns.watch import Watcher
from checks.dns.verify import judge_with_provider
from checks.model import DnsAnswer, ProviderView, VerifyResult
from tests.test_providers_cloudflare import TOKEN, FakeCloudflare, rec

EDGE = "11.9.0.1"  # what public DNS answers for a proxied name (Cloudflare's edge stand-in)
PUBLIC = PublicAddress("23.128.64.20", None, summary="2 of 2 agree")
CF = HostConfig(hostname="home.lab-zone.net", provider="cloudflare", token=TOKEN)
RFC = HostConfig(
    hostname="home.example.org",
    provider="rfc2136",
    server="192.0.2.53",
    options={"key_name": "k", "tsig_secret": "c2VjcmV0c2VjcmV0c2VjcmV0MTI="},
)
DUCK = HostConfig(hostname="myhome.duckdns.org", provider="duckdns", token="a1b2c3d4-1234-5678-9abc-def012345678")


def serving(v4: str | None, v6: str | None = None):  # type: ignore[no-untyped-def]
    async def lookup(hostname: str, resolvers):  # type: ignore[no-untyped-def]
        return v4, v6, None

    return lookup


async def run_cf(fake: FakeCloudflare, dns_v4: str | None, host: HostConfig = CF):  # type: ignore[no-untyped-def]
    config = Config(endpoints=Endpoints(ip_echo=("https://e1", "https://e2"), dns_echo=()), hosts=(host,))
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        (result,) = await run_update(config, client=client, lookup=serving(dns_v4), public=PUBLIC)
    return result


# ---------------------------------------------------------------- proxied records in `update`
async def test_proxied_record_already_holding_the_address_sends_nothing() -> None:
    # DNS answers the edge, so DNS alone would say "differs" on every round (the reported bug:
    # API calls ending "unchanged" forever); the API record holds our address: nothing is written.
    fake = FakeCloudflare(records=[rec("r1", "23.128.64.20", proxied=True)])
    r = await run_cf(fake, EDGE)
    assert r.result == "unchanged" and r.sent is None and fake.writes() == []
    assert "proxied" in r.message and EDGE in r.message and "API" in r.message
    assert r.previous == "23.128.64.20"


async def test_proxied_record_holding_an_old_address_is_changed() -> None:
    fake = FakeCloudflare(records=[rec("r1", "23.128.64.10", proxied=True)])
    r = await run_cf(fake, EDGE)
    assert r.result == "updated" and r.previous == "23.128.64.10" and r.sent == "23.128.64.20"
    assert fake.records[0]["content"] == "23.128.64.20" and fake.records[0]["proxied"] is True


async def test_dns_showing_the_address_needs_no_api_call() -> None:
    fake = FakeCloudflare(records=[rec("r1", "23.128.64.20")])
    r = await run_cf(fake, "23.128.64.20")
    assert r.result == "unchanged" and fake.requests == []


async def test_stale_round_robin_at_cloudflare_is_cleaned_up() -> None:
    fake = FakeCloudflare(records=[rec("r1", "23.128.64.20"), rec("r2", "23.128.64.99")])
    r = await run_cf(fake, "23.128.64.20,23.128.64.99")  # DNS serves both: not "unchanged"
    assert r.result == "updated" and [x["content"] for x in fake.records] == ["23.128.64.20"]
    assert "23.128.64.99" in r.message


# ---------------------------------------------------------------- decide() with several records
def test_several_records_differ_where_the_provider_can_remove_them() -> None:
    for host, provider in ((CF, "cloudflare"), (RFC, "rfc2136")):
        d = decide(host, provider, PUBLIC, ("23.128.64.20,23.128.64.99", None, None), force=False, allow_private=False)
        assert d.result is None and d.send_ipv4 == "23.128.64.20", provider
        assert any("23.128.64.99" in n and "removed" in n for n in d.notes)
        assert d.previous == "23.128.64.20,23.128.64.99"


def test_several_records_where_updates_cannot_remove_them_are_named_not_resent() -> None:
    # A dyndns2-style update sets one address: sending again would only earn `nochg` (bans).
    d = decide(DUCK, "duckdns", PUBLIC, ("23.128.64.20,23.128.64.99", None, None), force=False, allow_private=False)
    assert d.result is not None and d.result.result == "unchanged"
    assert "23.128.64.99" in d.result.message and "control panel" in d.result.message


def test_keep_addresses_are_not_a_difference() -> None:
    host = HostConfig(
        hostname="home.example.org",
        provider="rfc2136",
        server="192.0.2.53",
        options={**RFC.options, "keep_addresses": ["198.51.100.7"]},
    )
    d = decide(host, "rfc2136", PUBLIC, ("198.51.100.7,23.128.64.20", None, None), force=False, allow_private=False)
    assert d.result is not None and d.result.result == "unchanged"
    assert publishes(host, ("198.51.100.7,23.128.64.20", None, None), "23.128.64.20", None)
    assert not publishes(host, ("198.51.100.7,23.128.64.20,23.128.64.99", None, None), "23.128.64.20", None)


def test_keep_addresses_are_validated_and_only_where_they_mean_something() -> None:
    from checks.ddns.providers.registry import validate_host

    bad = HostConfig(
        hostname=RFC.hostname,
        provider="rfc2136",
        server="192.0.2.53",
        options={**RFC.options, "keep_addresses": ["not-an-ip"]},
    )
    assert any("keep_addresses must be a list" in p for p in validate_host(bad))
    duck = HostConfig(
        hostname=DUCK.hostname, provider="duckdns", token=DUCK.token, options={"keep_addresses": ["198.51.100.7"]}
    )
    assert any("only applies to providers" in p for p in validate_host(duck))


# ---------------------------------------------------------------- the watch
async def test_watch_confirms_a_proxied_record_through_the_api_not_dns() -> None:
    fake = FakeCloudflare(records=[rec("r1", "23.128.64.10", proxied=True)])
    events: list[str] = []
    now = [1_000_000.0]

    async def sleep(s: float) -> None:
        now[0] += s

    async def detect() -> PublicAddress:
        return PUBLIC

    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        w = Watcher(
            Config(hosts=(CF,)),
            client,
            interval_s=300,
            clock=lambda: now[0],
            sleep=sleep,
            detect=detect,
            lookup=serving(EDGE),
            emit=events.append,
        )
        await w.tick()
        writes = len(fake.writes())
        now[0] += 300
        await w.tick()
    assert writes == 1 and len(fake.writes()) == 1  # one PATCH, then silence
    assert any("API" in e and "proxied" in e and "now serves 23.128.64.20" in e for e in events), events
    assert not any("do not serve" in e for e in events), events


# ---------------------------------------------------------------- verify's verdict
def _verify(answers: tuple[str, ...]) -> VerifyResult:
    auth = (DnsAnswer("ns1.lab-zone.net (11.1.0.53)", answers, 300, False, rcode="NOERROR"),)
    return VerifyResult("home.lab-zone.net", "23.128.64.20", None, auth, (), "wrong-ip", explanation="DNS says")


def test_verify_judges_a_proxied_record_by_the_api_record() -> None:
    view = ProviderView(ipv4=("23.128.64.20",), proxied=("A",), source="cloudflare-api")
    r = judge_with_provider(_verify((EDGE,)), view, "Cloudflare")
    assert r.verdict == "ok" and r.provider_record == view
    assert "proxied" in r.explanation and "edge" in r.explanation and EDGE in r.explanation


def test_verify_says_wrong_ip_when_the_api_record_is_old() -> None:
    view = ProviderView(ipv4=("23.128.64.10",), proxied=("A",), source="cloudflare-api")
    r = judge_with_provider(_verify((EDGE,)), view, "Cloudflare")
    assert (
        r.verdict == "wrong-ip"
        and "23.128.64.10" in r.explanation
        and "an update corrects" in r.explanation
        and r.next_step == "update"
    )


def test_verify_keeps_the_dns_verdict_for_unproxied_records_or_unreadable_api() -> None:
    base = _verify(("23.128.64.10",))
    assert judge_with_provider(base, ProviderView(ipv4=("23.128.64.10",)), "Cloudflare") is base
    assert judge_with_provider(base, ProviderView(error="token rejected"), "Cloudflare") is base


def test_verify_json_carries_the_provider_record() -> None:
    from wizard.commands.verify import result_json

    view = ProviderView(ipv4=("23.128.64.20",), proxied=("A",), source="cloudflare-api")
    data = result_json(judge_with_provider(_verify((EDGE,)), view, "Cloudflare"))
    assert data["provider_record"] == {
        "source": "cloudflare-api",
        "proxied": ["A"],
        "ipv4": ["23.128.64.20"],
        "ipv6": [],
    }
    assert result_json(_verify((EDGE,)))["provider_record"] is None


# ---------------------------------------------------------------- internationalised names
# Cases from favonia/cloudflare-ddns internal/domain/domain_test.go (IDNA2008, UTS #46 mapping,
# non-transitional: ß stays ß).
@pytest.mark.parametrize(
    "typed, ascii_form",
    [
        ("faß.de", "xn--fa-hia.de"),
        ("fäß.de", "xn--f-qfao.de"),
        ("xn--fa-hia.de", "xn--fa-hia.de"),
        ("\u00f6bb.at", "xn--bb-eka.at"),
        ("o\u0308bb.at", "xn--bb-eka.at"),
        ("\u00d6BB.at", "xn--bb-eka.at"),
        ("Home.Bücher.Example.", "home.xn--bcher-kva.example"),
    ],
)
def test_idna_spelling(typed: str, ascii_form: str) -> None:
    assert idn.to_ascii(typed) == ascii_form


@pytest.mark.parametrize("bad", ["a\u200cb.org", "xn--ab-j1t.org", "\u0080.com", "xn--a.com"])
def test_invalid_idn_is_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(idn.IdnError):
        idn.to_ascii(bad)
    from checks.ddns.providers.base import check_fqdn

    assert check_fqdn(bad)


def test_display_shows_both_spellings() -> None:
    assert idn.display("bücher.example") == "xn--bcher-kva.example (bücher.example)"
    assert idn.display("home.example.org") == "home.example.org"
    assert idn.same_name("bücher.example", "XN--BCHER-KVA.example.")


def test_unicode_hostname_in_the_config_is_stored_as_dns_spells_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[[hosts]]\nhostname = "Heim.Bücher.example"\nprovider = "dyndns2"\n'
        'server = "https://members.example.org"\nusername = "u"\npassword = "p"\n',
        encoding="utf-8",
    )
    (host,) = load_config(cfg).hosts
    assert host.hostname == "heim.xn--bcher-kva.example"
    from checks.ddns.providers.registry import validate_host

    assert validate_host(host) == []


async def test_dyndns2_update_sends_the_ascii_name() -> None:
    from checks.ddns.providers.registry import get_provider

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="good 23.128.64.20")

    host = HostConfig(
        hostname=idn.to_ascii("heim.bücher.example"),
        provider="dyndns2",
        server="https://members.example.org",
        username="u",
        password="p",
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        r = await get_provider("dyndns2").update(host, "23.128.64.20", None, client)
    assert r.result == "updated" and seen[0].url.params["hostname"] == "heim.xn--bcher-kva.example"


# ---------------------------------------------------------------- several hostnames per request
def _noip(name: str, user: str = "keyuser") -> HostConfig:
    return HostConfig(hostname=name, provider="noip", username=user, password="s3cret")


async def _run_many(hosts: list[HostConfig], handler, dns: str | None = "23.128.64.10"):  # type: ignore[no-untyped-def]
    config = Config(endpoints=Endpoints(ip_echo=("https://e1", "https://e2"), dns_echo=()), hosts=tuple(hosts))
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        return await run_update(config, client=client, lookup=serving(dns), public=PUBLIC)


async def test_dyndns2_hosts_of_one_account_go_in_one_request_with_a_line_each() -> None:
    # help.dyn.com/return-codes: one return code per line, in the order the hostnames were given.
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="good 23.128.64.20\nnohost\n")

    results = await _run_many([_noip("a.ddns.net"), _noip("b.ddns.net")], handler)
    assert len(seen) == 1 and seen[0].url.params["hostname"] == "a.ddns.net,b.ddns.net"
    assert [(r.hostname, r.result, r.code, r.fatal) for r in results] == [
        ("a.ddns.net", "updated", "good", False),
        ("b.ddns.net", "error", "nohost", True),
    ]
    assert all(r.previous == "23.128.64.10" for r in results)


async def test_an_account_wide_refusal_is_given_once_and_applies_to_every_host() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="badauth\n")

    results = await _run_many([_noip("a.ddns.net"), _noip("b.ddns.net")], handler)
    assert len(seen) == 1 and all(r.code == "badauth" and r.fatal for r in results)


async def test_at_most_20_hostnames_per_request_and_other_accounts_apart() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        n = len(request.url.params["hostname"].split(","))
        return httpx.Response(200, text="\n".join(["good 23.128.64.20"] * n))

    hosts = [_noip(f"h{i}.ddns.net") for i in range(21)] + [_noip("other.ddns.net", user="someone-else")]
    results = await _run_many(hosts, handler)
    sizes = sorted(len(r.url.params["hostname"].split(",")) for r in seen)
    assert sizes == [1, 1, 20], sizes  # numhost beyond 20; another account never shares a request
    assert {r.result for r in results} == {"updated"} and len(results) == 22


async def test_duckdns_domains_of_one_token_share_a_request() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="OK\n23.128.64.20\n\nUPDATED")

    hosts = [DUCK, HostConfig(hostname="other.duckdns.org", provider="duckdns", token=DUCK.token)]
    results = await _run_many(hosts, handler)
    assert len(seen) == 1 and seen[0].url.params["domains"] == "myhome,other"
    assert [r.result for r in results] == ["updated", "updated"]


async def test_hosts_with_nothing_to_send_do_not_hold_the_others_back() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="good 23.128.64.20")

    async def lookup(hostname: str, resolvers):  # type: ignore[no-untyped-def]
        return ("23.128.64.20" if hostname.startswith("same") else "23.128.64.10"), None, None

    config = Config(
        endpoints=Endpoints(ip_echo=("https://e1", "https://e2"), dns_echo=()),
        hosts=(_noip("same.ddns.net"), _noip("new.ddns.net"), DUCK),
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        results = await run_update(config, client=client, lookup=lookup, public=PUBLIC)
    assert results[0].result == "unchanged" and len(seen) == 2
    assert seen[0].url.params.get("hostname") == "new.ddns.net" or seen[1].url.params.get("hostname") == "new.ddns.net"
