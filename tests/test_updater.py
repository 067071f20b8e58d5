"""The updater's decisions: quorum for the public address, send only when DNS differs, refuse
non-public addresses, --force, --dry-run, and the `update` command's exit codes and JSON.

Echo services and providers are httpx.MockTransport handlers and the authoritative
DNS lookup is an injected function (the lab test runs the real ones).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from checks.config import Config, Endpoints, HostConfig
from checks.ddns.updater import PublicAddress, agree, decide, detect_public, run_update
from checks.errors import ConfigError
from checks.model import ExternalSource

TOKEN = "a1b2c3d4-1234-5678-9abc-def012345678"
DUCK = HostConfig(hostname="myhome.duckdns.org", provider="duckdns", token=TOKEN)
CONFIG = Config(
    endpoints=Endpoints(ip_echo=("https://e1", "https://e2"), dns_echo=(), dns_echo_v6=(), stun=(), ip_echo_v6=()),
    hosts=(DUCK,),
)
PUBLIC = PublicAddress("23.128.64.20", None, summary="2 of 2 agree")


class Provider:
    def __init__(self, body: str = "OK\n23.128.64.20\n\nUPDATED") -> None:
        self.body = body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, text=self.body)


def serving(v4: str | None, v6: str | None = None, error: str | None = None):  # type: ignore[no-untyped-def]
    async def lookup(hostname: str, resolvers):  # type: ignore[no-untyped-def]
        return v4, v6, error

    return lookup


async def update(config: Config, provider: Provider, lookup, **kw):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=httpx.MockTransport(provider)) as client:
        return await run_update(config, client=client, lookup=lookup, public=kw.pop("public", PUBLIC), **kw)


async def test_same_address_sends_nothing() -> None:
    provider = Provider()
    (r,) = await update(CONFIG, provider, serving("23.128.64.20"))
    assert provider.requests == []
    assert r.result == "unchanged" and r.previous == "23.128.64.20" and r.sent is None
    assert "nothing sent" in r.message


async def test_different_address_sends_exactly_one_update() -> None:
    provider = Provider()
    (r,) = await update(CONFIG, provider, serving("23.128.64.10"))
    assert len(provider.requests) == 1
    assert r.result == "updated" and r.previous == "23.128.64.10" and r.sent == "23.128.64.20"


async def test_force_sends_even_when_dns_matches() -> None:
    provider = Provider("OK\n23.128.64.20\n\nNOCHANGE")
    (r,) = await update(CONFIG, provider, serving("23.128.64.20"), force=True)
    assert len(provider.requests) == 1 and r.result == "unchanged" and r.code == "OK NOCHANGE"


async def test_dry_run_sends_nothing_but_says_what_it_would_send() -> None:
    provider = Provider()
    (r,) = await update(CONFIG, provider, serving("23.128.64.10"), dry_run=True)
    assert provider.requests == [] and r.code == "dry-run" and "would send 23.128.64.20" in r.message


async def test_dns_lookup_failure_still_updates() -> None:
    provider = Provider()
    (r,) = await update(CONFIG, provider, serving(None, None, "no authoritative server answered"))
    assert len(provider.requests) == 1 and r.result == "updated"


async def test_dns_lookup_failure_trusts_our_own_last_update_instead_of_a_nochg() -> None:
    """A lossy line that cannot ask DNS must not re-send what this machine already sent."""
    provider = Provider()
    history = (
        {
            "event": "update",
            "hostname": DUCK.hostname,
            "sent": "23.128.64.20",
            "result": "updated",
            "ts": "2026-11-22T05:00:00Z",
        },
    )
    (r,) = await update(CONFIG, provider, serving(None, None, "timed out"), history=history)
    assert provider.requests == []
    assert r.result == "unchanged" and r.code == "history"
    assert "timed out" in r.message and "2026-11-22T05:00:00Z" in r.message


async def test_history_is_not_used_when_it_sent_another_address_or_dns_answers() -> None:
    history = ({"event": "update", "hostname": DUCK.hostname, "sent": "23.128.64.10", "result": "updated"},)
    provider = Provider()
    (r,) = await update(CONFIG, provider, serving(None, None, "timed out"), history=history)
    assert len(provider.requests) == 1 and r.result == "updated"  # the address changed since
    assert "Sent without comparing" in r.message
    same = ({"event": "update", "hostname": DUCK.hostname, "sent": "23.128.64.20", "result": "updated"},)
    provider = Provider()
    (r,) = await update(CONFIG, provider, serving("23.128.64.10"), history=same)
    assert len(provider.requests) == 1  # DNS answered: DNS decides


@pytest.mark.parametrize(
    "address, words",
    [
        ("100.64.1.20", "carrier-grade NAT"),
        ("192.168.1.100", "private (RFC 1918)"),
        ("127.0.0.1", "loopback"),
    ],
)
async def test_non_public_address_is_refused_with_the_reason(address: str, words: str) -> None:
    provider = Provider()
    (r,) = await update(CONFIG, provider, serving("23.128.64.10"), public=PublicAddress(address, None))
    assert provider.requests == []
    assert r.result == "error" and r.code == "private-address" and words in r.message
    assert "--allow-private" in r.message


async def test_cgnat_message_says_nobody_outside_can_reach_it() -> None:
    (r,) = await update(CONFIG, Provider(), serving(None), public=PublicAddress("100.64.1.20", None))
    assert "belongs to your ISP's NAT" in r.message and "nobody outside can reach it" in r.message


async def test_allow_private_publishes_it() -> None:
    provider = Provider()
    (_result,) = await update(
        CONFIG, provider, serving("23.128.64.10"), public=PublicAddress("192.168.1.100", None), allow_private=True
    )
    assert len(provider.requests) == 1 and provider.requests[0].url.params["ip"] == "192.168.1.100"


async def test_unknown_public_address_sends_nothing() -> None:
    provider = Provider()
    public = PublicAddress(None, None, problem_v4="the public IPv4 address is uncertain: the sources disagree")
    (r,) = await update(CONFIG, provider, serving("23.128.64.10"), public=public)
    assert provider.requests == [] and r.result == "error" and "disagree" in r.message


async def test_ipv6_host_sends_both_families_when_one_differs() -> None:
    host = HostConfig(hostname="myhome.duckdns.org", provider="duckdns", token=TOKEN, options={"ipv6": True})
    provider = Provider()
    public = PublicAddress("23.128.64.20", "2a0c:b641:100:1::100")
    (r,) = await update(
        Config(endpoints=CONFIG.endpoints, hosts=(host,)),
        provider,
        serving("23.128.64.20", "2a0c:b641:100:1::1"),
        public=public,
    )
    params = provider.requests[0].url.params
    assert params["ip"] == "23.128.64.20" and params["ipv6"] == "2a0c:b641:100:1::100"
    assert r.previous == "23.128.64.20,2a0c:b641:100:1::1"


async def test_a_family_without_quorum_is_left_alone_and_said() -> None:
    host = HostConfig(hostname="myhome.duckdns.org", provider="duckdns", token=TOKEN, options={"ipv6": True})
    provider = Provider()
    public = PublicAddress("23.128.64.20", None, problem_v6="no IPv6 echo service answered (e6: timeout)")
    (r,) = await update(
        Config(endpoints=CONFIG.endpoints, hosts=(host,)), provider, serving("23.128.64.10"), public=public
    )
    assert "ipv6" not in provider.requests[0].url.params
    assert r.result == "updated" and "no IPv6 echo service answered" in r.message


async def test_no_hosts_is_a_config_error_pointing_at_the_wizard() -> None:
    with pytest.raises(ConfigError) as exc:
        await update(Config(path=Path("/tmp/x/config.toml")), Provider(), serving(None))
    assert "/tmp/x/config.toml" in str(exc.value) and "wizard" in str(exc.value)


async def test_invalid_credentials_are_a_config_error_without_the_secret() -> None:
    bad = HostConfig(hostname="myhome.duckdns.org", provider="duckdns", token="secret-but-not-a-uuid")
    with pytest.raises(ConfigError) as exc:
        await update(Config(hosts=(bad,)), Provider(), serving(None))
    assert "36 characters" in str(exc.value) and "secret-but-not-a-uuid" not in str(exc.value)


# ---------------------------------------------------------------- quorum


def src(endpoint: str, value: str | None, family: int = 4, method: str = "http") -> ExternalSource:
    return ExternalSource(method, endpoint, family, value, None if value else "timeout", 1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "values, configured, agreed",
    [
        (["1.1.1.1", "1.1.1.1", "2.2.2.2"], 3, "1.1.1.1"),
        (["1.1.1.1", "2.2.2.2"], 2, None),  # a tie is not a quorum
        (["1.1.1.1", None], 2, None),  # a single echo is not a quorum
        (["1.1.1.1"], 1, "1.1.1.1"),  # ...unless only one is configured
        ([None, None], 2, None),
    ],
)
def test_quorum(values: list, configured: int, agreed: str | None) -> None:
    sources = [src(f"e{i}", v) for i, v in enumerate(values)]
    value, problem, _ = agree(sources, 4, configured)
    assert value == agreed
    assert (problem is None) is (agreed is not None)


def test_dns_answers_count_as_one_voice_so_they_never_outvote_two_https_echoes() -> None:
    """Three DNS echo methods can be forged by one box on the path: one voice, not three."""
    sources = [
        src("https://e1/", "23.128.64.20"),
        src("https://e2/", "23.128.64.20"),
        src("opendns", "11.9.9.9", method="dns"),
        src("cloudflare", "11.9.9.9", method="dns"),
        src("google", "11.9.9.9", method="dns"),
    ]
    voices = {"http:e1": 1, "http:e2": 1, "dns": 3}
    assert agree(sources, 4, voices)[0] == "23.128.64.20"


def test_dns_alone_is_not_a_quorum_when_https_echoes_are_configured() -> None:
    sources = [
        src("https://e1/", None),
        src("https://e2/", None),
        src("opendns", "23.128.64.20", method="dns"),
        src("cloudflare", "23.128.64.20", method="dns"),
    ]
    value, problem, _ = agree(sources, 4, {"http:e1": 1, "http:e2": 1, "dns": 2})
    assert value is None and "only DNS-based sources answered, and they count as one" in (problem or "")


def test_ipv6_needs_two_independent_voices_like_ipv4() -> None:
    """The wrong-AAAA case of issue 11: one DNS answer (spoofed) and one honest HTTPS echo
    disagree, or the DNS answer is alone: nothing is agreed, so nothing is published."""
    voices = {"http:api6.ipify.org": 1, "http:ipv6.icanhazip.com": 1, "dns": 2}
    lie = src("opendns", "2a0c:b641:100:1::250", family=6, method="dns")
    honest = src("https://api6.ipify.org/", "2a0c:b641:100:1::100", family=6)
    assert agree([lie, honest], 6, voices)[0] is None
    value, problem, _ = agree([lie], 6, voices)
    assert value is None and "uncertain" in (problem or "")
    second = src("https://ipv6.icanhazip.com/", "2a0c:b641:100:1::100", family=6)
    assert agree([lie, honest, second], 6, voices)[0] == "2a0c:b641:100:1::100"


def test_a_voice_whose_sources_disagree_abstains() -> None:
    sources = [
        src("https://e1/", "23.128.64.20"),
        src("opendns", "23.128.64.20", method="dns"),
        src("cloudflare", "11.9.9.9", method="dns"),
        src("https://e2/", "11.9.9.9"),
    ]
    assert agree(sources, 4, {"http:e1": 1, "http:e2": 1, "dns": 2})[0] is None  # 1 vs 1, DNS split


def test_two_urls_on_one_host_are_one_voice() -> None:
    sources = [src("https://e1/a", "23.128.64.20"), src("https://e1/b", "23.128.64.20")]
    value, problem, _ = agree(sources, 4, {"http:e1": 2, "http:e3": 1})
    assert value is None and "not independent of each other" in (problem or "")


async def test_settled_waits_for_every_source_of_a_dns_voice() -> None:
    from checks.ddns.updater import settled

    voices = {"http:e1": 1, "http:e2": 1, "dns": 2}
    first = [src("https://e1/", "23.128.64.20"), src("opendns", "23.128.64.20", method="dns")]
    assert not settled(first, 4, voices)  # cloudflare could still split the DNS voice
    both = first + [src("cloudflare", "23.128.64.20", method="dns")]
    assert settled(both, 4, voices)


async def test_detect_public_asks_every_echo() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="23.128.64.20\n")

    async with httpx.AsyncClient(transport=httpx.MockTransport(echo)) as client:
        public = await detect_public(CONFIG, client, want_ipv6=False)
    assert public.ipv4 == "23.128.64.20" and len(public.sources) == 2


def test_decide_is_pure_and_compares_per_family() -> None:
    d = decide(DUCK, "duckdns", PUBLIC, ("23.128.64.20", "2a0c::1", None), force=False, allow_private=False)
    assert d.result is not None and d.result.result == "unchanged"  # AAAA not wanted: ignored


# ---------------------------------------------------------------- the command


def test_update_command_json_and_exit_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import checks.ddns.updater as updater
    from wizard.cli import main

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the history: never the real one
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[endpoints]\nip_echo = ["https://e1", "https://e2"]\ndns_echo = []\nstun = []\n'
        f'[[hosts]]\nhostname = "myhome.duckdns.org"\nprovider = "duckdns"\ntoken = "{TOKEN}"\n'
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host in ("e1", "e2"):
            return httpx.Response(200, text="23.128.64.20")
        return httpx.Response(200, text="KO")

    monkeypatch.setattr(
        updater, "make_provider_client", lambda: httpx.AsyncClient(transport=httpx.MockTransport(handler))
    )
    monkeypatch.setattr(updater, "default_lookup", serving("23.128.64.10"))
    assert main(["--config", str(cfg), "update", "--json"]) == 1  # KO: the host errored
    out = capsys.readouterr().out
    (item,) = json.loads(out)
    assert set(item) >= {"hostname", "provider", "previous", "sent", "result", "code", "message"}
    assert (item["result"], item["code"], item["previous"]) == ("error", "KO", "23.128.64.10")
    assert TOKEN not in out

    monkeypatch.setattr(updater, "default_lookup", serving("23.128.64.20"))
    assert main(["--config", str(cfg), "update"]) == 0
    out = capsys.readouterr().out
    assert "unchanged" in out and "Public address: IPv4 23.128.64.20" in out
    assert "Public address: unknown" not in out


def test_update_command_without_hosts_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wizard.cli import main

    cfg = tmp_path / "config.toml"
    assert main(["--config", str(cfg), "update"]) == 2  # a named file that does not exist: said so
    err = capsys.readouterr().err
    assert "does not exist" in err and str(cfg) in err
    cfg.write_text("")
    assert main(["--config", str(cfg), "update"]) == 2
    err = capsys.readouterr().err
    assert "no hostnames configured" in err and str(cfg) in err


def test_temporary_ipv6_is_replaced_by_the_stable_address() -> None:
    from checks.ddns.updater import stable_ipv6
    from checks.model import Ipv6Address, LocalInfo

    local = LocalInfo(
        "eth0",
        "192.168.1.100",
        "192.168.1.1",
        ipv6_global=(
            Ipv6Address("2a0c:b641:100:1:aaaa:bbbb:cccc:dddd", "eth0", temporary=True),
            Ipv6Address("2a0c:b641:100:1::100", "eth0"),
            Ipv6Address("2a0c:b641:200::5", "eth1"),
        ),
    )
    chosen, note = stable_ipv6("2a0c:b641:100:1:aaaa:bbbb:cccc:dddd", local)
    assert chosen == "2a0c:b641:100:1::100" and note and "temporary privacy address" in note
    assert stable_ipv6("2a0c:b641:100:1::100", local) == ("2a0c:b641:100:1::100", None)  # already stable
    assert stable_ipv6("2a0c:b641:999::1", local) == ("2a0c:b641:999::1", None)  # not ours: keep


async def test_detect_public_publishes_the_stable_ipv6() -> None:
    from checks.model import Ipv6Address, LocalInfo

    temp = "2a0c:b641:100:1:aaaa:bbbb:cccc:dddd"
    local = LocalInfo(
        "eth0",
        None,
        None,
        ipv6_global=(Ipv6Address(temp, "eth0", temporary=True), Ipv6Address("2a0c:b641:100:1::100", "eth0")),
    )

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=temp if request.url.host == "e6" else "23.128.64.20")

    config = Config(
        endpoints=Endpoints(
            ip_echo=("https://e1", "https://e2"), dns_echo=(), dns_echo_v6=(), stun=(), ip_echo_v6=("https://e6",)
        ),
        hosts=(DUCK,),
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(echo)) as client:
        public = await detect_public(config, client, want_ipv6=True, local=local)
    assert public.ipv6 == "2a0c:b641:100:1::100" and "stable address" in public.summary


def _echoes(answers: dict[str, tuple[float, str]]):  # type: ignore[no-untyped-def]
    """An async echo handler: host -> (delay in seconds, body)."""
    import asyncio

    async def handler(request: httpx.Request) -> httpx.Response:
        delay, body = answers[request.url.host]
        await asyncio.sleep(delay)
        return httpx.Response(200, text=body)

    return handler


async def test_detect_public_stops_waiting_once_a_majority_of_all_configured_sources_agree() -> None:
    import asyncio

    # Three of five agree at once; the two slow ones could not overturn that, so the
    # round ends without them instead of after their (here 30 s) answer.
    urls = tuple(f"https://e{i}" for i in range(1, 6))
    config = Config(
        endpoints=Endpoints(ip_echo=urls, dns_echo=(), dns_echo_v6=(), stun=(), ip_echo_v6=()), hosts=(DUCK,)
    )
    handler = _echoes(
        {
            "e1": (0, "23.128.64.20"),
            "e2": (0, "23.128.64.20"),
            "e3": (0.01, "23.128.64.20"),
            "e4": (30, "23.128.64.20"),
            "e5": (30, "198.51.100.1"),
        }
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        public = await asyncio.wait_for(detect_public(config, client, want_ipv6=False), 5)
    assert public.ipv4 == "23.128.64.20" and public.problem_v4 is None
    assert [s.endpoint for s in public.sources] == list(urls)  # configuration order kept
    skipped = {s.endpoint: s.error for s in public.sources if not s.value}
    assert set(skipped) == {"https://e4", "https://e5"}
    assert all(e and e.startswith("not waited for") for e in skipped.values())
    assert "3 of 3 sources agree; 2 more not waited for" in public.summary


async def test_detect_public_waits_for_the_rest_while_the_answers_so_far_disagree() -> None:
    # e1 and e2 disagree at once: only e3's later answer decides.
    urls = ("https://e1", "https://e2", "https://e3")
    config = Config(
        endpoints=Endpoints(ip_echo=urls, dns_echo=(), dns_echo_v6=(), stun=(), ip_echo_v6=()), hosts=(DUCK,)
    )
    handler = _echoes({"e1": (0, "23.128.64.20"), "e2": (0, "11.9.9.9"), "e3": (0.2, "23.128.64.20")})
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        public = await detect_public(config, client, want_ipv6=False)
    assert public.ipv4 == "23.128.64.20"
    assert all(s.value for s in public.sources) and "not waited for" not in public.summary


async def test_no_echo_configured_is_said_not_crashed() -> None:
    config = Config(endpoints=Endpoints(ip_echo=(), dns_echo=(), dns_echo_v6=(), stun=(), ip_echo_v6=()), hosts=(DUCK,))
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500))) as client:
        public = await detect_public(config, client, want_ipv6=False)
    assert public.ipv4 is None and "no IPv4 echo service is configured" in (public.problem_v4 or "")
