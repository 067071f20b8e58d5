"""The probe server under load and under the attacks of issue 13 (root; not a test).

    sudo .venv/bin/python bench/probe_server.py [--before REF] [--quick] [--no-write]

Runs `ddns-wizard probe-server` as its own process in a private network namespace
that holds nothing but `lo` (127.0.0.0/8, and 2001:db8:13::/64 + 2001:db8:14::1 for
the IPv6 attack), with the load generator and the attackers in the same namespace:
no packet can leave it. `--before REF` also measures the server of another commit
(its tree is taken with `git archive REF` into a temporary folder and run from there)
so the table shows before and after side by side.

Measured, for each version:

- load: a fresh server per endpoint (`/ip`, `/port/N`, `/probe/tcp/N`) and run, 32
  connections at once (16 client addresses x 2) each sending its requests one after the
  other on one kept-alive connection; requests/s, p50/p99 latency, the server's peak RSS
  (VmHWM) and its RSS when idle; three runs, the one with the median requests/s shown. Rate limits are lifted for the load (`--rate`,
  `--burst`); every other limit is the default.
- keep-alive: one connection, 100 sequential `/ip` requests: the first vs the later ones.
- /port/N against a listener that never writes (the server used to wait for a banner).
- the attacks, each against a fresh server with default settings while a legitimate
  client (127.0.0.1 or another /64) polls every 0.5 s: what it got, and how long the
  server let the attack's connections live.

The load generator and attacks are tests/probe_attacks.py (shared with the suite). The
client shares the machine's CPUs with the server: requests/s are a lower bound.
Writes the section between the `probe-server` markers of bench/RESULTS.md (bench/run.py
keeps it) and the raw numbers to bench/probe_server.json, unless --no-write.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import probe_attacks as attacks  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
V4 = "127.0.0.1"
V6_SERVER = "2001:db8:13::1"
V6_ATTACKERS = [f"2001:db8:13::{i:x}" for i in range(0x10, 0x10 + 100)]
V6_LEGIT = "2001:db8:14::1"
LOAD_SOURCES = [f"127.0.0.{i}" for i in range(10, 26)]
START_MARK = "<!-- probe-server:start -->"
END_MARK = "<!-- probe-server:end -->"


def log(message: str) -> None:
    print(f"[bench/probe_server] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the server process


class Server:
    """`python -m wizard probe-server` from a source tree, on 127.0.0.1 and 2001:db8:13::1."""

    def __init__(self, tree: Path, port: int, extra: list[str]) -> None:
        self.port = port
        self.argv = [
            PYTHON,
            "-m",
            "wizard",
            "probe-server",
            "--listen",
            f"{V4}:{port}",
            "--listen",
            f"[{V6_SERVER}]:{port}",
            *extra,
        ]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(tree)}
        self.proc = subprocess.Popen(self.argv, cwd=tree, env=env, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        if "serving" not in line:
            self.proc.kill()
            raise RuntimeError(f"probe server did not start: {line}{self.proc.stderr.read()}")

    def rss_kib(self, field: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_ports = iter(range(18000, 19000))


def serve(tree: Path, extra: list[str] | None = None) -> Server:
    return Server(tree, next(_ports), extra or [])


LOAD_FLAGS = ["--rate", "1000000", "--burst", "1000000"]
RUNS = 3  # load runs per endpoint; the table shows the run with the median requests/s


# --------------------------------------------------------------------------- measurements


async def measure_load(tree: Path, quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    listeners = {s: await attacks.open_listener(s) for s in LOAD_SOURCES}
    ports = {s: listeners[s].sockets[0].getsockname()[1] for s in LOAD_SOURCES}
    plans = [
        ("/ip", lambda s: "/ip", 100 if quick else 300),
        ("/port/N", lambda s: f"/port/{ports[s]}", 20 if quick else 60),
        ("/probe/tcp/N", lambda s: f"/probe/tcp/{ports[s]}", 20 if quick else 60),
    ]
    try:
        for name, path_of, per_connection in plans:
            runs = []
            for _ in range(RUNS):
                server = serve(tree, LOAD_FLAGS)
                try:
                    await asyncio.sleep(0.3)
                    idle = server.rss_kib()
                    result = await attacks.load(
                        V4,
                        server.port,
                        path_of,
                        sources=LOAD_SOURCES,
                        connections_per_source=2,
                        requests_per_connection=per_connection,
                    )
                    runs.append({**result.summary(), "rss_idle_kib": idle, "rss_peak_kib": server.rss_kib("VmHWM")})
                finally:
                    server.stop()
            runs.sort(key=lambda r: r["rps"])
            out[name] = {**runs[len(runs) // 2], "rps_of_runs": [r["rps"] for r in runs]}  # the median run
            log(f"load {name}: {out[name]}")
    finally:
        for listener in listeners.values():
            listener.close()
    return out


async def measure_keepalive(tree: Path) -> dict[str, Any]:
    server = serve(tree, LOAD_FLAGS)
    try:
        result = await attacks.load(
            V4,
            server.port,
            lambda s: "/ip",
            sources=["127.0.0.2"],
            connections_per_source=1,
            requests_per_connection=100,
        )
        # 20 new connections, one request each: the first request of a connection.
        firsts = [(await attacks.get_once(V4, server.port, "/ip", "127.0.0.3"))[1] for _ in range(20)]
    finally:
        server.stop()
    later = sorted(result.later_s)
    return {
        "first_on_new_connection_p50_ms": round(sorted(firsts)[len(firsts) // 2] * 1000, 2),
        "later_on_same_connection_p50_ms": round(later[len(later) // 2] * 1000, 2),
        "later_on_same_connection_p99_ms": round(later[int(0.99 * len(later))] * 1000, 2),
        "sequential_requests": result.requests,
    }


async def measure_port_silent(tree: Path) -> dict[str, Any]:
    silent = await attacks.open_listener(V4, banner=None)
    port = silent.sockets[0].getsockname()[1]
    server = serve(tree, LOAD_FLAGS)
    try:
        times = []
        for _ in range(10):
            status, took, body = await attacks.get_once(V4, server.port, f"/port/{port}", V4)
            assert status == 200 and b'"reachable":true' in body, (status, body)
            times.append(took)
    finally:
        server.stop()
        silent.close()
    return {"p50_ms": round(sorted(times)[len(times) // 2] * 1000, 1)}


async def measure_attacks(tree: Path, quick: bool) -> dict[str, Any]:
    hold = 6.0 if quick else 15.0  # default request deadline: 10 s
    out: dict[str, Any] = {}

    async def run(name: str, coro_of: Any) -> None:
        server = serve(tree)
        try:
            result = await coro_of(server.port)
            summary = result.summary() if hasattr(result, "summary") else result
            out[name] = {**summary, "rss_peak_kib": server.rss_kib("VmHWM")}
        finally:
            server.stop()
        log(f"attack {name}: {out[name]}")

    await run(
        "slow second request, 128 connections from one address",
        lambda port: attacks.slow_second_request(
            V4, port, sources=["127.0.0.2"], per_source=128, hold_s=hold, legit_source=V4
        ),
    )
    await run(
        "slow second request, 128 connections from 8 addresses",
        lambda port: attacks.slow_second_request(
            V4, port, sources=[f"127.0.0.{i}" for i in range(2, 10)], per_source=16, hold_s=hold, legit_source=V4
        ),
    )
    await run(
        "300 idle connections from one address",
        lambda port: attacks.idle_flood(V4, port, sources=["127.0.0.2"], per_source=300, hold_s=hold, legit_source=V4),
    )
    await run(
        "300 idle connections from 100 addresses of one /64",
        lambda port: attacks.idle_flood(
            V6_SERVER, port, sources=V6_ATTACKERS, per_source=3, hold_s=hold, legit_source=V6_LEGIT
        ),
    )

    mine = await attacks.open_listener(V4)
    try:
        await run(
            "3 addresses probing a black-holed port",
            lambda port: attacks.black_holed_probes(
                V4,
                port,
                attackers=["127.0.0.2", "127.0.0.3", "127.0.0.4"],
                per_attacker=20,
                duration_s=hold,
                legit_source=V4,
                legit_port=mine.sockets[0].getsockname()[1],
            ),
        )
    finally:
        mine.close()

    async def v6_rate(port: int) -> dict[str, Any]:
        started = time.monotonic()
        counts = await attacks.many_addresses(V6_SERVER, port, sources=V6_ATTACKERS, requests_each=40)
        return {**counts, "seconds": round(time.monotonic() - started, 2)}

    await run("100 addresses of one /64, 40 requests each", v6_rate)
    return out


async def measure(tree: Path, quick: bool) -> dict[str, Any]:
    return {
        "load": await measure_load(tree, quick),
        "keepalive": await measure_keepalive(tree),
        "port_silent_listener": await measure_port_silent(tree),
        "attacks": await measure_attacks(tree, quick),
    }


# --------------------------------------------------------------------------- namespace and report


def inside(args: argparse.Namespace) -> None:
    results: dict[str, Any] = {}
    versions = [("after", ROOT)]
    with tempfile.TemporaryDirectory(prefix="probe-bench-") as tmp:
        if args.before:
            before = Path(tmp) / "before"
            before.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.before], check=True, capture_output=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
            versions.insert(0, ("before", before))
        for label, tree in versions:
            log(f"measuring {label} ({tree})")
            results[label] = asyncio.run(measure(tree, args.quick))
    Path(args.out).write_text(json.dumps(results, indent=1))


def in_namespace(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    from tests.lab import _netns

    name = _netns.new_prefix() + "-bench"
    _netns.create_namespaces([name])
    out = Path(tempfile.mkstemp(prefix="probe-bench-", suffix=".json")[1])
    try:
        batch = ["link set lo up"] + [f"addr add {a}/64 dev lo nodad" for a in [V6_SERVER, *V6_ATTACKERS, V6_LEGIT]]
        _netns.run_checked(["ip", "-n", name, "-batch", "-"], input="\n".join(batch) + "\n", what="lo addresses")
        subprocess.run(
            ["ip", "netns", "exec", name, PYTHON, __file__, "--inside", "--out", str(out), *argv], check=True, cwd=ROOT
        )
        return json.loads(out.read_text())
    finally:
        _netns.kill_namespace_processes([name])
        _netns.delete_namespaces([name])
        out.unlink(missing_ok=True)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:g} ms"


def _mib(kib: int | None) -> str:
    return "—" if not kib else f"{kib / 1024:.1f} MiB"


def _legit(entry: dict[str, Any]) -> str:
    legit = entry["legit"]
    codes = ", ".join(str(c) for c in legit["statuses"])
    return (
        f"{legit['served']}/{legit['requests']} served ({codes}); p50 {_ms(legit['p50_ms'])}, "
        f"worst {_ms(legit['worst_ms'])}"
    )


def _held(entry: dict[str, Any], hold: float) -> str:
    if "attack_requests" in entry:
        return f"{entry['attack_requests']} probe requests sent ({entry['attack_connections']} at a time)"
    if entry["longest_held_s"] is None:
        still = entry["attack_connections"] - entry["closed_by_server"]
        return f"{still} of {entry['attack_connections']} still open after {hold:g} s"
    return f"all {entry['attack_connections']} closed, the last after {entry['longest_held_s']:g} s"


def report(results: dict[str, Any], command: str, hold: float) -> str:
    versions = [v for v in ("before", "after") if v in results]
    head = "| measure | " + " | ".join(versions) + " |"
    rule = "|---|" + "---|" * len(versions)

    def row(label: str, cell: Any) -> str:
        return f"| {label} | " + " | ".join(cell(results[v]) for v in versions) + " |"

    lines = [
        START_MARK,
        "## Probe server (bench/probe_server.py)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `{command}`.",
        "",
        f"Machine: {os.cpu_count()} CPUs ({_cpu()}), Linux {platform.release()}, Python "
        f"{platform.python_version()}, load average at the end {_load()}. Server and client run in one "
        "private network namespace (loopback) and share the CPUs: requests/s are a lower bound."
        + (f" before = `{results['before_ref']}`, after = this tree." if "before_ref" in results else ""),
        "",
        "Load (32 kept-alive connections from 16 addresses; rate limits lifted):",
        "",
        head,
        rule,
    ]
    for endpoint in ("/ip", "/port/N", "/probe/tcp/N"):
        lines.append(
            row(
                f"`{endpoint}` requests/s (median of {RUNS} runs)",
                lambda r, e=endpoint: (
                    f"{r['load'][e]['rps']:g} ({r['load'][e]['ok']}/{r['load'][e]['requests']} ok; runs: "
                    + ", ".join(f"{x:g}" for x in r["load"][e].get("rps_of_runs", []))
                    + ")"
                ),
            )
        )
        lines.append(
            row(
                f"`{endpoint}` p50 / p99",
                lambda r, e=endpoint: f"{_ms(r['load'][e]['p50_ms'])} / {_ms(r['load'][e]['p99_ms'])}",
            )
        )
        lines.append(
            row(
                f"`{endpoint}` first / later request on a connection (p50)",
                lambda r, e=endpoint: f"{_ms(r['load'][e]['first_p50_ms'])} / {_ms(r['load'][e]['later_p50_ms'])}",
            )
        )
        lines.append(
            row(
                f"`{endpoint}` server RSS idle → peak",
                lambda r, e=endpoint: f"{_mib(r['load'][e]['rss_idle_kib'])} → {_mib(r['load'][e]['rss_peak_kib'])}",
            )
        )
    lines += [
        "",
        "Latency of one client:",
        "",
        head,
        rule,
        row(
            "`/ip`, first request on a new connection (p50 of 20)",
            lambda r: _ms(r["keepalive"]["first_on_new_connection_p50_ms"]),
        ),
        row(
            "`/ip`, later requests on one kept-alive connection (p50 / p99 of 99)",
            lambda r: (
                f"{_ms(r['keepalive']['later_on_same_connection_p50_ms'])} / "
                f"{_ms(r['keepalive']['later_on_same_connection_p99_ms'])}"
            ),
        ),
        row(
            "`/port/N` to a listener that writes nothing (p50 of 10)",
            lambda r: _ms(r["port_silent_listener"]["p50_ms"]),
        ),
        "",
        f"Attacks (default settings; a legitimate client from another address asks every 0.5 s for "
        f"{hold:g} s — `/ip`, or `/probe/tcp/N` of its own open port for the probe attack):",
        "",
        "| attack | "
        + " | ".join(f"legitimate client, {v}" for v in versions)
        + " | "
        + " | ".join(f"attack's connections, {v}" for v in versions)
        + " |",
        "|---|" + "---|" * (2 * len(versions)),
    ]
    for name in results[versions[-1]]["attacks"]:
        entries = [results[v]["attacks"].get(name) for v in versions]
        if "legit" in entries[-1]:
            cells = [_legit(e) if e else "—" for e in entries] + [_held(e, hold) if e else "—" for e in entries]
        else:
            cells = [
                f"{e['ok']} of {e['sent']} answered 200 ({e['limited']} × 429, {e['other']} other: 503 or "
                f"closed unanswered) in {e['seconds']:g} s"
                if e
                else "—"
                for e in entries
            ] + ["—"] * len(entries)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "How the attacks are made (tests/probe_attacks.py): *slow second request*: each connection "
        "sends a whole `GET /ip`, reads the answer, then sends `GET /ip HTTP/1.1\\r\\nHost: probe\\r\\nX-Slow: ` "
        "and nothing more; *idle*: connect and send nothing; the /64 attacks use 100 addresses of "
        "2001:db8:13::/64 on `lo` and the legitimate client 2001:db8:14::1; *black-holed port*: each "
        "attacker keeps 20 requests for `/probe/tcp/P` in flight, P a port on its own address that drops "
        "SYNs (a listener whose backlog is full), so each probe lasts the whole 2 s dial timeout and each "
        "attacker stays at about the default rate limit (10/s); *40 requests each*: every address sends "
        "them one after the other, each on a new connection, all 100 addresses at once.",
    ]
    rss = {v: [e["rss_peak_kib"] for e in results[v]["attacks"].values()] for v in versions}
    lines += [
        "",
        "Server peak RSS during the attacks: "
        + "; ".join(f"{v} {_mib(min(rss[v]))} – {_mib(max(rss[v]))}" for v in versions)
        + ".",
        "",
        "Raw numbers: bench/probe_server.json.",
        END_MARK,
        "",
    ]
    return "\n".join(lines)


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _load() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.1f} {b:.1f} {c:.1f}"


def write_section(section: str) -> Path:
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(START_MARK) + r".*?" + re.escape(END_MARK) + r"\n?", re.S)
    text = pattern.sub("", text).rstrip("\n") + "\n\n"
    path.write_text(text + section)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", metavar="REF", help="also measure the server of this git commit")
    ap.add_argument("--quick", action="store_true", help="shorter runs (6 s attacks, fewer requests)")
    ap.add_argument("--no-write", action="store_true", help="print the section, do not write files")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside:
        inside(args)
        return 0
    if os.geteuid() != 0:
        print("bench/probe_server.py needs root (it makes a private network namespace)", file=sys.stderr)
        return 2
    argv = [a for a in sys.argv[1:] if a != "--no-write"]
    results = in_namespace(args, argv)
    if args.before:
        ref = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", args.before], capture_output=True, text=True
        ).stdout.strip()
        results["before_ref"] = ref or args.before
    command = "sudo .venv/bin/python bench/probe_server.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    section = report(results, command.strip(), 6.0 if args.quick else 15.0)
    if args.no_write:
        print(section)
    else:
        (ROOT / "bench" / "probe_server.json").write_text(json.dumps(results, indent=1) + "\n")
        log(f"wrote {write_section(section)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
