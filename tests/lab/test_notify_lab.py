"""Notifications, `status` and `notify test` in the lab, end to end.

The real tool runs in the home host's namespace; notifications go through the real
apprise (``json://``) and the ping through httpx to the lab's webhook sink
(tests/lab/services/sink.py, SINK:80 in the lab internet); updates go to the dyndns2
emulator, which writes into Knot.  Nothing is mocked.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.lab import plan
from tests.lab.internet import OLD_ADDRESS
from tests.lab.test_providers_lab import NEW_ISP_ADDRESS, _tool_argv, _wait_for, dyndns2_host

pytestmark = pytest.mark.lab


@pytest.fixture
def home(lab_factory):  # type: ignore[no-untyped-def]
    return lab_factory("home")


def write_config(lab: Any, hosts: list[dict[str, Any]], urls: list[str], ping: str | None = None) -> None:
    import tomli_w

    from checks.config import write_private_file

    lab.write_config(hosts=hosts)
    notify: dict[str, Any] = {"urls": urls}
    if ping:
        notify["ping"] = ping
    text = lab.config_path.read_text() + "\n" + tomli_w.dumps({"notify": notify})
    write_private_file(lab.config_path, text.encode())


def hooks(lab: Any, token: str) -> list[dict[str, Any]]:
    """Notifications the sink received for this test's hook (parsed apprise JSON bodies)."""
    return [
        json.loads(r["request_body"])
        for r in lab.internet.requests_log("sink")
        if r["path"].startswith(f"/hook/{token}") and r["method"] == "POST"
    ]


def pings(lab: Any, uuid: str) -> list[str]:
    return [
        r["path"][len(f"/ping/{uuid}") :] or "/"
        for r in lab.internet.requests_log("sink")
        if r["path"].startswith(f"/ping/{uuid}")
    ]


def test_update_notifies_a_change_once_nothing_when_unchanged_and_a_wrong_password_once(home) -> None:  # type: ignore[no-untyped-def]
    lab = home
    token, uuid = secrets.token_hex(12), secrets.token_hex(8)
    host = dyndns2_host(lab)
    write_config(lab, [host], [f"json://{plan.SINK}/hook/{token}"], ping=f"http://{plan.SINK}/ping/{uuid}")
    public = lab.expected_public_ipv4

    proc = lab.tool("update", timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (changed,) = hooks(lab, token)
    assert host["hostname"] in changed["title"] and f"{OLD_ADDRESS} → {public}" in changed["message"]
    assert changed["type"] == "info"
    assert pings(lab, uuid) == ["/start", "/"]
    for secret in (token, uuid, host["password"]):
        assert secret not in proc.stdout + proc.stderr

    # unchanged: no notification (the ping still says the run went well)
    proc = lab.tool("update", timeout=90)
    assert proc.returncode == 0 and len(hooks(lab, token)) == 1
    assert pings(lab, uuid) == ["/start", "/", "/start", "/"]

    # status --json after the updates
    status = json.loads(lab.tool("status", "--json", timeout=30).stdout)
    (h,) = status["hosts"]
    assert h["hostname"] == host["hostname"] and h["last_result"] == "updated" and h["last_address"] == public
    assert h["last_change_at"] and h["last_error"] is None and status["watch"]["running"] is False

    # a wrong password: `failed` once, however often `update` runs into it
    write_config(
        lab,
        [dyndns2_host(lab, password="wrong-" + secrets.token_hex(4))],
        [f"json://{plan.SINK}/hook/{token}"],
        ping=f"http://{plan.SINK}/ping/{uuid}",
    )
    lab.set_isp_address(NEW_ISP_ADDRESS)  # so there is something to send
    before = len(lab.internet.requests_log("dyndns2"))
    for _ in range(3):
        proc = lab.tool("update", timeout=90)
        assert proc.returncode == 1, proc.stdout
    # the refusal is not repeated from cron every five minutes: one request, then "not sent"
    assert len(lab.internet.requests_log("dyndns2")) == before + 1
    assert "not sent again: dyndns2 refused this configuration" in " ".join(proc.stdout.split())
    notes = hooks(lab, token)
    assert len(notes) == 2, notes
    failed = notes[1]
    assert failed["type"] == "failure" and "badauth" in failed["message"] and "stops trying" in failed["message"]
    assert pings(lab, uuid)[-2:] == ["/start", "/fail"]
    status = json.loads(lab.tool("status", "--json", timeout=30).stdout)
    assert status["hosts"][0]["last_result"] == "stopped" and status["hosts"][0]["stopped"] is True
    assert "badauth" in (status["hosts"][0]["last_code"] or "") + (status["hosts"][0]["last_error"] or "")


def test_notify_test_reports_per_url(home) -> None:  # type: ignore[no-untyped-def]
    lab = home
    token = secrets.token_hex(12)
    write_config(
        lab, [dyndns2_host(lab)], [f"json://{plan.SINK}/hook/{token}", f"json://{plan.SINK}/status/500/{token}"]
    )
    proc = lab.tool("notify", "test", timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"1. json://{plan.SINK}/***: accepted"
    assert lines[1].startswith(f"2. json://{plan.SINK}/***: NOT accepted")
    assert token not in proc.stdout + proc.stderr
    (test,) = hooks(lab, token)
    assert "test" in test["title"]


def test_watch_notifies_each_address_change_once_and_status_sees_it_running(home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab = home
    token = secrets.token_hex(12)
    host = dict(dyndns2_host(lab), min_interval=0)  # the emulator is "our own" server: no 5-min floor
    write_config(lab, [host], [f"json://{plan.SINK}/hook/{token}"])
    history = tmp_path / "history.jsonl"
    proc = lab.popen(
        [*_tool_argv(lab), "watch", "--interval", "10", "--history", str(history)],
        env=lab.tool_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: len(hooks(lab, token)) == 1, 40, "the first change's notification")
        status = json.loads(lab.tool("status", "--json", "--history", str(history), timeout=30).stdout)
        assert status["watch"]["running"] is True and status["watch"]["via"] == "pid"
        assert status["watch"]["interval_s"] == 10 and status["hosts"][0]["next_check_at"]
        started = time.monotonic()
        lab.set_isp_address(NEW_ISP_ADDRESS)
        _wait_for(lambda: len(hooks(lab, token)) == 2, 40, "the notification of the new address")
        print(f"watch: address change notified {time.monotonic() - started:.1f} s after it happened (interval 10 s)")
        rounds = len(lab.internet.requests_log("dns-echo"))
        _wait_for(lambda: len(lab.internet.requests_log("dns-echo")) > rounds + 1, 40, "two more rounds")
        notes = hooks(lab, token)
        assert len(notes) == 2, notes
        assert f"→ {NEW_ISP_ADDRESS}" in notes[1]["message"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert token not in out + err
    status = json.loads(lab.tool("status", "--json", "--history", str(history), timeout=30).stdout)
    assert status["watch"]["running"] is False
