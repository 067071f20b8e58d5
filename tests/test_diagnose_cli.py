"""`ddns-wizard diagnose` through the real command line, on fake probes.

Mocked: only the probe functions (``wizard.commands.diagnose._probe_set``), because
outside the lab the real ones would talk to this machine's real router and the
internet. The runner, verdicts, findings, JSON and Rich output are the real ones.
The lab tests (tests/lab/test_diagnose_lab.py) run the same command for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from checks.model import LocalInfo
from tests.test_diagnose_runner import FakeNet
from wizard.cli import main

SCHEMA = json.loads((Path(__file__).parent.parent / "checks" / "schema" / "report-1.schema.json").read_text())

CONFIG_TOML = """
[endpoints]
ip_echo = ["https://11.1.0.10/", "https://11.1.0.11/"]
ip_echo_v6 = []
dns_echo = ["opendns@11.1.0.60"]
stun = ["11.1.0.40:3478", "11.1.0.41:3478"]
port_check = []
resolvers = ["11.1.0.53"]
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(CONFIG_TOML)
    return p


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> FakeNet:
    fake = FakeNet()
    monkeypatch.setattr("wizard.commands.diagnose._probe_set", fake.probes)
    return fake


def test_json_prints_only_the_report_object(config: Path, net: FakeNet, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(config), "diagnose", "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    data = json.loads(out)  # stdout is one JSON document and nothing else
    jsonschema.validate(data, SCHEMA)
    assert data["schema"] == "ddns-wizard/report@1"
    for key in (
        "schema",
        "generated_at",
        "duration_ms",
        "connectivity",
        "local",
        "external",
        "nat",
        "upnp",
        "findings",
    ):
        assert key in data
    assert data["connectivity"] == "online"
    assert set(data["local"]) >= {"ipv4", "gateway_ipv4", "interface", "ipv6_global"}
    assert set(data["external"]) >= {"ipv4", "ipv6", "agreement", "sources"}
    assert all({"method", "endpoint", "value", "error", "ms"} <= set(s) for s in data["external"]["sources"])
    assert data["nat"]["verdict"] == "nat" and data["nat"]["router_wan_ipv4"] == "23.128.64.20"
    assert isinstance(data["nat"]["evidence"], list) and data["nat"]["evidence"]
    assert set(data["upnp"]) >= {"available", "wan_ipv4", "mappings"}
    assert all(set(f) >= {"id", "severity", "title", "detail", "fix"} for f in data["findings"])
    assert "Diagnosing" not in err  # no progress when stderr is not a terminal


def test_json_redact_hides_public_addresses(config: Path, net: FakeNet, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "diagnose", "--json", "--redact"]) == 0
    out = capsys.readouterr().out
    assert "23.128.64.20" not in out
    assert json.loads(out)["redacted"] is True
    assert "192.168.1.100" in out  # private addresses identify nobody: kept


def test_human_output_answers_the_question_first(
    config: Path, net: FakeNet, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "diagnose"]) == 0
    out = capsys.readouterr().out
    assert out.index("Can this network host") < out.index("Addresses") < out.index("NAT: nat")
    assert "23.128.64.20" in out and "192.168.1.100" in out
    assert "port forward" in out


def test_offline_still_exits_zero(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeNet(local=LocalInfo(None, None, None, error="no IPv4 route to the internet"))
    monkeypatch.setattr("wizard.commands.diagnose._probe_set", fake.probes)
    assert main(["--config", str(config), "diagnose", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["connectivity"] == "offline"
    assert "offline" in [f["id"] for f in data["findings"]]


def test_report_file_is_written(config: Path, net: FakeNet, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "report.json"
    assert main(["--config", str(config), "diagnose", "--report", str(target)]) == 0
    data = json.loads(target.read_text())
    assert data["nat"]["verdict"] == "nat"
    # An existing report is not overwritten without --force (exit 2, before probing).
    net.calls.clear()
    assert main(["--config", str(config), "diagnose", "--report", str(target)]) == 2
    assert "--force" in capsys.readouterr().err
    assert net.calls == []
    assert main(["--config", str(config), "diagnose", "--report", str(target), "--force"]) == 0


def test_unknown_report_suffix_is_a_usage_error(
    config: Path, net: FakeNet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "diagnose", "--report", str(tmp_path / "r.pdf")]) == 2
    err = capsys.readouterr().err
    assert ".json" in err and "Traceback" not in err
    assert net.calls == []


def test_bad_budget_and_bad_config_exit_2(
    config: Path, net: FakeNet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "diagnose", "--budget", "0"]) == 2
    broken = tmp_path / "broken.toml"
    broken.write_text("[endpoints\n")
    assert main(["--config", str(broken), "diagnose", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing on stdout when it failed
    assert "line 1" in captured.err


def test_human_output_when_offline_says_so_once(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeNet(public=None)
    monkeypatch.setattr("wizard.commands.diagnose._probe_set", fake.probes)
    assert main(["--config", str(config), "diagnose"]) == 0
    out = capsys.readouterr().out
    assert "offline" in out.lower() and "[offline]" in out
    assert "5 tried" in out  # one line for all the silent sources ...
    assert "https://11.1.0.11/" not in out  # ... instead of a row per source
    assert "http://192.168.1.1/" in out  # the fix points at the router's page
