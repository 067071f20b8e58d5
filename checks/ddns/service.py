"""Installing ``ddns-wizard watch`` as a systemd service (``service install|status|remove``).

Two scopes:

- ``system`` (root): the hardened unit of docs/systemd/ddns-wizard.service in
  /etc/systemd/system; the configuration is copied to /etc/ddns-wizard/config.toml
  (0600 in a 0700 directory) and handed to the service with ``LoadCredential=``, the
  history lives in /var/lib/ddns-wizard (``StateDirectory=``).
- ``user``: a user unit in ~/.config/systemd/user, ``WantedBy=default.target`` (no
  ``After=network-online.target``: that target is the system manager's and does nothing
  in a user session), plus ``loginctl enable-linger USER`` — without it the user's
  services start only at login and stop at logout.

Then ``systemctl daemon-reload``, ``enable --now``.  Where systemd is not running
(no /run/systemd/system: a container, WSL without systemd, another init), nothing is
written: the result says so and gives the equivalent cron line (``update`` every five
minutes).  Every step is a plan first (files to write, commands to run, notes), so
``--dry-run`` prints exactly what would happen and the wizard calls the same code.
Commands run through an injectable runner with a deadline each.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

UNIT_NAME = "ddns-wizard.service"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
SYSTEM_CONFIG = Path("/etc/ddns-wizard/config.toml")
SYSTEM_HISTORY = Path("/var/lib/ddns-wizard/history.jsonl")
COMMAND_TIMEOUT_S = 60.0
DEFAULT_INTERVAL_S = 300
_TEMPLATES = Path(__file__).resolve().parent / "units"

Runner = Callable[[Sequence[str]], "tuple[int, str]"]
NO_SYSTEMD = (
    "systemd is not running on this machine (no /run/systemd/system), so no service was installed; "
    "run the update from cron instead (crontab -e, add the line below)"
)


def run_command(argv: Sequence[str]) -> tuple[int, str]:
    """Run one command with a deadline: (exit status, output). Never raises."""
    import subprocess

    try:
        p = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        return 127, f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, f"no answer within {COMMAND_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return 126, str(exc)
    return p.returncode, (p.stdout + p.stderr).strip()


def systemd_running() -> bool:
    """systemd is the init system here (sd_booted(3): /run/systemd/system exists)."""
    return Path("/run/systemd/system").is_dir()


def own_executable() -> str:
    """The ddns-wizard command that is running, else the one on PATH, else the usual place."""
    launched = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(launched) == "ddns-wizard" and os.access(launched, os.X_OK):
        return launched
    return shutil.which("ddns-wizard") or "/usr/local/bin/ddns-wizard"


def unit_arg(value: str) -> str:
    """One ExecStart= argument: ``%`` and ``$`` escaped (systemd expands them), quoted when
    it holds white space or quotes (systemd.service(5), "Command lines")."""
    text = value.replace("%", "%%").replace("$", "$$")
    if any(c in text for c in " \t\"'\\;"):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _home_dirs() -> tuple[str, ...]:
    return ("/home/", "/root/", "/run/user/")


def render_unit(scope: str, *, executable: str, config_path: Path, interval_s: int = DEFAULT_INTERVAL_S) -> str:
    """The unit text for ``scope`` ("system" | "user")."""
    template = (_TEMPLATES / f"{scope}.service.in").read_text(encoding="utf-8")
    protect_home = "read-only" if executable.startswith(_home_dirs()) else "yes"
    return (
        template.replace("@EXEC@", unit_arg(executable))
        .replace("@CONFIG@", unit_arg(str(config_path)) if scope == "user" else str(SYSTEM_CONFIG))
        .replace("@INTERVAL@", str(int(interval_s)))
        .replace("@PROTECT_HOME@", protect_home)
    )


@dataclass(frozen=True)
class FileWrite:
    path: Path
    mode: int
    what: str  # "the unit" | "the configuration (copy)"
    text: str | None = None  # None: copy ``source``
    source: Path | None = None


@dataclass(frozen=True)
class Step:
    argv: tuple[str, ...]
    why: str
    required: bool = True  # a failure stops the install (linger: only a warning)

    @property
    def shown(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Plan:
    scope: str
    unit_path: Path
    unit_text: str
    writes: tuple[FileWrite, ...]
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()
    history_path: Path | None = None
    cron_line: str = ""


@dataclass(frozen=True)
class StepResult:
    shown: str
    ok: bool
    output: str = ""
    required: bool = True


@dataclass
class Outcome:
    """What install/remove did (or would do, ``dry_run``)."""

    plan: Plan
    systemd: bool
    dry_run: bool
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return (self.systemd or self.dry_run) and self.problem is None and all(s.ok for s in self.steps if s.required)


def default_scope() -> str:
    return "system" if os.geteuid() == 0 else "user"


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return os.environ.get("USER") or str(os.geteuid())


def user_unit_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def cron_line(executable: str, config_path: Path, history_path: Path | None = None) -> str:
    """The crontab line that does what the service does, where there is no systemd:
    ``update`` every five minutes (``%`` is special in crontab and escaped)."""
    argv = [executable, "--config", str(config_path), "update"]
    if history_path is not None:
        argv += ["--history", str(history_path)]
    command = shlex.join(argv).replace("%", "\\%")
    return f"*/5 * * * * {command} >/dev/null 2>&1"


def plan_install(
    scope: str, *, config_path: Path, executable: str | None = None, interval_s: int = DEFAULT_INTERVAL_S
) -> Plan:
    executable = executable or own_executable()
    config_path = config_path.expanduser().resolve()
    notes: list[str] = []
    if scope == "system":
        unit_path = SYSTEM_UNIT_DIR / UNIT_NAME
        writes = [
            FileWrite(
                unit_path,
                0o644,
                "the unit",
                text=render_unit("system", executable=executable, config_path=config_path, interval_s=interval_s),
            )
        ]
        if config_path != SYSTEM_CONFIG:
            writes.append(
                FileWrite(
                    SYSTEM_CONFIG, 0o600, "a copy of the configuration (mode 0600, root only)", source=config_path
                )
            )
            notes.append(
                f"The service reads {SYSTEM_CONFIG}, a copy of {config_path}: after changing the "
                "configuration, run this install again (or copy it) and restart the service."
            )
        if executable.startswith("/root/"):
            notes.append(
                f"{executable} lives under /root, which the service's own unprivileged user cannot "
                "read: install ddns-wizard system-wide (e.g. `pipx install --global ddns-wizard`, or a "
                "venv under /opt) and install the service again."
            )
        elif executable.startswith(_home_dirs()):
            notes.append(
                f"{executable} lives in a home directory, so the unit uses ProtectHome=read-only instead "
                "of hiding /home; a system-wide install keeps it hidden."
            )
        steps = [
            Step(("systemctl", "daemon-reload"), "make systemd read the new unit"),
            Step(("systemctl", "enable", "--now", UNIT_NAME), "start it now and at every boot"),
        ]
        history = SYSTEM_HISTORY
        notes.append(f"What it does: journalctl -u {UNIT_NAME.removesuffix('.service')} -f")
    elif scope == "user":
        unit_path = user_unit_dir() / UNIT_NAME
        writes = [
            FileWrite(
                unit_path,
                0o644,
                "the unit",
                text=render_unit("user", executable=executable, config_path=config_path, interval_s=interval_s),
            )
        ]
        user = _user()
        steps = [
            Step(("systemctl", "--user", "daemon-reload"), "make your systemd read the new unit"),
            Step(("systemctl", "--user", "enable", "--now", UNIT_NAME), "start it now and at every login"),
            Step(
                ("loginctl", "enable-linger", user),
                "keep it running after you log out and start it at boot (without linger, a user "
                "service runs only while you are logged in)",
                required=False,
            ),
        ]
        history = None
        notes.append(f"What it does: journalctl --user -u {UNIT_NAME.removesuffix('.service')} -f")
    else:
        raise ValueError(f"unknown scope {scope!r}")
    return Plan(
        scope,
        unit_path,
        writes[0].text or "",
        tuple(writes),
        tuple(steps),
        tuple(notes),
        history,
        cron_line(executable, config_path, history),
    )


def plan_remove(scope: str) -> Plan:
    if scope == "system":
        unit_path = SYSTEM_UNIT_DIR / UNIT_NAME
        steps = [
            Step(("systemctl", "disable", "--now", UNIT_NAME), "stop it and do not start it at boot"),
            Step(("systemctl", "daemon-reload"), "make systemd forget the unit"),
        ]
        notes = (
            f"{SYSTEM_CONFIG} and the history in /var/lib/ddns-wizard are kept; delete them by hand if "
            "you no longer need them.",
        )
    else:
        unit_path = user_unit_dir() / UNIT_NAME
        steps = [
            Step(("systemctl", "--user", "disable", "--now", UNIT_NAME), "stop it and do not start it again"),
            Step(("systemctl", "--user", "daemon-reload"), "make your systemd forget the unit"),
        ]
        notes = ("Linger (loginctl enable-linger) is left as it is: other user services may rely on it.",)
    return Plan(scope, unit_path, "", (), tuple(steps), notes)


def _write(w: FileWrite) -> None:
    from ..config import write_private_file
    from ..files import MAX_CONFIG_BYTES, read_regular_file

    if w.text is not None:
        data = w.text.encode("utf-8")
    elif w.source is not None:
        data = read_regular_file(w.source, limit=MAX_CONFIG_BYTES)
    else:  # every FileWrite the plans make has one or the other
        raise ValueError(f"nothing to write to {w.path}")
    w.path.parent.mkdir(parents=True, exist_ok=True)
    if w.mode == 0o600 and w.path.parent.name == "ddns-wizard":
        os.chmod(w.path.parent, 0o700)  # /etc/ddns-wizard: only root looks inside
    write_private_file(w.path, data)  # atomic; 0600, then opened up where the file is public
    os.chmod(w.path, w.mode)


def install(plan: Plan, *, dry_run: bool = False, run: Runner = run_command, systemd: bool | None = None) -> Outcome:
    systemd = systemd_running() if systemd is None else systemd
    out = Outcome(plan, systemd, dry_run)
    if dry_run:  # the plan, whether or not this machine could carry it out
        out.written = [str(w.path) for w in plan.writes]
        out.steps = [StepResult(s.shown, True, "(dry run: not run)", s.required) for s in plan.steps]
        return out
    if not systemd:
        out.problem = NO_SYSTEMD
        return out
    if plan.scope == "system" and os.geteuid() != 0:
        out.problem = "installing a system service needs root: run it with sudo, or install a user service with --user"
        return out
    for w in plan.writes:
        try:
            _write(w)
        except Exception as exc:
            out.problem = f"cannot write {w.path}: {exc}"
            return out
        out.written.append(str(w.path))
    for s in plan.steps:
        code, output = run(s.argv)
        out.steps.append(StepResult(s.shown, code == 0, output, s.required))
        if code != 0 and s.required:
            break
    return out


def remove(plan: Plan, *, dry_run: bool = False, run: Runner = run_command, systemd: bool | None = None) -> Outcome:
    systemd = systemd_running() if systemd is None else systemd
    out = Outcome(plan, systemd, dry_run)
    if not plan.unit_path.exists():
        out.problem = f"no ddns-wizard service is installed ({plan.unit_path} does not exist)"
        return out
    if plan.scope == "system" and os.geteuid() != 0 and not dry_run:
        out.problem = "removing the system service needs root: run it with sudo"
        return out
    first, rest = plan.steps[0], plan.steps[1:]
    if dry_run:
        out.steps = [StepResult(s.shown, True, "(dry run: not run)") for s in plan.steps]
        out.removed = [str(plan.unit_path)]
        return out
    if systemd:
        code, output = run(first.argv)
        out.steps.append(StepResult(first.shown, code == 0, output, required=False))
    try:
        plan.unit_path.unlink()
        out.removed.append(str(plan.unit_path))
    except OSError as exc:
        out.problem = f"cannot remove {plan.unit_path}: {exc.strerror or exc}"
        return out
    if systemd:
        for s in rest:
            code, output = run(s.argv)
            out.steps.append(StepResult(s.shown, code == 0, output, s.required))
    return out


@dataclass(frozen=True)
class ServiceState:
    scope: str
    unit_path: str
    installed: bool
    systemd: bool
    enabled: str | None = None  # systemctl is-enabled's word
    active: str | None = None  # systemctl is-active's word
    history_path: str | None = None


def service_status(
    scope: str | None = None, *, run: Runner = run_command, systemd: bool | None = None
) -> list[ServiceState]:
    """The state of the system and the user unit (or the one ``scope`` names)."""
    systemd = systemd_running() if systemd is None else systemd
    out: list[ServiceState] = []
    for sc in [scope] if scope else ["system", "user"]:
        path = (SYSTEM_UNIT_DIR if sc == "system" else user_unit_dir()) / UNIT_NAME
        enabled: str | None = None
        active: str | None = None
        if systemd:
            base = ["systemctl"] + (["--user"] if sc == "user" else [])
            enabled = next(iter(run(base + ["is-enabled", UNIT_NAME])[1].splitlines()), None)
            active = next(iter(run(base + ["is-active", UNIT_NAME])[1].splitlines()), None)
        out.append(
            ServiceState(
                sc,
                str(path),
                path.exists(),
                systemd,
                enabled,
                active,
                str(installed_history_path(path)) if path.exists() else None,
            )
        )
    return out


def installed_history_path(unit_path: Path) -> Path | None:
    """The --history an installed unit passes to the watch (None: the default)."""
    try:
        text = unit_path.read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("ExecStart="):
            try:
                argv = shlex.split(line[len("ExecStart=") :])
            except ValueError:
                return None
            if "--history" in argv and argv.index("--history") + 1 < len(argv):
                return Path(argv[argv.index("--history") + 1])
    return None
