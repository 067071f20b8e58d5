"""The watch loop and its history, with an injected clock, address detector and DNS.

The provider is an httpx.MockTransport handler that also changes the fake
authoritative DNS (as a real provider would); nothing here touches a network
except the last test, which runs the real command against closed 127.0.0.1 ports.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import checks.ddns.watch as watch_mod
from checks.config import Config, HostConfig
from checks.ddns.history import History, read_history
from checks.ddns.updater import PublicAddress
from checks.ddns.watch import Watcher

TOKEN = "a1b2c3d4-1234-5678-9abc-def012345678"
HOST = HostConfig(hostname="myhome.duckdns.org", provider="duckdns", token=TOKEN)


class World:
    """Fake clock + public address + authoritative DNS + DuckDNS."""

    def __init__(self, dns_serves: str | None = "23.128.64.10", reply: str = "OK") -> None:
        self.now = 1_000_000.0
        self.public = "23.128.64.20"
        self.dns: str | None = dns_serves
        self.dns_error: str | None = None
        self.reply = reply
        self.requests: list[httpx.Request] = []
        self.lookups = 0
        self.events: list[str] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    async def detect(self) -> PublicAddress:
        return PublicAddress(self.public, None)

    async def lookup(self, hostname: str, resolvers):  # type: ignore[no-untyped-def]
        self.lookups += 1
        if self.dns_error:
            return None, None, self.dns_error
        return self.dns, None, None

    def provider(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.reply == "OK":
            self.dns = request.url.params["ip"]
        return httpx.Response(200, text=self.reply)

    def watcher(self, history: History | None = None, host: HostConfig = HOST) -> Watcher:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self.provider))
        return Watcher(
            Config(hosts=(host,)),
            client,
            history=history,
            interval_s=300,
            clock=self.clock,
            sleep=self.sleep,
            detect=self.detect,
            lookup=self.lookup,
            emit=self.events.append,
        )


async def test_change_leads_to_exactly_one_update_and_then_silence(tmp_path: Path) -> None:
    world = World()
    w = world.watcher(History(tmp_path / "h.jsonl"))
    await w.tick()
    assert len(world.requests) == 1 and world.dns == "23.128.64.20"
    lookups = world.lookups
    for _ in range(5):
        world.now += 300
        await w.tick()
    assert len(world.requests) == 1  # no nochg spam
    assert world.lookups == lookups  # and no DNS query while nothing changes
    world.public = "23.128.64.21"
    world.now += 300
    await w.tick()
    world.now += 300
    await w.tick()
    assert len(world.requests) == 2 and world.dns == "23.128.64.21"
    events = [r["event"] for r in read_history(tmp_path / "h.jsonl").records]
    assert events.count("update") == 2 and events.count("verify") == 2 and events.count("address") == 2


async def test_dns_already_serving_the_address_sends_nothing() -> None:
    world = World(dns_serves="23.128.64.20")
    w = world.watcher()
    await w.tick()
    assert world.requests == [] and any("already serves" in e for e in world.events)


async def test_fatal_reply_stops_the_host_says_so_once_and_survives_a_restart(tmp_path: Path) -> None:
    world = World(reply="KO")
    history = History(tmp_path / "h.jsonl")
    w = world.watcher(history)
    for _ in range(4):
        await w.tick()
        world.now += 300
        world.public = f"23.128.64.{30 + len(world.requests)}"  # even address changes do not wake it
    assert len(world.requests) == 1
    assert sum("STOPPED" in e for e in world.events) == 1
    # A restarted watch with the same configuration stays stopped, without sending.
    world2 = World(reply="KO")
    w2 = world2.watcher(History(tmp_path / "h.jsonl"))
    w2.restore()
    await w2.tick()
    assert world2.requests == [] and any("still stopped" in e for e in world2.events)
    # ...but a changed configuration (new token) is tried again.
    world3 = World(reply="OK")
    fixed = HostConfig(hostname="myhome.duckdns.org", provider="duckdns", token=TOKEN.replace("a1", "b2"))
    w3 = world3.watcher(History(tmp_path / "h.jsonl"), host=fixed)
    w3.restore()
    await w3.tick()
    assert len(world3.requests) == 1


async def test_run_exits_2_when_every_host_is_stopped() -> None:
    world = World(reply="KO")
    w = world.watcher()
    assert await asyncio.wait_for(w.run(asyncio.Event()), 5) == 2


async def test_retryable_error_waits_the_provider_delay_then_backs_off() -> None:
    world = World(reply="911")
    host = HostConfig(hostname="myhome.ddns.net", provider="noip", username="u", password="p")
    w = world.watcher(host=host)
    world.provider = lambda req: (world.requests.append(req), httpx.Response(200, text="911"))[1]  # type: ignore[method-assign]
    w.client = httpx.AsyncClient(transport=httpx.MockTransport(world.provider))
    await w.tick()
    assert len(world.requests) == 1
    world.now += 1799
    await w.tick()
    assert len(world.requests) == 1  # No-IP: not before 30 minutes
    world.now += 2
    await w.tick()
    assert len(world.requests) == 2
    world.now += 1801
    await w.tick()
    assert len(world.requests) == 2  # second failure: the wait doubled
    world.now += 1800
    await w.tick()
    assert len(world.requests) == 3


async def test_restart_after_update_does_not_resend_even_if_dns_is_unreachable(tmp_path: Path) -> None:
    world = World()
    await world.watcher(History(tmp_path / "h.jsonl")).tick()
    assert len(world.requests) == 1
    world2 = World()
    world2.dns_error = "no authoritative server answered"
    w2 = world2.watcher(History(tmp_path / "h.jsonl"))
    w2.restore()
    await w2.tick()
    assert world2.requests == []


async def test_restart_respects_a_pending_retry_delay(tmp_path: Path) -> None:
    world = World(reply="911")
    await world.watcher(History(tmp_path / "h.jsonl")).tick()
    world2 = World(reply="OK")
    world2.now = world.now + 60
    w2 = world2.watcher(History(tmp_path / "h.jsonl"))
    w2.restore()
    await w2.tick()
    assert world2.requests == []  # DuckDNS asked for a pause: honoured across restarts


async def test_min_interval_between_updates() -> None:
    world = World()
    w = world.watcher()
    await w.tick()
    world.public = "23.128.64.99"
    world.now += 10
    await w.tick()
    assert len(world.requests) == 1 and any("allows one update every" in e for e in world.events)
    world.now += 300
    await w.tick()
    assert len(world.requests) == 2


async def test_stop_abandons_a_hung_round_cleanly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(watch_mod, "STOP_GRACE_S", 0.2)
    world = World()

    async def hang() -> PublicAddress:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    w = world.watcher(History(tmp_path / "h.jsonl"))
    w.detect = hang
    stop = asyncio.Event()
    task = asyncio.ensure_future(w.run(stop))
    await asyncio.sleep(0.05)
    stop.set()
    assert await asyncio.wait_for(task, 3) == 0
    assert any("abandoned" in e for e in world.events)
    assert read_history(tmp_path / "h.jsonl").records[-1]["event"] == "stop"


# ---------------------------------------------------------------- history


def test_history_tolerates_and_reports_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    h = History(path)
    h.append("update", hostname="a.example.org", result="updated")
    h.close()
    with open(path, "ab") as fh:
        fh.write(b'{"ts":"2026-01-01T00:00:00+00:00","event":"upd')  # crash mid-write
    read = read_history(path)
    assert [r["event"] for r in read.records] == ["update"]
    assert read.torn and "cut short" in read.problems[0]
    h2 = History(path)
    h2.append("stop")
    h2.close()
    read = read_history(path)
    assert [r["event"] for r in read.records] == ["update", "stop"]  # the new record was not glued on
    assert len(read.problems) == 1 and "line 2" in read.problems[0]


def test_history_is_private_and_redacted(tmp_path: Path) -> None:
    from checks.redact import Redactor

    path = tmp_path / "sub" / "h.jsonl"
    with History(path, redactor=Redactor([TOKEN])) as h:
        h.append("update", message=f"GET https://x/update?token={TOKEN}")
    assert (path.stat().st_mode & 0o777) == 0o600
    assert TOKEN not in path.read_text()
    assert json.loads(path.read_text())["message"].endswith("token=***")


# ---------------------------------------------------------------- the real command


def test_watch_command_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    """Real process, real signal; endpoints are closed 127.0.0.1 ports so nothing leaves the machine."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[endpoints]\nip_echo = ["https://127.0.0.1:9/", "https://127.0.0.1:9/x"]\ndns_echo = []\nstun = []\n'
        'ip_echo_v6 = []\nresolvers = ["127.0.0.1:9"]\n'
        f'[[hosts]]\nhostname = "myhome.duckdns.org"\nprovider = "duckdns"\ntoken = "{TOKEN}"\n'
    )
    history = tmp_path / "history.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wizard", "--config", str(cfg), "watch", "--interval", "10", "--history", str(history)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if history.exists() and '"event":"address"' in history.read_text():
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "public address unknown" in out and "received SIGTERM: stopping" in out and "stopped" in out
    assert "Traceback" not in err and TOKEN not in out + err
    events = [r["event"] for r in read_history(history).records]
    assert events[0] == "start" and events[-1] == "stop"


async def test_watch_renews_kept_forwards_at_half_their_lease(tmp_path: Path) -> None:
    """PCP / NAT-PMP forwards and IPv6 pinholes only have leases: the watch renews them (the
    router side is a renewer stand-in here; the real PCP renewal is in tests/lab/test_portmap_lab.py)."""
    from checks.portmap.lasting import ForwardsLedger, LastingForward

    world = World(dns_serves="23.128.64.20")
    ledger = ForwardsLedger(tmp_path / "forwards.json")
    ledger.record(LastingForward("pcp", 8080, "tcp", "192.168.1.100", 8080, lease_s=3600, created_at=world.now))
    renewed: list[int] = []

    async def renew(fwd: LastingForward) -> tuple[int | None, str]:
        renewed.append(fwd.external_port)
        return 3600, "renewed for 3600 s"

    w = world.watcher(History(tmp_path / "h.jsonl"))
    from checks.portmap.lasting import watch_hooks

    w.renew_forwards, w.forwards_due = watch_hooks(ledger, {"pcp": renew})
    assert w.next_delay() == 300  # the interval comes first (renewal due in 1800 s)
    await w._safe_tick()
    assert renewed == []
    world.now += 1801
    await w._safe_tick()
    assert renewed == [8080] and any("8080/tcp" in e and "renewed" in e for e in world.events)
    again = ForwardsLedger(tmp_path / "forwards.json").find(8080, "tcp")
    assert again is not None and again.renewed_at == world.now
    events = [r["event"] for r in read_history(tmp_path / "h.jsonl").records]
    assert "forward" in events


async def test_watch_reach_records_results_in_the_history_and_says_changes_once(tmp_path: Path) -> None:
    """[watch] reach: the end-to-end check is injected (its own tests are test_reach.py and the lab)."""
    from checks.errors import ConfigError
    from checks.probes.tlsprobe import TlsFacts
    from checks.reach import ReachPort, ReachResult, parse_reach_port, summary_record, watch_reach_specs

    world = World(dns_serves="23.128.64.20")
    w = world.watcher(History(tmp_path / "h.jsonl"))
    verdicts = ["reachable", "reachable", "unreachable"]
    calls: list[tuple[str, tuple]] = []

    async def fake_reach(hostname: str, ports: tuple) -> dict:
        calls.append((hostname, ports))
        verdict = verdicts.pop(0)
        t = TlsFacts(ok=True, server_name=hostname, days_left=40)
        outside = "open" if verdict == "reachable" else "filtered"
        p = ReachPort(443, "tcp", 4, "23.128.64.20", outside, "closed", "broken" if outside == "open" else "unknown", t)
        return summary_record(
            ReachResult(hostname, ("23.128.64.20",), True, "23.128.64.20", None, "ok", "", verdict, (p,), ())
        )

    w.reach_ports = (parse_reach_port("443"),)
    w.reach_fn = fake_reach
    for _ in range(3):
        await w.tick()
        world.now += 300
    records = [r for r in read_history(tmp_path / "h.jsonl").records if r["event"] == "reach"]
    assert [r["verdict"] for r in records] == ["reachable", "reachable", "unreachable"]
    assert records[-1]["ports"][0]["outside"] == "filtered"
    said = [e for e in world.events if "reach" in e]
    assert len(said) == 2 and "was reachable" in said[-1]
    # Off by default; a malformed list is a configuration error.
    assert watch_reach_specs(Config()) == ()
    assert watch_reach_specs(Config(settings={"watch": {"reach": ["443", 8443]}}))[1].port == 8443
    with pytest.raises(ConfigError):
        watch_reach_specs(Config(settings={"watch": {"reach": "443"}}))
    with pytest.raises(ConfigError):
        watch_reach_specs(Config(settings={"watch": {"reach": ["70000"]}}))
