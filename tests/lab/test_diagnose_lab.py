"""`ddns-wizard diagnose --json` for real, in every lab topology.

The real console script runs in the lab's host namespace (``lab.tool``) against
the lab's real router (nftables NAT, miniupnpd), ISP (plain routing, CGNAT,
second NAT, netem loss and latency) and internet services. Nothing is mocked.
The assertions are the contract of DESIGN.md and issue 3; timings are measured
in bench/bench_diagnose.py, not asserted here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from . import plan

pytestmark = pytest.mark.lab


def diagnose(lab: Any, *args: str) -> dict[str, Any]:
    out = lab.tool("diagnose", "--json", *args, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:  # pragma: no cover - shown on failure only
        raise AssertionError(f"stdout is not JSON: {out.stdout[:500]!r}\nstderr: {out.stderr[-1500:]}") from None


def finding_ids(report: dict[str, Any]) -> list[str]:
    return [f["id"] for f in report["findings"]]


def explain(report: dict[str, Any]) -> str:
    """What to print when an assertion fails: the verdict, its evidence and the probes."""
    probes = "\n".join(
        f"  {p['name']:<13} {p['status']:<8} {p['ms']:>7} ms  {p['summary'] or p['error']}"
        for p in report.get("probes", [])
    )
    return (
        f"verdict={report['nat']['verdict']} connectivity={report['connectivity']}\n"
        + "\n".join(f"  - {e}" for e in report["nat"]["evidence"])
        + f"\nprobes:\n{probes}\n"
        f"findings: {finding_ids(report)}"
    )


def test_public_host_has_no_nat(lab_public: Any) -> None:
    r = diagnose(lab_public)
    assert r["connectivity"] == "online", explain(r)
    assert r["nat"]["verdict"] == "none", explain(r)
    assert r["local"]["ipv4"] == lab_public.host_ipv4
    assert r["external"]["ipv4"] == lab_public.expected_public_ipv4 and r["external"]["agreement"]
    assert "public-address" in finding_ids(r)
    assert "no-upnp" not in finding_ids(r)  # irrelevant when the host holds the address


def test_home_is_one_nat_with_upnp_and_router_wan_equal_to_external(lab_home: Any) -> None:
    r = diagnose(lab_home)
    assert r["connectivity"] == "online", explain(r)
    assert r["nat"]["verdict"] == "nat", explain(r)
    assert r["upnp"]["available"] is True, explain(r)
    assert r["upnp"]["wan_ipv4"] == r["external"]["ipv4"] == lab_home.expected_public_ipv4
    assert r["nat"]["router_wan_ipv4"] == lab_home.router_wan_ipv4
    assert r["local"]["ipv4"] == lab_home.host_ipv4 and r["local"]["gateway_ipv4"] == lab_home.gateway_ipv4
    methods = {s["method"] for s in r["external"]["sources"] if s["value"]}
    assert methods == {"http", "dns", "stun"}, r["external"]["sources"]  # three independent ways agree
    assert r["external"]["agreement"] is True
    assert "port-forward-possible" in finding_ids(r)


def test_home_without_upnp_is_nat_or_unknown_with_a_no_upnp_finding(lab_home_no_upnp: Any) -> None:
    r = diagnose(lab_home_no_upnp)
    assert r["connectivity"] == "online", explain(r)
    assert r["nat"]["verdict"] in ("nat", "unknown"), explain(r)
    assert "no-upnp" in finding_ids(r), explain(r)
    assert r["upnp"]["available"] is False
    assert r["external"]["ipv4"] == lab_home_no_upnp.expected_public_ipv4


def test_home_without_upnp_as_root_uses_traceroute_for_nat(lab_factory: Any) -> None:
    """The lab runs as root, so traceroute evidence is there: the hop after the router is public.

    A fresh lab: Linux routers rate-limit ICMP errors per destination (about one a second
    after a small burst), and a shared lab's router may have spent its budget on earlier
    tests' NAT-PMP and traceroute probes; its reply is what makes the hops usable.
    """
    lab = lab_factory("home-no-upnp")
    r = diagnose(lab)
    assert r["nat"]["verdict"] == "nat", explain(r)
    assert r["nat"]["traceroute_hops"][:2] == [plan.HOME_GW, plan.CUSTOMER_GW], explain(r)
    assert "no-upnp" in finding_ids(r)


@pytest.fixture
def as_nobody(tmp_path_factory: Any) -> Any:
    """Run `diagnose --json` as user nobody (the way most people run the tool) in a lab."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from tests.lab.topology import VENV_BIN

    nobody = 65534
    made: list[Path] = []

    def run(lab: Any) -> dict[str, Any]:
        # pytest's tmp_path lives under a root-only directory: nobody needs its own.
        home = Path(tempfile.mkdtemp(prefix="ddnsw-diag-nobody-", dir="/tmp"))
        made.append(home)
        config = home / "config.toml"
        shutil.copy(lab.config_path, config)
        ca = home / "ca.pem"  # the lab's CA lives in a root-only directory
        shutil.copy(lab.tool_env["SSL_CERT_FILE"], ca)
        for p in (home, config, ca):
            os.chown(p, nobody, nobody)
        env = dict(
            lab.tool_env,
            DDNS_WIZARD_CONFIG=str(config),
            HOME=str(home),
            XDG_CONFIG_HOME=str(home),
            SSL_CERT_FILE=str(ca),
        )
        out = lab.run(
            [
                "setpriv",
                f"--reuid={nobody}",
                f"--regid={nobody}",
                "--clear-groups",
                str(VENV_BIN / "ddns-wizard"),
                "diagnose",
                "--json",
            ],
            env=env,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    yield run
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def test_cgnat_is_told_from_double_nat_without_root(lab_factory: Any, as_nobody: Any) -> None:
    """miniupnpd will not name a shared-space WAN, so only the hops can tell the ISP's CGNAT
    from a second router at home; as an ordinary user the trace uses UDP probes whose ICMP
    errors the kernel hands over without privilege. (A fresh lab: routers rate-limit ICMP.)"""
    lab = lab_factory("cgnat")
    r = as_nobody(lab)
    assert r["connectivity"] == "online", explain(r)
    assert r["nat"]["verdict"] == "cgnat", explain(r)
    assert r["nat"]["traceroute_hops"][:2] == [plan.HOME_GW, plan.CGNAT_GW], explain(r)
    (trace,) = [p for p in r["probes"] if p["name"] == "traceroute"]
    assert trace["status"] == "ok", explain(r)


def test_home_without_upnp_without_root_still_finds_one_nat(lab_factory: Any, as_nobody: Any) -> None:
    lab = lab_factory("home-no-upnp")
    r = as_nobody(lab)
    assert r["connectivity"] == "online", explain(r)
    assert r["nat"]["verdict"] == "nat", explain(r)
    assert r["nat"]["traceroute_hops"][:2] == [plan.HOME_GW, plan.CUSTOMER_GW], explain(r)


def test_double_nat(lab_double_nat: Any) -> None:
    r = diagnose(lab_double_nat)
    assert r["connectivity"] == "online", explain(r)
    assert r["nat"]["verdict"] == "double-nat", explain(r)
    assert r["external"]["ipv4"] == lab_double_nat.expected_public_ipv4
    f = next(f for f in r["findings"] if f["id"] == "double-nat")
    assert "bridge mode" in f["fix"]


def test_cgnat(lab_cgnat: Any) -> None:
    r = diagnose(lab_cgnat)
    assert r["connectivity"] == "online", explain(r)
    assert r["nat"]["verdict"] == "cgnat", explain(r)
    assert r["external"]["ipv4"] == lab_cgnat.expected_public_ipv4
    f = next(f for f in r["findings"] if f["id"] == "cgnat")
    assert f["severity"] == "error" and "Tunnel" in f["fix"]
    assert "ipv6-available" not in finding_ids(r)  # no IPv6 in this lab: do not promise it


def test_cgnat_with_ipv6_recommends_an_aaaa_record_and_the_ipv6_firewall(lab_cgnat_v6: Any) -> None:
    r = diagnose(lab_cgnat_v6)
    assert r["nat"]["verdict"] == "cgnat", explain(r)
    assert lab_cgnat_v6.host_ipv6 in [a["address"] for a in r["local"]["ipv6_global"]]
    six = next((f for f in r["findings"] if f["id"] == "ipv6-available"), None)
    assert six is not None, explain(r)
    assert "AAAA" in six["title"] + six["fix"]
    assert "IPv6 firewall" in six["fix"]
    assert lab_cgnat_v6.host_ipv6 in six["fix"]
    assert "AAAA" in next(f for f in r["findings"] if f["id"] == "cgnat")["fix"]
    # The DNS echoes are asked over IPv6 too (a second kind of IPv6 source), and see the host.
    dns6 = [p for p in r["probes"] if p["name"] == "dns-echo-v6"]
    assert dns6 and all(p["status"] == "ok" and p["summary"] == lab_cgnat_v6.host_ipv6 for p in dns6), dns6


def test_offline(lab_offline: Any) -> None:
    r = diagnose(lab_offline)
    assert r["connectivity"] == "offline", explain(r)
    f = next((f for f in r["findings"] if f["id"] == "offline"), None)
    assert f is not None and f["severity"] == "error", explain(r)
    assert r["external"]["ipv4"] is None


def test_lossy_home_is_still_correct(lab_factory: Any) -> None:
    """80 ms round trips and 15 % loss on the ISP link: the verdict must not change."""
    lab = lab_factory("home", latency_ms=40, loss_pct=15)
    r = diagnose(lab)
    assert r["connectivity"] == "online", explain(r)
    assert r["nat"]["verdict"] == "nat", explain(r)
    assert r["external"]["ipv4"] == lab.expected_public_ipv4, explain(r)
    assert r["nat"]["router_wan_ipv4"] == lab.router_wan_ipv4


def test_human_output_in_the_lab(lab_home: Any) -> None:
    out = lab_home.tool("diagnose", timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Can this network host" in out.stdout
    assert lab_home.expected_public_ipv4 in out.stdout
    assert "NAT: nat" in out.stdout


def test_a_configured_hostname_serving_a_lan_address_is_flagged(lab_factory: Any) -> None:
    """The classic DDNS-client mistake (sending the LAN address), caught from the real
    authoritative server: the record is set with a TSIG-signed RFC 2136 update."""
    import asyncio

    from tests.lab.services.dnsupdate import Authority, replace_rrset
    from tests.lab.services.netns import run_in_netns

    lab = lab_factory("home")
    account = lab.internet.accounts["dyndns2"]
    host = account["hostnames"][0]
    lab.write_config(
        hosts=[
            {
                "hostname": host,
                "provider": "dyndns2",
                "server": account["server"],
                "username": account["username"],
                "password": account["password"],
            }
        ]
    )
    tsig = lab.internet.tsig
    auth = Authority(plan.AUTH, tsig["name"], tsig["secret"], tsig["algorithm"])
    run_in_netns(
        lab.ns["host"], lambda: asyncio.run(replace_rrset(auth, host.split(".", 1)[1], host, "A", [lab.host_ipv4], 60))
    )
    r = diagnose(lab)
    f = next((f for f in r["findings"] if f["id"] == "private-ip-published"), None)
    assert f is not None, explain(r)
    assert host in f["detail"] and lab.host_ipv4 in f["detail"]
    assert account["password"] not in json.dumps(r)  # the config's secret never shows
    published = [p for p in r["probes"] if p["name"] == "dns-published"]
    assert published and published[0]["status"] == "ok", published


# --------------------------------------------------------------------------- issue 11: slow lines


def test_a_line_with_800_ms_round_trips_is_online_with_the_right_verdict_and_slow_line(lab_factory: Any) -> None:
    """A satellite-like line (800 ms RTT on the ISP link, the relay's latency knob): never
    "offline"; the HTTPS echoes (3-4 round trips) get their answers; slow-line says so."""
    lab = lab_factory("home", latency_ms=800)
    r = diagnose(lab)
    assert r["connectivity"] == "online", explain(r)
    assert r["nat"]["verdict"] == "nat", explain(r)
    assert r["external"]["ipv4"] == lab.expected_public_ipv4, explain(r)
    ids = finding_ids(r)
    assert "slow-line" in ids and "offline" not in ids and "limited-connectivity" not in ids, explain(r)
    slow = next(f for f in r["findings"] if f["id"] == "slow-line")
    assert "round trip" in slow["title"] and "HTTPS" in slow["detail"]
    # The fastest answer took about one round trip: at least the 800 ms the relay adds.
    fastest = min(s["ms"] for s in r["external"]["sources"] if s["value"] and s["method"] in ("dns", "stun"))
    assert fastest >= 780, r["external"]["sources"]


def test_an_explicit_budget_is_honoured_on_a_slow_line(lab_factory: Any) -> None:
    """--budget 2 on an 800 ms line: the HTTPS echoes cannot finish, and the tool says so as
    limited (with slow-line), not offline; the command ends within its budget (plus start-up)."""
    import time

    lab = lab_factory("home", latency_ms=800)
    started = time.monotonic()
    r = diagnose(lab, "--budget", "2")
    elapsed = time.monotonic() - started
    assert r["connectivity"] == "limited", explain(r)
    assert "slow-line" in finding_ids(r) and "offline" not in finding_ids(r), explain(r)
    assert r["duration_ms"] <= 2000 + 300, explain(r)
    assert elapsed < 10  # a hang bound, not a timing target


def test_offline_is_the_routers_own_word(lab_offline: Any) -> None:
    """The router without an uplink answers "network unreachable": the route check hears it."""
    r = diagnose(lab_offline)
    (check,) = [p for p in r["probes"] if p["name"] == "route-check"]
    assert check["status"] == "error" and plan.HOME_GW in check["error"], explain(r)
    offline = next(f for f in r["findings"] if f["id"] == "offline")
    assert "no route" in offline["detail"]


# --------------------------------------------------------------------------- issue 11: NAT verdicts


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_ds_lite_is_carrier_nat_for_ipv4_and_native_ipv6(lab_factory: Any, as_nobody: Any, user: str) -> None:
    """DS-Lite (the lab's softwire: IPv4 in IPv6 to the ISP's AFTR, which NATs it): the hop after
    the router is 192.0.0.1 → cgnat with ds_lite, IPv6 native, without UPnP, as any user."""
    lab = lab_factory("ds-lite")
    r = diagnose(lab) if user == "root" else as_nobody(lab)
    assert r["connectivity"] == "online", explain(r)
    assert r["nat"]["verdict"] == "cgnat" and r["nat"]["ds_lite"] is True, explain(r)
    assert r["nat"]["traceroute_hops"][:2] == [plan.HOME_GW, plan.DSLITE_AFTR], explain(r)
    assert r["external"]["ipv4"] == plan.DSLITE_POOL_IP
    assert r["external"]["ipv6"] == lab.host_ipv6  # native: the host's own address
    f = next(f for f in r["findings"] if f["id"] == "cgnat")
    assert "DS-Lite" in f["title"] and "IPv6 is native" in f["detail"], f
    assert lab.host_ipv6 in f["fix"]


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_double_nat_without_upnp_is_found_from_the_path(lab_factory: Any, as_nobody: Any, user: str) -> None:
    """No UPnP anywhere: the private hop after the router (the ISP box's LAN side) and the
    public address outside → double NAT, as root and as any user."""
    lab = lab_factory("double-nat", upnp=False)
    r = diagnose(lab) if user == "root" else as_nobody(lab)
    assert r["connectivity"] == "online", explain(r)
    assert r["nat"]["verdict"] == "double-nat", explain(r)
    assert r["nat"]["traceroute_hops"][:2] == [plan.HOME_GW, plan.ISPBOX_LAN_GW], explain(r)
    assert "no-upnp" in finding_ids(r)


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_a_router_claiming_a_wrong_public_wan_behind_a_second_nat_is_double_nat(
    lab_factory: Any, as_nobody: Any, user: str
) -> None:
    """miniupnpd claims 23.128.64.99 (ext_ip=) while it sits behind the ISP box: the outside
    sees 23.128.64.30 and the hop after the router is private → double NAT, not CGNAT."""
    lab = lab_factory("double-nat", router_ext_ip=plan.CLAIMED_WAN_IP)
    r = diagnose(lab) if user == "root" else as_nobody(lab)
    assert r["upnp"]["wan_ipv4"] == plan.CLAIMED_WAN_IP, explain(r)  # the router's claim
    assert r["external"]["ipv4"] == lab.expected_public_ipv4 == plan.ISPBOX_WAN_IP
    assert r["nat"]["verdict"] == "double-nat", explain(r)
    assert r["nat"]["traceroute_hops"][:2] == [plan.HOME_GW, plan.ISPBOX_LAN_GW], explain(r)
    assert any("not carrier-grade NAT on the router's word alone" in e for e in r["nat"]["evidence"]), explain(r)


def test_no_network_at_all_says_so_plainly(tmp_path: Any) -> None:
    """Issue 19: in a namespace with no route the headline read "Could not tell which NAT is in the
    way" and "Your router does not answer UPnP". Now every part says "no network"."""
    import os
    import subprocess
    import sys
    import uuid

    ns = f"ddnsw-nonet-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        env = dict(
            os.environ,
            HOME=str(tmp_path),
            XDG_CONFIG_HOME=str(tmp_path / "c"),
            XDG_STATE_HOME=str(tmp_path / "s"),
            COLUMNS="100",
        )
        out = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "wizard", "diagnose", "--budget", "3"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        text = out.stdout
        assert "No network: this computer cannot reach the internet" in text, text
        assert "Could not tell" not in text and "does not answer UPnP" not in text, text
        assert "NAT: no network" in text
        js = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "wizard", "diagnose", "--json", "--budget", "3"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        r = json.loads(js.stdout)
        assert r["connectivity"] == "offline" and "no-upnp" not in finding_ids(r)
        assert "No network" in r["nat"]["evidence"][-1]
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
