"""`status` (checks/ddns/status.py): per host facts from the history, and whether watch runs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checks.config import Config, HostConfig
from checks.ddns.history import History
from checks.ddns.status import gather_status, host_status, watch_state_path
from checks.ddns.watch import fingerprint
from wizard.cli import main

HOST = HostConfig("a.duckdns.org", "duckdns", token="a1b2c3d4-1234-5678-9abc-def012345678")


def _history(path: Path, clock: list[float]) -> History:
    return History(path, clock=lambda: clock[0])


def test_host_status_follows_the_history(tmp_path: Path) -> None:
    clock = [1_700_000_000.0]
    h = _history(tmp_path / "h.jsonl", clock)
    h.append(
        "update",
        hostname=HOST.hostname,
        provider="duckdns",
        previous="23.128.64.99",
        sent="23.128.64.20",
        result="updated",
        code="OK",
        message="ok",
    )
    clock[0] += 60
    h.append("verify", hostname=HOST.hostname, expected="23.128.64.20", serves="23.128.64.20", ok=True)
    clock[0] += 3600
    h.append(
        "update",
        hostname=HOST.hostname,
        provider="duckdns",
        previous="23.128.64.20",
        sent="23.128.64.21",
        result="error",
        code="http-5xx",
        message="DuckDNS answered HTTP 502",
        retry_after_s=600,
    )
    records = h.read().records
    s = host_status(HOST.hostname, "duckdns", records, now=clock[0])
    assert s.last_result == "error" and s.last_address == "23.128.64.20"
    assert s.last_change_at == "2023-11-14T22:13:20+00:00"
    assert s.last_error == "DuckDNS answered HTTP 502" and s.last_code == "http-5xx"
    assert s.next_check_at is not None and s.last_verify and s.last_verify["ok"] is True
    assert s.last_reach is None
    h.append("reach", hostname=HOST.hostname, verdict="unreachable", findings=["443/tcp filtered"])
    s = host_status(HOST.hostname, "duckdns", h.read().records, now=clock[0])
    assert (
        s.last_reach and s.last_reach["verdict"] == "unreachable" and s.last_reach["findings"] == ["443/tcp filtered"]
    )
    clock[0] += 60
    h.append("stopped", hostname=HOST.hostname, code="KO", message="KO: bad token", fingerprint=fingerprint(HOST))
    s = host_status(HOST.hostname, "duckdns", h.read().records, fingerprint=fingerprint(HOST), now=clock[0])
    assert s.stopped and s.last_result == "stopped" and s.next_check_at is None


def test_watch_running_by_pid_file_and_not_after_it_stopped(tmp_path: Path) -> None:
    hist = tmp_path / "h.jsonl"
    config = Config(hosts=(HOST,))
    assert gather_status(config, hist, systemd=False).watch.running is False
    # A real watch-like process: its cmdline holds ddns-wizard and watch.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "ddns-wizard", "watch"])
    try:
        data = {
            "pid": proc.pid,
            "started_at": time.time(),
            "interval_s": 300,
            "last_round_at": time.time(),
            "next_round_at": time.time() + 300,
            "stopped_at": None,
        }
        watch_state_path(hist).write_text(json.dumps(data))
        w = gather_status(config, hist, systemd=False).watch
        assert w.running and w.via == "pid" and w.pid == proc.pid and w.interval_s == 300
    finally:
        proc.kill()
        proc.wait()
    assert gather_status(config, hist, systemd=False).watch.running is False  # dead pid


def test_watch_running_by_systemd_unit(tmp_path: Path) -> None:
    """systemd is not PID 1 on this machine: systemctl's answers are injected."""
    calls: list[list[str]] = []

    def run(argv):  # type: ignore[no-untyped-def]
        calls.append(list(argv))
        return (0, "active") if "--user" in argv else (3, "inactive")

    w = gather_status(Config(hosts=(HOST,)), tmp_path / "h.jsonl", systemd=True, run=run).watch
    assert w.running and w.via == "systemd --user" and len(calls) == 2


def test_status_json_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[[hosts]]\nhostname = "a.duckdns.org"\nprovider = "duckdns"\ntoken = "a1b2c3d4-1234-5678-9abc-def012345678"\n'
    )
    hist = tmp_path / "h.jsonl"
    History(hist).append(
        "update",
        hostname="a.duckdns.org",
        provider="duckdns",
        previous=None,
        sent="23.128.64.20",
        result="updated",
        code="OK",
        message="sent with token a1b2c3d4-1234-5678-9abc-def012345678",
    )
    assert main(["--config", str(cfg), "status", "--json", "--history", str(hist)]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert set(data) >= {"hosts", "watch"}
    (h,) = data["hosts"]
    assert {k: h[k] for k in ("hostname", "provider", "last_result", "last_address")} == {
        "hostname": "a.duckdns.org",
        "provider": "duckdns",
        "last_result": "updated",
        "last_address": "23.128.64.20",
    }
    assert "last_change_at" in h and "last_error" in h and data["watch"]["running"] is False
    assert "a1b2c3d4-1234" not in out
    assert main(["--config", str(cfg), "status", "--history", str(hist)]) == 0
    text = capsys.readouterr().out
    assert "a.duckdns.org (duckdns): updated" in text and "watch: not running" in text


def test_a_refusal_for_good_stops_update_until_the_configuration_changes(tmp_path: Path) -> None:
    from wizard.commands.update import _still_stopped

    h = History(tmp_path / "h.jsonl")
    h.append(
        "update",
        hostname=HOST.hostname,
        provider="duckdns",
        sent="23.128.64.20",
        result="error",
        code="KO",
        message="KO",
        fatal=True,
    )
    h.append("stopped", hostname=HOST.hostname, code="KO", message="DuckDNS said KO", fingerprint=fingerprint(HOST))
    records = h.read().records
    skip = _still_stopped(Config(hosts=(HOST,)), records)
    assert skip[HOST.hostname].code == "stopped" and skip[HOST.hostname].sent is None
    assert "(KO;" in skip[HOST.hostname].message and "--force" in skip[HOST.hostname].message
    fixed = HostConfig(HOST.hostname, "duckdns", token="b1b2c3d4-1234-5678-9abc-def012345678")
    assert _still_stopped(Config(hosts=(fixed,)), records) == {}  # a new token: tried again
    h.append(
        "update",
        hostname=HOST.hostname,
        provider="duckdns",
        sent="23.128.64.20",
        result="updated",
        code="OK",
        message="OK",
    )
    assert _still_stopped(Config(hosts=(HOST,)), h.read().records) == {}  # it worked since (e.g. --force)


def test_the_slow_configuration_hash_is_paid_only_for_stopped_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`update` from cron with 200 names asked the PBKDF2 fingerprint of every host twice
    (1.8 s of a 2.3 s run, issue 18); only a host with a ``stopped`` record needs it, and the
    stop still holds for that host and ends for a changed configuration."""
    from checks.ddns import watch
    from checks.ddns.status import stopped_hosts

    watch._slow_hash.cache_clear()
    hosts = [HostConfig(f"h{i}.duckdns.org", "duckdns", token=HOST.token) for i in range(200)]
    clock = [1_700_000_000.0]
    h = _history(tmp_path / "h.jsonl", clock)
    for host in hosts:
        h.append("update", hostname=host.hostname, provider="duckdns", sent="23.128.64.20", result="updated")
    h.append("stopped", hostname=hosts[7].hostname, code="KO", message="KO", fingerprint=fingerprint(hosts[7]))
    watch._slow_hash.cache_clear()
    hashed: list[bytes] = []
    slow = watch._slow_hash.__wrapped__
    monkeypatch.setattr(watch, "_slow_hash", lambda table: hashed.append(table) or slow(table))
    records = h.read().records
    assert list(stopped_hosts(Config(hosts=hosts), records)) == [hosts[7].hostname]
    assert len(hashed) == 1
    changed = [*hosts[:7], HostConfig(hosts[7].hostname, "duckdns", token="b" * 36), *hosts[8:]]
    assert stopped_hosts(Config(hosts=changed), records) == {}
