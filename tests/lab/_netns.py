"""Network namespace bookkeeping: unique names, creation, teardown, and the leftover sweep.

Every lab namespace is called ``ddw<PID>x<N>-<role>``: the pid of the Python
process that made it and a per-process counter. Two pytest-xdist workers (two
pids) therefore never collide, and a later run can tell a dead run's leftovers
(pid no longer alive) from a live lab. Only names of exactly that form are ever
touched; anything else (``hx-...``, the user's own namespaces) is left alone.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

NETNS_DIR = Path("/run/netns")
ETC_NETNS_DIR = Path("/etc/netns")
PREFIX_RE = re.compile(r"^ddw(?P<pid>\d+)x(?P<n>\d+)$")
NAME_RE = re.compile(r"^(?P<prefix>ddw(?P<pid>\d+)x\d+)-[a-z]+$")
WORKDIR_RE = re.compile(r"^(?P<prefix>ddw(?P<pid>\d+)x\d+)-lab-")

_counter = itertools.count(1)


def new_prefix() -> str:
    return f"ddw{os.getpid()}x{next(_counter)}"


def run_quiet(argv: list[str], *, timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input, check=False)


def run_checked(argv: list[str], *, timeout: float = 30, input: str | None = None, what: str = "") -> str:
    proc = run_quiet(argv, timeout=timeout, input=input)
    if proc.returncode != 0:
        raise LabSetupError(f"{what or ' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


class LabSetupError(RuntimeError):
    """The lab could not be built (a command failed, a daemon did not come up)."""


def list_namespaces() -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def create_namespaces(names: list[str]) -> None:
    run_checked(["ip", "-batch", "-"], input="".join(f"netns add {n}\n" for n in names), what="creating namespaces")


def namespace_pids(name: str) -> list[int]:
    proc = run_quiet(["ip", "netns", "pids", name], timeout=10)
    return [int(x) for x in proc.stdout.split() if x.isdigit()]


def kill_namespace_processes(names: list[str], *, grace_s: float = 1.0) -> None:
    """SIGTERM every process inside the namespaces, then SIGKILL what is left."""
    pids = {pid for name in names for pid in namespace_pids(name)}
    pids.discard(os.getpid())
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if _alive(pid)}
        if pids:
            time.sleep(0.02)
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    # Reap: our own children would otherwise stay zombies holding nothing but a pid.
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def delete_namespaces(names: list[str]) -> None:
    existing = set(list_namespaces())
    todo = [n for n in names if n in existing]
    if todo:
        # -force: carry on past a name that vanished meanwhile.
        run_quiet(["ip", "-force", "-batch", "-"], input="".join(f"netns del {n}\n" for n in todo), timeout=30)
    for name in names:
        shutil.rmtree(ETC_NETNS_DIR / name, ignore_errors=True)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists" for kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().split(b") ", 1)[1][:1] != b"Z"
    except (FileNotFoundError, IndexError):
        return False


def write_resolv_conf(name: str, nameserver: str) -> None:
    """`ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf."""
    directory = ETC_NETNS_DIR / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "resolv.conf").write_text(f"# ddns-wizard lab\nnameserver {nameserver}\n")


def sweep_leftovers() -> list[str]:
    """Remove namespaces, /etc/netns dirs and work dirs of lab runs whose process is dead.

    Returns the namespace names removed. Live labs (of this or another pytest
    worker) and every name not made by this module are left alone.
    """
    dead_ns = [n for n in list_namespaces() if (m := NAME_RE.match(n)) and not _alive(int(m["pid"]))]
    if dead_ns:
        kill_namespace_processes(dead_ns)
        delete_namespaces(dead_ns)
    try:
        for entry in ETC_NETNS_DIR.iterdir():
            m = NAME_RE.match(entry.name)
            if m and not _alive(int(m["pid"])) and entry.name not in list_namespaces():
                shutil.rmtree(entry, ignore_errors=True)
    except FileNotFoundError:
        pass
    tmp = Path(tempfile.gettempdir())
    for entry in tmp.iterdir():
        m = WORKDIR_RE.match(entry.name)
        if m and entry.is_dir() and not _alive(int(m["pid"])):
            shutil.rmtree(entry, ignore_errors=True)
    return dead_ns
