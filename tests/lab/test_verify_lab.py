"""`ddns-wizard verify` in the lab, against the real Knot (authoritative) and unbound (recursive).

Records are changed the way a DDNS client changes them: an RFC 2136 update signed
with TSIG, sent with dnspython from inside the host namespace (so it crosses the
lab's router and ISP), or an HTTPS request to the dyndns2 emulator with curl.
Nothing is mocked here; the tool runs as a subprocess in the host namespace with
the lab config (lab endpoints only).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.lab import plan
from tests.lab.internet import OLD_ADDRESS
from tests.lab.services.dnsupdate import Authority, replace_rrset
from tests.lab.services.netns import run_in_netns

pytestmark = pytest.mark.lab

NEW_ADDRESS = "23.128.64.77"


def rfc2136_from_host(lab: Any, fqdn: str, values: list[str], ttl: int) -> None:
    """Replace ``fqdn A`` at Knot with a TSIG-signed RFC 2136 update sent from the host namespace."""
    tsig = lab.internet.tsig
    auth = Authority(plan.AUTH, tsig["name"], tsig["secret"], tsig["algorithm"])
    zone = fqdn.split(".", 1)[1]
    run_in_netns(lab.ns["host"], lambda: asyncio.run(replace_rrset(auth, zone, fqdn, "A", values, ttl)))


def verify_json(lab: Any, *args: str, timeout: float = 60) -> tuple[Any, float]:
    started = time.monotonic()
    proc = lab.tool("verify", *args, "--json", timeout=timeout)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), elapsed


@pytest.fixture
def lab(lab_factory):  # type: ignore[no-untyped-def]
    lab = lab_factory("public")
    lab.write_config()
    return lab


def test_ok_then_propagating_while_unbound_holds_the_old_answer(lab) -> None:  # type: ignore[no-untyped-def]
    host = lab.internet.accounts["dyndns2"]["hostnames"][0]  # starts at OLD_ADDRESS, TTL 60
    # 1. Before the update: authoritative and resolver agree on the old address. This also
    #    primes unbound's cache with it.
    before, elapsed = verify_json(lab, host, "--expect", OLD_ADDRESS, "--no-ping")
    print(f"verify wall time (lab, cold resolver cache): {elapsed:.2f} s")
    assert before["verdict"] == "ok", before
    assert before["authoritative"] and all(a["ok"] and a["answers"] == [OLD_ADDRESS] for a in before["authoritative"])
    assert {r["server"] for r in before["resolvers"]} == {plan.RESOLVER, plan.RESOLVER2}
    assert "11.1.0.54" in before["authoritative"][0]["server"]

    # 2. The update reaches Knot; unbound still serves its cached copy.
    rfc2136_from_host(lab, host, [NEW_ADDRESS], ttl=plan.ZONE_TTL)
    during, elapsed = verify_json(lab, host, "--expect", NEW_ADDRESS, "--no-ping")
    print(f"verify wall time (lab, warm cache): {elapsed:.2f} s")
    assert during["verdict"] == "propagating", during
    assert all(a["answers"] == [NEW_ADDRESS] and a["ok"] for a in during["authoritative"])
    assert all(r["answers"] == [OLD_ADDRESS] and not r["ok"] for r in during["resolvers"])
    assert 0 < during["caches_settle_s"] <= plan.ZONE_TTL
    assert during["expected"] == {"ipv4": NEW_ADDRESS, "ipv6": None}


def test_wait_polls_until_unbound_catches_up(lab) -> None:  # type: ignore[no-untyped-def]
    host = lab.internet.accounts["rfc2136"]["hostnames"][0]
    rfc2136_from_host(lab, host, [OLD_ADDRESS], ttl=4)  # a short TTL keeps the wait short
    primed, _ = verify_json(lab, host, "--expect", OLD_ADDRESS, "--no-ping")
    assert primed["verdict"] == "ok"
    rfc2136_from_host(lab, host, [NEW_ADDRESS], ttl=4)
    started = time.monotonic()
    after, elapsed = verify_json(lab, host, "--expect", NEW_ADDRESS, "--wait", "30", "--no-ping")
    print(f"verify --wait wall time (lab, TTL 4 s): {elapsed:.2f} s")
    assert after["verdict"] == "ok", after
    assert all(r["answers"] == [NEW_ADDRESS] for r in after["resolvers"])
    assert time.monotonic() - started < 30


def test_wait_with_a_wrong_record_stops_and_offers_update(lab) -> None:  # type: ignore[no-untyped-def]
    """Issue 19: `verify --wait` with a wrong record at the authoritative servers waited the whole
    time; now it stops after a short grace and says to update."""
    host = lab.internet.accounts["rfc2136"]["hostnames"][0]
    rfc2136_from_host(lab, host, [OLD_ADDRESS], ttl=4)
    started = time.monotonic()
    proc = lab.tool("verify", host, "--expect", NEW_ADDRESS, "--wait", "120", "--no-ping", timeout=90)
    elapsed = time.monotonic() - started
    print(f"verify --wait 120 with a wrong record (lab): {elapsed:.2f} s")
    assert proc.returncode == 0, proc.stderr
    assert "WRONG ADDRESS" in proc.stdout
    assert "Stopped waiting" in proc.stdout and "Run `ddns-wizard update`" in proc.stdout
    assert elapsed < 40


def test_expected_address_comes_from_the_echo_after_a_dyndns2_update(lab) -> None:  # type: ignore[no-untyped-def]
    account = lab.internet.accounts["dyndns2"]
    host = account["hostnames"][1]  # absent until the first update
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
    missing, _ = verify_json(lab, "--no-ping")
    assert missing["verdict"] == "nxdomain", missing
    # The update as a router's client would send it; the credential goes to curl on stdin, not argv.
    curl_cfg = (
        f'user = "{account["username"]}:{account["password"]}"\n'
        'user-agent = "ddns-wizard-lab-test/1.0 lab@lab-ddns.net"\n'  # No-IP style servers refuse curl/
        f'url = "{account["server"]}/nic/update?hostname={host}&myip={lab.expected_public_ipv4}"\n'
    )
    reply = lab.run(["curl", "-sS", "--cacert", str(lab.ca_path), "-K", "-"], input=curl_cfg)
    assert reply.returncode == 0 and reply.stdout.startswith("good"), reply.stdout + reply.stderr
    # unbound cached the NXDOMAIN above (negative TTL 60): the authoritative servers are right already,
    # the resolvers still say 'no such name' until that negative answer expires.
    after, _ = verify_json(lab, "--no-ping")
    assert after["expected"]["ipv4"] == lab.expected_public_ipv4  # found by the lab's IP echoes
    assert [a["answers"] for a in after["authoritative"]] == [[lab.expected_public_ipv4]]
    assert after["verdict"] == "propagating", after
    assert all(r["rcode"] == "NXDOMAIN" and not r["ok"] for r in after["resolvers"])
    assert 0 < after["caches_settle_s"] <= plan.ZONE_TTL


def test_a_name_that_does_not_exist_is_nxdomain(lab) -> None:  # type: ignore[no-untyped-def]
    data, _ = verify_json(lab, f"nosuch.{plan.DYNDNS2_ZONE}", "--expect", NEW_ADDRESS)
    assert data["verdict"] == "nxdomain"
    assert all(a["rcode"] == "NXDOMAIN" for a in data["authoritative"] + data["resolvers"])
    assert data["ping"]["method"] == "none" and data["ping"]["alive"] is False  # nothing to ping


def test_ping_in_the_lab_as_root(lab) -> None:  # type: ignore[no-untyped-def]
    """The name points at a lab service address; the tool pings it from the host namespace.

    A fresh namespace has net.ipv4.ping_group_range "1 0" (unprivileged ICMP off), so
    as root the raw-socket method is expected.
    """
    host = lab.internet.accounts["rfc2136"]["hostnames"][0]
    rfc2136_from_host(lab, host, [plan.ALLPORTS], ttl=plan.ZONE_TTL)
    data, elapsed = verify_json(lab, host, "--expect", plan.ALLPORTS)
    print(f"verify with ping wall time (lab): {elapsed:.2f} s; ping: {data['ping']}")
    assert data["verdict"] == "ok"
    assert data["ping"]["alive"] is True
    group_range = lab.run(["cat", "/proc/sys/net/ipv4/ping_group_range"]).stdout.split()
    unprivileged_allowed = len(group_range) == 2 and int(group_range[0]) <= 0 <= int(group_range[1])
    assert data["ping"]["method"] == ("icmp-unprivileged" if unprivileged_allowed else "icmp-privileged")
    assert data["ping"]["rtt_ms"] is not None and data["ping"]["rtt_ms"] >= 0

    text = lab.tool("verify", host, "--expect", plan.ALLPORTS)
    assert text.returncode == 0
    assert "OK" in text.stdout and "ICMP echo" in text.stdout


@pytest.fixture
def nobody_dir():  # type: ignore[no-untyped-def]
    """A directory user nobody can use (pytest's tmp_path lives under a root-only directory)."""
    import shutil
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="ddnsw-verify-nobody-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_ping_as_an_ordinary_user_falls_back_to_tcp_connect(lab, nobody_dir) -> None:  # type: ignore[no-untyped-def]
    """Without root and with unprivileged ICMP disabled (a fresh namespace's default), the tool
    says it used a TCP connect; the lab's all-ports target accepts it."""
    import os
    import shutil

    tmp_path = nobody_dir
    host = lab.internet.accounts["rfc2136"]["hostnames"][0]
    rfc2136_from_host(lab, host, [plan.ALLPORTS], ttl=plan.ZONE_TTL)
    nobody = 65534
    config = tmp_path / "config.toml"
    shutil.copy(lab.config_path, config)
    home = tmp_path / "home"
    home.mkdir()
    for p in (tmp_path, config, home):
        os.chown(p, nobody, nobody)
    env = dict(lab.tool_env, DDNS_WIZARD_CONFIG=str(config), HOME=str(home), XDG_CONFIG_HOME=str(home))
    from tests.lab.topology import VENV_BIN

    proc = lab.run(
        [
            "setpriv",
            f"--reuid={nobody}",
            f"--regid={nobody}",
            "--clear-groups",
            str(VENV_BIN / "ddns-wizard"),
            "verify",
            host,
            "--expect",
            plan.ALLPORTS,
            "--json",
        ],
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    print(f"ping as nobody: {data['ping']}")
    assert data["verdict"] == "ok"
    assert data["ping"]["method"] == "tcp-connect" and data["ping"]["alive"] is True


def test_verify_holds_up_on_a_lossy_slow_line(lab_factory) -> None:  # type: ignore[no-untyped-def]
    """10 % loss each way and 20 ms latency between home and ISP: retransmissions keep the verdict right."""
    lab = lab_factory("public", loss_pct=10, latency_ms=20)
    lab.write_config()
    host = lab.internet.accounts["dyndns2"]["hostnames"][0]
    verdicts = []
    for _ in range(3):
        data, elapsed = verify_json(lab, host, "--expect", OLD_ADDRESS, "--no-ping")
        print(f"verify wall time (lab, 10% loss, 20 ms): {elapsed:.2f} s")
        verdicts.append(data["verdict"])
    assert verdicts == ["ok", "ok", "ok"]


def test_a_and_aaaa_from_knot(lab) -> None:  # type: ignore[no-untyped-def]
    """The Cloudflare-zone record has both families: a stale AAAA is wrong-ip even when the A is right."""
    from tests.lab.internet import OLD_ADDRESS_V6

    host = f"home.{plan.CLOUDFLARE_ZONE}"
    both, _ = verify_json(lab, host, "--expect", OLD_ADDRESS, "--expect", OLD_ADDRESS_V6, "--no-ping")
    assert both["verdict"] == "ok", both
    assert sorted(both["authoritative"][0]["answers"]) == sorted([OLD_ADDRESS, OLD_ADDRESS_V6])
    stale_v6, _ = verify_json(lab, host, "--expect", OLD_ADDRESS, "--expect", "2a0c:b641:100:1::100", "--no-ping")
    assert stale_v6["verdict"] == "wrong-ip"
    assert OLD_ADDRESS_V6 in stale_v6["explanation"]
