"""Run a command under the sandbox a systemd unit describes, without systemd.

This machine (and CI) has the systemd tools but no systemd as PID 1, so neither
``systemctl start`` nor ``systemd-run`` can start the shipped units.  This module applies
the unit's restrictions that decide whether the program can do its work, with the same
kernel mechanisms systemd uses, and says which it leaves out:

applied
  - ``SystemCallFilter=`` / ``SystemCallErrorNumber=`` / ``SystemCallArchitectures=native``:
    a seccomp filter built with libseccomp (as systemd does) from the syscall groups that
    ``systemd-analyze syscall-filter`` prints on this machine: allow-list minus the ``~``
    sets; anything else fails with the unit's errno;
  - ``RestrictAddressFamilies=``: ``socket()`` of another family fails with EAFNOSUPPORT;
  - ``MemoryDenyWriteExecute=``: ``mmap`` writable+executable and ``mprotect``/
    ``pkey_mprotect`` with PROT_EXEC fail with EPERM;
  - ``NoNewPrivileges=``, ``DynamicUser=`` (an unprivileged uid/gid with no groups),
    ``CapabilityBoundingSet=`` / ``AmbientCapabilities=`` (``setpriv``);
  - ``ProtectProc=invisible`` + ``ProcSubset=pid`` (a new /proc mounted with those options),
    ``ProtectSystem=strict`` (the root file system read-only; only the state directory
    writable), ``PrivateTmp=`` (an empty /tmp), ``LoadCredential=`` (the credentials in a
    read-only directory, ``$CREDENTIALS_DIRECTORY``);
left out
  - ``ProtectHome=`` (the test's Python lives under /root), ``PrivateDevices=``,
    ``PrivateUsers=``, ``PrivateIPC=``, ``RestrictNamespaces=``, ``LockPersonality=``,
    ``ProtectClock=``/``ProtectKernel*=``/``ProtectHostname=`` (they guard against things a
    working program does not do; ``systemd-analyze security`` checks they are set).

Run as root, inside a network namespace (the lab's or an empty one).  The filter loader
(``python3 unitsandbox.py SPEC -- CMD...``) uses only the standard library and ctypes, so
it runs with the system's Python before exec'ing the command under the filter.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
DYNAMIC_UID = 61234  # inside systemd's DynamicUser= range (61184-65519)
AF_MAX = 46


# --------------------------------------------------------------------------- reading the unit


def service_settings(unit: Path) -> dict[str, list[str]]:
    """The [Service] assignments of a unit file, in order (an empty assignment resets a list)."""
    out: dict[str, list[str]] = {}
    section = None
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section != "Service" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if value == "":
            out[key] = []
        else:
            out.setdefault(key, []).append(value)
    return out


def syscall_groups() -> dict[str, list[str]]:
    """Every ``@group`` and its members, as this machine's systemd defines them."""
    text = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager"], capture_output=True, text=True, check=True
    ).stdout
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif line.startswith(" ") and current is not None:
            item = line.strip()
            if item and not item.startswith("#"):
                current.append(item)
        else:
            current = None
    return groups


def expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    out: set[str] = set()
    for name in names:
        if name.startswith("@"):
            out |= expand(groups[name], groups)
        else:
            out.add(name)
    return out


@dataclass
class Sandbox:
    allow: list[str]
    errno: int | None  # None: kill the process (systemd's default)
    families: list[int] | None  # None: any
    mdwe: bool
    ambient: list[str] = field(default_factory=list)  # capability names, lower case, without cap_
    bounding: list[str] = field(default_factory=list)
    private_tmp: bool = False
    protect_system: str = "no"
    protect_proc: str = "default"
    proc_subset: str = "all"
    protect_home: str = "no"


def sandbox_of(unit: Path) -> Sandbox:
    s = service_settings(unit)
    groups = syscall_groups()
    allow: set[str] = set()
    first = True
    for entry in s.get("SystemCallFilter", []):
        deny = entry.startswith("~")
        names = entry.lstrip("~").split()
        if first and not deny:
            allow = expand(names, groups)
        elif deny:
            allow -= expand(names, groups)
        else:
            allow |= expand(names, groups)
        first = False
    number = (s.get("SystemCallErrorNumber") or [None])[-1]
    err = getattr(errno, number) if number else None
    families = None
    if s.get("RestrictAddressFamilies"):
        families = sorted(
            {int(getattr(socket, name)) for entry in s["RestrictAddressFamilies"] for name in entry.split()}
        )

    def caps(key: str) -> list[str]:
        return sorted({c.lower().removeprefix("cap_") for entry in s.get(key, []) for c in entry.split()})

    return Sandbox(
        allow=sorted(allow),
        errno=err,
        families=families,
        mdwe=(s.get("MemoryDenyWriteExecute") or ["no"])[-1] == "yes",
        ambient=caps("AmbientCapabilities"),
        bounding=caps("CapabilityBoundingSet"),
        private_tmp=(s.get("PrivateTmp") or ["no"])[-1] == "yes",
        protect_system=(s.get("ProtectSystem") or ["no"])[-1],
        protect_proc=(s.get("ProtectProc") or ["default"])[-1],
        proc_subset=(s.get("ProcSubset") or ["all"])[-1],
        protect_home=(s.get("ProtectHome") or ["no"])[-1],
    )


def python_home() -> Path:
    """The installation directory of this Python (a venv's interpreter is a symlink into it)."""
    real = Path(os.path.realpath(sys.executable))
    return real.parent.parent


def sandbox_argv(
    sandbox: Sandbox,
    argv: list[str],
    *,
    workdir: Path,
    state: Path | None,
    creds: Path | None,
    env: dict[str, str],
    expose: tuple[Path, ...] = (),
) -> list[str]:
    """The command line (to run as root, e.g. after ``ip netns exec NS``) that runs ``argv`` sandboxed.

    ``workdir``: a directory outside /tmp, /home and /root for the filter description and
    mount staging.  ``expose``: directories under /root or /home that stay visible although
    ``ProtectHome=`` hides the rest (the test's Python lives in /root/.pyenv; a real
    installation's does not).
    """
    spec_path = workdir / "filter.json"
    spec_path.write_text(
        json.dumps({"allow": sandbox.allow, "errno": sandbox.errno, "families": sandbox.families, "mdwe": sandbox.mdwe})
    )
    os.chmod(spec_path, 0o644)
    q = shlex.quote
    mounts = []
    if state is not None:
        mounts.append(f"mount --bind {q(str(state))} {q(str(state))}")
    if creds is not None:
        mounts.append(f"mount --bind {q(str(creds))} {q(str(creds))}")
        mounts.append(f"mount -o remount,bind,ro {q(str(creds))}")
    if sandbox.protect_home == "yes":
        staged = []
        for n, path in enumerate(expose):
            stage = workdir / f"expose-{n}"
            stage.mkdir(exist_ok=True)
            mounts.append(f"mount --bind {q(str(path))} {q(str(stage))}")
            staged.append((stage, path))
        for home in ("/root", "/home"):
            if Path(home).is_dir():
                mounts.append(f"mount -t tmpfs -o mode=0755,nosuid,nodev protect-home {home}")
        for stage, path in staged:
            mounts.append(f"mkdir -p {q(str(path))} && mount --bind {q(str(stage))} {q(str(path))}")
            mounts.append(f"mount -o remount,bind,ro {q(str(path))}")
        for home in ("/root", "/home"):
            if Path(home).is_dir():
                mounts.append(f"mount -o remount,ro,nosuid,nodev protect-home {home}")
    if sandbox.private_tmp:
        mounts.append("mount -t tmpfs -o mode=1777,nosuid,nodev private-tmp /tmp")
    proc_opts = ["nosuid", "nodev", "noexec"]
    if sandbox.protect_proc != "default":
        proc_opts.append(f"hidepid={sandbox.protect_proc}")
    if sandbox.proc_subset == "pid":
        proc_opts.append("subset=pid")
    mounts.append(f"mount -t proc -o {','.join(proc_opts)} proc /proc")
    if sandbox.protect_system == "strict":
        mounts.append("mount -o remount,bind,ro /")
    inh = "-all" + "".join(f",+{c}" for c in sandbox.ambient)
    bounding = "-all" + "".join(f",+{c}" for c in sandbox.bounding)
    setpriv = [
        "setpriv",
        f"--reuid={DYNAMIC_UID}",
        f"--regid={DYNAMIC_UID}",
        "--clear-groups",
        "--no-new-privs",
        f"--inh-caps={inh}",
        f"--ambient-caps={inh}",
        f"--bounding-set={bounding}",
    ]
    env_argv = ["env", "-i", *[f"{k}={v}" for k, v in env.items()]]
    loader = ["/usr/bin/python3", str(HERE), str(spec_path), "--", *argv]
    script = " && ".join(mounts) + " && exec " + shlex.join([*setpriv, *env_argv, *loader])
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec", script]


# --------------------------------------------------------------------------- the filter loader

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_CMP_EQ = 4
SCMP_CMP_MASKED_EQ = 7
PROT_WRITE, PROT_EXEC = 0x2, 0x4


def _act_errno(number: int) -> int:
    return 0x00050000 | (number & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def load_filter(spec: dict[str, Any]) -> None:
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    default = SCMP_ACT_KILL_PROCESS if spec["errno"] is None else _act_errno(spec["errno"])
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise OSError("seccomp_init failed")

    def rule(action: int, name: str, *conds: tuple[int, int, int, int]) -> None:
        number = lib.seccomp_syscall_resolve_name(name.encode())
        if number < 0:
            return  # not a syscall on this architecture
        array = (_ArgCmp * max(1, len(conds)))(*[_ArgCmp(*c) for c in conds])
        rc = lib.seccomp_rule_add_array(ctx, action, number, len(conds), array)
        if rc < 0:
            raise OSError(-rc, f"seccomp_rule_add({name}): {os.strerror(-rc)}")

    families = spec["families"]
    for name in spec["allow"]:
        if name == "socket" and families is not None:
            for family in families:
                rule(SCMP_ACT_ALLOW, name, (0, SCMP_CMP_EQ, family, 0))
            for family in range(AF_MAX + 1):
                if family not in families:
                    rule(_act_errno(errno.EAFNOSUPPORT), name, (0, SCMP_CMP_EQ, family, 0))
        elif name == "mmap" and spec["mdwe"]:
            wx = PROT_WRITE | PROT_EXEC
            for allowed in (0, PROT_WRITE, PROT_EXEC):
                rule(SCMP_ACT_ALLOW, name, (2, SCMP_CMP_MASKED_EQ, wx, allowed))
        elif name in ("mprotect", "pkey_mprotect") and spec["mdwe"]:
            rule(SCMP_ACT_ALLOW, name, (2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0))
        else:
            rule(SCMP_ACT_ALLOW, name)
    rc = lib.seccomp_load(ctx)
    if rc < 0:
        raise OSError(-rc, f"seccomp_load: {os.strerror(-rc)}")


def main(argv: list[str]) -> None:
    spec_path, sep, *command = argv
    if sep != "--" or not command:
        raise SystemExit("usage: unitsandbox.py SPEC.json -- COMMAND...")
    spec = json.loads(Path(spec_path).read_text())
    load_filter(spec)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
