"""``ddns-wizard status``: what the updater did, from its history, and whether ``watch`` runs.

Per configured host: the last result, the address published and when it last changed,
the last error, the next check, and the last check that the record landed (``verify``
records).  Whether ``watch`` is running: its systemd unit's state where systemd runs
(system, then user manager), else the watch's state file ``watch.json`` beside the
history (written by the watch each round: pid, interval, last and next round; the pid
is checked to be alive and to be a ddns-wizard).

Facts only; wizard/commands/status.py words them.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

WATCH_STATE_NAME = "watch.json"
UNIT_NAME = "ddns-wizard.service"


# --------------------------------------------------------------------------- the watch's own file


def watch_state_path(history_path: Path) -> Path:
    return history_path.parent / WATCH_STATE_NAME


def write_watch_state(
    path: Path,
    *,
    started_at: float,
    interval_s: float,
    last_round_at: float | None,
    next_round_at: float | None,
    stopped_at: float | None = None,
) -> None:
    """Written by the watch (atomic, 0600). Never raises: status is a nicety, the updates are not."""
    from ..config import write_private_file

    data = {
        "pid": os.getpid(),
        "started_at": started_at,
        "interval_s": interval_s,
        "last_round_at": last_round_at,
        "next_round_at": next_round_at,
        "stopped_at": stopped_at,
    }
    try:
        write_private_file(path, json.dumps(data).encode("utf-8"))
    except Exception:
        pass


def _pid_is_watch(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's (the service user)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # alive; /proc hidden (hidepid): trust the pid
    if not any(cmdline):
        return True  # alive, between fork and exec (or hidden): trust the pid
    return any(b"ddns-wizard" in part or part.endswith(b"wizard") for part in cmdline) and b"watch" in cmdline


# --------------------------------------------------------------------------- stopped hosts


def stopped_hosts(config: Any, records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """hostname -> the ``stopped`` record of each host a provider refused for good, as long as
    its configuration is unchanged (same fingerprint) and nothing succeeded since — the rule
    the watch restores at start, for `update` from cron too."""
    from .watch import fingerprint

    hosts = {h.hostname: h for h in config.hosts}
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        name = r.get("hostname")
        if not isinstance(name, str) or name not in hosts:  # a damaged record: not ours
            continue
        if r.get("event") == "stopped":
            if r.get("fingerprint") == fingerprint(hosts[name]):  # slow: only for stopped hosts
                out[name] = r
            else:
                out.pop(name, None)
        elif r.get("event") == "update" and r.get("result") in ("updated", "unchanged"):
            out.pop(name, None)
    return out


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class HostStatus:
    hostname: str
    provider: str
    last_result: str | None = None  # updated | unchanged | error | stopped | None (never ran)
    last_address: str | None = None  # what was last sent or confirmed in DNS
    last_change_at: str | None = None  # ISO time the published address last changed
    last_error: str | None = None
    last_error_at: str | None = None
    last_code: str | None = None
    stopped: bool = False
    next_check_at: str | None = None
    last_verify: dict[str, Any] | None = None  # {at, ok, serves, expected}
    last_reach: dict[str, Any] | None = None  # {at, verdict, findings, error}: watch's [watch] reach check


@dataclass(frozen=True)
class WatchStatus:
    running: bool
    via: str | None = None  # "systemd" | "systemd --user" | "pid"
    unit_state: str | None = None  # systemctl is-active's word
    pid: int | None = None
    started_at: str | None = None
    interval_s: float | None = None
    last_round_at: str | None = None
    next_round_at: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Status:
    hosts: tuple[HostStatus, ...]
    watch: WatchStatus
    history: str
    problems: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "hosts": [asdict(h) for h in self.hosts],
            "watch": asdict(self.watch),
            "history": self.history,
            "problems": list(self.problems),
        }


def _iso(t: Any) -> str | None:
    if not isinstance(t, (int, float)) or isinstance(t, bool):
        return None
    try:
        return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return None


def host_status(
    hostname: str,
    provider: str,
    records: Sequence[dict[str, Any]],
    *,
    fingerprint: str | Callable[[], str] | None = None,
    next_round_at: float | None = None,
    now: float | None = None,
) -> HostStatus:
    now = time.time() if now is None else now
    last_result = last_address = last_change = last_error = last_error_at = last_code = None
    stopped = False
    not_before: float | None = None
    verify: dict[str, Any] | None = None
    reach: dict[str, Any] | None = None

    def seen(address: Any, t: Any) -> None:
        nonlocal last_address, last_change
        if address != last_address:
            last_address, last_change = address, _iso(t)

    for r in records:
        if r.get("hostname") != hostname:
            continue
        event = r.get("event")
        t = r.get("t")
        if event == "update":
            result = r.get("result")
            last_result, last_code = result, r.get("code")
            if result in ("updated", "unchanged") and r.get("sent"):
                seen(r.get("sent"), t)
                stopped, not_before = False, None
            elif result == "error":
                last_error, last_error_at = r.get("message"), _iso(t)
                delay = r.get("retry_after_s")
                not_before = (t + delay) if isinstance(t, (int, float)) and isinstance(delay, (int, float)) else None
        elif event == "check":
            if r.get("serves"):
                seen(r.get("serves"), t)
                last_result = last_result or "unchanged"
            elif r.get("problem"):
                last_error, last_error_at, last_code = r.get("message"), _iso(t), r.get("problem")
        elif event == "stopped":
            current = fingerprint() if callable(fingerprint) else fingerprint  # slow: asked only here
            same = current is None or r.get("fingerprint") == current
            stopped = same
            if same:
                last_result = "stopped"
                last_error, last_error_at, last_code = r.get("message"), _iso(t), r.get("code")
        elif event == "verify":
            verify = {
                "at": _iso(t),
                "ok": r.get("ok"),
                "serves": r.get("serves"),
                "expected": r.get("expected"),
                "error": r.get("error"),
            }
        elif event == "reach":
            findings = r.get("findings")
            reach = {
                "at": _iso(t),
                "verdict": r.get("verdict"),
                "error": r.get("error"),
                "findings": [str(f) for f in findings] if isinstance(findings, list) else [],
            }
    next_check: float | None = None
    if not stopped:
        if not_before is not None and not_before > max(now, next_round_at or 0):
            next_check = not_before
        else:
            next_check = next_round_at
    return HostStatus(
        hostname,
        provider,
        last_result,
        last_address,
        last_change,
        last_error,
        last_error_at,
        last_code,
        stopped,
        _iso(next_check),
        verify,
        reach,
    )


Runner = Callable[[Sequence[str]], "tuple[int, str]"]


def _run(argv: Sequence[str]) -> tuple[int, str]:
    import subprocess

    try:
        p = subprocess.run(list(argv), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return p.returncode, (p.stdout + p.stderr).strip()


def watch_status(
    history_path: Path, *, run: Runner = _run, systemd: bool | None = None, now: float | None = None
) -> WatchStatus:
    from .service import systemd_running

    now = time.time() if now is None else now
    if systemd is None:
        systemd = systemd_running()
    unit_state = None
    if systemd:
        for via, argv in (
            ("systemd", ["systemctl", "is-active", UNIT_NAME]),
            ("systemd --user", ["systemctl", "--user", "is-active", UNIT_NAME]),
        ):
            code, out = run(argv)
            word = out.splitlines()[0].strip() if out else None
            if code == 0 and word == "active":
                data = _read_state(watch_state_path(history_path))
                return WatchStatus(True, via, word, *_state_fields(data))
            if word in ("failed", "activating", "deactivating", "reloading"):
                unit_state = word
    data = _read_state(watch_state_path(history_path))
    if (
        data is not None
        and isinstance(data.get("pid"), int)
        and data.get("stopped_at") is None
        and _pid_is_watch(data["pid"])
    ):
        return WatchStatus(True, "pid", unit_state, *_state_fields(data))
    note = None
    if unit_state == "failed":
        note = "the ddns-wizard unit failed: see `journalctl -u ddns-wizard` (or `journalctl --user -u ddns-wizard`)"
    elif data is not None and data.get("stopped_at"):
        note = f"the last watch stopped at {_iso(data['stopped_at'])}"
    return WatchStatus(False, None, unit_state, note=note)


def _read_state(path: Path) -> dict[str, Any] | None:
    from ..files import read_regular_file

    try:
        data = json.loads(read_regular_file(path, limit=1 << 16).decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _state_fields(data: dict[str, Any] | None) -> tuple[Any, ...]:
    if not data:
        return (None, None, None, None, None)
    interval = data.get("interval_s")
    return (
        data.get("pid") if isinstance(data.get("pid"), int) else None,
        _iso(data.get("started_at")),
        interval if isinstance(interval, (int, float)) else None,
        _iso(data.get("last_round_at")),
        _iso(data.get("next_round_at")),
    )


def gather_status(
    config: Any, history_path: Path, *, run: Runner = _run, systemd: bool | None = None, now: float | None = None
) -> Status:
    from .history import read_history
    from .watch import fingerprint

    read = read_history(history_path)
    watch = watch_status(history_path, run=run, systemd=systemd, now=now)
    state = _read_state(watch_state_path(history_path)) if watch.running else None
    next_round = state.get("next_round_at") if state else None
    hosts = tuple(
        host_status(
            h.hostname,
            h.provider,
            read.records,
            fingerprint=functools.partial(fingerprint, h),
            next_round_at=next_round if isinstance(next_round, (int, float)) else None,
            now=now,
        )
        for h in config.hosts
    )
    return Status(hosts, watch, str(history_path), tuple(read.problems))
