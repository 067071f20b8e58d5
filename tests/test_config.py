"""Configuration: load, validate, save atomically with 0600, and never lose a damaged file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from checks.config import (
    Config,
    HostConfig,
    load_config,
    save_config,
)
from checks.errors import ConfigError, ConfigSyntaxError

GOOD = """
[endpoints]
ip_echo = ["https://11.1.0.10/"]
stun = []
resolvers = ["11.1.0.53"]

[[hosts]]
hostname = "MyHome.example.org."
provider = "DynDNS2"
server = "https://members.example.org"
username = "alice"
password = "s3cret-pass"
ttl = 60
"""


def test_load_good_file(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(GOOD)
    cfg = load_config(p)
    assert cfg.endpoints.ip_echo == ("https://11.1.0.10/",)
    assert cfg.endpoints.stun == ()  # an empty list disables the method
    assert cfg.endpoints.dns_echo == ("opendns", "cloudflare")  # defaults fill the rest
    (host,) = cfg.hosts
    assert host.hostname == "myhome.example.org"  # normalised
    assert host.provider == "dyndns2"
    assert host.options == {"ttl": 60}
    assert cfg.secret_values() == ["s3cret-pass"]


def test_missing_file_gives_defaults_unless_required(tmp_path: Path) -> None:
    p = tmp_path / "nope.toml"
    cfg = load_config(p)
    assert cfg.hosts == () and cfg.path == p
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(p, must_exist=True)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text('[endpoints]\nip_echo = ["a"]\n[[hosts]\nhostname = "x"\n')
    with pytest.raises(ConfigSyntaxError) as exc:
        load_config(p)
    assert exc.value.line == 3
    assert str(p) in str(exc.value) and "line 3" in str(exc.value)


def test_truncated_file_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "trunc.toml"
    p.write_text(GOOD[: GOOD.index("password") + 14])  # cut inside a string
    with pytest.raises(ConfigSyntaxError) as exc:
        load_config(p)
    assert exc.value.line is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[endpoints]\nip_echo = 3\n", "endpoints.ip_echo must be a list of strings"),
        ("[endpoints]\nbogus = []\n", "unknown key endpoints.bogus"),
        ("[[hosts]]\nprovider = 'duckdns'\n", "has no hostname"),
        ("[[hosts]]\nhostname = 'a.duckdns.org'\n", "has no provider"),
        ("[[hosts]]\nhostname = 'a.duckdns.org'\nprovider='duckdns'\ntoken = 5\n", "token must be a string"),
    ],
)
def test_invalid_values(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(p)


def test_save_is_0600_and_round_trips(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "config.toml"
    cfg = Config(hosts=(HostConfig(hostname="a.duckdns.org", provider="duckdns", token="tok-123"),), path=p)
    save_config(cfg)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    again = load_config(p)
    assert again.hosts[0].token == "tok-123"
    assert again.endpoints == cfg.endpoints
    # no temporary files left beside it
    assert sorted(x.name for x in p.parent.iterdir()) == ["config.toml"]


def test_save_keeps_a_copy_of_a_damaged_file(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_text("this is [not toml")
    save_config(Config(path=p))
    backups = [x for x in tmp_path.iterdir() if x.name.startswith("config.toml.damaged-")]
    assert len(backups) == 1
    assert backups[0].read_text() == "this is [not toml"
    assert stat.S_IMODE(os.stat(backups[0]).st_mode) == 0o600
    load_config(p)  # the new file parses


def test_env_var_selects_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "env.toml"
    p.write_text(GOOD)
    monkeypatch.setenv("DDNS_WIZARD_CONFIG", str(p))
    assert load_config().hosts[0].hostname == "myhome.example.org"
