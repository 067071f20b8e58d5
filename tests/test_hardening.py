"""Hostile or broken input is an error message, never a crash (issue 13).

Each test is one thing that used to crash, hang or leak, run the way a user meets it:
the real command where one exists.  The full-disk tests mount a real 64 KiB tmpfs in
a private mount namespace (``unshare -m``, also ``-n``: an empty network namespace, so
``diagnose`` inside it reaches nothing); nothing is injected there.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from checks.config import Config, HostConfig, load_config, remove_stale_temps, save_config
from checks.ddns.history import History, read_history
from checks.ddns.providers.base import retry_after_header
from checks.errors import ConfigError, ConfigSyntaxError

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Pw-7Qx!zK9#mD2"  # a secret: must never survive in a file left behind
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def cli(*argv: str, timeout: float = 30, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wizard", *argv], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
    )


# --------------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    "value, expected",
    [
        ("²", 77),  # str.isdigit() says yes, int() says no
        ("٣٠", 77),  # Arabic-Indic digits: not RFC 9110 delta-seconds
        ("9" * 5000, 86400),  # int() refuses more than 4300 digits: "very long" is the ceiling
        ("120", 120),
        (" 0 ", 1),
        ("-5", 77),
        ("1e9", 77),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1),  # a date in the past: retry now (at least 1 s)
        ("Wed, 21 Oct 2099 07:28:00 -0000", 86400),  # "-0000" dates are naive in email.utils
        ("Wed, 99 Foo 2099 99:99:99 GMT", 77),
        ("x" * 10000, 77),
    ],
)
def test_retry_after_never_raises(value: str, expected: int) -> None:
    assert retry_after_header(value, 77) == expected


def test_a_429_with_a_hostile_retry_after_is_a_retryable_error_not_a_crash() -> None:
    from checks.ddns.providers import duckdns
    from checks.ddns.providers.registry import get_provider

    host = HostConfig(hostname="myhome.duckdns.org", provider="duckdns", token="a1b2c3d4-1234-5678-9abc-def012345678")
    for header in ("²", "9" * 5000):
        r = duckdns.parse_reply(get_provider("duckdns"), host, 429, {"retry-after": header}, "", "23.128.64.20")
        assert r.result == "error" and not r.fatal and r.retry_after_s and r.retry_after_s >= 1


# --------------------------------------------------------------------------- configuration files


def test_2000_nested_brackets_are_a_configuration_error_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "deep.toml"
    cfg.write_text("a = " + "[" * 2000)
    r = cli("--config", str(cfg), "watch")
    assert r.returncode == 2, r.stderr
    assert "nested too deeply" in r.stderr and "RecursionError" not in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(ConfigSyntaxError):
        load_config(cfg)


def test_valid_but_absurdly_nested_toml_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "deep.toml"
    cfg.write_text("a = " + "[" * 40 + "]" * 40 + "\n")
    with pytest.raises(ConfigError, match="nested more than 16 levels"):
        load_config(cfg)


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "huge"])
def test_config_must_be_a_regular_file_of_sane_size(tmp_path: Path, kind: str) -> None:
    """A FIFO used to hang (open waits for a writer), /dev/zero to read forever."""
    if kind == "fifo":
        target = tmp_path / "cfg.fifo"
        os.mkfifo(target)
        expected = "is a FIFO (named pipe), not a regular file"
    elif kind == "device":
        target = Path("/dev/zero")
        expected = "is a character device, not a regular file"
    elif kind == "directory":
        target = tmp_path
        expected = "is a directory, not a regular file"
    else:
        target = tmp_path / "huge.toml"
        with open(target, "wb") as fh:
            fh.truncate(3 * 1024 * 1024)  # sparse: 3 MiB of "configuration"
        expected = "more than the 1048576 a file of this kind can be"
    started = time.monotonic()
    r = cli("--config", str(target), "watch", timeout=20)
    assert time.monotonic() - started < 15
    assert r.returncode == 2 and expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    # the environment variable goes through the same door
    r = cli("watch", timeout=20, env={**os.environ, "DDNS_WIZARD_CONFIG": str(target)})
    assert r.returncode == 2 and expected in r.stderr


def test_saving_over_a_fifo_is_refused_not_hung(tmp_path: Path) -> None:
    target = tmp_path / "cfg.fifo"
    os.mkfifo(target)
    with pytest.raises(ConfigError, match="FIFO"):
        save_config(Config(), target)


@pytest.mark.parametrize("command", ["watch", "update"])
def test_history_must_be_a_regular_file(tmp_path: Path, command: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[endpoints]\nresolvers = ["127.0.0.1:9"]\n[[hosts]]\nhostname = "myhome.duckdns.org"\n'
        'provider = "duckdns"\ntoken = "a1b2c3d4-1234-5678-9abc-def012345678"\n'
    )
    fifo = tmp_path / "h.fifo"
    os.mkfifo(fifo)
    r = cli("--config", str(cfg), command, "--history", str(fifo), timeout=20)
    assert r.returncode == 2 and "is a FIFO (named pipe), not a regular file" in r.stderr, r.stderr
    read = read_history(fifo)  # read directly: reported, not hung
    assert read.records == () and "FIFO" in read.problems[0]


# --------------------------------------------------------------------------- history records of the wrong type


BAD_RECORDS = [
    '{"ts":"2026-01-01T00:00:00+00:00","t":"x","event":"update","hostname":"myhome.duckdns.org","result":"error","retry_after_s":60}',
    '{"ts":"2026-01-01T00:00:00+00:00","t":1e400,"event":"update","hostname":"myhome.duckdns.org","result":"error","retry_after_s":60}',
    '{"ts":"2026-01-01T00:00:00+00:00","t":1000,"event":"update","hostname":"myhome.duckdns.org","result":"error","retry_after_s":1e400}',
    '{"ts":"2026-01-01T00:00:00+00:00","t":1000,"event":"update","hostname":"myhome.duckdns.org","result":"updated","sent":["23.128.64.20"]}',
    '{"ts":"2026-01-01T00:00:00+00:00","t":1000,"event":"stopped","hostname":"myhome.duckdns.org","fingerprint":{"a":1}}',
    '{"ts":"2026-01-01T00:00:00+00:00","t":NaN,"event":"check","hostname":"myhome.duckdns.org","serves":"23.128.64.20"}',
    '{"t":1000,"event":"update","fatal":"yes"}',
    '{"t":1000}',
    "[1, 2, 3]",
    '{"t":' + "1" * 5000 + ',"event":"stop"}',
    "[" * 5000 + "]" * 5000,
]


def test_history_records_of_the_wrong_type_are_skipped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    good = '{"ts":"2026-01-01T00:00:00+00:00","t":1000.5,"event":"check","hostname":"a.example.org","serves":"23.128.64.20"}'
    path.write_text("\n".join([good, *BAD_RECORDS, good]) + "\n")
    read = read_history(path)
    assert len(read.records) == 2 and all(r["serves"] == "23.128.64.20" for r in read.records)
    assert len(read.problems) == len(BAD_RECORDS)
    assert "line 2: 't' is not a time in seconds (\"x\"); ignored" in read.problems[0]
    assert "line 3: 't' is not a time in seconds (Infinity)" in read.problems[1]
    assert "'retry_after_s' is not a delay in seconds" in read.problems[2]
    assert "'sent' is not text" in read.problems[3]


def test_watch_keeps_running_on_a_history_with_bad_records(tmp_path: Path) -> None:
    """It used to exit 1 at start (float('x')): under systemd, a restart loop. Real process, real signal;
    the endpoints are closed 127.0.0.1 ports, so nothing leaves the machine."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[endpoints]\nip_echo = ["https://127.0.0.1:9/", "https://127.0.0.1:9/x"]\ndns_echo = []\n'
        'stun = []\nip_echo_v6 = []\nresolvers = ["127.0.0.1:9"]\n'
        '[[hosts]]\nhostname = "myhome.duckdns.org"\nprovider = "duckdns"\n'
        'token = "a1b2c3d4-1234-5678-9abc-def012345678"\n'
    )
    history = tmp_path / "history.jsonl"
    history.write_text("\n".join(BAD_RECORDS) + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wizard", "--config", str(cfg), "watch", "--interval", "10", "--history", str(history)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            if '"event":"address"' in history.read_text():
                break
            time.sleep(0.1)
        assert proc.poll() is None, "watch exited on a bad history"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "internal error" not in err
    assert "line 1: 't' is not a time in seconds" in out and "line 2: 't' is not a time in seconds" in out
    assert "more unusable lines ignored" in out  # 11 bad lines: 10 listed, the rest counted
    assert "received SIGTERM: stopping" in out
    events = [r["event"] for r in read_history(history).records]
    assert events[0] == "start" and events[-1] == "stop"


async def test_a_future_timestamp_does_not_park_a_host_for_years(tmp_path: Path) -> None:
    from checks.ddns.watch import Watcher

    path = tmp_path / "h.jsonl"
    with History(path) as h:
        h.append("update", hostname="myhome.duckdns.org", result="error", retry_after_s=3600 * 24 * 300)
    now = time.time()
    host = HostConfig(hostname="myhome.duckdns.org", provider="duckdns", token="a1b2c3d4-1234-5678-9abc-def012345678")
    events: list[str] = []
    w = Watcher(Config(hosts=(host,)), client=None, history=History(path), clock=lambda: now, emit=events.append)
    w.restore()
    state = w.states["myhome.duckdns.org"]
    assert state.not_before <= now + state.spec.policy.max_retry_s


# --------------------------------------------------------------------------- temporary files of a killed save


_KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys
    from checks.config import Config, HostConfig, save_config
    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)      # the moment after the secrets reached the temporary file
    os.replace = die
    save_config(Config(hosts=(HostConfig(hostname="myhome.example.org", provider="dyndns2",
                                         username="alice", password=sys.argv[2]),)), sys.argv[1])
""")


def _temps(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith(".config.toml.") and p.name.endswith(".tmp"))


def test_a_killed_saves_temp_file_is_removed_by_the_next_save(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    left: list[Path] = []
    for _ in range(2):
        r = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(target), PASSWORD], cwd=ROOT, timeout=30)
        assert r.returncode == -signal.SIGKILL
        now_left = _temps(tmp_path)
        # what the issue found: a temp file with the password; the second save removed the first's
        assert len(now_left) == 1 and PASSWORD in now_left[0].read_text() and now_left != left
        left = now_left
    assert not target.exists()
    save_config(
        Config(
            hosts=(HostConfig(hostname="myhome.example.org", provider="dyndns2", username="alice", password=PASSWORD),)
        ),
        target,
    )
    assert _temps(tmp_path) == []
    assert load_config(target).hosts[0].password == PASSWORD
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]


def test_a_save_in_progress_keeps_its_temp_file(tmp_path: Path) -> None:
    """Another process mid-save holds the flock on its temporary file: the cleanup leaves it alone."""
    target = tmp_path / "config.toml"
    live = tmp_path / ".config.toml.abcd1234.tmp"
    live.write_text("being written")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(live)!r}, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        time.sleep(30)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        dead = tmp_path / ".config.toml.dead0001.tmp"
        dead.write_text(f"password = {PASSWORD!r}")
        other = tmp_path / ".config.toml.notours.tmp"  # not mkstemp's name: not ours to remove
        other.write_text("x")
        assert remove_stale_temps(target) == [dead]
        assert live.exists() and other.exists() and not dead.exists()
    finally:
        holder.kill()
        holder.wait()
    assert remove_stale_temps(target) == [live]  # its writer is gone now


# --------------------------------------------------------------------------- a full disk


def _can_unshare() -> str | None:
    if os.geteuid() != 0:
        return "needs root (mount namespace and tmpfs)"
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux)"
    r = subprocess.run(["unshare", "-m", "-n", "true"], capture_output=True, timeout=10)
    return None if r.returncode == 0 else f"unshare -m -n failed: {r.stderr.decode()[:200]}"


@pytest.fixture
def full_disk_shell(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run a shell script in a private mount namespace with a full 64 KiB tmpfs on ``tmp_path/full``."""
    why = _can_unshare()
    if why:
        if IN_CI:
            pytest.fail(f"the full-disk test must run in CI: {why}")
        pytest.skip(why)
    mount = tmp_path / "full"
    mount.mkdir()

    def run(script: str) -> subprocess.CompletedProcess[str]:
        prologue = (
            f"set -e; mount -t tmpfs -o size=64k,mode=0755 ddnsw-full {mount}; "
            f"dd if=/dev/zero of={mount}/filler bs=4k 2>/dev/null || true; set +e; "
        )
        return subprocess.run(
            ["unshare", "-m", "-n", "sh", "-c", prologue + script],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )

    return mount, run


def test_a_report_on_a_full_disk_says_so(full_disk_shell) -> None:  # type: ignore[no-untyped-def]
    mount, run = full_disk_shell
    report = mount / "report.html"
    r = run(
        f"{sys.executable} -m wizard --config {mount}/none.toml diagnose --budget 0.5 --report {report} "
        f"> /dev/null; echo exit=$?; ls -a {mount}"
    )
    assert "exit=1" in r.stdout, r.stdout + r.stderr
    assert (
        f"ddns-wizard: error: cannot write {report}: no space left on the device (the disk is full); "
        "nothing was written" in r.stderr
    )
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    assert r.stdout.split("exit=1")[1].split() == [".", "..", "filler"]  # no temporary file left


def test_a_config_save_on_a_full_disk_keeps_the_old_file(full_disk_shell, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mount, run = full_disk_shell
    script = tmp_path / "save.py"
    script.write_text(
        textwrap.dedent(f"""
        import os
        from pathlib import Path
        from checks.config import Config, HostConfig, load_config, save_config
        from checks.errors import OutputError
        target = Path({str(mount)!r}) / "config.toml"
        os.unlink(Path({str(mount)!r}) / "filler")
        save_config(Config(hosts=(HostConfig(hostname="old.example.org", provider="dyndns2"),)), target)
        fd = os.open(Path({str(mount)!r}) / "filler", os.O_WRONLY | os.O_CREAT)   # fill the disk again
        try:
            while os.write(fd, bytes(4096)):
                pass
        except OSError:
            pass
        os.close(fd)
        big = "x" * 200_000                                           # cannot fit
        try:
            save_config(Config(hosts=(HostConfig(hostname="new.example.org", provider="dyndns2",
                                                 password={PASSWORD!r}, options={{"note": big}}),)), target)
        except OutputError as exc:
            print("ERROR", exc)
        print("HOST", load_config(target).hosts[0].hostname)
        print("FILES", sorted(os.listdir({str(mount)!r})))
    """)
    )
    r = run(f"{sys.executable} {script}")
    assert "cannot write" in r.stdout and "no space left on the device" in r.stdout, r.stdout + r.stderr
    assert "config.toml is unchanged" in r.stdout
    assert "HOST old.example.org" in r.stdout
    assert "FILES ['config.toml', 'filler']" in r.stdout  # no temp file with the password


# --------------------------------------------------------------------------- Unicode digits in ports


@pytest.mark.parametrize("text", ["²", "٨٠٨٠", "８０８０/tcp"])
def test_unicode_digits_are_not_a_port(text: str) -> None:
    """str.isdigit() says yes to them and int() then raised: 'ports check ²' was an internal error."""
    from checks.errors import UsageError
    from checks.portcheck.spec import parse_port_spec

    with pytest.raises(UsageError, match="a port is a number from 1 to 65535"):
        parse_port_spec(text)


@pytest.mark.parametrize("port", ["²", "٥٣", "５３"])
def test_unicode_digits_are_not_a_port_in_any_host_port_field(port: str) -> None:
    """The same crash in every other host:port field: an RFC 2136 server, the probe
    server's --listen and the wizard's port field refuse them instead of raising."""
    from checks.ddns.providers.rfc2136 import check_server
    from checks.errors import UsageError
    from wizard.commands.probe_server import parse_listen
    from wizard.tui.screens.ports import parse_ports

    assert check_server(f"ns1.example.org:{port}") is not None
    assert check_server(f"[2001:db8::53]:{port}") is not None
    with pytest.raises(UsageError, match=r"bad port \(a port is a number 1-65535\)"):
        parse_listen(f"0.0.0.0:{port}")
    with pytest.raises(ValueError, match="a port is a number"):
        parse_ports(port)
