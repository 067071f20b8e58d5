"""`ports check`, `ports outbound` and `upnp list|add|remove` on real networks.

Each test runs the real `ddns-wizard` in the lab's host namespace against the
lab's internet: the project's probe server (dialling back through the ISP's
nftables filters and the router's NAT), miniupnpd (UPnP IGD + NAT-PMP) on the
home router, an all-ports TCP target. Mapping leftovers are checked with miniupnpc's
own `upnpc -l`, independent of the code under test. Nothing is mocked.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from . import plan

pytestmark = pytest.mark.lab

OWN_PROBER = {"port_check": [f"ddnsw+https://{plan.PROBE_NAME}"], "port_check_v6": [f"ddnsw+https://{plan.PROBE_NAME}"]}
IFCONFIG_ONLY = {"port_check": [f"https://{plan.IFCONFIG_NAME}/port/{{port}}"]}


def use_probe_server(lab: Any) -> None:
    """The project's probe server instead of the default probers: its answers carry the
    listener's nonce (proof it reached this machine) and it tests UDP."""
    lab.write_config(endpoints_override=OWN_PROBER)


def fresh_limits(lab: Any) -> None:
    """Forget earlier tests' requests on both sides: the echoip model's per-client window
    and the tool's own pacing file (its state directory in the lab's HOME)."""
    lab.internet.rate_limit("ifconfig", reset=True, over_limit="429")
    forget_pacing(lab)


def forget_pacing(lab: Any) -> None:
    """Forget when the tool last asked each prober (its state file in the lab's HOME)."""
    for path in (lab.workdir / "home").rglob("probers.json"):
        path.unlink()


def upnpc_mappings(lab: Any) -> list[tuple[str, int, str]]:
    """(protocol, external port, internal host:port) of every mapping, as `upnpc -l` lists them."""
    out = lab.run(["upnpc", "-u", f"http://{plan.HOME_GW}:{_igd_port(lab)}/rootDesc.xml", "-l"], timeout=20)
    found = re.findall(r"^\s*\d+\s+(TCP|UDP)\s+(\d+)->([\d.]+:\d+)", out.stdout, re.M)
    return [(proto, int(port), internal) for proto, port, internal in found]


_IGD_PORTS: dict[str, int] = {}


def _igd_port(lab: Any) -> int:
    """miniupnpd's HTTP port (random per run): from an SSDP discovery by upnpc itself."""
    if lab.prefix not in _IGD_PORTS:
        out = lab.run(["upnpc", "-s"], timeout=20)
        m = re.search(r"http://[\d.]+:(\d+)/", out.stdout)
        assert m, f"upnpc found no IGD: {out.stdout[-500:]} {out.stderr[-500:]}"
        _IGD_PORTS[lab.prefix] = int(m.group(1))
    return _IGD_PORTS[lab.prefix]


def check(lab: Any, *args: str, timeout: float = 60) -> dict[tuple[int, str], dict[str, Any]]:
    out = lab.tool("ports", "check", *args, "--json", timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return {(r["port"], r["protocol"]): r for r in json.loads(out.stdout)}


# --------------------------------------------------------------------------- inbound


def test_home_upnp_open_and_no_mapping_left(lab_home: Any) -> None:
    use_probe_server(lab_home)
    started = time.monotonic()
    results = check(lab_home, "8080", "--upnp")
    elapsed = time.monotonic() - started
    r = results[(8080, "tcp")]
    assert r["verdict"] == "open", r
    assert r["upnp_mapped"] is True
    assert any("reached this very machine" in s for s in r["evidence"])
    assert upnpc_mappings(lab_home) == []
    print(f"ports check 8080 --upnp wall time: {elapsed:.2f} s")


def test_home_udp_with_upnp_open_via_probe_server(lab_home: Any) -> None:
    use_probe_server(lab_home)
    r = check(lab_home, "51820/udp", "--upnp")[(51820, "udp")]
    assert r["verdict"] == "open", r
    assert any("reached this very machine" in s for s in r["evidence"])
    assert upnpc_mappings(lab_home) == []


NATPMP_RUN = """
import asyncio, json
from checks.config import Endpoints
from checks.http import make_client
from checks.portmap.mapper import NatPmpMapper
from checks.portcheck.spec import PortSpec
from checks.portcheck.run import gather_facts, run_port_check

async def main():
    facts = await gather_facts()
    seen = []

    async def natpmp_only(f):
        mapper = NatPmpMapper(f.local.gateway_ipv4, f.local.ipv4)
        real_add = mapper.add

        async def add(*args):
            granted = await real_add(*args)
            seen.append(granted)
            return granted

        mapper.add = add
        return mapper, "NAT-PMP (forced)"

    async with make_client(timeout_s=12) as client:
        report = await run_port_check([PortSpec(8080), PortSpec(5001, "udp")],
                                      endpoints=Endpoints(port_check=("ddnsw+https://%s",)),
                                      client=client, use_upnp=True, facts=facts, mapper_opener=natpmp_only)
    print(json.dumps({"verdicts": [r.verdict for r in report.results], "granted": seen,
                      "leftovers": report.leftovers}))

asyncio.run(main())
"""


def test_natpmp_mappings_work_and_are_removed(lab_home: Any) -> None:
    """The NAT-PMP path (used when a router has no IGD) against miniupnpd's real NAT-PMP server."""
    out = lab_home.run([sys.executable, "-c", NATPMP_RUN % plan.PROBE], env=lab_home.tool_env, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout)
    assert data["verdicts"] == ["open", "open"], data
    assert len(data["granted"]) == 4 and data["leftovers"] == []  # two ports + two control ports
    assert upnpc_mappings(lab_home) == []


def test_home_udp_without_a_udp_prober_says_how_to_get_one(lab_home: Any) -> None:
    lab_home.write_config()  # the default probers: echoip and portchecker.io, TCP only
    r = check(lab_home, "51820/udp")[(51820, "udp")]
    assert (r["verdict"], r["reason"]) == ("unknown", "no-udp-prober"), r
    assert "TCP only" in " ".join(r["evidence"]) and "ddnsw+https://" in r["fix"]
    human = lab_home.tool("ports", "check", "51820/udp")
    assert "UDP can only be tested by a prober that sends UDP" in human.stdout
    assert "ddns-wizard probe-server" in human.stdout


def test_home_without_upnp_is_not_forwarded(lab_home_no_upnp: Any) -> None:
    use_probe_server(lab_home_no_upnp)
    r = check(lab_home_no_upnp, "8080")[(8080, "tcp")]
    assert r["verdict"] == "not-forwarded", r
    assert plan.HOME_HOST in r["fix"]


def test_isp_blocked_80_while_8080_open(lab_factory: Any) -> None:
    lab = lab_factory("home", block_inbound=("80/tcp", "5000/udp"))
    use_probe_server(lab)
    results = check(lab, "80", "8080", "5000/udp", "5001/udp", "--upnp")
    assert results[(80, "tcp")]["verdict"] == "isp-blocked", results[(80, "tcp")]
    assert "25, 80, 443 and 445" in results[(80, "tcp")]["fix"]
    assert results[(8080, "tcp")]["verdict"] == "open", results[(8080, "tcp")]
    assert results[(5000, "udp")]["verdict"] == "isp-blocked", results[(5000, "udp")]
    assert results[(5001, "udp")]["verdict"] == "open", results[(5001, "udp")]
    assert upnpc_mappings(lab) == []

    # Ctrl-C and SIGTERM in the middle of the test (while the prober waits for the
    # filtered port 80 to time out): the mappings are removed on the way out.
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = lab.popen(
            ["ddns-wizard", "ports", "check", "80", "--upnp"],
            env=lab.tool_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not upnpc_mappings(lab):
            assert proc.poll() is None, proc.communicate()
        assert upnpc_mappings(lab), "the test mapping never appeared"
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=20)
        assert proc.returncode in (130, 143), (proc.returncode, err)
        assert "Traceback" not in err
        assert upnpc_mappings(lab) == [], f"mapping left after {sig.name}"


@pytest.mark.parametrize("prober", ["ddnsw", "echoip"])
def test_without_upnp_manual_forwards_and_an_isp_drop(lab_factory: Any, prober: str) -> None:
    """Issue 11: a router without UPnP, forwards of 80 and 8080 made in its web page, and the ISP
    dropping inbound 80. Nobody can confirm the forward of 80, so it is blocked-or-not-forwarded,
    with both checks and no word of UPnP; 8080 is open, and the test made no mapping."""
    lab = lab_factory("home-no-upnp", block_inbound=("80/tcp",))
    lab.forward_port(80)
    lab.forward_port(8080)
    lab.write_config(
        endpoints_override={
            "port_check": [
                f"ddnsw+https://{plan.PROBE}" if prober == "ddnsw" else f"https://{plan.PROBE}/port/{{port}}"
            ]
        }
    )
    if prober == "ddnsw":
        results = check(lab, "80", "8080")
    else:
        # The tool paces every echoip-style prober at ifconfig.co's published one request a
        # minute (checks/portcheck/probers.py ECHOIP_POLICY): one run may ask it about one port only.
        # So one port per run, with the tool's pacing file forgotten in between.
        results = check(lab, "80")
        forget_pacing(lab)
        results.update(check(lab, "8080"))
        forget_pacing(lab)
    r80, r8080 = results[(80, "tcp")], results[(8080, "tcp")]
    assert r80["verdict"] == "blocked-or-not-forwarded", r80
    assert "upnp" not in r80["fix"].lower(), r80["fix"]  # no UPnP on this router
    assert not any("--upnp" in e or "upnp add" in e for e in r80["evidence"]), r80["evidence"]
    assert plan.HOME_HOST in r80["fix"] and "another external port" in r80["fix"]  # both checks
    assert r80["mapping"] == "none"
    assert r8080["verdict"] == "open" and r8080["mapping"] == "none", r8080
    text = lab.tool("ports", "check", "8080", timeout=60).stdout
    assert "OPEN — reachable from the internet" in text and "for the test" not in text


def test_upnp_success_is_temporary_and_keep_leaves_a_lasting_forward(lab_home: Any) -> None:
    """`--upnp` opens the port for the test only (mapping: temporary, nothing left); `--keep`
    leaves the mapping as a lasting forward (mapping: kept), which `upnp remove` takes away."""
    use_probe_server(lab_home)
    r = check(lab_home, "8080", "--upnp")[(8080, "tcp")]
    assert r["verdict"] == "open" and r["mapping"] == "temporary", r
    assert any(e.startswith("Open for the test") for e in r["evidence"]), r["evidence"]
    assert upnpc_mappings(lab_home) == []
    text = lab_home.tool("ports", "check", "8080", "--upnp", timeout=60).stdout
    assert "OPEN for the test" in " ".join(text.split())
    try:
        kept = check(lab_home, "8080", "--upnp", "--keep")[(8080, "tcp")]
        assert kept["verdict"] == "open" and kept["mapping"] == "kept", kept
        assert any("Remove it when you no longer need it" in e and "DHCP reservation" in e for e in kept["evidence"])
        assert "remove-mapping" in kept["next_steps"]  # worded by the CLI as `upnp remove 8080/tcp`
        assert upnpc_mappings(lab_home) == [("TCP", 8080, f"{plan.HOME_HOST}:8080")]  # still there
        assert "7 days" in " ".join(kept["evidence"])  # miniupnpd's cap on a "permanent" lease
    finally:
        out = lab_home.tool("upnp", "remove", "8080/tcp", timeout=30)
    assert out.returncode == 0, out.stderr
    assert upnpc_mappings(lab_home) == []


def test_keep_without_upnp_is_a_usage_error(lab_home: Any) -> None:
    out = lab_home.tool("ports", "check", "8080", "--keep", timeout=30)
    assert out.returncode == 2 and "--upnp" in out.stderr


def test_existing_service_is_tested_and_said_so(lab_home: Any) -> None:
    use_probe_server(lab_home)
    server = lab_home.popen(
        [sys.executable, "-m", "http.server", "8000", "--bind", "0.0.0.0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while lab_home.run(["ss", "-Htln", "sport = :8000"]).stdout.strip() == "":
            assert time.monotonic() < deadline, "http.server did not start"
            time.sleep(0.05)
        r = check(lab_home, "8000", "--upnp")[(8000, "tcp")]
    finally:
        server.terminate()
        server.wait(5)
    assert r["verdict"] == "open" and r["service_was_listening"] is True, r
    assert any("could not confirm it is this machine" in s for s in r["evidence"])
    assert upnpc_mappings(lab_home) == []


def test_public_host_open_without_router(lab_public: Any) -> None:
    use_probe_server(lab_public)
    r = check(lab_public, "8080")[(8080, "tcp")]
    assert r["verdict"] == "open", r
    assert any(plan.PUBLIC_HOST_IP in s for s in r["evidence"])


def test_cgnat_is_upstream_nat(lab_cgnat: Any) -> None:
    use_probe_server(lab_cgnat)
    for extra in ((), ("--upnp",)):
        r = check(lab_cgnat, "8080", *extra)[(8080, "tcp")]
        assert r["verdict"] == "upstream-nat", r
        assert "no forwarding at home" in r["fix"]


def test_double_nat_is_upstream_nat_with_bridge_mode_advice(lab_double_nat: Any) -> None:
    use_probe_server(lab_double_nat)
    r = check(lab_double_nat, "8080", "--upnp")[(8080, "tcp")]
    assert r["verdict"] == "upstream-nat", r
    assert "bridge" in r["fix"]


# --------------------------------------------------------------------------- the default probers, as they behave


def timed_check(lab: Any, *args: str) -> tuple[dict[tuple[int, str], dict[str, Any]], float]:
    started = time.monotonic()
    results = check(lab, *args)
    return results, time.monotonic() - started


def test_dual_stack_rate_limited_echoip_alone_open_then_says_it_could_not_ask(lab_factory: Any) -> None:
    """Issue 11's case: a dual-stack home, ifconfig.co's echoip (one request a minute, by a
    dual-stack name) as the only prober. The IPv4 test goes out over IPv4, so the prober
    tests and reports the public IPv4; a second run inside the minute does not ask at all
    and says why; a request the server refuses (429) or drops says so too. Never a verdict
    the evidence does not carry."""
    lab = lab_factory("home", ipv6=True)
    lab.write_config(endpoints_override=IFCONFIG_ONLY)
    first, t1 = timed_check(lab, "8080", "--upnp")
    r = first[(8080, "tcp")]
    assert r["verdict"] == "open" and r["reason"] is None, r
    assert any(f"tried {lab.expected_public_ipv4}:8080 from outside: reachable" in e for e in r["evidence"]), r
    assert not any(lab.host_ipv6 in e for e in r["evidence"])
    log = lab.internet.requests_log("ifconfig")
    assert [(e["client"], e["path"], e["status"]) for e in log] == [(lab.expected_public_ipv4, "/port/8080", 200)]
    assert upnpc_mappings(lab) == []

    second, t2 = timed_check(lab, "8080", "--upnp")
    r = second[(8080, "tcp")]
    assert (r["verdict"], r["reason"]) == ("unknown", "rate-limited"), r
    assert 30 <= r["retry_after_s"] <= 60, r
    assert any("was not asked" in e and "one automated request a minute" in e for e in r["evidence"]), r
    assert len(lab.internet.requests_log("ifconfig")) == 1  # never asked inside its window
    human = lab.tool("ports", "check", "8080")
    assert "could not ask: rate limited, try again in" in human.stdout, human.stdout

    # Another device behind the same address used the minute (here: the tool's pacing
    # file is gone): the server answers 429, then drops — both said, neither a verdict.
    for path in (lab.workdir / "home").rglob("probers.json"):
        path.unlink()
    third, t3 = timed_check(lab, "8080")
    r = third[(8080, "tcp")]
    assert (r["verdict"], r["reason"], r["retry_after_s"]) == ("unknown", "rate-limited", 60), r
    assert any("HTTP 429" in e for e in r["evidence"]), r
    for path in (lab.workdir / "home").rglob("probers.json"):
        path.unlink()
    lab.internet.rate_limit("ifconfig", over_limit="drop")
    fourth, t4 = timed_check(lab, "8080")
    r = fourth[(8080, "tcp")]
    assert (r["verdict"], r["reason"]) == ("unknown", "prober-silent"), r
    assert upnpc_mappings(lab) == []
    print(
        f"ports check 8080 --upnp, echoip alone: first {t1:.2f} s (open), second {t2:.2f} s "
        f"(not asked), 429 {t3:.2f} s, dropped {t4:.2f} s"
    )


def test_dual_stack_with_the_second_default_prober_both_runs_are_open(lab_factory: Any) -> None:
    """The shipped defaults: ifconfig.co first, portchecker.io when ifconfig.co cannot be
    asked — inside its minute, or when it stays silent."""
    lab = lab_factory("home", ipv6=True)
    results = []
    for _ in range(2):
        found, elapsed = timed_check(lab, "8080", "--upnp")
        results.append((found[(8080, "tcp")], elapsed))
    for r, _ in results:
        assert r["verdict"] == "open" and r["reason"] is None, r
    assert any("ifconfig.lab-services.net (echoip-style) tried" in e for e in results[0][0]["evidence"])
    assert any("portchecker.lab-services.net (portchecker.io API) tried" in e for e in results[1][0]["evidence"])
    assert len(lab.internet.requests_log("ifconfig")) == 1
    assert [e["client"] for e in lab.internet.requests_log("portchecker")] == [lab.expected_public_ipv4]

    # ifconfig.co drops a request (its window not known to this machine): after its
    # timeout the question goes to portchecker.io.
    for path in (lab.workdir / "home").rglob("probers.json"):
        path.unlink()
    lab.internet.rate_limit("ifconfig", over_limit="drop")
    found, t3 = timed_check(lab, "8080", "--upnp")
    r = found[(8080, "tcp")]
    assert r["verdict"] == "open" and any("portchecker.io API" in e for e in r["evidence"]), r
    assert upnpc_mappings(lab) == []
    print(
        f"ports check 8080 --upnp with both default probers: {results[0][1]:.2f} s, {results[1][1]:.2f} s; "
        f"ifconfig.co silent -> portchecker.io: {t3:.2f} s"
    )


def test_control_port_asked_only_when_the_port_was_not_reached(lab_home_no_upnp: Any) -> None:
    """Not forwarded (no UPnP, no manual forward): the tested port is not reached, so a
    control port is asked about — of the second prober, as ifconfig.co allows one
    request a minute. (An open port costs one request: the tests above.)"""
    lab = lab_home_no_upnp
    fresh_limits(lab)
    lab.internet.clear_requests_log("ifconfig")
    lab.internet.clear_requests_log("portchecker")
    lab.write_config()
    r = check(lab, "8080")[(8080, "tcp")]
    assert r["verdict"] != "open" and r["reason"] is None, r
    assert [e["path"] for e in lab.internet.requests_log("ifconfig")] == ["/port/8080"]
    control = [e["path"] for e in lab.internet.requests_log("portchecker")]
    assert len(control) == 1 and control[0].startswith("/api/me/") and control[0] != "/api/me/8080"
    assert any("Control port" in e for e in r["evidence"]), r


# --------------------------------------------------------------------------- outbound


def test_outbound_25_blocked_443_open(lab_factory: Any) -> None:
    lab = lab_factory("home", block_outbound=("25/tcp",))
    out = lab.tool("ports", "outbound", "25", "443", "--json", "--timeout", "2")
    assert out.returncode == 0, out.stderr[-2000:]
    data = {d["port"]: d for d in json.loads(out.stdout)}
    assert data[25]["verdict"] == "blocked" and "residential" in data[25]["detail"]
    assert data[443]["verdict"] == "open" and data[443]["ms"] is not None


# --------------------------------------------------------------------------- upnp inventory


def test_upnp_add_list_risky_remove(lab_home: Any) -> None:
    out = lab_home.tool("upnp", "add", "22", "--description", "lab ssh")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "SSH" in out.stderr  # the risky-port warning
    try:
        assert ("TCP", 22, f"{plan.HOME_HOST}:22") in upnpc_mappings(lab_home)
        listed = lab_home.tool("upnp", "list", "--json")
        assert listed.returncode == 0, listed.stderr[-2000:]
        entry = next(m for m in json.loads(listed.stdout) if m["external_port"] == 22)
        assert entry["risky"] is True and entry["risky_service"] == "SSH"
        assert entry["internal"] == f"{plan.HOME_HOST}:22" and entry["description"] == "lab ssh"
        assert entry["stale"] is False  # the host itself answers (port closed: RST)
    finally:
        removed = lab_home.tool("upnp", "remove", "22/tcp")
    assert removed.returncode == 0, removed.stderr[-2000:]
    assert upnpc_mappings(lab_home) == []
    again = lab_home.tool("upnp", "remove", "22/tcp")
    assert again.returncode == 1 and "no mapping" in again.stderr


SOAP_ADD = """<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">
<s:Body><u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2">
<NewRemoteHost></NewRemoteHost><NewExternalPort>5555</NewExternalPort><NewProtocol>TCP</NewProtocol>
<NewInternalPort>5555</NewInternalPort><NewInternalClient>{client}</NewInternalClient><NewEnabled>1</NewEnabled>
<NewPortMappingDescription>old camera</NewPortMappingDescription><NewLeaseDuration>0</NewLeaseDuration>
</u:AddPortMapping></s:Body></s:Envelope>"""


def test_upnp_list_marks_mapping_of_departed_host_stale(lab_factory: Any) -> None:
    """A second LAN device (192.168.1.50, an extra address on the host's LAN interface) maps a
    port for itself over UPnP, then leaves the network: `upnp list` marks its mapping stale and
    this machine's own mapping not."""
    lab = lab_factory("home")
    lab.run(["ip", "addr", "add", f"{plan.HOME_OTHER}/24", "dev", "lan0"], check=True)
    added = lab.run(
        [
            "curl",
            "-sS",
            "--interface",
            plan.HOME_OTHER,
            "-H",
            'SOAPAction: "urn:schemas-upnp-org:service:WANIPConnection:2#AddPortMapping"',
            "-H",
            'Content-Type: text/xml; charset="utf-8"',
            "--data-binary",
            SOAP_ADD.format(client=plan.HOME_OTHER),
            f"http://{plan.HOME_GW}:{_igd_port(lab)}/ctl/IPConn",
        ],
        timeout=20,
    )
    assert "AddPortMappingResponse" in added.stdout, added.stdout + added.stderr
    lab.run(["ip", "addr", "del", f"{plan.HOME_OTHER}/24", "dev", "lan0"], check=True)  # the device leaves
    assert lab.tool("upnp", "add", "8080").returncode == 0
    listed = lab.tool("upnp", "list", "--json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    by_port = {m["external_port"]: m for m in json.loads(listed.stdout)}
    assert by_port[5555]["internal"] == f"{plan.HOME_OTHER}:5555" and by_port[5555]["stale"] is True
    assert by_port[8080]["stale"] is False
    human = lab.tool("upnp", "list")
    assert "stale" in human.stdout and "old camera" in human.stdout


def test_upnp_secure_mode_refuses_other_host_with_clear_error(lab_home: Any) -> None:
    out = lab_home.tool("upnp", "add", "8081", "--to", f"{plan.HOME_OTHER}:80")
    assert out.returncode == 1
    assert "718" in out.stderr or "606" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_upnp_list_without_igd_exits_1_with_alternatives(lab_home_no_upnp: Any) -> None:
    out = lab_home_no_upnp.tool("upnp", "list")
    assert out.returncode == 1
    assert "no UPnP IGD answered" in out.stderr and "Port forwarding" in out.stderr


# --------------------------------------------------------------------------- inbound over IPv6


def test_ipv6_port_is_firewalled_until_the_router_allows_it_then_open(lab_factory: Any) -> None:
    """Dual-stack home: the router's IPv6 firewall drops new inbound connections, as home
    routers do; once the lab's router allows the port (what the user does in its IPv6
    firewall page), the same test finds it open. The prober is the project's probe server,
    asked over IPv6 from the host's stable address, dialling that address back."""
    lab = lab_factory("home", ipv6=True)
    use_probe_server(lab)
    first = check(lab, "18443", "--ipv6")[(18443, "tcp")]
    assert first["verdict"] == "firewalled", first
    assert first["address"] == lab.host_ipv6
    assert "IPv6 firewall" in first["fix"] and lab.host_ipv6 in first["fix"]

    lab.allow_inbound_v6(18443)
    second = check(lab, "18443", "--ipv6")[(18443, "tcp")]
    assert second["verdict"] == "open", second
    assert any("read this test's nonce" in e for e in second["evidence"]), second


def test_under_cgnat_ipv6_is_the_way_in(lab_factory: Any) -> None:
    """IPv4 is stuck behind the ISP's CGNAT; the same port is reachable over IPv6 once the
    router allows it — what the CGNAT advice promises, tested end to end."""
    lab = lab_factory("cgnat", ipv6=True)
    use_probe_server(lab)
    v4 = check(lab, "18443")[(18443, "tcp")]
    assert v4["verdict"] == "upstream-nat", v4
    lab.allow_inbound_v6(18443)
    v6 = check(lab, "18443", "--ipv6")[(18443, "tcp")]
    assert v6["verdict"] == "open", v6


def test_ipv6_test_on_a_line_without_ipv6_says_so(lab_factory: Any) -> None:
    lab = lab_factory("home")  # IPv4 only
    lab.write_config(endpoints_override={"port_check_v6": []})
    out = lab.tool("ports", "check", "18443", "--ipv6", "--json", timeout=60)
    assert out.returncode == 2 and "port_check_v6 is empty" in out.stderr, out.stderr
    lab.write_config()  # the defaults name an IPv6 prober, as shipped
    out = lab.tool("ports", "check", "18443", "--ipv6", "--json", timeout=60)
    assert out.returncode == 0, out.stderr
    (result,) = json.loads(out.stdout)
    assert result["verdict"] == "no-ipv6" and result["address"] is None
    assert "no global IPv6 address" in result["evidence"][0]
