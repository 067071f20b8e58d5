"""Notifications (checks/ddns/notify.py): events, once-until-recovered, secrets, apprise for real.

apprise is exercised for real against a local HTTP server (its json:// plugin); the
lab test (tests/lab/test_notify_lab.py) does the same through the lab internet.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

from checks.config import Config, config_from_dict
from checks.ddns.notify import Event, Notifier, NotifySettings, NotifyState, events_for, notify_settings, shown_url
from checks.errors import ConfigError
from checks.model import UpdateResult
from checks.redact import Redactor
from tests.test_watch import World

HOOK = "json://127.0.0.1:9/hook/Sup3rS3cretT0ken"


def result(
    kind: str,
    code: str | None = None,
    *,
    fatal: bool = False,
    sent: str | None = "23.128.64.20",
    previous: str | None = "23.128.64.10",
    host: str = "a.duckdns.org",
) -> UpdateResult:
    return UpdateResult(
        hostname=host,
        provider="duckdns",
        previous=previous,
        sent=sent,
        result=kind,  # type: ignore[arg-type]
        code=code,
        message=f"{host} {kind} {code}",
        fatal=fatal,
    )


def test_settings_default_to_every_event_and_reject_nonsense() -> None:
    cfg = config_from_dict({"notify": {"urls": [HOOK], "ping": "https://hc-ping.example/abc"}})
    s = notify_settings(cfg)
    assert s.urls == (HOOK,) and s.ping and s.events == {"changed", "failed", "recovered", "stopped"}
    assert not notify_settings(Config()).enabled
    for bad in ({"events": ["changd"]}, {"urls": "not a url"}, {"ping": "ftp://x"}, {"urls": [1]}, {"colour": "red"}):
        with pytest.raises(ConfigError):
            notify_settings(config_from_dict({"notify": bad}))


def test_notification_urls_are_secrets_everywhere() -> None:
    cfg = config_from_dict(
        {
            "notify": {
                "urls": [HOOK, "tgram://123456789:AAbbCCddEE/4242"],
                "ping": "https://hc-ping.example/5bd3-uuid-9f0e",
            }
        }
    )
    r = Redactor.from_config(cfg)
    text = r.text(
        f"sending to {HOOK} and tgram://123456789:AAbbCCddEE/4242 token Sup3rS3cretT0ken "
        "ping https://hc-ping.example/5bd3-uuid-9f0e/fail"
    )
    for secret in ("Sup3rS3cretT0ken", "123456789:AAbbCCddEE", "5bd3-uuid-9f0e"):
        assert secret not in text, text
    assert shown_url(HOOK) == "json://127.0.0.1/***"
    assert shown_url("tgram://123456789:AAbbCCddEE/4242") == "tgram://***"
    assert "user" not in shown_url("mailtos://user:pass@mail.example.com")


def test_events_changed_then_failed_once_then_recovered() -> None:
    state = NotifyState(None)
    assert [e.kind for e in events_for([result("updated", "OK")], state)] == ["changed"]
    assert events_for([result("unchanged")], state) == []
    first = events_for([result("error", "http-5xx")], state)
    assert [(e.kind, e.stopped) for e in first] == [("failed", False)]
    for _ in range(5):  # failing every round: said once
        assert events_for([result("error", "http-5xx")], state) == []
    # ...unless it gets worse: now the provider refuses for good
    assert [(e.kind, e.stopped) for e in events_for([result("error", "KO", fatal=True)], state)] == [("failed", True)]
    assert events_for([result("error", "KO", fatal=True)], state) == []
    kinds = [e.kind for e in events_for([result("updated", "OK")], state)]
    assert kinds == ["changed", "recovered"]
    # no provider answer (the address is unknown) and dry runs are no events
    assert events_for([result("error", "no-address"), result("unchanged", "dry-run")], state) == []


def test_failing_state_survives_a_new_process(tmp_path: Path) -> None:
    path = tmp_path / "notify-state.json"
    s1 = NotifyState(path)
    events_for([result("error", "badauth", fatal=True)], s1)
    s1.save()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    s2 = NotifyState(path)  # the next `update` from cron
    assert events_for([result("error", "badauth", fatal=True)], s2) == []
    assert [e.kind for e in events_for([result("unchanged")], s2)] == ["recovered"]


async def test_notifier_filters_events_and_reports_per_url(tmp_path: Path) -> None:
    sent: list[tuple[str, str]] = []

    async def send(url: str, event: Event) -> tuple[bool, str]:
        sent.append((url, event.kind))
        return (url.endswith("good"), "" if url.endswith("good") else f"HTTP 500 from {url}")

    n = Notifier(
        NotifySettings(("json://h.example/good", "json://h.example/bad"), None, frozenset({"failed"})),
        NotifyState(tmp_path / "s.json"),
        redactor=Redactor(secrets=["json://h.example/bad"]),
        send=send,
    )
    assert await n.results([result("updated", "OK")]) == []  # changed is filtered out
    out = await n.results([result("error", "911")])
    assert [(d.url, d.ok) for d in out] == [("json://h.example/***", True), ("json://h.example/***", False)]
    assert "h.example/bad" not in out[1].detail
    tested = await n.test()
    assert len(tested) == 2 and sent[-1][1] == "test"


class _Sink(BaseHTTPRequestHandler):
    received: list[dict] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).received.append({"path": self.path, "body": json.loads(body or b"{}")})
        self.send_response(type(self).status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sink():  # type: ignore[no-untyped-def]
    _Sink.received = []
    server = HTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


async def test_apprise_json_webhook_for_real(sink) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("apprise")
    port = sink.server_address[1]
    url = f"json://127.0.0.1:{port}/hook"
    n = Notifier(NotifySettings((url, "json://127.0.0.1:1/closed"), None), NotifyState(None))
    out = await n.results([result("updated", "good", host="nas.example.net")])
    assert [d.ok for d in out] == [True, False] and "127.0.0.1" in out[1].detail
    (got,) = _Sink.received
    assert got["path"] == "/hook"
    assert "nas.example.net" in got["body"]["title"] and "23.128.64.10 → 23.128.64.20" in got["body"]["message"]


async def test_ping_urls_get_start_success_and_fail() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    n = Notifier(NotifySettings((), "https://hc.example/ping/u-1"), NotifyState(None), client=client)
    for kind in ("start", "success", "fail"):
        assert await n.ping(kind) == (True, "")
    assert seen == ["/ping/u-1/start", "/ping/u-1", "/ping/u-1/fail"]


async def test_watch_notifies_a_change_once_and_a_failing_provider_once(tmp_path: Path) -> None:
    events: list[str] = []

    async def send(url: str, event: Event) -> tuple[bool, str]:
        events.append(event.kind)
        return True, ""

    world = World(reply="OK")
    w = world.watcher()
    w.notifier = Notifier(NotifySettings(("json://x.example/h",), None), NotifyState(tmp_path / "n.json"), send=send)
    await w.tick()
    for _ in range(3):
        world.now += 300
        await w.tick()
    assert events == ["changed"]
    world.reply = "500-ish"  # DuckDNS answers something that is neither OK nor KO: retried
    world.public = "23.128.64.77"
    for _ in range(6):
        world.now += 3600
        await w.tick()
    assert events == ["changed", "failed"], world.events
    world.reply = "OK"
    world.now += 86400  # past the longest back-off
    await w.tick()
    assert events == ["changed", "failed", "changed", "recovered"], world.events


def test_update_without_notify_never_imports_apprise(tmp_path: Path) -> None:
    """`update` with no [notify] table (and with one, when nothing happened) does not load
    apprise. The round itself is faked (no network in unit tests): the public address and
    DNS are injected so the host is "unchanged"."""
    cfg = tmp_path / "c.toml"
    for notify in ("", f'[notify]\nurls = ["{HOOK}"]\n'):
        cfg.write_text(
            '[[hosts]]\nhostname = "a.duckdns.org"\nprovider = "duckdns"\n'
            'token = "a1b2c3d4-1234-5678-9abc-def012345678"\n' + notify
        )
        cfg.chmod(0o600)
        code = textwrap.dedent(f"""
            import sys, asyncio
            import checks.ddns.updater as u
            from checks.ddns.updater import PublicAddress
            real = u.run_update_detailed
            async def fake(config, **kw):
                async def lookup(h, r):
                    return "23.128.64.20", None, None
                return await real(config, lookup=lookup, public=PublicAddress("23.128.64.20", None),
                                  **{{k: v for k, v in kw.items() if k not in ("lookup", "public")}})
            u.run_update_detailed = fake
            from wizard.cli import main
            rc = main(["--config", {str(cfg)!r}, "update", "--history", {str(tmp_path / "h.jsonl")!r}])
            assert rc == 0, rc
            print("apprise" in sys.modules)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().splitlines()[-1] == "False", out.stdout


def test_a_broken_notify_table_does_not_stop_the_updates() -> None:
    """update and watch keep updating with notifications off (and say why); `notify test` and
    `service install` refuse it (exit 2)."""
    cfg = config_from_dict({"notify": {"urls": [HOOK], "events": ["chnaged"]}})
    said: list[str] = []
    n = Notifier.for_config(cfg, None, strict=False, emit=said.append)
    assert not n.settings.enabled and "notifications are off" in said[0] and "chnaged" in said[0]
    assert "Sup3rS3cretT0ken" not in said[0]
    with pytest.raises(ConfigError):
        Notifier.for_config(cfg, None)
