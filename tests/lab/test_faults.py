"""Fault injection in the lab: the real commands while the network and the services misbehave.

Each scenario runs the real ``ddns-wizard`` in the lab's host namespace (behind the
home router's NAT) and breaks something real: the ISP link (300 ms round trip, 30 %
loss through the lab relay), one outside service after another (stopped, or answering
500 / garbage / never), miniupnpd (SIGKILLed in the middle of ``ports check --upnp``),
the ``watch`` process (SIGKILLed right after its update reached the provider), and the
configuration file (truncated, not TOML).  Nothing is mocked.

The tool must say which source failed, keep going with what is left, and finish:
every run has a subprocess timeout of its budget plus a generous margin — a hang
check, not a speed test (timings live in bench/).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab import plan
from tests.lab.internet import OLD_ADDRESS
from tests.lab.topology import MINIUPNPD, VENV_BIN, Lab, Options

pytestmark = pytest.mark.lab

DIAGNOSE_BUDGET_S = 4.0
HANG_MARGIN_S = 5.0  # "finishes before budget + 5 s": a hang check
PROVIDER_TIMEOUT_S = 10.0  # checks/ddns/providers/base.py REQUEST_TIMEOUT_S
# the echo quorum and the authoritative lookup (3 s, then one 5 s retry) run side by side,
# then the provider request
UPDATE_BOUND_S = 3.0 + 5.0 + PROVIDER_TIMEOUT_S + HANG_MARGIN_S
PORTS_BOUND_S = 30.0
TEST_MAPPING = "ddns-wizard port test"  # checks/portmap/mapper.py MAPPING_DESCRIPTION


# --------------------------------------------------------------------------- helpers
def dyndns2_host(lab: Lab, **extra: Any) -> dict[str, Any]:
    acc = lab.internet.accounts["dyndns2"]
    return {
        "hostname": acc["hostnames"][0],
        "provider": "dyndns2",
        "server": acc["server"],
        "username": acc["username"],
        "password": acc["password"],
        **extra,
    }


def provider_updates(lab: Lab) -> list[dict[str, Any]]:
    return [r for r in lab.internet.requests_log("dyndns2") if r["path"].startswith("/nic/update")]


def diagnose(lab: Lab) -> dict[str, Any]:
    proc = lab.tool("diagnose", "--json", "--budget", str(DIAGNOSE_BUDGET_S), timeout=DIAGNOSE_BUDGET_S + HANG_MARGIN_S)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


_HISTORIES = iter(range(1_000_000))


def update(lab: Lab, *args: str, history: Path | None = None) -> tuple[int, list[dict[str, Any]], str]:
    """Run `update --json`; each call gets a fresh history file unless one is given (the
    shared lab must not carry one test's records into the next)."""
    history = history or lab.workdir / f"update-history-{next(_HISTORIES)}.jsonl"
    proc = lab.tool("update", "--json", "--history", str(history), *args, timeout=UPDATE_BOUND_S)
    assert proc.stdout.strip(), proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def sources_by_endpoint(report: dict[str, Any], family: int = 4) -> dict[str, dict[str, Any]]:
    """The sources of one family by endpoint (a dual-stack echo name serves both families)."""
    return {s["endpoint"]: s for s in report["external"]["sources"] if s["family"] == family}


ECHO1_URL, ECHO2_URL = f"https://{plan.ECHO1_NAME}/", f"https://{plan.ECHO2_NAME}/"
DNS_ECHOES = tuple(f"{m}@{plan.DNS_ECHO_NAME}" for m in ("opendns", "cloudflare", "google"))
# The same services by address: for the tests where the lab's resolver is down and the
# point is the lookup of the *published* name, not whether the echoes can be found.
LITERAL_ECHOES = {
    "ip_echo": [f"https://{plan.ECHO1}/", f"https://{plan.ECHO2}/"],
    "ip_echo_v6": [],
    "dns_echo": [f"opendns@{plan.DNS_ECHO}", f"cloudflare@{plan.DNS_ECHO}"],
    "dns_echo_v6": [],
}


def without_resolver(lab: Lab) -> None:
    lab.write_config(hosts=[dyndns2_host(lab)], endpoints_override=LITERAL_ECHOES)
    lab.internet.stop_service("resolver")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


FAULTABLE = ("echo1", "echo2", "ifconfig", "portchecker", "dyndns2", "duckdns", "cloudflare", "dns-echo")
SERVICES = (
    "echo1",
    "echo2",
    "probe",
    "ifconfig",
    "portchecker",
    "allports",
    "stun",
    "dns-echo",
    "resolver",
    "auth",
    "dyndns2",
    "duckdns",
    "cloudflare",
)


def heal(lab: Lab) -> None:
    """Every service up and well-behaved, the dyndns2 record stale again, empty logs."""
    for name in SERVICES:
        lab.internet.start_service(name)
    for name in FAULTABLE:
        lab.internet.set_fault(name, None)
    lab.internet.set_record(lab.internet.accounts["dyndns2"]["hostnames"][0], "A", [OLD_ADDRESS])
    for name in ("echo1", "echo2", "dyndns2"):
        lab.internet.clear_requests_log(name)
    lab.internet.rate_limit("ifconfig", reset=True, over_limit="429")
    for path in (lab.workdir / "home").rglob("probers.json"):
        path.unlink()
    lab.write_config(hosts=[dyndns2_host(lab)])


@pytest.fixture(scope="module")
def shared_home(_lab_session: None) -> Iterator[Lab]:
    """One `home` lab for the service-outage tests (each one heals what it broke)."""
    lab = Lab(Options("home"))
    try:
        yield lab.up()
    finally:
        lab.down()


@pytest.fixture
def home(shared_home: Lab) -> Iterator[Lab]:
    heal(shared_home)
    yield shared_home
    heal(shared_home)


# --------------------------------------------------------------------------- a bad line
def test_lossy_slow_isp_link_keeps_the_verdict_and_update_lands_exactly_once(lab_factory) -> None:  # type: ignore[no-untyped-def]
    """300 ms round trip and 30 % loss each way on the ISP link (the lab's user-space relay)."""
    lab = lab_factory("home", latency_ms=300, loss_pct=30)
    report = diagnose(lab)
    assert report["nat"]["verdict"] == "nat", report["nat"]
    assert report["external"]["ipv4"] == lab.expected_public_ipv4
    assert report["connectivity"] in ("online", "limited")
    # every source that answered agrees; the ones that gave up say why
    for src in report["external"]["sources"]:
        assert src["value"] == lab.expected_public_ipv4 or (src["value"] is None and src["error"]), src

    lab.write_config(hosts=[dyndns2_host(lab)])
    # One HTTPS exchange through this line can outlast the provider timeout (10 s: SYN and
    # TLS retransmissions at 30 % loss), or too few echoes answer for a quorum; then `update`
    # says so and exits 1, and cron or the watch runs it again. So: at most five runs, and
    # the provider must have applied exactly one update and seen no request it had to
    # answer `nochg`. (Measured: alone, 14 of 15 runs landed on the first attempt and one on
    # the second; beside the rest of the suite on 2 CPUs the user-space relay is slower and
    # one CI run in three used up three attempts, so three was a flake, not a bound.)
    for attempt in (1, 2, 3, 4, 5):  # noqa: B007  (the count is reported after the loop)
        code, (result,), err = update(lab)
        if result["result"] != "error":
            break
        assert result["code"] in ("network", "no-address") and not result["fatal"], result  # said why
    # A run whose provider reply was lost on the line may still have landed: the next run
    # then finds DNS already right and sends nothing (that is the point of asking DNS).
    landed_now = result["result"] == "updated" and result["code"] == "good"
    landed_before = attempt > 1 and result["result"] == "unchanged" and result["code"] is None
    assert code == 0 and (landed_now or landed_before), (result, err)
    replies = [(r.get("body") or "").split()[0] for r in provider_updates(lab) if r.get("body")]
    assert replies.count("good") == 1 and "nochg" not in replies, replies
    assert lab.internet.lookup(result["hostname"]) == [lab.expected_public_ipv4]
    print(f"lossy line: update landed on attempt {attempt}; provider replies {replies}")


# --------------------------------------------------------------------------- outside services down
DIAGNOSE_OUTAGES: dict[str, tuple[Callable[[Lab], None], tuple[str, ...]]] = {
    # name: (break it, endpoints that must report an error)
    "echo1 stopped": (lambda lab: lab.internet.stop_service("echo1"), (ECHO1_URL,)),
    "both echoes stopped": (
        lambda lab: [lab.internet.stop_service(s) for s in ("echo1", "echo2")],
        (ECHO1_URL, ECHO2_URL),
    ),
    "echo1 answers garbage": (lambda lab: lab.internet.set_fault("echo1", "garbage"), (ECHO1_URL,)),
    "echo1 never answers": (lambda lab: lab.internet.set_fault("echo1", "timeout"), (ECHO1_URL,)),
    "STUN stopped": (
        lambda lab: lab.internet.stop_service("stun"),
        (f"{plan.STUN1}:{plan.STUN_PORT}", f"{plan.STUN2}:{plan.STUN_PORT}"),
    ),
    "DNS echo stopped": (lambda lab: lab.internet.stop_service("dns-echo"), DNS_ECHOES),
}


@pytest.mark.parametrize("outage", list(DIAGNOSE_OUTAGES))
def test_diagnose_names_the_failing_source_and_keeps_the_verdict(home: Lab, outage: str) -> None:
    breaker, failing = DIAGNOSE_OUTAGES[outage]
    breaker(home)
    report = diagnose(home)  # within budget + margin, or TimeoutExpired
    sources = sources_by_endpoint(report)
    for endpoint in failing:
        assert sources[endpoint]["value"] is None and sources[endpoint]["error"], sources[endpoint]
    rest = [s for e, s in sources.items() if e not in failing]
    assert rest and all(s["value"] == home.expected_public_ipv4 for s in rest), rest
    assert report["external"]["ipv4"] == home.expected_public_ipv4
    assert report["nat"]["verdict"] == "nat" and report["upnp"]["available"]


def test_diagnose_with_the_resolver_down_reports_the_published_name_check(home: Lab) -> None:
    without_resolver(home)
    report = diagnose(home)
    assert report["nat"]["verdict"] == "nat" and report["external"]["ipv4"] == home.expected_public_ipv4
    published = [p for p in report["probes"] if p["name"] == "dns-published"]
    assert published and published[0]["status"] in ("error", "timeout") and published[0]["error"], published


def test_ports_check_with_the_probers_down_says_unknown_and_names_them(home: Lab) -> None:
    for name in ("ifconfig", "portchecker"):
        home.internet.stop_service(name)
    proc = home.tool("ports", "check", "8080", "--json", timeout=PORTS_BOUND_S)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    (result,) = json.loads(proc.stdout)
    assert (result["verdict"], result["reason"]) == ("unknown", "no-prober-answered"), result
    for name in (plan.IFCONFIG_NAME, plan.PORTCHECKER_NAME):
        assert any(name in line for line in result["evidence"]), result["evidence"]


@pytest.mark.parametrize(
    "fault,code,words",
    [
        ("500", "HTTP 500", "server problem"),
        ("timeout", "network", "did not answer"),
        ("garbage", "unknown", "does not understand"),
    ],
)
def test_update_against_a_broken_provider_says_so_once_and_changes_nothing(
    home: Lab, fault: str, code: str, words: str
) -> None:
    home.internet.set_fault("dyndns2", fault)
    rc, (result,), err = update(home)
    assert rc == 1 and result["result"] == "error" and result["code"] == code, (result, err)
    assert words in result["message"] and "dyndns2" in result["message"], result["message"]
    assert not result["fatal"] and result["retry_after_s"], result  # retried later, not now
    assert len(provider_updates(home)) == 1
    assert home.internet.lookup(result["hostname"]) == [OLD_ADDRESS]
    assert home.internet.accounts["dyndns2"]["password"] not in json.dumps(result) + err


def test_update_with_every_http_echo_down_needs_dns_and_stun_to_agree(home: Lab) -> None:
    """Both HTTPS echoes down: the DNS echoes and STUN are two independent kinds and agree,
    so the address is published. With STUN down too, three DNS echo methods agree — but
    plain DNS can be forged by one box on the path: together they are one voice, and one
    voice is no quorum (issue 11)."""
    for name in ("echo1", "echo2"):
        home.internet.stop_service(name)
    rc, (result,), _ = update(home)
    assert rc == 0 and result["result"] == "updated" and result["sent"] == home.expected_public_ipv4, result
    assert len(provider_updates(home)) == 1
    home.internet.set_record(result["hostname"], "A", [OLD_ADDRESS])
    home.internet.clear_requests_log("dyndns2")
    home.internet.stop_service("stun")
    rc, (result,), _ = update(home)
    assert rc == 1 and result["result"] == "error" and result["code"] == "no-address", result
    assert "only DNS-based sources answered, and they count as one" in result["message"], result
    assert provider_updates(home) == []


def test_update_with_no_echo_at_all_names_each_one_and_sends_nothing(home: Lab) -> None:
    for name in ("echo1", "echo2", "dns-echo", "stun"):
        home.internet.stop_service(name)
    rc, (result,), _ = update(home)
    assert rc == 1 and result["result"] == "error" and result["code"] == "no-address", result
    for endpoint in (ECHO1_URL, ECHO2_URL, DNS_ECHOES[0]):
        assert endpoint in result["message"], result["message"]
    assert provider_updates(home) == []


def test_update_with_the_resolver_down_still_lands_and_a_dry_run_says_why(home: Lab) -> None:
    without_resolver(home)
    rc, (dry,), _ = update(home, "--dry-run")
    assert rc == 0 and dry["code"] == "dry-run" and "DNS lookup failed" in dry["message"], dry
    rc, (result,), _ = update(home)
    assert rc == 0 and result["result"] == "updated", result
    assert len(provider_updates(home)) == 1
    assert home.internet.lookup(result["hostname"]) == [home.expected_public_ipv4]


def test_update_with_the_resolver_down_says_it_could_not_compare(home: Lab) -> None:
    without_resolver(home)
    rc, (result,), _ = update(home)
    assert rc == 0 and result["result"] == "updated" and result["previous"] is None, result
    assert "Sent without comparing: the DNS lookup failed" in result["message"], result["message"]


def test_update_with_the_resolver_down_does_not_resend_what_it_already_sent(home: Lab) -> None:
    """DNS unreachable, but this machine's own history says it already published the address."""
    history = home.workdir / "resend-history.jsonl"
    home.internet.set_record(dyndns2_host(home)["hostname"], "A", ["23.128.64.99"])
    rc, (first,), _ = update(home, history=history)
    assert rc == 0 and first["result"] == "updated", first
    without_resolver(home)
    home.internet.clear_requests_log("dyndns2")
    rc, (second,), _ = update(home, history=history)
    assert rc == 0 and second["result"] == "unchanged" and second["code"] == "history", second
    assert "DNS could not be asked" in second["message"]
    assert provider_updates(home) == []  # no nochg for the provider to count


def test_verify_with_the_resolver_down_is_unknown_and_names_the_resolvers(home: Lab) -> None:
    home.internet.stop_service("resolver")
    name = home.internet.accounts["dyndns2"]["hostnames"][0]
    proc = home.tool("verify", name, "--no-ping", "--json", timeout=30)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["verdict"] == "unknown", result
    assert {r["server"] for r in result["resolvers"] if r["error"]} == {plan.RESOLVER, plan.RESOLVER2}


# --------------------------------------------------------------------------- miniupnpd killed
def _upnp_test_mappings(lab: Lab) -> set[int]:
    out = lab.run(["upnpc", "-l"], timeout=20).stdout
    ports = set()
    for line in out.splitlines():
        if TEST_MAPPING in line and "->" in line:
            ports.add(int(line.split("->")[0].split()[-1]))
    return ports


def _restart_miniupnpd(lab: Lab) -> None:
    log = lab.workdir / "miniupnpd-restarted.log"
    with open(log, "w") as out:
        # its own pid file: the killed daemon's stays behind (the lab reaps it at teardown)
        lab.popen(
            [
                MINIUPNPD,
                "-d",
                "-f",
                str(lab.workdir / "miniupnpd.conf"),
                "-P",
                str(lab.workdir / "miniupnpd-restarted.pid"),
            ],
            ns="router",
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_for(lambda: "Listening for NAT-PMP" in log.read_text(errors="replace"), 10, "miniupnpd to restart")


@pytest.mark.parametrize(
    "after_redirects",
    [
        # Killed between miniupnpd installing the rule and its SOAP reply: the add fails
        # vaguely, so the mapping is "maybe made" and must be removed or reported. (This once
        # leaked about 1 run in 5: miniupnpc's getspecificportmapping answers None for a dead
        # router, which read as "never created"; a None is now believed only from a router
        # that still answers.)
        pytest.param(1, id="while-adding-8080"),
        pytest.param(2, id="both-mappings-made"),
    ],
)
def test_miniupnpd_killed_mid_ports_check_leaves_no_silent_mapping(lab_factory, after_redirects: int) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("home")
    log = lab.workdir / "miniupnpd.log"
    seen = len(log.read_text(errors="replace"))
    proc = lab.popen(
        [str(VENV_BIN / "ddns-wizard"), "ports", "check", "8080", "--upnp", "--json"],
        env=lab.tool_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # miniupnpd logs "redirecting port N" when the rule is in place, before its SOAP reply:
    # the first kill point is "mapping made, the tool not told yet", the second "both made".
    wait_for(
        lambda: log.read_text(errors="replace")[seen:].count("redirecting port") >= after_redirects,
        20,
        "the test mapping",
        step=0.002,
    )
    os.kill(int((lab.workdir / "miniupnpd.pid").read_text()), signal.SIGKILL)
    out, err = proc.communicate(timeout=PORTS_BOUND_S)
    assert "Traceback" not in err, err
    json.loads(out)  # still a complete answer on stdout

    _restart_miniupnpd(lab)
    leaked = _upnp_test_mappings(lab)
    reported = {port for port in leaked if f"mapping {port}/TCP" in err}
    assert leaked == reported, (
        f"mappings left on the router: {sorted(leaked)}; the tool reported "
        f"{sorted(reported)} (exit {proc.returncode}); stderr: {err[-800:]}; stdout: {out[-2500:]}"
    )
    if leaked:
        assert proc.returncode == 1
    said = "\n".join(line for line in err.splitlines() if not line.startswith(("connect:", "recv:")))
    print(f"miniupnpd killed ({after_redirects}): left {sorted(leaked)}, exit {proc.returncode}, said:\n{said}")


# --------------------------------------------------------------------------- watch SIGKILLed
def _watch(lab: Lab, history: Path) -> subprocess.Popen[str]:
    return lab.popen(
        [str(VENV_BIN / "ddns-wizard"), "watch", "--interval", "10", "--history", str(history)],
        env=lab.tool_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _history_lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().split(b"\n") if line.strip()]


def test_watch_sigkilled_during_its_update_restarts_without_a_duplicate(home: Lab, tmp_path: Path) -> None:
    """The kill lands right after the emulator answered the update (its request log has it)."""
    from checks.ddns.history import read_history

    # the emulator is our own server: no minimum interval between updates
    home.write_config(hosts=[dyndns2_host(home, min_interval=0)])
    history = tmp_path / "history.jsonl"
    first = _watch(home, history)
    wait_for(lambda: len(provider_updates(home)) >= 1, 30, "the watch's update", step=0.005)
    first.kill()
    first.communicate(timeout=10)
    assert first.returncode == -signal.SIGKILL
    assert home.internet.lookup(dyndns2_host(home)["hostname"]) == [home.expected_public_ipv4]
    for line in _history_lines(history):
        json.loads(line)  # nothing torn by the kill itself

    # A crash can also cut a write short: the restarted watch must cope with that too.
    with open(history, "ab") as f:
        f.write(b'{"event": "update", "hostname": "myhome.dyn.lab-ddns.n')
    second = _watch(home, history)

    def restarted_round_done() -> bool:
        records = read_history(history).records
        starts = [i for i, r in enumerate(records) if r.get("event") == "start"]
        return len(starts) == 2 and any(r.get("event") == "check" for r in records[starts[1] :])

    try:
        wait_for(restarted_round_done, 40, "the restarted watch's first comparison with DNS")
    finally:
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=20)
    assert second.returncode == 0, out + err
    assert "Traceback" not in err, err
    assert len(provider_updates(home)) == 1, [r["query"] for r in provider_updates(home)]
    read = read_history(history)
    assert len(read.problems) == 1 and str(history) in read.problems[0], read.problems
    assert read.records[-1]["event"] == "stop"
    lines = _history_lines(history)
    torn = [line for line in lines if not _is_json(line)]
    assert len(torn) == 1  # the one cut write, nothing glued onto it
    print("restarted watch said:", out.strip()[-600:])


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- damaged configuration
BAD_CONFIGS = {
    "truncated": lambda good: good[: good.index("password") + len('password = "ab')],
    "not TOML": lambda good: "endpoints:\n  ip_echo: [https://11.1.0.10/]\nhosts:\n  - hostname: x\n",
    "binary junk": lambda good: good[:40] + "\udcff\udcfe",
}


@pytest.mark.parametrize("damage", list(BAD_CONFIGS))
@pytest.mark.parametrize(
    "command", [["diagnose", "--json"], ["update"], ["watch", "--interval", "10"], ["verify", "--no-ping"]]
)
def test_damaged_config_names_file_and_line_exits_2_and_is_left_alone(
    shared_home: Lab, tmp_path: Path, damage: str, command: list[str]
) -> None:
    good = shared_home.write_config(hosts=[dyndns2_host(shared_home)]).read_text()
    bad = tmp_path / "config.toml"
    bad.write_bytes(BAD_CONFIGS[damage](good).encode("utf-8", "surrogateescape"))
    before = bad.read_bytes()
    expected_line = before.count(b"\n") + 1 if damage == "truncated" else None
    proc = shared_home.tool(*command, config=bad, timeout=30)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert str(bad) in proc.stderr and "line" in proc.stderr, proc.stderr
    if expected_line:
        assert f"line {expected_line}" in proc.stderr, proc.stderr
    assert bad.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"] or all(
        p.read_bytes() == before for p in tmp_path.iterdir()
    )  # a backup copy at most, never a rewrite
    if "--json" in command:
        assert proc.stdout == ""
