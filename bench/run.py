"""ddns-wizard against the tools users would otherwise pick, in the network lab (root; not a test).

    sudo .venv/bin/python bench/run.py [--runs 5] [--only update,diagnose,day,cold,memory]
                                       [--latency MS] [--loss PCT] [--day-changes 3] [--day-interval 60]
                                       [--no-write] [--install]

Everything runs in the lab's `home` topology (tests/lab): the tools run in the user's
machine behind the router's NAT and talk only to lab services. Sections:

- update: time from start to "the authoritative server (Knot) serves the new address",
  each run starting from a stale record (reset in Knot over RFC 2136 with the lab's
  emulator key; unbound restarted so no resolver holds the new answer):
  `ddns-wizard update` vs ddclient 3.10 (one-shot, use=web against the lab echo, ssl,
  protocol dyndns2) vs inadyn 2.10 (`--once`, a custom dyndns2 section, lab CA).
- diagnose: `ddns-wizard diagnose --json` vs the manual sequence a person types for the
  same facts (upnpc -s; dig at the authoritative server; dig at the resolver; curl to
  the echo; curl to the port checker; ping -c1).
- day: a simulated day of address changes: each daemon in its own identical lab, all at
  the same time, same check interval (ddclient's minimum, 60 s), the ISP address changed
  N times; provider requests and `nochg` replies counted from the emulator's log.
- cold: `ddns-wizard --version`, `ddns-wizard diagnose --help` (hyperfine), and the TUI's
  first screen painted in tmux (time until `capture-pane` shows the welcome text).
- memory: peak RSS (GNU time's %M) of `diagnose` and of each daemon of `day` after its cycles.
- scale (issue 18): `update` with N = 1, 10, 50, 200 names of one dyndns2 account (0 ms and
  40 ms RTT) vs ddclient and inadyn in the same lab: wall time, requests, records landed, the
  provider's busy time, growth exponents; `verify` and `ports check` (own probe server) with
  N = 1, 10, 50; `diagnose` on an 800 ms line and a 300 ms / 30 % loss line; `watch` over
  --watch-rounds rounds in-process (bench/watch_rounds.py). Run from a regular install.

Writes bench/RESULTS.md (machine, command, table) unless --no-write. `--install`
apt-installs ddclient, inadyn, hyperfine and tmux first (bench only; not the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lab import plan  # noqa: E402
from tests.lab.internet import OLD_ADDRESS  # noqa: E402
from tests.lab.topology import VENV_BIN, Lab, Options  # noqa: E402

BENCH_PACKAGES = ("ddclient", "inadyn", "hyperfine", "tmux")
TOOL = str(VENV_BIN / "ddns-wizard")
# The checkout sets PYTHONDONTWRITEBYTECODE; an installed tool has its bytecode compiled,
# so the bench caches bytecode (outside the tree) as an installation would.
PY_ENV = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": "/tmp/ddns-wizard-bench-pycache"}
SETTLE_S = 1.0


# --------------------------------------------------------------------------- results
@dataclass
class Row:
    section: str
    metric: str
    ours: float | None
    theirs: dict[str, float | None] = field(default_factory=dict)
    unit: str = "s"
    target: str = ""
    met: bool | None = None
    note: str = ""


ROWS: list[Row] = []
NOTES: list[str] = []


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        return f"{value:.2f} s" if value >= 0.1 else f"{value * 1000:.0f} ms"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    if unit == "×":
        return f"{value:.2f}×"
    return f"{value:g}{(' ' + unit) if unit else ''}"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- running things
def measured(argv: list[str], rss_file: Path) -> list[str]:
    """argv under GNU time, which reports the peak RSS of the command alone.

    (ru_maxrss of a child forked from this big Python process would include the
    pages it inherited at fork: GNU time forks from its own small image.)"""
    return ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), "--", *argv]


def read_rss_mib(rss_file: Path) -> float | None:
    try:
        return int(rss_file.read_text().strip().splitlines()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        return None


def timed_run(
    lab: Lab, argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[float, int, str, str, float | None]:
    """Run argv in the host namespace; (wall s, exit code, stdout, stderr, peak RSS MiB)."""
    full_env = dict(lab.tool_env)
    full_env.update(PY_ENV)
    if env:
        full_env.update(env)
    rss_file = Path(tempfile.mkstemp(prefix="bench-rss-")[1])
    try:
        started = time.perf_counter()
        proc = subprocess.run(
            lab._netns_argv("host", measured(argv, rss_file)),
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        wall = time.perf_counter() - started
        return wall, proc.returncode, proc.stdout, proc.stderr, read_rss_mib(rss_file)
    finally:
        rss_file.unlink(missing_ok=True)


def fresh_record(lab: Lab, hostname: str) -> None:
    """Stale record in Knot (RFC 2136, emulator key), and no resolver holding the new one."""
    lab.internet.set_record(hostname, "A", [OLD_ADDRESS])
    lab.internet.stop_service("resolver")  # unbound has no remote control here: a restart flushes
    lab.internet.start_service("resolver")
    if lab.internet.lookup(hostname) != [OLD_ADDRESS]:
        raise SystemExit("could not reset the record in Knot")


# --------------------------------------------------------------------------- tool configs
def dyndns2_account(lab: Lab) -> dict[str, Any]:
    # The lab's dyndns2 model refuses agents without a contact e-mail (No-IP's rule) with
    # "badagent": ddclient's and inadyn's agents have none. The bench serves every agent
    # (the "any-agent" knob, as Dyn's own server does) so the peers are measured at all.
    lab.internet.set_fault("dyndns2", "any-agent")
    return lab.internet.accounts["dyndns2"]  # type: ignore[no-any-return]


def ours_config(lab: Lab, **extra: Any) -> None:
    acc = dyndns2_account(lab)
    lab.write_config(
        hosts=[
            {
                "hostname": acc["hostnames"][0],
                "provider": "dyndns2",
                "server": acc["server"],
                "username": acc["username"],
                "password": acc["password"],
                **extra,
            }
        ]
    )


def ddclient_conf(lab: Lab, workdir: Path, *, daemon: int = 0, names: list[str] | None = None) -> Path:
    acc = dyndns2_account(lab)
    conf = workdir / "ddclient.conf"
    conf.write_text(
        "\n".join(
            [
                f"daemon={daemon}",
                "syslog=no",
                "foreground=yes",
                "ssl=yes",
                f"ssl_ca_file={lab.ca_path}",
                f"use=web, web=https://{plan.ECHO1}/",
                f"cache={workdir / 'ddclient.cache'}",
                f"pid={workdir / 'ddclient.pid'}",
                "protocol=dyndns2",
                f"server={plan.DYNDNS2}",
                f"login={acc['username']}",
                f"password='{acc['password']}'",
                ",".join(names or acc["hostnames"][:1]),
                "",
            ]
        )
    )
    conf.chmod(0o600)
    return conf


def ddclient_argv(conf: Path, workdir: Path, *, once: bool = True) -> list[str]:
    argv = ["ddclient", "-foreground", "-file", str(conf), "-cache", str(workdir / "ddclient.cache")]
    if once:
        argv += ["-daemon=0"]
    return argv


def inadyn_conf(lab: Lab, workdir: Path, *, period: int = 60, names: list[str] | None = None) -> Path:
    acc = dyndns2_account(lab)
    names = names or acc["hostnames"][:1]
    hostname = names[0] if len(names) == 1 else "{ " + ", ".join(names) + " }"  # inadyn.conf(5)
    conf = workdir / "inadyn.conf"
    conf.write_text(
        "\n".join(
            [
                f"period = {period}",
                f"ca-trust-file = {lab.ca_path}",
                "custom lab {",
                "    ssl = true",
                f"    username = {acc['username']}",
                f'    password = "{acc["password"]}"',
                f"    checkip-server = {plan.ECHO1}:443",
                "    checkip-path = /",
                "    checkip-ssl = true",
                f"    ddns-server = {plan.DYNDNS2}",
                '    ddns-path = "/nic/update?hostname=%h&myip=%i"',
                f"    hostname = {hostname}",
                "}",
                "",
            ]
        )
    )
    conf.chmod(0o600)
    return conf


def inadyn_argv(conf: Path, workdir: Path, *, once: bool = True) -> list[str]:
    argv = [
        "inadyn",
        "--foreground",
        "-f",
        str(conf),
        "--cache-dir",
        str(workdir / "inadyn-cache"),
        "-P",
        str(workdir / "inadyn.pid"),
        "-l",
        "info",
    ]
    return argv + (["-1"] if once else [])


# --------------------------------------------------------------------------- sections
def import_profile(lab: Lab, argv: list[str], top: int = 8) -> str:
    """The biggest top-level imports of a command (cumulative ms), as `python -X importtime` reports."""
    _, _, _, err, _ = timed_run(lab, [sys.executable, "-X", "importtime", *argv], timeout=60)
    rows: list[tuple[int, str]] = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) == 3 and not parts[2].startswith("  "):  # top level only
            rows.append((int(parts[1]), parts[2].strip()))
    rows.sort(reverse=True)
    return ", ".join(f"{name} {us / 1000:.0f} ms" for us, name in rows[:top])


def update_phases(lab: Lab, hostname: str, runs: int) -> str:
    """In-process phases of one update (bench/update_phases.py), as run and with the lookup in parallel."""
    script = str(ROOT / "bench" / "update_phases.py")
    phases: dict[str, dict[str, list[float]]] = {"seq": {}, "par": {}}
    for _ in range(runs):
        for mode in phases:
            fresh_record(lab, hostname)
            time.sleep(SETTLE_S)
            _, _code, out, err, _ = timed_run(lab, [sys.executable, script, mode], env={"PYTHONPATH": str(ROOT)})
            try:
                data = json.loads(out.split("\n")[0].rsplit(" ", 1)[0])
            except ValueError:
                return f"update phases: could not measure ({err.strip()[-200:]})"
            for key, value in data.items():
                phases[mode].setdefault(key, []).append(value)
    seq = {k: statistics.median(v) for k, v in phases["seq"].items()}
    par = {k: statistics.median(v) for k, v in phases["par"].items()}
    return (
        "phases of one update in-process (bench/update_phases.py, medians): engine imports {imports:.3f} s, HTTP client {client:.3f} s, "
        "echo quorum {echo:.3f} s, authoritative lookup {dns:.3f} s, provider request {update:.3f} s; ".format(**seq)
        + f"run alongside the echoes, as `update` does, the async part takes {par['total_async']:.3f} s "
        f"instead of {seq['total_async']:.3f} s one after the other"
    )


def bench_update(runs: int, opts: dict[str, Any]) -> None:
    section = "update" + (f" ({opts['latency_ms']:g} ms RTT)" if opts.get("latency_ms") else "")
    lab = Lab(Options("home", **opts)).up()
    try:
        work = Path(tempfile.mkdtemp(prefix="bench-update-", dir=lab.workdir))
        hostname = dyndns2_account(lab)["hostnames"][0]
        new = lab.expected_public_ipv4
        ours_config(lab)
        dd_conf = ddclient_conf(lab, work)
        in_conf = inadyn_conf(lab, work)

        def reset_client_state() -> None:
            for p in (work / "ddclient.cache",):
                p.unlink(missing_ok=True)
            shutil.rmtree(work / "inadyn-cache", ignore_errors=True)
            (work / "inadyn-cache").mkdir()

        tools: dict[str, Callable[[], list[str]]] = {
            "ddns-wizard update": lambda: [TOOL, "update", "--json"],
            "ddclient": lambda: ddclient_argv(dd_conf, work),
            "inadyn": lambda: inadyn_argv(in_conf, work),
        }
        times: dict[str, list[float]] = {name: [] for name in tools}
        peaks: dict[str, list[float]] = {name: [] for name in tools}
        requests: dict[str, list[int]] = {name: [] for name in tools}
        for i in range(runs + 1):  # the first round warms caches and is not counted
            for name, argv in tools.items():
                fresh_record(lab, hostname)
                reset_client_state()
                lab.internet.clear_requests_log("dyndns2")
                # Let the lab settle after the reset: the emulator's reply to an update that
                # arrives within ~0.1 s of these control calls sometimes stalls ~0.45 s
                # (seen with strace from inadyn), which would penalise the fastest starters.
                time.sleep(SETTLE_S)
                wall, code, out, err, peak = timed_run(lab, argv(), timeout=120)
                landed = lab.internet.lookup(hostname) == [new]
                sent = [r for r in lab.internet.requests_log("dyndns2") if r["path"].startswith("/nic/update")]
                if not landed:
                    log(
                        f"  {name}: exit {code}, Knot still serves {lab.internet.lookup(hostname)}; "
                        f"stderr: {err[-600:]} stdout: {out[-600:]}"
                    )
                    continue
                if i == 0:
                    continue
                times[name].append(wall)
                if peak is not None:
                    peaks[name].append(peak)
                requests[name].append(len(sent))
                log(f"  {section} run {i}: {name} {wall:.2f} s (exit {code}, {len(sent)} request(s))")
        ours = median(times["ddns-wizard update"])
        dd, ina = median(times["ddclient"]), median(times["inadyn"])

        def verdict(ok: bool | None) -> str:
            return {True: "met", False: "**missed**", None: "not measured"}[ok]

        vs_inadyn = None if None in (ours, ina) else ours <= 2 * ina  # type: ignore[operator]
        vs_ddclient = None if None in (ours, dd) else ours <= 0.5 * dd  # type: ignore[operator]
        ROWS.append(
            Row(
                section,
                "stale record → Knot serves the new address (wall)",
                ours,
                {"ddclient": dd, "inadyn": ina},
                target=f"≤ 2× inadyn: {verdict(vs_inadyn)}; ≤ 0.5× ddclient: {verdict(vs_ddclient)}",
            )
        )
        ROWS.append(
            Row(
                section,
                "provider requests per update (median)",
                median(requests["ddns-wizard update"]),
                {"ddclient": median(requests["ddclient"]), "inadyn": median(requests["inadyn"])},
                unit="",
            )
        )
        NOTES.append(f"{section}: " + update_phases(lab, hostname, runs))
        if section != "update":
            return
        NOTES.append(
            "where `update` spends its start-up (python -X importtime, cumulative): "
            + import_profile(lab, [TOOL, "update", "--dry-run", "--json"])
        )
        ROWS.append(
            Row(
                "memory",
                "peak RSS of one update",
                median(peaks["ddns-wizard update"]),
                {"ddclient": median(peaks["ddclient"]), "inadyn": median(peaks["inadyn"])},
                unit="MiB",
            )
        )
    finally:
        lab.down()


def manual_sequence(lab: Lab, hostname: str) -> list[list[str]]:
    """What a person types for the same facts (router, DNS at both ends, public address, port, ping)."""
    ca = str(lab.ca_path)
    return [
        ["upnpc", "-s"],
        ["dig", "+time=2", "+tries=1", f"@{plan.AUTH}", hostname, "A"],
        ["dig", "+time=2", "+tries=1", f"@{plan.RESOLVER}", hostname, "A"],
        ["curl", "-sS", "--max-time", "5", "--cacert", ca, f"https://{plan.ECHO1}/"],
        ["curl", "-sS", "--max-time", "5", "--cacert", ca, f"https://{plan.PROBE}/port/8080"],
        ["ping", "-c", "1", "-W", "2", hostname],
    ]


def bench_diagnose(runs: int, opts: dict[str, Any]) -> None:
    lab = Lab(Options("home", **opts)).up()
    try:
        hostname = dyndns2_account(lab)["hostnames"][0]
        lab.internet.set_record(hostname, "A", [lab.expected_public_ipv4])  # published and correct
        ours_config(lab)
        ours_t: list[float] = []
        manual_t: list[float] = []
        rss: list[float] = []
        slowest: list[tuple[str, float]] = []
        verdicts: set[str] = set()
        for i in range(runs + 1):
            wall, code, out, err, peak = timed_run(lab, [TOOL, "diagnose", "--json"], timeout=60)
            if code != 0:
                raise SystemExit(f"diagnose failed ({code}): {err[-800:]}")
            report = json.loads(out)
            started = time.perf_counter()
            for argv in manual_sequence(lab, hostname):
                lab.run(argv, timeout=30)
            manual = time.perf_counter() - started
            if i == 0:
                continue
            verdicts.add(report["nat"]["verdict"])
            timed = [(p["name"], p["ms"] / 1000) for p in report["probes"] if p["status"] != "skipped"]
            slowest.append(max(timed, key=lambda x: x[1]))
            ours_t.append(wall)
            manual_t.append(manual)
            if peak is not None:
                rss.append(peak)
            log(
                f"  diagnose run {i}: ours {wall:.2f} s ({report['nat']['verdict']}, slowest probe "
                f"{slowest[-1][0]} {slowest[-1][1]:.2f} s), manual sequence {manual:.2f} s, peak RSS {peak:.1f} MiB"
            )
        ours, manual = median(ours_t), median(manual_t)
        ROWS.append(
            Row(
                "diagnose",
                "full diagnosis, process start included (wall)",
                ours,
                {"manual sequence": manual},
                target="≥ 3× faster than the manual sequence",
                met=None if None in (ours, manual) else ours * 3 <= manual,  # type: ignore[operator]
                note=f"verdict {', '.join(sorted(verdicts))}; slowest probe (median) "
                f"{statistics.median(s for _, s in slowest):.2f} s",
            )
        )
        ROWS.append(Row("memory", "peak RSS of `diagnose --json`", median(rss), unit="MiB"))
    finally:
        lab.down()


# --------------------------------------------------------------------------- a simulated day
@dataclass
class DayResult:
    tool: str
    provider_requests: int = 0
    nochg: int = 0
    other_replies: list[str] = field(default_factory=list)
    good: int = 0
    checkip_requests: int = 0
    publish_delays: list[float] = field(default_factory=list)
    missed: int = 0
    rss_mib: float | None = None
    requests_before_restart: int = 0
    error: str = ""


DAY_ADDRESSES = [
    "23.128.64.21",
    "23.128.64.22",
    "23.128.64.23",
    "23.128.64.24",
    "23.128.64.25",
    "23.128.64.26",
    "23.128.64.27",
    "23.128.64.28",
]


def run_day(tool: str, interval: int, changes: int, opts: dict[str, Any], result: DayResult) -> None:
    lab = Lab(Options("home", **opts)).up()
    try:
        work = Path(tempfile.mkdtemp(prefix="bench-day-", dir=lab.workdir))
        hostname = dyndns2_account(lab)["hostnames"][0]
        lab.internet.set_record(hostname, "A", [OLD_ADDRESS])  # the day starts with a stale record
        if tool == "ddns-wizard watch":
            # min_interval 30: ddclient's default min-interval, so both may re-send equally soon
            ours_config(lab, min_interval=30)
            argv = [TOOL, "watch", "--interval", str(interval), "--history", str(work / "history.jsonl")]
        elif tool == "ddclient":
            conf = ddclient_conf(lab, work, daemon=interval)
            argv = [
                "ddclient",
                "-foreground",
                "-file",
                str(conf),
                "-cache",
                str(work / "ddclient.cache"),
                f"-daemon={interval}",
            ]
        else:
            conf = inadyn_conf(lab, work, period=interval)
            (work / "inadyn-cache").mkdir()
            argv = inadyn_argv(conf, work, once=False)
        env = dict(lab.tool_env)
        env.update(PY_ENV)

        def start(rss_file: Path) -> subprocess.Popen[str]:
            return subprocess.Popen(
                lab._netns_argv("host", measured(argv, rss_file)),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(work / "daemon.log", "a"),
                text=True,
            )

        def stop(proc: subprocess.Popen[str]) -> None:
            for child in _children(proc.pid):  # GNU time's child: the daemon itself
                os.kill(child, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                for child in _children(proc.pid):
                    os.kill(child, signal.SIGKILL)
                proc.wait(timeout=5)

        proc = start(work / "rss")
        schedule = [lab.expected_public_ipv4] + DAY_ADDRESSES[:changes]
        t0 = time.monotonic()
        try:
            for k, address in enumerate(schedule):
                # each address holds for two intervals, changed mid-interval; the first is the lab's own
                change_at = t0 + k * 2 * interval + interval / 2
                if k:
                    time.sleep(max(0.0, change_at - time.monotonic()))
                    lab.set_isp_address(address)
                changed = time.monotonic()
                seen = None
                while time.monotonic() < t0 + (k + 1) * 2 * interval + interval / 2:
                    if seen is None and lab.internet.lookup(hostname) == [address]:
                        seen = time.monotonic() - changed
                    time.sleep(0.5)
                if seen is None:
                    result.missed += 1
                else:
                    result.publish_delays.append(seen)
        finally:
            stop(proc)
        result.rss_mib = read_rss_mib(work / "rss")
        result.requests_before_restart = sum(
            1 for r in lab.internet.requests_log("dyndns2") if r["path"].startswith("/nic/update")
        )
        # End of the day: the daemon restarts with its state lost (a container without a
        # volume, a cache on tmpfs, a reinstall); the address has not changed.
        for state in (work / "history.jsonl", work / "ddclient.cache"):
            state.unlink(missing_ok=True)
        shutil.rmtree(work / "inadyn-cache", ignore_errors=True)
        if tool == "inadyn":
            (work / "inadyn-cache").mkdir()
        proc = start(work / "rss-restart")
        try:
            time.sleep(interval * 0.75)
        finally:
            stop(proc)
        for r in lab.internet.requests_log("dyndns2"):
            if not r["path"].startswith("/nic/update"):
                continue
            result.provider_requests += 1
            body = (r.get("body") or "").strip()
            if body.startswith("nochg"):
                result.nochg += 1
            elif body.startswith("good"):
                result.good += 1
            else:
                result.other_replies.append(body[:40])
        result.checkip_requests = len(lab.internet.requests_log("echo1")) + len(lab.internet.requests_log("echo2"))
    except Exception as exc:
        result.error = repr(exc)
    finally:
        lab.down()


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def bench_day(interval: int, changes: int, opts: dict[str, Any]) -> None:
    tools = ["ddns-wizard watch", "ddclient", "inadyn"]
    results = {t: DayResult(t) for t in tools}
    threads = [threading.Thread(target=run_day, args=(t, interval, changes, opts, results[t])) for t in tools]
    log(
        f"  {len(tools)} labs side by side, interval {interval} s, {changes} address changes, "
        f"~{(changes + 1) * 2 * interval + interval // 2 + interval * 3 // 4} s"
    )
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for r in results.values():
        log(f"  day: {r}")
    ours, dd, ina = results["ddns-wizard watch"], results["ddclient"], results["inadyn"]
    note = f"{changes} changes (+ the stale start), check interval {interval} s"
    ROWS.append(
        Row(
            "day",
            "provider update requests during the day",
            ours.requests_before_restart,
            {"ddclient": dd.requests_before_restart, "inadyn": ina.requests_before_restart},
            unit="",
            note=f"{note}; ideal {changes + 1}",
        )
    )
    ROWS.append(
        Row(
            "day",
            "provider update requests in total, after a restart that lost the daemon's state",
            ours.provider_requests,
            {"ddclient": dd.provider_requests, "inadyn": ina.provider_requests},
            unit="",
            note=f"ideal {changes + 1}",
        )
    )
    ROWS.append(
        Row(
            "day",
            "`nochg` replies (whole day, restart included)",
            ours.nochg,
            {"ddclient": dd.nochg, "inadyn": ina.nochg},
            unit="",
            target="0 from us",
            met=ours.nochg == 0,
        )
    )
    ROWS.append(
        Row(
            "day",
            f"address changes published (of {changes + 1})",
            len(ours.publish_delays),
            {"ddclient": len(dd.publish_delays), "inadyn": len(ina.publish_delays)},
            unit="",
        )
    )
    ROWS.append(
        Row(
            "day",
            "change → Knot serves it (median)",
            median(ours.publish_delays),
            {"ddclient": median(dd.publish_delays), "inadyn": median(ina.publish_delays)},
            note="bounded by the check interval",
        )
    )
    ROWS.append(
        Row(
            "day",
            "public-address checks sent to the HTTP echoes",
            ours.checkip_requests,
            {"ddclient": dd.checkip_requests, "inadyn": ina.checkip_requests},
            unit="",
            note="ours also asks the DNS echo and compares with Knot each round",
        )
    )
    ROWS.append(
        Row(
            "memory",
            f"peak RSS of `watch` after {(changes + 1) * 2} cycles",
            ours.rss_mib,
            {"ddclient": dd.rss_mib, "inadyn": ina.rss_mib},
            unit="MiB",
        )
    )
    for r in results.values():
        if r.error or r.other_replies:
            NOTES.append(f"day, {r.tool}: {r.error} {r.other_replies}".strip())


# --------------------------------------------------------------------------- scale (issue 18)
SCALE_NS = (1, 10, 50, 200)
SCALE_CHECK_NS = (1, 10, 50)
BENCH_VENV = Path("/tmp/ddns-wizard-bench-venv")


def installed_tool() -> str:
    """ddns-wizard installed as users get it (a regular, non-editable pip install of this tree
    into its own venv). The checkout's editable install puts setuptools' import finder in
    front of every start (~50 ms of CPU at each `python` start on this machine)."""
    stamp = BENCH_VENV / "installed-from"
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "checks", "wizard", "pyproject.toml"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    want = f"{rev}{'+dirty' if dirty else ''}"
    if not (stamp.exists() and stamp.read_text() == want and not dirty):
        log(f"installing this tree into {BENCH_VENV} (regular install)")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(BENCH_VENV)], check=True)
        subprocess.run(
            [str(BENCH_VENV / "bin" / "pip"), "install", "-q", str(ROOT)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stamp.write_text(want)
    return str(BENCH_VENV / "bin" / "ddns-wizard")


def growth(ns: list[int], times: list[float | None]) -> str:
    """Exponent k of t ~ N^k between successive N (1: linear, 0: flat)."""
    import math
    from itertools import pairwise

    parts = []
    for (n1, t1), (n2, t2) in pairwise(zip(ns, times, strict=True)):  # one time per N
        if t1 and t2:
            parts.append(f"{n1}→{n2}: {math.log(t2 / t1) / math.log(n2 / n1):.2f}")
    return ", ".join(parts) or "—"


def verdict(ok: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[ok]


def busy_span(entries: list[dict[str, Any]]) -> float:
    """Seconds during which the provider was handling at least one update request (the
    union of its requests' [arrived, answered] intervals): its own share of a client's wall time."""
    spans = sorted((e["time"], e["done"]) for e in entries if e.get("done"))
    total, end = 0.0, float("-inf")
    for a, b in spans:
        if a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def reset_records(lab: Lab, names: list[str]) -> None:
    lab.internet.set_records(names, "A", [OLD_ADDRESS])
    lab.internet.stop_service("resolver")  # unbound flushed: no cache holds the new answers
    lab.internet.start_service("resolver")


def bench_scale_update(runs: int, opts: dict[str, Any], tool: str) -> None:
    """update with N hosts of one dyndns2 account, ours vs ddclient vs inadyn in one lab."""
    latency = opts.get("latency_ms") or 0
    section = f"scale: update ({latency:g} ms RTT)"
    lab = Lab(Options("home", **opts)).up()
    try:
        acc = dyndns2_account(lab)
        new = lab.expected_public_ipv4
        work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=lab.workdir))
        med: dict[str, dict[int, dict[str, float | None]]] = {t: {} for t in ("ours", "ddclient", "inadyn")}
        for n in SCALE_NS:
            names = acc["bulk_hostnames"][:n]
            lab.write_config(
                hosts=[
                    {
                        "hostname": h,
                        "provider": "dyndns2",
                        "server": acc["server"],
                        "username": acc["username"],
                        "password": acc["password"],
                    }
                    for h in names
                ]
            )
            dd, ina = ddclient_conf(lab, work, names=names), inadyn_conf(lab, work, names=names)
            tools: dict[str, list[str]] = {
                "ours": [tool, "update", "--json"],
                "ddclient": ddclient_argv(dd, work),
                "inadyn": inadyn_argv(ina, work),
            }
            got: dict[str, dict[str, list[float]]] = {
                t: {"wall": [], "sent": [], "landed": [], "provider": []} for t in tools
            }
            for i in range(runs + 1):
                for name, argv in tools.items():
                    reset_records(lab, names)
                    (work / "ddclient.cache").unlink(missing_ok=True)
                    shutil.rmtree(work / "inadyn-cache", ignore_errors=True)
                    (work / "inadyn-cache").mkdir()
                    (work / "history.jsonl").unlink(missing_ok=True)
                    lab.internet.clear_requests_log("dyndns2")
                    time.sleep(SETTLE_S)
                    wall, code, _out, err, _ = timed_run(
                        lab, argv, timeout=600, env={"XDG_STATE_HOME": str(work / "state")}
                    )
                    served = lab.internet.lookups(names)
                    landed = sum(1 for v in served.values() if v == [new])
                    updates = [r for r in lab.internet.requests_log("dyndns2") if r["path"].startswith("/nic/update")]
                    sent = len(updates)
                    provider = busy_span(updates)
                    if "Traceback" in err:
                        NOTES.append(f"{section}, N={n}, {name}: a traceback on stderr: {err[-300:]!r}")
                    log(
                        f"  {section} N={n} run {i}: {name} {wall:.2f} s, exit {code}, {sent} request(s), "
                        f"{landed}/{n} landed, provider busy {provider:.2f} s"
                    )
                    if i == 0:
                        continue
                    got[name]["wall"].append(wall)
                    got[name]["sent"].append(sent)
                    got[name]["landed"].append(landed)
                    got[name]["provider"].append(provider)
            for name in tools:
                med[name][n] = {k: median(v) for k, v in got[name].items()}
            ROWS.append(
                Row(
                    section,
                    f"N={n}: exec → exit (wall)",
                    med["ours"][n]["wall"],
                    {"ddclient": med["ddclient"][n]["wall"], "inadyn": med["inadyn"][n]["wall"]},
                )
            )
            ROWS.append(
                Row(
                    section,
                    f"N={n}: of which the provider was busy answering (lab emulator writing Knot)",
                    med["ours"][n]["provider"],
                    {"ddclient": med["ddclient"][n]["provider"], "inadyn": med["inadyn"][n]["provider"]},
                )
            )
            ROWS.append(
                Row(
                    section,
                    f"N={n}: update requests sent",
                    med["ours"][n]["sent"],
                    {"ddclient": med["ddclient"][n]["sent"], "inadyn": med["inadyn"][n]["sent"]},
                    unit="",
                )
            )
            ROWS.append(
                Row(
                    section,
                    f"N={n}: records Knot serves afterwards (of {n})",
                    med["ours"][n]["landed"],
                    {"ddclient": med["ddclient"][n]["landed"], "inadyn": med["inadyn"][n]["landed"]},
                    unit="",
                )
            )
        ns = list(SCALE_NS)
        for name in med:
            NOTES.append(
                f"{section}, growth exponent of the wall time ({name}): "
                + growth(ns, [med[name][n]["wall"] for n in ns])
            )
        one, top = med["ours"][ns[0]]["wall"], med["ours"][ns[-1]]["wall"]
        all_landed = med["ours"][ns[-1]]["landed"] == ns[-1]
        ok = None if not (one and top) else (top <= 3 * one and all_landed)
        ROWS.append(
            Row(
                section,
                f"N={ns[-1]} / N=1 wall time",
                (top / one) if one and top else None,
                unit="×",
                target=f"≤ 3× and every record landed: {verdict(ok)}",
            )
        )
        own1 = one - (med["ours"][1]["provider"] or 0) if one else None
        own_top = top - (med["ours"][ns[-1]]["provider"] or 0) if top else None
        ROWS.append(
            Row(
                section,
                f"N={ns[-1]} / N=1 wall time without the provider's busy time",
                (own_top / own1) if own1 and own_top else None,
                unit="×",
                note="the client's own share: start, address, DNS, sending, output",
            )
        )
        ina1 = med["inadyn"][1]["wall"]
        ROWS.append(
            Row(
                section,
                "N=1: ours / inadyn (authoritative DNS checked)",
                (one / ina1) if one and ina1 else None,
                unit="×",
                target=f"≤ 1.5× inadyn: {verdict(None if not (one and ina1) else one <= 1.5 * ina1)}",
            )
        )
    finally:
        lab.down()


def bench_scale_checks(runs: int, opts: dict[str, Any], tool: str) -> None:
    """verify and ports check with N = 1, 10, 50 (ours alone: the peers have neither)."""
    lab = Lab(Options("home", **opts)).up()
    try:
        acc = dyndns2_account(lab)
        names = acc["bulk_hostnames"]
        lab.internet.set_records(names[: max(SCALE_CHECK_NS)], "A", [lab.expected_public_ipv4])
        times: dict[str, list[float | None]] = {"verify": [], "ports": []}
        for n in SCALE_CHECK_NS:
            lab.write_config(
                hosts=[
                    {
                        "hostname": h,
                        "provider": "dyndns2",
                        "server": acc["server"],
                        "username": acc["username"],
                        "password": acc["password"],
                    }
                    for h in names[:n]
                ],
                endpoints_override=lab.internet.own_prober(),
            )
            ports = [str(20000 + i) for i in range(n)]
            for what, argv in (
                ("verify", [tool, "verify", "--json", "--no-ping"]),
                ("ports", [tool, "ports", "check", *ports, "--json"]),
            ):
                walls = []
                for i in range(runs + 1):
                    if what == "ports":
                        # Each run as a user's single run sees it: the probe server's bucket
                        # (burst 30, 10/s) full again, not emptied by the run before.
                        time.sleep(4)
                    wall, code, _out, err, _ = timed_run(lab, argv, timeout=300)
                    log(f"  scale {what} N={n} run {i}: {wall:.2f} s (exit {code})")
                    if "Traceback" in err:
                        NOTES.append(f"scale: {what} N={n}: a traceback on stderr: {err[-300:]!r}")
                    if i:
                        walls.append(wall)
                times[what].append(median(walls))
                ROWS.append(
                    Row(
                        "scale: verify" if what == "verify" else "scale: ports check",
                        f"N={n} {'hostnames' if what == 'verify' else 'ports'} (wall)",
                        median(walls),
                        target=("≤ 2 s: " + verdict(median(walls) <= 2.0)) if what == "ports" and n == 50 else "",
                    )
                )
        ns = list(SCALE_CHECK_NS)
        NOTES.append(
            "scale: growth exponent of the wall time: verify "
            + growth(ns, times["verify"])
            + "; ports check "
            + growth(ns, times["ports"])
        )
    finally:
        lab.down()


def bench_scale_diagnose(runs: int, tool: str) -> None:
    for latency, loss in ((800.0, 0.0), (300.0, 30.0)):
        lab = Lab(Options("home", latency_ms=latency, loss_pct=loss)).up()
        try:
            hostname = dyndns2_account(lab)["hostnames"][0]
            lab.internet.set_record(hostname, "A", [lab.expected_public_ipv4])
            ours_config(lab)
            walls, verdicts = [], set()
            for i in range(runs + 1):
                wall, code, out, _err, _ = timed_run(lab, [tool, "diagnose", "--json"], timeout=120)
                try:
                    verdicts.add(json.loads(out)["nat"]["verdict"])
                except (ValueError, KeyError):
                    verdicts.add(f"exit {code}")
                log(f"  scale diagnose {latency:g} ms/{loss:g} %: run {i}: {wall:.2f} s")
                if i:
                    walls.append(wall)
            ROWS.append(
                Row(
                    "scale: diagnose",
                    f"{latency:g} ms RTT, {loss:g} % loss (wall)",
                    median(walls),
                    note="verdict " + ", ".join(sorted(verdicts)),
                )
            )
        finally:
            lab.down()


def bench_scale_watch(rounds: int, hosts: int) -> None:
    lab = Lab(Options("home")).up()
    try:
        acc = dyndns2_account(lab)
        names = acc["bulk_hostnames"][:hosts]
        lab.internet.set_records(names, "A", [lab.expected_public_ipv4])  # published: rounds send nothing
        lab.write_config(
            hosts=[
                {
                    "hostname": h,
                    "provider": "dyndns2",
                    "server": acc["server"],
                    "username": acc["username"],
                    "password": acc["password"],
                }
                for h in names
            ]
        )
        history = Path(tempfile.mkdtemp(prefix="bench-watch-", dir=lab.workdir)) / "history.jsonl"
        py = str(BENCH_VENV / "bin" / "python") if (BENCH_VENV / "bin" / "python").exists() else sys.executable
        lab.internet.clear_requests_log("dyndns2")
        _wall, code, out, err, _peak = timed_run(
            lab, [py, str(ROOT / "bench" / "watch_rounds.py"), str(rounds), str(history)], timeout=3600
        )
        if code != 0:
            NOTES.append(f"scale: watch rounds failed (exit {code}): {err[-400:]}")
            return
        data = json.loads(out.strip().splitlines()[-1])
        sent = sum(1 for r in lab.internet.requests_log("dyndns2") if r["path"].startswith("/nic/update"))
        first, last = data["samples"][0], data["samples"][-1]
        label = f"{rounds} rounds, {hosts} hosts"
        ROWS.append(
            Row(
                "scale: watch",
                f"{label}: RSS after round 1 → after round {last['round']}",
                last["rss_kib"] / 1024,
                unit="MiB",
                note=f"after round 1: {first['rss_kib'] / 1024:.1f} MiB",
            )
        )
        ROWS.append(
            Row(
                "scale: watch",
                f"{label}: open file descriptors after round 1 → last",
                last["fds"],
                unit="",
                note=f"after round 1: {first['fds']}",
            )
        )
        ROWS.append(
            Row(
                "scale: watch",
                f"{label}: CPU per round (mean)",
                data["cpu_ms_per_round"] / 1000,
                note=f"wall {data['wall_s']} s for all rounds; provider requests {sent}",
            )
        )
        NOTES.append(
            "scale: watch samples (round: RSS KiB, fds, CPU ms/round since the previous sample): "
            + "; ".join(f"{s['round']}: {s['rss_kib']}, {s['fds']}, {s['cpu_ms_per_round']}" for s in data["samples"])
        )
    finally:
        lab.down()


def bench_scale(runs: int, opts: dict[str, Any], latency_also: float, watch_rounds: int) -> None:
    tool = installed_tool()
    bench_scale_update(runs, opts, tool)
    if latency_also:
        bench_scale_update(runs, dict(opts, latency_ms=latency_also), tool)
    bench_scale_checks(runs, opts, tool)
    bench_scale_diagnose(runs, tool)
    if watch_rounds:
        bench_scale_watch(watch_rounds, 10)
    NOTES.append(
        "scale: the probe server's requests/s, p50/p99 latency and memory for /ip, /port/N and "
        "/probe/tcp/N under a bounded load are measured by bench/probe_server.py (its section below)"
    )


# --------------------------------------------------------------------------- cold start
def hyperfine(commands: dict[str, str], runs: int) -> dict[str, float]:
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    env = dict(os.environ)
    env.update(PY_ENV)
    argv = ["hyperfine", "-N", "--warmup", "5", "--runs", str(max(runs * 6, 30)), "--export-json", str(out)]
    for name, cmd in commands.items():
        argv += ["-n", name, cmd]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    data = json.loads(out.read_text())
    out.unlink()
    return {r["command"]: r["median"] for r in data["results"]}


def tui_first_paint(lab: Lab, runs: int) -> list[float]:
    """Time from launching the wizard in an 80x24 tmux pane until the welcome question shows."""
    times = []
    sock = f"ddnsw-bench-{os.getpid()}"
    env = dict(lab.tool_env)
    env.update(PY_ENV)
    env["TERM"] = "xterm-256color"
    env_args = " ".join(
        f"{k}={shlex.quote(v)}"
        for k, v in env.items()
        if k
        in (
            "DDNS_WIZARD_CONFIG",
            "SSL_CERT_FILE",
            "HOME",
            "XDG_CONFIG_HOME",
            "XDG_CACHE_HOME",
            "XDG_STATE_HOME",
            "PYTHONDONTWRITEBYTECODE",
            "PYTHONPYCACHEPREFIX",
            "TERM",
            "PATH",
        )
    )
    for i in range(runs + 1):
        started = time.perf_counter()
        lab.run(["tmux", "-L", sock, "kill-server"], env=env)  # nothing left from an earlier run
        started_tmux = lab.run(
            ["tmux", "-L", sock, "new-session", "-d", "-x", "80", "-y", "24", "-s", "w", f"env {env_args} {TOOL}"],
            env=env,
        )
        if started_tmux.returncode != 0:
            raise SystemExit(f"tmux: {started_tmux.stderr.strip()}")
        painted = None
        while time.perf_counter() - started < 30:
            pane = lab.run(["tmux", "-L", sock, "capture-pane", "-p", "-t", "w"], env=env).stdout
            if "What do you want to do?" in pane:
                painted = time.perf_counter() - started
                break
            time.sleep(0.01)
        lab.run(["tmux", "-L", sock, "kill-server"], env=env)
        if painted is None:
            NOTES.append("TUI: the welcome screen did not show within 30 s")
            break
        if i:
            times.append(painted)
    return times


def bench_cold(runs: int, opts: dict[str, Any]) -> None:
    py = sys.executable
    res = hyperfine(
        {
            "version": f"{TOOL} --version",
            "help": f"{TOOL} diagnose --help",
            "python": f"{py} -c pass",
            "ddclient": "ddclient -help",
            "inadyn": "inadyn --version",
        },
        runs,
    )
    ROWS.append(
        Row(
            "cold",
            "`ddns-wizard --version`",
            res["version"],
            {"bare `python -c pass` (same venv)": res["python"], "inadyn --version": res["inadyn"]},
        )
    )
    ROWS.append(Row("cold", "`ddns-wizard diagnose --help`", res["help"], {"ddclient -help": res["ddclient"]}))
    lab = Lab(Options("home", **opts)).up()
    try:
        paints = tui_first_paint(lab, runs)
    finally:
        lab.down()
    ROWS.append(Row("cold", "TUI: launch → welcome screen painted (tmux 80×24)", median(paints)))


# --------------------------------------------------------------------------- report
def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    versions = {}
    for name, argv in (
        ("ddclient", ["dpkg-query", "-W", "-f", "${Version}", "ddclient"]),
        ("inadyn", ["inadyn", "--version"]),
        ("hyperfine", ["hyperfine", "--version"]),
    ):
        try:
            versions[name] = subprocess.run(argv, capture_output=True, text=True).stdout.strip()
        except OSError:
            versions[name] = "missing"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load": f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}",
        **versions,
    }


def ratio_text(row: Row) -> str:
    parts = []
    for name, value in row.theirs.items():
        if row.ours is not None and value:
            parts.append(f"{row.ours / value:.2f}× {name}")
    return ", ".join(parts) or "—"


def table() -> str:
    lines = ["| section | measure | ddns-wizard | others | ours / theirs | target |", "|---|---|---|---|---|---|"]
    for r in ROWS:
        others = "; ".join(f"{k}: {fmt(v, r.unit)}" for k, v in r.theirs.items()) or "—"
        target = r.target + ({True: " — met", False: " — **missed**", None: ""}[r.met] if r.target else "")
        measure = r.metric + (f" ({r.note})" if r.note else "")
        lines.append(f"| {r.section} | {measure} | {fmt(r.ours, r.unit)} | {others} | {ratio_text(r)} | {target} |")
    return "\n".join(lines)


def write_results(command: str, runs: int, opts: dict[str, Any], started: float) -> Path:
    m = machine()
    path = ROOT / "bench" / "RESULTS.md"
    body = [
        "# Benchmark results",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} in {time.time() - started:.0f} s "
        f"with `{command}` (medians of {runs} runs after one warm-up; the simulated day runs once).",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Linux {m['kernel']}, Python {m['python']}, "
        f"load average at the end {m['load']} (the machine is shared: absolute times are noisy, "
        "ratios less so). ddclient " + m["ddclient"] + ", inadyn " + m["inadyn"] + ", " + m["hyperfine"] + ".",
        "",
        "Lab: topology `home` (host behind the router's NAT + miniupnpd), "
        + (
            f"{opts['latency_ms']:g} ms added round trip, {opts['loss_pct']:g} % loss on the ISP link"
            if opts["latency_ms"] or opts["loss_pct"]
            else "no added latency or loss"
        )
        + "; every tool talks only to lab services (HTTPS echo, dyndns2 emulator writing into Knot).",
        "",
        table(),
        "",
    ]
    if NOTES:
        body += ["Notes:", ""] + [f"- {n}" for n in NOTES] + [""]
    body += [
        "How each measure is taken (bench/run.py):",
        "",
        "- update: each run starts from a stale A record (reset in Knot over RFC 2136 with the lab's emulator "
        "key, unbound restarted so no cache holds the new answer, client caches removed); the time is the "
        "client's wall time from exec to exit, and the run counts only if Knot then serves the new address "
        "(the emulator writes Knot before it replies). ddclient: `ddclient -foreground -file CONF -cache "
        "CACHE -daemon=0` with `use=web, web=https://11.1.0.10/`, `ssl=yes`, `ssl_ca_file`, "
        "`protocol=dyndns2`, `server=11.1.0.80`. inadyn: `inadyn --foreground -1 -f CONF --cache-dir DIR` "
        "with a `custom` section (`ddns-server 11.1.0.80`, `ddns-path /nic/update?hostname=%h&myip=%i`, "
        "`checkip-server 11.1.0.10:443`, `checkip-ssl true`) and `ca-trust-file`. ddns-wizard: "
        "`ddns-wizard update --json` (echo quorum, authoritative DNS check, then the update). The notes "
        "break one update into phases in-process (bench/update_phases.py, the engine's own functions) and "
        "compare running the authoritative lookup after the echo quorum with running it alongside (what `update` does).",
        "- diagnose: `ddns-wizard diagnose --json` with the dyndns2 host configured vs `upnpc -s; dig @auth; "
        "dig @resolver; curl echo; curl port checker; ping -c1 HOST`, run one after the other.",
        "- day: three identical labs at once, one daemon each, the same check interval (ddclient's minimum, "
        "60 s), the record stale at the start, the ISP address changed mid-interval every two intervals; at "
        "the end each daemon is restarted once with its state lost (ddclient's cache file, inadyn's cache "
        "directory, our history file: a container without a volume, a cache on tmpfs) while the address stays "
        "the same. The emulator's request log gives the requests and `nochg` replies; Knot is polled every "
        "0.5 s for the publish delay.",
        "- cold: hyperfine (`-N`, 5 warm-ups, at least 30 runs); the TUI in a detached 80×24 tmux session in the lab's host "
        "namespace, polled with `capture-pane` until the welcome question shows.",
        "- memory: peak RSS of the process itself as GNU time reports it (`/usr/bin/time -f %M`, which forks "
        "from its own small image, so nothing inherited from the bench process is counted).",
        "- Python bytecode is cached as an installed package would have it (PYTHONPYCACHEPREFIX).",
        "",
    ]
    path.write_text("\n".join(body) + _kept_sections(path))
    return path


def _kept_sections(path: Path) -> str:
    """Sections other benches write into RESULTS.md between their own markers
    (bench/probe_server.py: <!-- probe-server:start --> ... :end -->); kept as they are."""
    import re

    try:
        old = path.read_text()
    except OSError:
        return ""
    sections = [m.group(0) for m in re.finditer(r"<!-- ([a-z-]+):start -->.*?<!-- \1:end -->\n?", old, re.S)]
    return ("\n" + "\n".join(sections)) if sections else ""


def install_bench_packages() -> None:
    missing = [
        p
        for p in (*BENCH_PACKAGES, "libio-socket-ssl-perl")
        if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0
    ]
    if missing:
        log(f"installing {' '.join(missing)}")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )


SECTIONS = ("update", "diagnose", "day", "cold", "scale")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default="", help=f"comma-separated sections: {','.join(SECTIONS)} (default: all)")
    ap.add_argument("--latency", type=float, default=0.0, metavar="MS", help="round trip added on the ISP link")
    ap.add_argument("--loss", type=float, default=0.0, metavar="PCT", help="loss on the ISP link")
    ap.add_argument(
        "--update-also-latency",
        type=float,
        default=40.0,
        metavar="MS",
        help="repeat the update comparison with this round trip added (0: do not)",
    )
    ap.add_argument("--day-changes", type=int, default=3, help="address changes in the simulated day")
    ap.add_argument("--day-interval", type=int, default=60, help="check interval of every daemon (ddclient: >= 60)")
    ap.add_argument("--watch-rounds", type=int, default=1000, help="scale: rounds of `watch` (0: skip)")
    ap.add_argument("--install", action="store_true", help="apt-get install the tools compared against")
    ap.add_argument("--no-write", action="store_true", help="do not rewrite bench/RESULTS.md")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("the benchmark runs in the network lab: run it as root", file=sys.stderr)
        return 2
    if args.install:
        install_bench_packages()
    missing = [t for t in ("ddclient", "inadyn", "hyperfine", "tmux") if shutil.which(t) is None]
    if missing:
        print(f"missing {', '.join(missing)}: run with --install (Debian)", file=sys.stderr)
        return 2
    started = time.time()
    opts = {"latency_ms": args.latency, "loss_pct": args.loss}
    sections = [s for s in (args.only.split(",") if args.only else SECTIONS) if s]
    for s in sections:
        if s not in SECTIONS:
            print(f"unknown section {s!r}; known: {', '.join(SECTIONS)}", file=sys.stderr)
            return 2
    for s in sections:
        log(f"== {s}")
        if s == "update":
            bench_update(args.runs, opts)
            if args.update_also_latency and not args.latency:
                bench_update(args.runs, dict(opts, latency_ms=args.update_also_latency))
        elif s == "diagnose":
            bench_diagnose(args.runs, opts)
        elif s == "day":
            bench_day(args.day_interval, args.day_changes, opts)
        elif s == "cold":
            bench_cold(args.runs, opts)
        elif s == "scale":
            bench_scale(args.runs, opts, args.update_also_latency, args.watch_rounds)
    print(table())
    for note in NOTES:
        print(f"- {note}")
    if not args.no_write:
        command = "sudo .venv/bin/python bench/run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        log(f"wrote {write_results(command.strip(), args.runs, opts, started)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
