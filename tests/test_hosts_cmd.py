"""`hosts list|remove` and checks/ddns/hosts.py: the file stays whole, 0600, other tables kept."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from checks.config import HostConfig, load_config
from checks.ddns.hosts import add_host, remove_host
from checks.errors import ConfigError
from wizard.cli import main

CONFIG = """\
[endpoints]
resolvers = ["11.1.0.53"]

[notify]
urls = ["json://127.0.0.1/hook/Secret0Token"]

[[hosts]]
hostname = "one.duckdns.org"
provider = "duckdns"
token = "a1b2c3d4-1234-5678-9abc-def012345678"

[[hosts]]
hostname = "two.duckdns.org"
provider = "duckdns"
token = "a1b2c3d4-1234-5678-9abc-def012345678"
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(CONFIG)
    p.chmod(0o600)
    return p


def test_list_shows_hosts_without_secrets(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(cfg), "hosts", "list"]) == 0
    out = capsys.readouterr().out
    assert "one.duckdns.org" in out and "two.duckdns.org" in out and "a1b2c3d4" not in out
    assert main(["hosts", "list", "--json", "--config", str(cfg)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [h["hostname"] for h in data] == ["one.duckdns.org", "two.duckdns.org"]
    assert all(h["has_secret"] and "token" not in h for h in data)


def test_remove_saves_atomically_keeping_everything_else(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(cfg), "hosts", "remove", "ONE.duckdns.org"]) == 0
    assert "Removed" in capsys.readouterr().out
    data = tomllib.loads(cfg.read_text())
    assert [h["hostname"] for h in data["hosts"]] == ["two.duckdns.org"]
    assert data["notify"]["urls"] == ["json://127.0.0.1/hook/Secret0Token"]
    assert data["endpoints"]["resolvers"] == ["11.1.0.53"]
    assert cfg.stat().st_mode & 0o777 == 0o600


def test_remove_unknown_host_or_missing_file_is_a_usage_error(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(cfg), "hosts", "remove", "three.duckdns.org"]) == 2
    err = capsys.readouterr().err
    assert "three.duckdns.org is not configured" in err and "Traceback" not in err
    assert main(["--config", str(tmp_path / "none.toml"), "hosts", "remove", "x.duckdns.org"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_add_and_edit_refuse_duplicates(cfg: Path) -> None:
    config = load_config(cfg)
    new = HostConfig("three.duckdns.org", "duckdns", token="a1b2c3d4-1234-5678-9abc-def012345678")
    config, _ = add_host(config, new)
    assert [h.hostname for h in load_config(cfg).hosts][-1] == "three.duckdns.org"
    with pytest.raises(ConfigError, match="already configured"):
        add_host(config, new)
    edited = HostConfig("three.duckdns.org", "duckdns", token="b1b2c3d4-1234-5678-9abc-def012345678")
    config, _ = add_host(config, edited, replacing="three.duckdns.org")
    assert load_config(cfg).hosts[-1].token.startswith("b1")
    config, _ = remove_host(config, "three.duckdns.org")
    assert len(load_config(cfg).hosts) == 2
