"""RealEngine's offline parts against the real engine modules: the provider
registry as the wizard shows it, field validation, pre-flight refusing a bad host
before any request, saving and exporting (the networked methods are exercised by
tests/lab/test_tui_e2e.py inside the lab)."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

from checks.config import Config, HostConfig
from wizard.engine import RealEngine

from .fake_engine import diagnosis_for


def test_providers_come_from_the_registry_with_their_fields() -> None:
    providers = {p.name: p for p in RealEngine(Config()).list_providers()}
    duck = providers["duckdns"]
    assert duck.title == "DuckDNS" and duck.cost and duck.url.startswith("https://")
    assert [f.name for f in duck.fields] == ["hostname", "token"]
    assert [f.secret for f in duck.fields] == [False, True]
    assert duck.signup_steps  # the wizard shows how to sign up
    assert "dyndns2" in providers and any(f.name == "server" for f in providers["dyndns2"].fields)


def test_fields_are_validated_by_the_provider_rules() -> None:
    engine = RealEngine(Config())
    assert engine.validate_field("duckdns", "hostname", "myhome.duckdns.org") is None
    assert "not a full hostname" in (engine.validate_field("duckdns", "hostname", "myhome") or "")
    assert "duckdns.org" in (engine.validate_field("duckdns", "hostname", "myhome.example.org") or "")
    assert "36 characters" in (engine.validate_field("duckdns", "token", "abc") or "")
    assert engine.validate_field("dyndns2", "server", "https://members.example.org") is None
    assert engine.validate_field("dyndns2", "server", "ftp://x") is not None
    assert engine.validate_field("no-such-provider", "hostname", "x") is None  # no crash


async def test_preflight_refuses_an_invalid_host_without_a_request() -> None:
    result = await RealEngine(Config()).preflight(HostConfig("myhome.example.org", "duckdns", token="abc"))
    assert not result.ok
    assert "DuckDNS hostname" in result.message and "abc" not in result.message.split("token")[0]


async def test_save_and_export(tmp_path: Path) -> None:
    engine = RealEngine(Config())
    host = HostConfig("myhome.duckdns.org", "duckdns", token="3f2b8c1e-9d4a-4e7b-a1c5-6d0e2f9b7a41")
    config = Config(hosts=(host,), path=tmp_path / "config.toml")
    path = await engine.save_config(config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tomllib.loads(path.read_text())["hosts"][0]["token"] == host.token

    report = await engine.export_report(diagnosis_for("cgnat"), tmp_path / "r.json", config=config)
    data = json.loads(report.read_text())
    assert data["nat"]["verdict"] == "cgnat"
    assert host.token not in report.read_text()
    md = await engine.export_report(diagnosis_for("home"), tmp_path / "r.md", config=config)
    assert md.read_text().startswith("#")


async def test_export_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    import pytest

    from checks.errors import UsageError

    engine = RealEngine(Config())
    existing = tmp_path / "report.md"
    existing.write_text("my notes")
    with pytest.raises(UsageError, match="already exists"):
        await engine.export_report(diagnosis_for("home"), existing, config=Config())
    assert existing.read_text() == "my notes"
