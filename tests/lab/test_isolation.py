"""The lab never touches the machine's own network, and never outlives its test.

- The root namespace gains no interface, address or route while a lab lives
  (the richest topology: double NAT, IPv6, the TAP relay) nor after it is gone.
- Every veth of a lab has its peer in a lab namespace; nothing of the root
  namespace answers from the lab's host namespace.
- Teardown removes namespaces, processes, /etc/netns entries and the work dir,
  also when the test fails or the whole test process is killed (then the next
  session's sweep does it), and the sweep never touches foreign namespaces.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from . import plan
from ._netns import ETC_NETNS_DIR, list_namespaces, sweep_leftovers
from .topology import Lab, LabSetupError, Options

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]


def root_network_state() -> dict[str, object]:
    """The machine's own namespace: interfaces, addresses, routes (stable fields only)."""

    def ip_json(*args: str) -> list[dict]:
        out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True)
        return json.loads(out.stdout or "[]")

    links = sorted((lk["ifindex"], lk["ifname"], lk.get("link_type")) for lk in ip_json("link", "show"))
    addrs = sorted(
        (a["ifname"], i["local"], i["prefixlen"]) for a in ip_json("addr", "show") for i in a.get("addr_info", [])
    )
    routes4 = sorted(json.dumps(r, sort_keys=True) for r in ip_json("-4", "route", "show", "table", "all"))
    routes6 = sorted(
        json.dumps(r, sort_keys=True)
        for r in ip_json("-6", "route", "show", "table", "all")
        if not r.get("dst", "").startswith(("ff00::", "fe80::"))
    )
    return {"links": links, "addresses": addrs, "routes4": routes4, "routes6": routes6}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(") ", 1)[1][:1] != "Z"


def lab_leftovers(lab: Lab) -> list[str]:
    names = set(lab.ns.values())
    found = [f"namespace {n}" for n in list_namespaces() if n in names]
    found += [f"/etc/netns/{n}" for n in names if (ETC_NETNS_DIR / n).exists()]
    if lab.workdir.exists():
        found.append(str(lab.workdir))
    return found


class RootNetlinkWatcher:
    """Subscribed to the machine's own link/address/route change notifications.

    Bound before the lab is built, so even an interface that existed for a
    moment during the build (and was gone by the time of a snapshot) is seen.
    """

    GROUPS = 0x1 | 0x10 | 0x40 | 0x100 | 0x400  # LINK, IPV4_IFADDR, IPV4_ROUTE, IPV6_IFADDR, IPV6_ROUTE
    NAMES = {16: "NEWLINK", 17: "DELLINK", 20: "NEWADDR", 21: "DELADDR", 24: "NEWROUTE", 25: "DELROUTE"}

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, self.GROUPS))
        self.sock.setblocking(False)

    def events(self) -> list[str]:
        import struct

        seen: list[str] = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                break
            pos = 0
            while pos + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, pos)
                seen.append(self.NAMES.get(kind, f"type {kind}"))
                pos += max(16, (length + 3) & ~3)
        self.sock.close()
        return seen


def test_root_namespace_gains_nothing_during_and_after_a_lab(lab_factory) -> None:  # type: ignore[no-untyped-def]
    watcher = RootNetlinkWatcher()
    before = root_network_state()
    lab = lab_factory("double-nat", ipv6=True, latency_ms=10)  # veths, TAPs + relay, v6, miniupnpd
    during = root_network_state()
    assert curl_ok(lab)
    lab.down()
    after = root_network_state()
    assert during == before
    assert after == before
    assert watcher.events() == [], "the machine's own namespace saw link/address/route changes"


def curl_ok(lab: Lab) -> bool:
    out = lab.run(["curl", "-sS", "--max-time", "5", "--cacert", str(lab.ca_path), f"https://{plan.ECHO1}/"])
    return out.stdout.strip() == lab.expected_public_ipv4


def test_every_lab_link_stays_inside_the_lab(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("double-nat", ipv6=True)
    lab_names = set(lab.ns.values())
    for role, ns in lab.ns.items():
        ids = subprocess.run(["ip", "-j", "-n", ns, "netns", "list-id"], capture_output=True, text=True, check=True)
        id_to_name = {e["nsid"]: e.get("name") for e in json.loads(ids.stdout or "[]")}
        links = json.loads(
            subprocess.run(["ip", "-j", "-n", ns, "link", "show"], capture_output=True, text=True, check=True).stdout
        )
        for link in links:
            if link.get("link_type") == "loopback":
                continue
            assert "link_netnsid" in link, f"{role}/{link['ifname']} has its peer in its own namespace"
            peer_ns = id_to_name.get(link["link_netnsid"])
            assert peer_ns in lab_names, f"{role}/{link['ifname']} is linked to {peer_ns or 'an unnamed namespace'}"


def test_nothing_of_the_machine_is_reachable_from_the_lab_host(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("public", ipv6=True)
    state = root_network_state()
    targets = sorted(
        {
            addr
            for ifname, addr, _ in state["addresses"]  # type: ignore[union-attr]
            if ifname != "lo" and not addr.startswith("fe80:")
        }
    )
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout.split("\n")
    ports = sorted({int(line.split()[3].rsplit(":", 1)[1]) for line in listening if line.strip()})[:5] or [22]
    assert targets, "the machine has no address to try (nothing to prove)"
    script = textwrap.dedent("""
        import socket, sys, json
        results = {}
        for address in sys.argv[2].split(","):
            for port in [int(p) for p in sys.argv[1].split(",")]:
                try:
                    socket.create_connection((address, port), timeout=0.5).close()
                    results[f"{address}:{port}"] = "connected"
                except OSError as exc:
                    results[f"{address}:{port}"] = type(exc).__name__
        print(json.dumps(results))
    """)
    out = lab.run([sys.executable, "-c", script, ",".join(map(str, ports)), ",".join(targets)], timeout=120)
    results = json.loads(out.stdout)
    assert results and "connected" not in results.values(), results
    pings = lab.run(
        ["sh", "-c", " ".join(f"ping -n -c1 -W1 {a} >/dev/null 2>&1 && echo {a};" for a in targets)], timeout=60
    )
    assert pings.stdout.strip() == "", f"answered from the lab: {pings.stdout}"
    # The lab itself works, so the silence above is isolation, not a broken lab.
    assert lab.run(["ping", "-n", "-c1", "-W2", plan.INET_CORE]).returncode == 0


def test_teardown_after_a_failing_test_leaves_nothing(tmp_path: Path) -> None:
    """A real pytest run whose lab test fails: afterwards no namespace, process or file is left."""
    record = tmp_path / "lab.json"
    test_file = tmp_path / "test_failing_lab.py"
    test_file.write_text(
        textwrap.dedent(f"""
        import json, subprocess
        def test_fails(lab_factory):
            lab = lab_factory("home")
            proc = lab.popen(["sleep", "600"])
            json.dump({{"ns": list(lab.ns.values()), "workdir": str(lab.workdir), "pid": proc.pid,
                       "miniupnpd": lab._miniupnpd.pid}}, open({str(record)!r}, "w"))
            assert False, "this lab test fails on purpose"
    """)
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.lab.fixtures",
            "-o",
            "addopts=",
            "--rootdir",
            str(tmp_path),
            str(test_file),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert "1 failed" in out.stdout, out.stdout + out.stderr
    info = json.loads(record.read_text())
    assert not set(info["ns"]) & set(list_namespaces())
    assert not any((ETC_NETNS_DIR / n).exists() for n in info["ns"])
    assert not Path(info["workdir"]).exists()
    for pid in (info["pid"], info["miniupnpd"]):
        assert not _alive(pid)


def test_teardown_when_the_build_fails_midway(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = Lab(Options("home"))

    def broken(self: Lab) -> None:
        raise LabSetupError("miniupnpd refused to start (simulated)")

    monkeypatch.setattr(Lab, "_start_miniupnpd", broken)
    with pytest.raises(LabSetupError):
        lab.up()
    assert lab_leftovers(lab) == []


def test_sweep_removes_a_killed_runs_lab_and_nothing_foreign(tmp_path: Path) -> None:
    """A process that built a lab is SIGKILLed (no teardown runs); the next sweep cleans up."""
    script = textwrap.dedent("""
        import json, sys, time
        from tests.lab.topology import Lab, Options
        lab = Lab(Options("home")).up()
        print(json.dumps({"ns": list(lab.ns.values()), "workdir": str(lab.workdir)}), flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    foreign = f"hx-ddwsweep{os.getpid()}"
    live_mine = f"ddw{os.getpid()}x999999-host"  # this process is alive: must survive the sweep
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    subprocess.run(["ip", "netns", "add", live_mine], check=True)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert set(info["ns"]) <= set(list_namespaces())  # killed: nothing was torn down
        orphans = [
            int(p)
            for n in info["ns"]
            for p in subprocess.run(["ip", "netns", "pids", n], capture_output=True, text=True).stdout.split()
        ]
        assert orphans, "the killed run's daemons should still be running before the sweep"
        removed = sweep_leftovers()
        assert set(info["ns"]) <= set(removed)
        left = set(list_namespaces())
        assert not set(info["ns"]) & left
        assert foreign in left and live_mine in left
        assert not Path(info["workdir"]).exists()
        assert not any((ETC_NETNS_DIR / n).exists() for n in info["ns"])
        # The killed run's daemons (miniupnpd, the services) were killed by the sweep.
        assert [p for p in orphans if _alive(p)] == []
    finally:
        subprocess.run(["ip", "netns", "del", foreign], check=False)
        subprocess.run(["ip", "netns", "del", live_mine], check=False)
