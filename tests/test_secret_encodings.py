"""A provider that echoes the credentials back must not get them printed or stored, in any encoding.

The provider here is an httpx.MockTransport handler (a "unit provider": the lab's
emulators do not echo credentials, and real providers that do so cannot be reached).
It answers each update with the credentials it received, in one encoding per case:
the request URL (the token URL-encoded in the query), the Basic ``Authorization``
header, base64 of the password at each offset modulo 3 inside a longer base64 string,
percent-encoded with either hex case or twice, JSON- and HTML-escaped.  Everything
the tool produces is then searched for the secret with decoders that know nothing of
how the redactor works: percent-decoding, HTML unescaping, JSON parsing and
base64-decoding every run of base64 characters at every alignment.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.config import Config, Endpoints, HostConfig
from checks.ddns.history import History
from checks.ddns.updater import PublicAddress
from checks.redact import Redactor

USER = "alice"
PASSWORD = "p@ss w/rd+ü&=x!9Zq<7>"  # every character class an encoder treats specially
TOKEN = "a1b2c3d4-1234-5678-9abc-def012345678"
DYNDNS2 = HostConfig(
    hostname="myhome.example.org",
    provider="dyndns2",
    server="https://members.example.org",
    username=USER,
    password=PASSWORD,
)
DUCK = HostConfig(hostname="myhome.duckdns.org", provider="duckdns", token=TOKEN)


# --------------------------------------------------------------------------- leak detectors


_B64_RUN = re.compile(r"[A-Za-z0-9+/_=-]{8,}")


def _base64_decodings(text: str) -> list[bytes]:
    out = []
    for run in _B64_RUN.findall(text):
        for start in range(4):
            piece = run[start:].rstrip("=")
            piece = piece[: len(piece) // 4 * 4]
            for alt in (None, b"-_"):
                try:
                    out.append(base64.b64decode(piece, altchars=alt))
                except ValueError:
                    pass
    return out


def leaks(text: str, secret: str) -> list[str]:
    """Every decoder under which ``secret`` (or a 6-byte piece of it, for base64) shows in ``text``."""
    found = []
    if secret in text:
        found.append("plain")
    for name, decode in (
        ("percent", unquote),
        ("percent+", unquote_plus),
        ("percent twice", lambda t: unquote(unquote(t))),
        ("html", html.unescape),
    ):
        if secret in decode(text):
            found.append(name)
    raw = secret.encode()
    pieces = {raw[i : i + 6] for i in range(0, max(1, len(raw) - 5))}
    for decoded in _base64_decodings(text):
        if any(p in decoded for p in pieces):
            found.append(f"base64 ({decoded[:40]!r})")
            break
    return found


def strings_in(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


# --------------------------------------------------------------------------- echoes


def b64_at(offset: int, secret: bytes) -> str:
    """The secret inside a longer base64 string, at ``offset`` bytes into its 3-byte groups."""
    return base64.b64encode(b"Q" * offset + b"session=" + secret + b";expires=never").decode()


Echo = Callable[[httpx.Request], str]
ECHOES: dict[str, Echo] = {
    "authorization header": lambda r: f'what? {{"Authorization": "{r.headers.get("authorization", "")}"}}',
    "authorization decoded": lambda r: (
        "what? credentials: " + base64.b64decode(r.headers.get("authorization", "Basic ").split()[-1] or b"").decode()
    ),
    "base64 offset 0": lambda r: "what? cookie " + b64_at(0, PASSWORD.encode()),
    "base64 offset 1": lambda r: "what? cookie " + b64_at(1, PASSWORD.encode()),
    "base64 offset 2": lambda r: "what? cookie " + b64_at(2, PASSWORD.encode()),
    "base64 urlsafe": lambda r: "what? " + base64.urlsafe_b64encode(b"x" + PASSWORD.encode()).decode(),
    "base64 of the secret alone": lambda r: "what? " + base64.b64encode(PASSWORD.encode()).decode(),
    "form encoded": lambda r: "what? password=" + quote_plus(PASSWORD),
    "percent lower hex": lambda r: (
        "what? pw " + re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(PASSWORD, safe=""))
    ),
    "percent twice": lambda r: "what? " + quote(quote(PASSWORD, safe=""), safe=""),
    "json escaped": lambda r: "what? " + json.dumps({"password": PASSWORD}),
    "html escaped": lambda r: "what? <b>" + html.escape(PASSWORD) + "</b>",
    "cut at the excerpt limit": lambda r: "what? " + "x" * 100 + PASSWORD + "y" * 50,
}


def run_update_command(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    host_toml: str,
    echo: Echo,
) -> tuple[str, str]:
    """``ddns-wizard update --json --history H`` in-process: (everything printed or logged, history text)."""
    import checks.ddns.updater as updater
    from wizard.cli import main

    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[endpoints]\nip_echo = ["https://e1", "https://e2"]\ndns_echo = []\nstun = []\nip_echo_v6 = []\n{host_toml}'
    )
    history = tmp_path / "history.jsonl"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host in ("e1", "e2"):
            return httpx.Response(200, text="23.128.64.20")
        return httpx.Response(200, text=echo(request))

    async def lookup(hostname: str, resolvers):  # type: ignore[no-untyped-def]
        return "23.128.64.10", None, None

    monkeypatch.setattr(
        updater, "make_provider_client", lambda: httpx.AsyncClient(transport=httpx.MockTransport(handler))
    )
    monkeypatch.setattr(updater, "default_lookup", lookup)
    caplog.set_level(logging.DEBUG)
    code = main(["--config", str(cfg), "update", "--json", "--history", str(history)])
    captured = capsys.readouterr()
    assert code == 1, captured.err  # an error result (a reply it does not understand)
    data = json.loads(captured.out)
    assert data[0]["result"] == "error"
    printed = "\n".join([captured.out, captured.err, caplog.text, *strings_in(data)])
    return printed, history.read_text()


HOST_DYNDNS2 = (
    f'[[hosts]]\nhostname = "{DYNDNS2.hostname}"\nprovider = "dyndns2"\nserver = "{DYNDNS2.server}"\n'
    f'username = "{USER}"\npassword = {json.dumps(PASSWORD)}\n'
)
HOST_DUCK = f'[[hosts]]\nhostname = "{DUCK.hostname}"\nprovider = "duckdns"\ntoken = "{TOKEN}"\n'


@pytest.mark.parametrize("echo", sorted(ECHOES))
def test_update_json_history_and_logs_never_show_an_echoed_password(
    echo: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    printed, history = run_update_command(tmp_path, monkeypatch, caplog, capsys, HOST_DYNDNS2, ECHOES[echo])
    assert "***" in printed and "***" in history  # the echo was shown, masked (the test is not vacuous)
    assert leaks(printed, PASSWORD) == [] and leaks(history, PASSWORD) == []
    assert leaks(printed, f"{USER}:{PASSWORD}") == [] and leaks(history, f"{USER}:{PASSWORD}") == []
    records = [json.loads(line) for line in history.splitlines()]
    assert all(leaks(s, PASSWORD) == [] for r in records for s in strings_in(r))


@pytest.mark.parametrize("echo", ["request url", "form encoded", "base64 offset 1", "base64 offset 2", "json escaped"])
def test_a_token_in_the_query_is_masked_in_every_echoed_form(
    echo: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret_echo = {
        "request url": lambda r: f"what? {r.url}",
        "form encoded": lambda r: "what? token=" + quote_plus(TOKEN),
        "base64 offset 1": lambda r: "what? " + b64_at(1, TOKEN.encode()),
        "base64 offset 2": lambda r: "what? " + b64_at(2, TOKEN.encode()),
        "json escaped": lambda r: "what? " + json.dumps({"token": TOKEN}),
    }[echo]
    printed, history = run_update_command(tmp_path, monkeypatch, caplog, capsys, HOST_DUCK, secret_echo)
    assert leaks(printed, TOKEN) == [] and leaks(history, TOKEN) == []
    assert "***" in printed


async def test_watch_output_and_history_never_show_an_echoed_basic_credential(tmp_path: Path) -> None:
    from checks.ddns.watch import Watcher

    echo = ECHOES["authorization header"]
    lines: list[str] = []
    redactor = Redactor.from_config(Config(hosts=(DYNDNS2,)))
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200, text=echo(r))))

    async def detect() -> PublicAddress:
        return PublicAddress("23.128.64.20", None)

    async def lookup(hostname: str, resolvers):  # type: ignore[no-untyped-def]
        return "23.128.64.10", None, None

    path = tmp_path / "h.jsonl"
    with History(path, redactor=redactor) as history:
        w = Watcher(
            Config(endpoints=Endpoints(), hosts=(DYNDNS2,)),
            client,
            history=history,
            detect=detect,
            lookup=lookup,
            emit=lambda text: lines.append(redactor.text(text)),
        )
        await w.tick()
    await client.aclose()
    shown = "\n".join(lines)
    assert "error (unknown)" in shown and "***" in shown
    assert leaks(shown, PASSWORD) == [] and leaks(path.read_text(), PASSWORD) == []


# --------------------------------------------------------------------------- the redactor itself


_SECRETS = st.text(st.characters(blacklist_categories=("Cs",)), min_size=6, max_size=30).filter(
    lambda s: s.strip() == s
)


@settings(max_examples=300, deadline=None)
@given(secret=_SECRETS, before=st.binary(max_size=8), after=st.binary(max_size=8), urlsafe=st.booleans())
def test_base64_of_a_secret_at_any_offset_is_masked(secret: str, before: bytes, after: bytes, urlsafe: bool) -> None:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    text = "cookie " + encode(before + secret.encode() + after).decode() + " end"
    out = Redactor(secrets=[secret]).text(text)
    raw = secret.encode()
    for decoded in _base64_decodings(out):
        assert raw[:6] not in decoded or raw[:6] in (before + after)  # no 6-byte piece decodes back
        assert raw not in decoded


@settings(max_examples=300, deadline=None)
@given(
    secret=_SECRETS,
    user=st.text(st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters=":"), min_size=1, max_size=12),
)
def test_basic_authorization_value_is_masked_whole(secret: str, user: str) -> None:
    r = Redactor()
    r.add_basic(user, secret)
    value = base64.b64encode(f"{user}:{secret}".encode()).decode()
    out = r.text(f'{{"authorization": "Basic {value}"}}')
    assert value not in out and leaks(out, secret) == []


@settings(max_examples=300, deadline=None)
@given(secret=_SECRETS, how=st.sampled_from(["quote", "quote_plus", "lower", "twice", "json", "json-ascii", "html"]))
def test_url_json_and_html_forms_are_masked(secret: str, how: str) -> None:
    form = {
        "quote": lambda s: quote(s, safe=""),
        "quote_plus": quote_plus,
        "lower": lambda s: re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(s, safe="")),
        "twice": lambda s: quote(quote(s, safe=""), safe=""),
        "json": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
        "json-ascii": lambda s: json.dumps(s)[1:-1],
        "html": html.escape,
    }[how](secret)
    out = Redactor(secrets=[secret]).text(f"reply: {form} (end)")
    assert form not in out and "***" in out


def test_english_basic_is_not_mistaken_for_a_credential() -> None:
    text = "Basic authentication failed; basic YWJjZGVmZ2g= is not a user:password pair"
    assert Redactor().text(text) == text
