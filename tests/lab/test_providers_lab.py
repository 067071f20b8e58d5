"""`update` and `watch` in the lab, against the provider emulators and the real Knot.

The tool runs as a subprocess in the lab's host namespace (behind the home router's
NAT) with the lab config: the public address comes from the lab echo services, the
"what DNS serves" comparison from Knot (found through unbound), and the updates go
to the dyndns2 / DuckDNS / Cloudflare emulators (which write into Knot over RFC 2136)
or straight to Knot (RFC 2136 + TSIG).  Nothing is mocked.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.lab import plan
from tests.lab.internet import OLD_ADDRESS

pytestmark = pytest.mark.lab

NEW_ISP_ADDRESS = "23.128.64.21"


def dyndns2_host(lab: Any, hostname: str | None = None, password: str | None = None) -> dict[str, Any]:
    acc = lab.internet.accounts["dyndns2"]
    return {"hostname": hostname or acc["hostnames"][0], "provider": "dyndns2", "server": acc["server"],
            "username": acc["username"], "password": password or acc["password"]}


def duckdns_host(lab: Any, token: str | None = None) -> dict[str, Any]:
    acc = lab.internet.accounts["duckdns"]
    return {"hostname": f"{acc['domains'][0]}.{acc['zone']}", "provider": "duckdns", "server": acc["server"],
            "token": token or acc["token"]}


def cloudflare_host(lab: Any) -> dict[str, Any]:
    acc = lab.internet.accounts["cloudflare"]
    return {"hostname": f"home.{acc['zone']}", "provider": "cloudflare", "server": acc["server"],
            "token": acc["token"]}


def rfc2136_host(lab: Any, secret: str | None = None) -> dict[str, Any]:
    acc = lab.internet.accounts["rfc2136"]
    return {"hostname": acc["hostnames"][0], "provider": "rfc2136", "server": acc["server"], "zone": acc["zone"],
            "key_name": acc["key_name"], "key_algorithm": acc["key_algorithm"],
            "tsig_secret": secret or acc["key_secret"]}


def update_json(lab: Any, *args: str) -> tuple[int, list[dict[str, Any]], float, str]:
    started = time.monotonic()
    proc = lab.tool("update", "--json", *args, timeout=90)
    elapsed = time.monotonic() - started
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout), elapsed, proc.stderr


def count(lab: Any, service: str, path_part: str = "", method: str | None = None) -> int:
    return sum(1 for r in lab.internet.requests_log(service)
               if path_part in r["path"] and (method is None or r["method"] == method))


@pytest.fixture
def home(lab_factory):  # type: ignore[no-untyped-def]
    return lab_factory("home")


def test_update_changes_what_knot_serves_then_a_second_update_sends_nothing(home) -> None:  # type: ignore[no-untyped-def]
    lab = home
    public = lab.expected_public_ipv4
    hosts = [dyndns2_host(lab), duckdns_host(lab), cloudflare_host(lab), rfc2136_host(lab)]
    lab.write_config(hosts=hosts)
    for h in hosts:
        assert lab.internet.lookup(h["hostname"]) == [OLD_ADDRESS]

    code, results, elapsed, err = update_json(lab)
    print(f"update wall time (lab, 4 hosts, all changed): {elapsed:.2f} s")
    assert code == 0, (results, err)
    by_host = {r["hostname"]: r for r in results}
    assert {r["result"] for r in results} == {"updated"}, results
    assert by_host[hosts[0]["hostname"]]["code"] == "good"
    assert by_host[hosts[1]["hostname"]]["code"].startswith("OK")
    assert by_host[hosts[3]["hostname"]]["code"] == "NOERROR"
    for h in hosts:
        assert by_host[h["hostname"]]["previous"] == OLD_ADDRESS
        assert by_host[h["hostname"]]["sent"] == public
        assert lab.internet.lookup(h["hostname"]) == [public], h["hostname"]

    # The provider saw our User-Agent, and the token never reached stdout/stderr.
    ua = lab.internet.requests_log("dyndns2")[-1]["user_agent"]
    assert ua.startswith("ddns-wizard/")
    out = json.dumps(results) + err
    for h in hosts:
        for key in ("password", "token", "tsig_secret"):
            if key in h:
                assert h[key] not in out

    # verify (the verify helper's command) agrees, from the authoritative servers' side.
    for h in hosts[:3]:
        proc = lab.tool("verify", h["hostname"], "--expect", public, "--no-ping", "--json", timeout=60)
        assert proc.returncode == 0, proc.stderr
        verdict = json.loads(proc.stdout)
        assert all(a["ok"] for a in verdict["authoritative"]), verdict
        assert verdict["verdict"] == "ok", verdict

    # Second run: DNS already serves the address, so no provider hears from us.
    before = {s: len(lab.internet.requests_log(s)) for s in ("dyndns2", "duckdns", "cloudflare")}
    code, again, elapsed, err = update_json(lab)
    print(f"update wall time (lab, 4 hosts, nothing to do): {elapsed:.2f} s")
    assert code == 0 and {r["result"] for r in again} == {"unchanged"}, again
    assert all(r["sent"] is None and r["code"] is None for r in again)
    after = {s: len(lab.internet.requests_log(s)) for s in ("dyndns2", "duckdns", "cloudflare")}
    assert after == before


def test_dual_stack_update_publishes_a_and_aaaa(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("home", ipv6=True)
    v4, v6 = lab.expected_public_ipv4, lab.host_ipv6
    hosts = [dict(h, ipv6=True) for h in (dyndns2_host(lab), duckdns_host(lab), cloudflare_host(lab),
                                          rfc2136_host(lab))]
    lab.write_config(hosts=hosts)
    code, results, elapsed, err = update_json(lab)
    print(f"update wall time (lab, dual stack, 4 hosts): {elapsed:.2f} s")
    assert code == 0 and {r["result"] for r in results} == {"updated"}, (results, err)
    for h in hosts:
        assert lab.internet.lookup(h["hostname"]) == [v4]
        assert lab.internet.lookup(h["hostname"], "AAAA") == [v6], h["hostname"]
    code, again, _, _ = update_json(lab)
    assert {r["result"] for r in again} == {"unchanged"} and all(r["previous"] == f"{v4},{v6}" for r in again)


def test_a_dns_echo_answering_the_other_family_or_lying_never_gets_published(lab_factory) -> None:  # type: ignore[no-untyped-def]
    """Issue 11: the DNS echo answers an IPv6 address to the IPv4 question (and an IPv4 one
    to the IPv6 question): those answers are discarded, the honest sources decide. Then it
    lies about both families while only one HTTPS echo is left for IPv6: one honest voice
    against one lying voice is no quorum, so the AAAA record is left alone — nothing wrong
    is published."""
    from tests.lab.services.dnsecho import LIE_V4, LIE_V6

    lab = lab_factory("home", ipv6=True)
    v4, v6 = lab.expected_public_ipv4, lab.host_ipv6
    host = dict(dyndns2_host(lab), ipv6=True)
    lab.write_config(hosts=[host])
    lab.internet.set_fault("dns-echo", "wrong-family")
    code, (result,), _, err = update_json(lab)
    assert code == 0 and result["result"] == "updated" and result["sent"] == f"{v4},{v6}", (result, err)
    assert lab.internet.lookup(host["hostname"]) == [v4]
    assert lab.internet.lookup(host["hostname"], "AAAA") == [v6]

    lab.internet.set_fault("dns-echo", "wrong-ip")
    lab.internet.stop_service("echo2")
    lab.internet.set_record(host["hostname"], "A", [OLD_ADDRESS])
    code, (result,), _, err = update_json(lab)
    assert result["sent"] == v4 and LIE_V4 not in json.dumps(result), result
    assert lab.internet.lookup(host["hostname"], "AAAA") == [v6]          # left alone, not the lie
    assert lab.internet.lookup(host["hostname"]) == [v4], (result, err)    # echo1 + STUN outvote the DNS lie
    assert "IPv6 address is uncertain" in result["message"], result


def test_wrong_credentials_fail_clearly_once_and_watch_does_not_retry(home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab = home
    bad_duck = duckdns_host(lab, token="00000000-0000-4000-8000-000000000000")
    lab.write_config(hosts=[dyndns2_host(lab, password="wrong-password"), bad_duck])
    code, results, _, err = update_json(lab)
    assert code == 1
    by_code = {r["code"]: r for r in results}
    assert set(by_code) == {"badauth", "KO"}, results
    assert "rejected the credentials" in by_code["badauth"]["message"] and by_code["badauth"]["fatal"]
    assert "token is wrong" in by_code["KO"]["message"]
    assert "wrong-password" not in json.dumps(results) + err
    assert count(lab, "dyndns2", "/nic/update") == 1 and count(lab, "duckdns", "/update") == 1

    # watch: refuses once per host, then leaves them alone (exit 2: nothing left to do).
    proc = lab.tool("watch", "--interval", "10", "--history", str(tmp_path / "h.jsonl"), timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.count("STOPPED") == 2
    assert count(lab, "dyndns2", "/nic/update") == 2 and count(lab, "duckdns", "/update") == 2
    # ...and a restarted watch with the same configuration sends nothing at all.
    proc = lab.tool("watch", "--interval", "10", "--history", str(tmp_path / "h.jsonl"), timeout=60)
    assert proc.returncode == 2 and "still stopped" in proc.stdout
    assert count(lab, "dyndns2", "/nic/update") == 2 and count(lab, "duckdns", "/update") == 2


def test_cloudflare_token_permission_pitfalls_are_explained(home) -> None:  # type: ignore[no-untyped-def]
    lab = home
    acc = lab.internet.accounts["cloudflare"]
    readonly = dict(cloudflare_host(lab), token=acc["readonly_token"])
    lab.write_config(hosts=[readonly])
    code, (result,), _, err = update_json(lab)
    assert code == 1 and result["fatal"] and result["code"] == "HTTP 403 10000", result
    assert "DNS → Edit" in result["message"]
    # A DNS:Edit token without Zone:Read sees no zones: the message names the missing permission...
    dns_only = dict(cloudflare_host(lab), token=acc["dns_only_token"])
    lab.write_config(hosts=[dns_only])
    code, (result,), _, err = update_json(lab)
    assert code == 1 and result["code"] == "zone-not-found" and "Zone → Zone → Read" in result["message"], result
    # ...and with the zone id configured it works without that permission.
    lab.write_config(hosts=[dict(dns_only, zone=acc["zone"], zone_id=acc["zone_id"])])
    code, (result,), _, err = update_json(lab)
    assert code == 0 and result["result"] == "updated", result
    assert lab.internet.lookup(result["hostname"]) == [lab.expected_public_ipv4]
    for token in (acc["readonly_token"], acc["dns_only_token"]):
        assert token not in err


def test_rfc2136_wrong_key_is_refused_clearly(home) -> None:  # type: ignore[no-untyped-def]
    lab = home
    import base64
    import secrets

    wrong = base64.b64encode(secrets.token_bytes(32)).decode()
    lab.write_config(hosts=[rfc2136_host(lab, secret=wrong)])
    code, (result,), _, err = update_json(lab)
    assert code == 1 and result["result"] == "error" and result["fatal"], result
    assert "TSIG" in result["message"] and "key" in result["message"]
    assert wrong not in json.dumps(result) + err
    assert lab.internet.lookup(result["hostname"]) == [OLD_ADDRESS]


def test_dry_run_names_the_address_and_sends_nothing(home) -> None:  # type: ignore[no-untyped-def]
    lab = home
    lab.write_config(hosts=[dyndns2_host(lab)])
    proc = lab.tool("update", "--dry-run", "--json", timeout=60)
    (result,) = json.loads(proc.stdout)
    assert proc.returncode == 0 and result["code"] == "dry-run", result
    assert f"would send {lab.expected_public_ipv4}" in result["message"] and result["previous"] == OLD_ADDRESS
    assert count(lab, "dyndns2", "/nic/update") == 0


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _history(path: Path) -> list[dict[str, Any]]:
    from checks.history import read_history

    return list(read_history(path).records)


def test_watch_updates_once_per_change_and_stops_an_abused_host(home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab = home
    acc = lab.internet.accounts["dyndns2"]
    good, abused = acc["hostnames"][0], acc["abuse_hostname"]
    # The emulator is "our own" dyndns2 server: no minimum interval, so the test need not wait 5 min.
    outage = acc["outage_hostname"]                      # always answers 911: retry in 30 min, not sooner
    lab.write_config(hosts=[dict(dyndns2_host(lab), min_interval=0), dyndns2_host(lab, hostname=abused),
                            dyndns2_host(lab, hostname=outage)])
    history = tmp_path / "history.jsonl"
    proc = lab.popen([*_tool_argv(lab), "watch", "--interval", "10", "--history", str(history)],
                     env=lab.tool_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def updates(host: str) -> list[dict[str, Any]]:
            return [r for r in _history(history) if r.get("event") == "update" and r.get("hostname") == host]

        _wait_for(lambda: any(r["event"] == "verify" and r["hostname"] == good for r in _history(history))
                  and updates(abused) and updates(outage), 40, "the first updates and their verification")
        assert [u["result"] for u in updates(good)] == ["updated"]
        assert lab.internet.lookup(good) == [lab.expected_public_ipv4]
        assert [u["code"] for u in updates(abused)] == ["abuse"]

        started = time.monotonic()
        lab.set_isp_address(NEW_ISP_ADDRESS)
        _wait_for(lambda: len(updates(good)) == 2 and any(
            r["event"] == "verify" and r.get("expected") == NEW_ISP_ADDRESS for r in _history(history)),
            40, "the watch to notice the new ISP address")
        print(f"watch: address change noticed and published in {time.monotonic() - started:.1f} s (interval 10 s)")
        assert lab.internet.lookup(good) == [NEW_ISP_ADDRESS]
        # Another round: nothing more is sent for either host.
        # A round is seen at the DNS echo, which every round asks first (the HTTPS echoes are
        # not a reliable signal: a round stops waiting for them once a majority agreed).
        rounds = len(lab.internet.requests_log("dns-echo"))
        _wait_for(lambda: len(lab.internet.requests_log("dns-echo")) > rounds, 30, "another round")
        assert len(updates(good)) == 2
        abused_requests = [r for r in lab.internet.requests_log("dyndns2") if r["query"].get("hostname") == abused]
        assert len(abused_requests) == 1
        outage_updates = updates(outage)
        assert [u["code"] for u in outage_updates] == ["911"] and outage_updates[0]["retry_after_s"] >= 1800
        assert len([r for r in lab.internet.requests_log("dyndns2") if r["query"].get("hostname") == outage]) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.count("STOPPED") == 1 and "received SIGTERM" in out
    assert _history(history)[-1]["event"] == "stop"


def _tool_argv(lab: Any) -> list[str]:
    from tests.lab.topology import VENV_BIN

    return [str(VENV_BIN / "ddns-wizard")]


def test_a_watch_killed_and_restarted_does_not_resend(home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Crash (SIGKILL) after an update, restart: the change is not sent again."""
    lab = home
    host = dyndns2_host(lab)
    lab.write_config(hosts=[host])
    history = tmp_path / "history.jsonl"
    argv = [*_tool_argv(lab), "watch", "--interval", "10", "--history", str(history)]

    def started_count() -> int:
        return sum(1 for r in _history(history) if r["event"] == "start")

    first = lab.popen(argv, env=lab.tool_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: any(r["event"] == "verify" for r in _history(history)), 40, "the first update")
    first.kill()
    first.communicate(timeout=10)
    assert count(lab, "dyndns2", "/nic/update") == 1

    second = lab.popen(argv, env=lab.tool_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: started_count() == 2 and _history(history)[-1]["event"] in ("check", "address"),
                  30, "the restarted watch's first round")
        _wait_for(lambda: any(r["event"] == "check" for r in _history(history)), 30, "the DNS check")
    finally:
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=20)
    assert second.returncode == 0, err
    assert count(lab, "dyndns2", "/nic/update") == 1, out
    assert f"DNS already serves {lab.expected_public_ipv4}" in out


PREFLIGHT_SCRIPT = """
import asyncio, json, sys
from checks.config import HostConfig
from checks.providers.registry import preflight
from checks.updater import make_provider_client

async def main():
    out = []
    async with make_provider_client() as client:
        for table in json.loads(sys.stdin.read()):
            h = dict(table)
            host = HostConfig(hostname=h.pop("hostname"), provider=h.pop("provider"), server=h.pop("server", None),
                              token=h.pop("token", None), options=h)
            res = await preflight(host, client)
            out.append({"ok": res.ok, "message": res.message, "spent_update": res.spent_update, "code": res.code})
    print(json.dumps(out))

asyncio.run(main())
"""


def test_preflight_proves_credentials_without_changing_anything(home) -> None:  # type: ignore[no-untyped-def]
    """The engine's pre-flight (the wizard calls it) run in the host namespace against the lab."""
    from tests.lab.topology import VENV_BIN

    lab = home
    import base64
    import secrets

    acc = lab.internet.accounts["cloudflare"]
    tables = [cloudflare_host(lab), dict(cloudflare_host(lab), token=acc["disabled_token"]),
              rfc2136_host(lab), rfc2136_host(lab, secret=base64.b64encode(secrets.token_bytes(32)).decode())]
    proc = lab.run([str(VENV_BIN / "python"), "-c", PREFLIGHT_SCRIPT], env=lab.tool_env, input=json.dumps(tables),
                   timeout=60)
    assert proc.returncode == 0, proc.stderr
    cf_ok, cf_disabled, rfc_ok, rfc_bad = json.loads(proc.stdout)
    assert cf_ok["ok"] and not cf_ok["spent_update"] and OLD_ADDRESS in cf_ok["message"], cf_ok
    assert not cf_disabled["ok"] and "disabled" in cf_disabled["message"], cf_disabled
    assert rfc_ok["ok"] and "Nothing was modified" in rfc_ok["message"], rfc_ok
    assert not rfc_bad["ok"] and "TSIG" in rfc_bad["message"], rfc_bad
    # Nothing changed anywhere.
    assert count(lab, "cloudflare", "", "PATCH") == 0 and count(lab, "cloudflare", "", "POST") == 0
    for h in (tables[0], tables[2]):
        assert lab.internet.lookup(h["hostname"]) == [OLD_ADDRESS]
