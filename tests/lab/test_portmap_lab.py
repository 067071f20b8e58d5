"""Port mapping against the real miniupnpd (Debian 2.3.1, nftables): PCP, IPv6 pinholes
(PCP and UPnP IGDv2), the router's identity, a router restart in the middle.

The witness is the router's own nftables ruleset (miniupnpd's chains, read with `nft`
in the router namespace), independent of the code under test; the reachability
verdicts come from the lab's probe server dialling in from the lab internet. Nothing
is mocked.

miniupnpd facts these tests rely on (seen in the lab, see tests/lab/topology.py):
``enable_natpmp=yes`` turns on NAT-PMP *and* PCP (``enable_pcp_pmp`` is refused by
2.3.1); ``enable_upnp=no`` leaves the IGD off; with ``ipv6_disable=no`` a PCP MAP or
an IGDv2 AddPinhole for a LAN host's global IPv6 address adds an accept rule to the
``miniupnpd`` chain, which the router's forward chain jumps to.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from . import plan
from .test_ports_lab import check, use_probe_server
from .topology import LAB_ROUTER_MAKER, LAB_ROUTER_MODEL, MINIUPNPD

pytestmark = pytest.mark.lab


def rules(lab: Any, chain: str) -> list[str]:
    out = lab.run(["nft", "list", "chain", "inet", "router", chain], ns="router", timeout=10)
    assert out.returncode == 0, out.stderr
    return [line.strip() for line in out.stdout.splitlines() if "dport" in line]


def dports(lab: Any, chain: str) -> set[int]:
    return {int(m) for line in rules(lab, chain) for m in re.findall(r"dport (\d+)", line)}


def pyrun(lab: Any, code: str, timeout: float = 60) -> Any:
    out = lab.run([sys.executable, "-c", code], env=lab.tool_env, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def check6(lab: Any, *args: str, timeout: float = 60) -> dict[tuple[int, str], dict[str, Any]]:
    out = lab.tool("ports", "check", *args, "--ipv6", "--json", timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return {(r["port"], r["protocol"]): r for r in json.loads(out.stdout)}


# --------------------------------------------------------------------------- PCP, IPv4


def test_router_with_pcp_but_no_upnp_maps_over_pcp_and_leaves_nothing(lab_factory: Any) -> None:
    lab = lab_factory("home", upnp_igd=False)
    use_probe_server(lab)
    r = check(lab, "8080", "--upnp")[(8080, "tcp")]
    assert r["verdict"] == "open", r
    assert r["mapped_via"] == "pcp" and r["mapping"] == "temporary", r
    assert any("PCP" in s for s in r["evidence"]), r["evidence"]
    assert dports(lab, "prerouting_miniupnpd") == set() and dports(lab, "miniupnpd") == set()


NONCE_RUN = """
import asyncio, json
from checks.portmap.pcp import PcpClient
async def main():
    mine = PcpClient(%(gw)r)
    m, r = await mine.map("tcp", 8081, external_port=8081, lifetime=300)
    stranger = await PcpClient(%(gw)r).map("tcp", 8081, lifetime=0)
    print(json.dumps({"made": m is not None, "ext": m and m.external_port, "epoch": r.epoch,
                      "stranger_code": stranger[1].result_code}))
    import sys; sys.stdout.flush(); input()
    d = await mine.delete(m)
    print(json.dumps({"deleted": d.ok}))
asyncio.run(main())
"""


def test_pcp_delete_needs_the_mappings_nonce(lab_factory: Any) -> None:
    """A delete with a fresh nonce (tailscale's Release does that) is refused by miniupnpd and the
    mapping stays; the delete with the mapping's own nonce removes it."""
    lab = lab_factory("home", upnp_igd=False)
    proc = lab.popen(
        [sys.executable, "-c", NONCE_RUN % {"gw": plan.HOME_GW}],
        env=lab.tool_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = json.loads(proc.stdout.readline())
    assert first["made"] and first["ext"] == 8081 and first["stranger_code"] == 2, first
    assert 8081 in dports(lab, "prerouting_miniupnpd")  # the refused delete left it
    out, err = proc.communicate("\n", timeout=30)
    assert json.loads(out.strip().splitlines()[-1]) == {"deleted": True}, err
    assert 8081 not in dports(lab, "prerouting_miniupnpd")


RESTART_RUN = """
import asyncio, json, sys
from checks.portmap.pcpmapper import PcpMapper
async def main():
    mapper = PcpMapper(%(gw)r, %(host)r)
    granted = await mapper.add(8082, "udp", %(host)r, 8082, 600, "x")
    print(json.dumps({"granted": granted, "restarted": mapper.restarted})); sys.stdout.flush()
    input()                                  # the test restarts miniupnpd here
    renewed, what = await mapper.renew(8082, "udp")
    print(json.dumps({"renewed": renewed is not None, "what": what, "restarted": mapper.restarted})); sys.stdout.flush()
    input()
    await mapper.remove(8082, "udp", 8082)
    print(json.dumps({"removed": True}))
asyncio.run(main())
"""


def _restart_miniupnpd(lab: Any) -> None:
    pid = int((lab.workdir / "miniupnpd.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    # Wait for the port to be free, then start it again with the same configuration.
    time.sleep(0.3)
    log = lab.workdir / "miniupnpd-restarted.log"
    with open(log, "w") as out:
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
    deadline = time.monotonic() + 10
    while "Listening for NAT-PMP" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-800:]
        time.sleep(0.05)


def test_router_restart_mid_test_is_noticed_and_the_mapping_made_again(lab_factory: Any) -> None:
    lab = lab_factory("home", upnp_igd=False)
    proc = lab.popen(
        [sys.executable, "-c", RESTART_RUN % {"gw": plan.HOME_GW, "host": plan.HOME_HOST}],
        env=lab.tool_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = json.loads(proc.stdout.readline())
    assert first == {"granted": 8082, "restarted": False}, first
    time.sleep(2.5)  # let the epoch grow, so that a restart sends it back
    _restart_miniupnpd(lab)
    proc.stdin.write("\n")
    proc.stdin.flush()
    second = json.loads(proc.stdout.readline())
    assert second["renewed"] and second["restarted"], second
    assert "restarted" in second["what"], second
    assert 8082 in dports(lab, "prerouting_miniupnpd")
    out, err = proc.communicate("\n", timeout=30)
    assert json.loads(out.strip().splitlines()[-1]) == {"removed": True}, err
    assert 8082 not in dports(lab, "prerouting_miniupnpd")


# --------------------------------------------------------------------------- IPv6 pinholes


def test_ipv6_pinhole_over_pcp_opens_the_firewall_for_the_test(lab_factory: Any) -> None:
    lab = lab_factory("home", ipv6=True, upnp_igd=False)
    use_probe_server(lab)
    closed = check6(lab, "8080")[(8080, "tcp")]
    assert closed["verdict"] == "firewalled", closed
    r = check6(lab, "8080", "--upnp")[(8080, "tcp")]
    assert r["verdict"] == "open", r
    assert r["pinhole_via"] == "pcp" and r["pinhole"] == "temporary", r
    assert dports(lab, "miniupnpd") == set()  # nothing left afterwards


def test_ipv6_pinhole_over_upnp_igdv2_and_kept(lab_factory: Any) -> None:
    lab = lab_factory("home", ipv6=True)
    use_probe_server(lab)
    r = check6(lab, "8443", "--upnp")[(8443, "tcp")]
    assert r["verdict"] == "open", r
    assert r["pinhole_via"] == "upnp" and r["pinhole"] == "temporary", r
    assert dports(lab, "miniupnpd") == set()
    kept = check6(lab, "8443", "--upnp", "--keep")[(8443, "tcp")]
    assert kept["verdict"] == "open" and kept["pinhole"] == "kept", kept
    assert dports(lab, "miniupnpd") == {8443}
    listed = lab.tool("upnp", "list", "--json", timeout=60)
    assert listed.returncode == 0, listed.stderr
    ours = [m for m in json.loads(listed.stdout) if m.get("ours")]
    assert any(m["external_port"] == 8443 and m.get("family") == 6 for m in ours), listed.stdout
    gone = lab.tool("upnp", "remove", "8443", "--ipv6", timeout=60)
    assert gone.returncode == 0, gone.stderr
    assert dports(lab, "miniupnpd") == set()


# --------------------------------------------------------------------------- identity


def test_router_identity_from_miniupnpd(lab_factory: Any) -> None:
    lab = lab_factory("home")
    out = lab.tool("diagnose", "--json", timeout=90)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    up = json.loads(out.stdout)["upnp"]
    assert up["router"]["manufacturer"] == LAB_ROUTER_MAKER
    assert up["router"]["model"] == LAB_ROUTER_MODEL
    assert up["router"]["friendly_name"] == "ddns-wizard lab router"
    assert up["router"]["presentation_url"] == f"http://{plan.HOME_GW}/"
    assert up["pcp_available"] is True and up["igd_version"] == 2


def test_upnp_off_says_why_and_pcp_is_there(lab_factory: Any) -> None:
    lab = lab_factory("home", upnp_igd=False)
    out = lab.tool("diagnose", "--json", timeout=90)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    up = json.loads(out.stdout)["upnp"]
    assert up["found"] is False and up["not_found"] == "no-ssdp-answer", up
    assert up["pcp_available"] is True and up["natpmp_available"] is True, up


def test_cgnat_asks_the_carrier_for_pcp_and_says_what_it_answered(lab_factory: Any) -> None:
    """Under CGNAT the hop after the router is the carrier's NAT: the diagnosis asks it for PCP
    (the lab's ISP runs none, so the answer is that nothing listens on 5351)."""
    lab = lab_factory("cgnat")
    out = lab.tool("diagnose", "--json", timeout=90)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    data = json.loads(out.stdout)
    up = data["upnp"]
    assert up["carrier_pcp"] in ("refused", "no-answer"), up
    assert up["carrier_pcp_server"] and up["carrier_pcp_server"] != plan.HOME_GW, up
    assert any(p["name"] == "pcp-carrier" for p in data["probes"]), data["probes"]
    print(up["carrier_pcp"], up["carrier_pcp_server"], up["carrier_pcp_detail"])


def test_upnp_add_list_remove_on_a_router_with_pcp_only(lab_factory: Any) -> None:
    """`upnp add` on a router without UPnP IGD makes a lasting PCP forward, `upnp list` shows it as
    ours, and `upnp remove` deletes it with its own nonce (from the ledger) — in another process."""
    lab = lab_factory("home", upnp_igd=False)
    added = lab.tool("upnp", "add", "8090", timeout=60)
    assert added.returncode == 0, added.stderr
    assert "PCP" in added.stdout and "fixed LAN address" in added.stdout, added.stdout
    assert 8090 in dports(lab, "prerouting_miniupnpd")
    listed = lab.tool("upnp", "list", "--json", timeout=60)
    assert listed.returncode == 0, listed.stderr
    (entry,) = [m for m in json.loads(listed.stdout) if m["external_port"] == 8090]
    assert entry["ours"] and entry["via"] == "pcp" and entry["lease_s"] > 0, entry
    gone = lab.tool("upnp", "remove", "8090", timeout=60)
    assert gone.returncode == 0, gone.stderr
    assert 8090 not in dports(lab, "prerouting_miniupnpd")


def test_carrier_pcp_behind_the_home_router_is_there_but_out_of_reach(lab_factory: Any) -> None:
    """The carrier runs PCP (a miniupnpd on the ISP's CGNAT): the diagnosis finds it at the hop
    after the router, and says the home router's NAT sits in between (ADDRESS_MISMATCH to a test
    request that creates nothing)."""
    lab = lab_factory("cgnat", carrier_pcp=True)
    out = lab.tool("diagnose", "--json", timeout=90)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    up = json.loads(out.stdout)["upnp"]
    assert up["carrier_pcp"] == "address-mismatch", up
    assert up["carrier_pcp_server"] == plan.CGNAT_GW and "PCP proxy" in up["carrier_pcp_detail"], up
    listed = lab.run(["nft", "list", "table", "inet", "carrier"], ns="isp", timeout=10)
    assert "dport" not in listed.stdout  # the test request made nothing on the carrier
