"""The provider registry: every provider declares what a first-timer needs; fields are validated."""

from __future__ import annotations

import json

import pytest

from checks.config import HostConfig
from checks.ddns.providers.base import check_fqdn, user_agent
from checks.ddns.providers.registry import PROVIDERS, get_provider, validate_host
from checks.errors import ConfigError

REQUIRED = {
    "dyndns2",
    "noip",
    "duckdns",
    "cloudflare",
    "dynu",
    "desec",
    "freedns",
    "dynv6",
    "he",
    "namecheap",
    "rfc2136",
}


def test_every_required_provider_is_registered() -> None:
    assert set(PROVIDERS) >= REQUIRED


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_each_provider_declares_guidance_fields_and_policy(name: str) -> None:
    spec = PROVIDERS[name]
    assert len(spec.signup_steps) >= 3 and all(len(s) > 20 for s in spec.signup_steps)
    assert spec.pitfalls
    assert spec.fields[0].name == "hostname"
    assert any(f.secret for f in spec.fields)
    assert spec.policy.min_interval_s > 0


@pytest.mark.parametrize(
    "name, words",
    [
        ("noip", "30 days"),
        ("desec", "preserve"),
        ("he", "ONE record"),
        ("cloudflare", "DNS → Edit"),
    ],
)
def test_known_pitfalls_are_told(name: str, words: str) -> None:
    assert any(words in p for p in PROVIDERS[name].pitfalls)


@pytest.mark.parametrize(
    "value, ok",
    [
        ("myhome.example.org", True),
        ("a-b.c.example.org.", True),
        ("localhost", False),
        ("https://myhome.example.org", False),
        ("1.2.3.4", False),
        ("-bad.example.org", False),
        ("bad_.example.org", False),
        ("my home.example.org", False),
        ("x." * 130 + "org", False),
    ],
)
def test_fqdn_syntax(value: str, ok: bool) -> None:
    assert (check_fqdn(value) is None) is ok


def test_noip_hostname_must_be_one_of_its_domains() -> None:
    bad = HostConfig(hostname="home.example.org", provider="noip", username="u", password="p")
    problems = validate_host(bad)
    assert problems and "ddns.net" in problems[0] and "own_domain" in problems[0]
    assert validate_host(HostConfig(hostname="home.ddns.net", provider="noip", username="u", password="p")) == []


def test_missing_credential_is_named() -> None:
    problems = validate_host(HostConfig(hostname="home.ddns.net", provider="noip", username="u"))
    assert any("password" in p for p in problems)


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as exc:
        get_provider("nosuch")
    assert "duckdns" in str(exc.value)


def test_aliases() -> None:
    assert get_provider("No-IP").name == "noip"
    assert get_provider("nsupdate").name == "rfc2136"


# No-IP: "User-Agent: Company NameOfProgram/OSVersion-ReleaseVersion maintainer-contact@example.com"
# (https://www.noip.com/integrate/request); clients without it "risk being rate-limited or blocked".
NOIP_AGENT_RE = r"\S+ [A-Za-z0-9._-]+/[A-Za-z0-9]+-[0-9][A-Za-z0-9.+-]* [^@\s]+@[^@\s]+\.[A-Za-z]{2,}"


def test_user_agent_has_the_form_no_ip_asks_for() -> None:
    import platform
    import re

    from checks import __version__

    ua = user_agent()
    assert re.fullmatch(NOIP_AGENT_RE, ua), ua
    company, program, contact = ua.split(" ")
    assert company == "ddns-wizard" and program == f"ddns-wizard/{platform.system()}-{__version__}"
    assert "@" in contact
    assert user_agent("me@example.org").endswith(" me@example.org")
    assert re.fullmatch(NOIP_AGENT_RE, user_agent("me@example.org"))


@pytest.mark.parametrize(
    "contact, ok",
    [
        ("me@example.org", True),
        ("first.last+ddns@mail.example.co.uk", True),
        ("https://example.org", False),
        ("me", False),
        ("me@example.org bob@example.org", False),
        (" me@example.org", False),
        ("Me <me@example.org>", False),
    ],
)
def test_contact_option_must_keep_the_agent_conforming(contact: str, ok: bool) -> None:
    host = HostConfig(
        hostname="myhome.ddns.net", provider="noip", username="u", password="p", options={"contact": contact}
    )
    problems = get_provider("noip").validate(host)
    assert (not any("contact" in p for p in problems)) is ok, problems


def test_providers_command_json_lists_every_provider(capsys: pytest.CaptureFixture[str]) -> None:
    from wizard.cli import main

    assert main(["providers", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_name = {d["name"]: d for d in data}
    assert set(by_name) >= REQUIRED
    assert by_name["duckdns"]["supports_ipv6"] is True and by_name["namecheap"]["supports_ipv6"] is False
    assert [f["name"] for f in by_name["duckdns"]["fields"]] == ["hostname", "token"]
    # Several names per request only where the protocol takes them (dyndns2: at most 20).
    assert {n: d["batch_max"] for n, d in by_name.items() if d["batch_max"]} == {
        "dyndns2": 20,
        "noip": 20,
        "duckdns": 20,
    }
    assert {n for n, d in by_name.items() if d["multi_record"]} == {"cloudflare", "rfc2136"}
    assert "account_id" in [f["name"] for f in by_name["cloudflare"]["fields"]]


def test_providers_command_table_and_detail(capsys: pytest.CaptureFixture[str]) -> None:
    from wizard.cli import main

    assert main(["providers"]) == 0
    out = capsys.readouterr().out
    for name in REQUIRED:
        assert name in out
    assert main(["providers", "he"]) == 0
    out = capsys.readouterr().out
    assert "Generate a key" in out and "[[hosts]]" in out
    assert main(["providers", "nosuch"]) == 2


@pytest.mark.parametrize(
    "provider, hostname, value, expected",
    [
        ("dyndns2", "h.example.org", 0, 0),  # the user's own server: their rules
        ("rfc2136", "h.example.org", 5, 5),
        ("noip", "h.ddns.net", 0, 300),  # a public provider's minimum is a floor
        ("noip", "h.ddns.net", 900, 900),
        ("noip", "h.ddns.net", None, 300),
    ],
)
def test_min_interval_override(provider: str, hostname: str, value: int | None, expected: int) -> None:
    options = {} if value is None else {"min_interval": value}
    host = HostConfig(hostname=hostname, provider=provider, options=options)
    assert get_provider(provider).min_interval_for(host) == expected


def test_min_interval_must_be_a_number() -> None:
    host = HostConfig(
        hostname="h.ddns.net", provider="noip", username="u", password="p", options={"min_interval": "soon"}
    )
    assert any("min_interval" in p for p in validate_host(host))


def test_validate_value_for_input_boxes() -> None:
    duck = get_provider("duckdns")
    assert duck.hostname_hint == "myhome.duckdns.org"
    assert "duckdns.org" in (duck.validate_value("hostname", "myhome.example.org") or "")
    assert duck.validate_value("hostname", "myhome.duckdns.org") is None
    assert "36 characters" in (duck.validate_value("token", "nope") or "")
    assert get_provider("dyndns2").validate_value("server", "members.example.org") is not None
    assert get_provider("rfc2136").validate_value("key", "not base64!") is not None  # alias of tsig_secret


def test_hostname_must_be_inside_the_configured_zone() -> None:
    secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
    host = HostConfig(
        hostname="home.example.net",
        provider="rfc2136",
        server="192.0.2.53",
        options={"zone": "example.org", "key_name": "k", "tsig_secret": secret},
    )
    assert any("not inside the zone example.org" in p for p in validate_host(host))


def test_plain_http_server_is_refused() -> None:
    host = HostConfig(
        hostname="h.example.org", provider="dyndns2", server="http://members.example.org", username="u", password="p"
    )
    assert any("https://" in p and "unencrypted" in p for p in validate_host(host))


def test_ttl_option_is_checked() -> None:
    secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
    host = HostConfig(
        hostname="home.example.org",
        provider="rfc2136",
        server="192.0.2.53",
        options={"key_name": "k", "tsig_secret": secret, "ttl": "soon"},
    )
    assert any("ttl" in p for p in validate_host(host))
