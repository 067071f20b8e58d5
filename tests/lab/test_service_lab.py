"""The unit `service install --system` writes, run under its own sandbox in the lab,
with notifications on: the watch publishes, and the webhook sink hears of it.

As in tests/lab/test_systemd_lab.py (whose set-up this follows): no systemd runs as PID 1
here, so tests/unitsandbox.py applies the written unit's restrictions with the same kernel
mechanisms (seccomp, address families, W^X, a dynamic uid, read-only root, credentials).
apprise sends from inside that sandbox to the lab's sink (plain HTTP json://).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from checks.ddns.service import render_unit
from tests.lab import plan
from tests.lab.test_notify_lab import hooks, write_config
from tests.lab.test_systemd_lab import _history, _wait_for, sandboxed_watch_command

pytestmark = pytest.mark.lab


def test_written_system_unit_runs_the_watch_and_notifies_under_its_sandbox(lab_factory: Any) -> None:
    lab = lab_factory("home")
    acc = lab.internet.accounts["dyndns2"]
    host = {
        "hostname": acc["hostnames"][0],
        "provider": "dyndns2",
        "server": acc["server"],
        "username": acc["username"],
        "password": acc["password"],
        "min_interval": 0,
    }
    token = secrets.token_hex(12)
    write_config(lab, [host], [f"json://{plan.SINK}/hook/{token}"])
    base = Path(tempfile.mkdtemp(prefix="ddnsw-unit-notify-", dir="/var/tmp"))  # PrivateTmp hides /tmp
    try:
        os.chmod(base, 0o755)
        unit = base / "ddns-wizard.service"
        unit.write_text(
            render_unit(
                "system", executable="/usr/local/bin/ddns-wizard", config_path=Path("/etc/ddns-wizard/config.toml")
            )
        )
        command, history = sandboxed_watch_command(lab, unit, base)
        proc = lab.popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(
                lambda: len(hooks(lab, token)) == 1 or proc.poll() is not None,
                60,
                "the change notification from the sandboxed watch",
            )
            assert proc.poll() is None, proc.communicate()
            (note,) = hooks(lab, token)
            assert host["hostname"] in note["title"] and lab.expected_public_ipv4 in note["message"]
            # status reads what the sandboxed watch wrote (its pid file and the history)
            status = json.loads(lab.tool("status", "--json", "--history", str(history), timeout=30).stdout)
            assert status["watch"]["running"] is True and status["hosts"][0]["last_result"] == "updated"
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, out + err
        for word in (
            "Operation not permitted",
            "Permission denied",
            "Address family not supported",
            "Read-only file system",
            "Traceback",
            "internal error",
            "notify:",
            token,
        ):
            assert word not in out + err, out + err
        assert _history(history)[-1]["event"] == "stop"
    finally:
        shutil.rmtree(base, ignore_errors=True)
