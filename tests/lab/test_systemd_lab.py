"""`watch` under the shipped systemd unit's restrictions, in the lab.

No systemd runs as PID 1 here (nor in CI), so the unit cannot be started by systemd;
tests/unitsandbox.py applies its sandbox with the same kernel mechanisms (seccomp syscall
filter and address families, W^X, no new privileges, a dynamic uid without capabilities,
/proc with hidepid=invisible,subset=pid, read-only root and home, private /tmp, read-only
credentials).  The command is the unit's own ExecStart with three substitutions: this
venv's binary for /usr/local/bin, the credentials directory for %d, and --interval 10
for 300 (and the history in the test's state directory for /var/lib/ddns-wizard).
Everything it talks to is real: the lab's echo services, unbound, Knot and the dyndns2
emulator behind the home router's NAT.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.lab.topology import VENV_BIN
from tests.unitsandbox import DYNAMIC_UID, python_home, sandbox_argv, sandbox_of, service_settings

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
WATCH_UNIT = ROOT / "docs" / "systemd" / "ddns-wizard.service"
NEW_ISP_ADDRESS = "23.128.64.21"


def _history(path: Path) -> list[dict[str, Any]]:
    from checks.ddns.history import read_history

    return list(read_history(path).records)


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def sandboxed_watch_command(lab: Any, unit: Path, base: Path) -> tuple[list[str], Path]:
    """The unit's ExecStart as the sandbox runs it (credentials, state directory, dynamic
    user), with a 10 s interval: the argv to start in the lab, and the history file."""
    creds, state = base / "credentials", base / "state"
    creds.mkdir(mode=0o755)
    state.mkdir(mode=0o700)
    os.chown(state, DYNAMIC_UID, DYNAMIC_UID)
    # LoadCredential= hands the service a copy it can read; the lab CA plays the public CAs' part.
    shutil.copy(lab.config_path, creds / "config.toml")
    shutil.copy(lab.tool_env["SSL_CERT_FILE"], creds / "ca.pem")
    for f in ("config.toml", "ca.pem"):
        os.chown(creds / f, DYNAMIC_UID, DYNAMIC_UID)
        os.chmod(creds / f, 0o400)
    history = state / "history.jsonl"
    (exec_start,) = service_settings(unit)["ExecStart"]
    argv = [
        str(VENV_BIN / "ddns-wizard")
        if a == "/usr/local/bin/ddns-wizard"
        else a.replace("%d", str(creds)).replace("/var/lib/ddns-wizard", str(state))
        for a in exec_start.split()
    ]
    argv[argv.index("--interval") + 1] = "10"
    home = python_home()
    command = sandbox_argv(
        sandbox_of(unit),
        argv,
        workdir=base,
        state=state,
        creds=creds,
        env={
            "PATH": "/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin",
            "CREDENTIALS_DIRECTORY": str(creds),
            "STATE_DIRECTORY": str(state),
            "SSL_CERT_FILE": str(creds / "ca.pem"),
            "HOME": "/",
        },
        expose=(home,) if str(home).startswith(("/root/", "/home/")) else (),
    )
    return command, history


def test_watch_does_its_job_under_the_units_sandbox(lab_factory: Any) -> None:
    lab = lab_factory("home")
    acc = lab.internet.accounts["dyndns2"]
    host = acc["hostnames"][0]
    lab.write_config(
        hosts=[
            {
                "hostname": host,
                "provider": "dyndns2",
                "server": acc["server"],
                "username": acc["username"],
                "password": acc["password"],
                "min_interval": 0,
            }
        ]
    )
    base = Path(tempfile.mkdtemp(prefix="ddnsw-unit-watch-", dir="/var/tmp"))  # PrivateTmp hides /tmp
    try:
        os.chmod(base, 0o755)
        command, history = sandboxed_watch_command(lab, WATCH_UNIT, base)
        proc = lab.popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:

            def updates() -> list[dict[str, Any]]:
                return [r for r in _history(history) if r.get("event") == "update"]

            _wait_for(
                lambda: any(r["event"] == "verify" for r in _history(history)) or proc.poll() is not None,
                60,
                "the first update and its verification",
            )
            assert proc.poll() is None, proc.communicate()
            assert [u["result"] for u in updates()] == ["updated"]
            assert lab.internet.lookup(host) == [lab.expected_public_ipv4]
            lab.set_isp_address(NEW_ISP_ADDRESS)
            _wait_for(
                lambda: any(
                    r["event"] == "verify" and r.get("expected") == NEW_ISP_ADDRESS and r["ok"]
                    for r in _history(history)
                ),
                60,
                "the new ISP address to be published",
            )
            assert lab.internet.lookup(host) == [NEW_ISP_ADDRESS]
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, out + err
        assert "received SIGTERM: stopping" in out and "stopped" in out
        for word in (
            "Operation not permitted",
            "Permission denied",
            "Address family not supported",
            "Read-only file system",
            "Traceback",
            "internal error",
            "this round failed",
        ):
            assert word not in out + err, out + err
        records = _history(history)
        assert records[0]["event"] == "start" and records[-1]["event"] == "stop"
        assert (history.stat().st_uid, history.stat().st_mode & 0o777) == (DYNAMIC_UID, 0o600)
    finally:
        shutil.rmtree(base, ignore_errors=True)
