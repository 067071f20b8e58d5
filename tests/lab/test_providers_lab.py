"""`update` and `watch` in the lab, against the provider emulators and the real Knot.

The tool runs as a subprocess in the lab's host namespace (behind the home router's
NAT) with the lab config: the public address comes from the lab echo services, the
"what DNS serves" comparison from Knot (found through unbound), and the updates go
to the dyndns2 / DuckDNS / Cloudflare emulators (which write into Knot over RFC 2136)
or straight to Knot (RFC 2136 + TSIG).  Nothing is mocked.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.lab.internet import OLD_ADDRESS

pytestmark = pytest.mark.lab

NEW_ISP_ADDRESS = "23.128.64.21"


def dyndns2_host(lab: Any, hostname: str | None = None, password: str | None = None) -> dict[str, Any]:
    acc = lab.internet.accounts["dyndns2"]
    return {
        "hostname": hostname or acc["hostnames"][0],
        "provider": "dyndns2",
        "server": acc["server"],
        "username": acc["username"],
        "password": password or acc["password"],
    }


def duckdns_host(lab: Any, token: str | None = None) -> dict[str, Any]:
    acc = lab.internet.accounts["duckdns"]
    return {
        "hostname": f"{acc['domains'][0]}.{acc['zone']}",
        "provider": "duckdns",
        "server": acc["server"],
        "token": token or acc["token"],
    }


def cloudflare_host(lab: Any) -> dict[str, Any]:
    acc = lab.internet.accounts["cloudflare"]
    return {"hostname": f"home.{acc['zone']}", "provider": "cloudflare", "server": acc["server"], "token": acc["token"]}


def rfc2136_host(lab: Any, secret: str | None = None) -> dict[str, Any]:
    acc = lab.internet.accounts["rfc2136"]
    return {
        "hostname": acc["hostnames"][0],
        "provider": "rfc2136",
        "server": acc["server"],
        "zone": acc["zone"],
        "key_name": acc["key_name"],
        "key_algorithm": acc["key_algorithm"],
        "tsig_secret": secret or acc["key_secret"],
    }


def update_json(lab: Any, *args: str) -> tuple[int, list[dict[str, Any]], float, str]:
    started = time.monotonic()
    proc = lab.tool("update", "--json", *args, timeout=90)
    elapsed = time.monotonic() - started
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout), elapsed, proc.stderr


def count(lab: Any, service: str, path_part: str = "", method: str | None = None) -> int:
    return sum(
        1
        for r in lab.internet.requests_log(service)
        if path_part in r["path"] and (method is None or r["method"] == method)
    )


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
    assert ua.startswith("ddns-wizard ddns-wizard/") and "@" in ua  # No-IP's "Company Program/Version e-mail"
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
    hosts = [
        dict(h, ipv6=True) for h in (dyndns2_host(lab), duckdns_host(lab), cloudflare_host(lab), rfc2136_host(lab))
    ]
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
    from tests.lab.services.dnsecho import LIE_V4

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
    assert lab.internet.lookup(host["hostname"], "AAAA") == [v6]  # left alone, not the lie
    assert lab.internet.lookup(host["hostname"]) == [v4], (result, err)  # echo1 + STUN outvote the DNS lie
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
    # A token scoped to another zone sees none: the message says where to include the zone...
    elsewhere = secrets.token_urlsafe(30)
    lab.internet._control(
        "POST", "/cloudflare/tokens", {"token": elsewhere, "perms": ["dns:read", "dns:edit"], "zones": ["0" * 32]}
    )
    lab.write_config(hosts=[dict(cloudflare_host(lab), token=elsewhere)])
    code, (result,), _, err = update_json(lab)
    assert code == 1 and result["code"] == "zone-not-found" and "Zone Resources" in result["message"], result
    # ...while Zone → DNS → Edit alone is enough (favonia needs nothing else): no Zone → Zone → Read.
    dns_only = dict(cloudflare_host(lab), token=acc["dns_only_token"])
    lab.write_config(hosts=[dns_only])
    code, (result,), _, err = update_json(lab)
    assert code == 0 and result["result"] == "updated", result
    assert lab.internet.lookup(result["hostname"]) == [lab.expected_public_ipv4]
    for token in (acc["readonly_token"], acc["dns_only_token"], elsewhere):
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
    from checks.ddns.history import read_history

    return list(read_history(path).records)


def test_watch_updates_once_per_change_and_stops_an_abused_host(home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab = home
    acc = lab.internet.accounts["dyndns2"]
    good, abused = acc["hostnames"][0], acc["abuse_hostname"]
    # The emulator is "our own" dyndns2 server: no minimum interval, so the test need not wait 5 min.
    outage = acc["outage_hostname"]  # always answers 911: retry in 30 min, not sooner
    lab.write_config(
        hosts=[
            dict(dyndns2_host(lab), min_interval=0),
            dyndns2_host(lab, hostname=abused),
            dyndns2_host(lab, hostname=outage),
        ]
    )
    history = tmp_path / "history.jsonl"
    proc = lab.popen(
        [*_tool_argv(lab), "watch", "--interval", "10", "--history", str(history)],
        env=lab.tool_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def updates(host: str) -> list[dict[str, Any]]:
            return [r for r in _history(history) if r.get("event") == "update" and r.get("hostname") == host]

        _wait_for(
            lambda: (
                any(r["event"] == "verify" and r["hostname"] == good for r in _history(history))
                and updates(abused)
                and updates(outage)
            ),
            40,
            "the first updates and their verification",
        )
        assert [u["result"] for u in updates(good)] == ["updated"]
        assert lab.internet.lookup(good) == [lab.expected_public_ipv4]
        assert [u["code"] for u in updates(abused)] == ["abuse"]

        started = time.monotonic()
        lab.set_isp_address(NEW_ISP_ADDRESS)
        _wait_for(
            lambda: (
                len(updates(good)) == 2
                and any(r["event"] == "verify" and r.get("expected") == NEW_ISP_ADDRESS for r in _history(history))
            ),
            40,
            "the watch to notice the new ISP address",
        )
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
        _wait_for(
            lambda: started_count() == 2 and _history(history)[-1]["event"] in ("check", "address"),
            30,
            "the restarted watch's first round",
        )
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
from checks.ddns.providers.registry import preflight
from checks.ddns.updater import make_provider_client

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
    tables = [
        cloudflare_host(lab),
        dict(cloudflare_host(lab), token=acc["disabled_token"]),
        rfc2136_host(lab),
        rfc2136_host(lab, secret=base64.b64encode(secrets.token_bytes(32)).decode()),
    ]
    proc = lab.run(
        [str(VENV_BIN / "python"), "-c", PREFLIGHT_SCRIPT], env=lab.tool_env, input=json.dumps(tables), timeout=60
    )
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


# ---------------------------------------------------------------------- provider quirks (issue 12)
def cf_seed(lab: Any, rtype: str, name: str, content: str, **kw: Any) -> dict[str, Any]:
    """A record made "in the dashboard" (the emulator writes it into Knot)."""
    return lab.internet._control(
        "POST",
        "/cloudflare/records",  # type: ignore[no-any-return]
        {"type": rtype, "name": name, "content": content, **kw},
    )


def cf_writes(lab: Any) -> list[tuple[str, str]]:
    return [
        (r["method"], r["path"])
        for r in lab.internet.requests_log("cloudflare")
        if r["method"] in ("POST", "PATCH", "PUT", "DELETE")
    ]


def test_cloudflare_proxied_record_is_compared_and_verified_through_the_api(home) -> None:  # type: ignore[no-untyped-def]
    """Public DNS answers Cloudflare's edge for a proxied name: update and verify read the API record."""
    from tests.lab.services.emulators import PROXY_V4

    lab = home
    public = lab.expected_public_ipv4
    acc = lab.internet.accounts["cloudflare"]
    host = dict(cloudflare_host(lab), hostname=f"proxied.{acc['zone']}")
    lab.write_config(hosts=[host])
    assert lab.internet.lookup(host["hostname"]) == [PROXY_V4]

    code, (first,), _, err = update_json(lab)
    assert code == 0 and first["result"] == "updated" and first["previous"] == OLD_ADDRESS, (first, err)
    record = next(r for r in lab.internet.cloudflare_records() if r["name"] == host["hostname"])
    assert record["content"] == public and record["proxied"] is True
    assert lab.internet.lookup(host["hostname"]) == [PROXY_V4]  # still the edge, by design

    # Next round: DNS still shows the edge, the API holds our address: nothing is written.
    writes = len(cf_writes(lab))
    code, (again,), _, _ = update_json(lab)
    assert code == 0 and again["result"] == "unchanged" and again["sent"] is None, again
    assert "proxied" in again["message"] and PROXY_V4 in again["message"]
    assert len(cf_writes(lab)) == writes

    proc = lab.tool("verify", host["hostname"], "--expect", public, "--no-ping", "--json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    verdict = json.loads(proc.stdout)
    assert verdict["verdict"] == "ok", verdict
    assert verdict["provider_record"] == {"source": "cloudflare-api", "proxied": ["A"], "ipv4": [public], "ipv6": []}
    assert "edge" in verdict["explanation"] and PROXY_V4 in verdict["explanation"]
    assert verdict["authoritative"][0]["answers"] == [PROXY_V4]
    assert acc["token"] not in proc.stdout + proc.stderr


def test_cloudflare_stale_records_of_a_name_are_removed_and_kept_ones_stay(home) -> None:  # type: ignore[no-untyped-def]
    lab = home
    public = lab.expected_public_ipv4
    acc = lab.internet.accounts["cloudflare"]
    name = f"home.{acc['zone']}"
    stale, kept = "23.128.64.98", "198.51.100.7"
    cf_seed(lab, "A", name, stale)
    cf_seed(lab, "A", name, kept)
    assert sorted(lab.internet.lookup(name)) == sorted([OLD_ADDRESS, stale, kept])
    lab.write_config(hosts=[dict(cloudflare_host(lab), keep_addresses=[kept])])

    code, (result,), _, err = update_json(lab)
    assert code == 0 and result["result"] == "updated", (result, err)
    assert sorted(lab.internet.lookup(name)) == sorted([public, kept])  # Knot serves the reconciled set
    assert [m for m, _ in cf_writes(lab)] == ["PATCH", "DELETE"]  # one recycled, one deleted
    assert "Kept 198.51.100.7" in result["message"]

    code, (again,), _, _ = update_json(lab)
    assert again["result"] == "unchanged" and len(cf_writes(lab)) == 2, again

    # Without keep_addresses the extra record is stale too: the next update removes it.
    lab.write_config(hosts=[cloudflare_host(lab)])
    code, (last,), _, _ = update_json(lab)
    assert last["result"] == "updated" and lab.internet.lookup(name) == [public], last
    assert kept in last["message"]


def test_cloudflare_idn_zone_answered_in_unicode(home) -> None:  # type: ignore[no-untyped-def]
    """An IDN zone (API name in Unicode), a Unicode hostname in the configuration."""
    lab = home
    public = lab.expected_public_ipv4
    acc = lab.internet.accounts["cloudflare"]
    zone = lab.internet._control("POST", "/cloudflare/zones", {"name": f"bücher.{acc['zone']}"})
    ascii_name = f"heim.xn--bcher-kva.{acc['zone']}"
    cf_seed(lab, "A", ascii_name, OLD_ADDRESS, zone_id=zone["id"])
    lab.write_config(hosts=[dict(cloudflare_host(lab), hostname=f"Heim.Bücher.{acc['zone']}")])

    code, (result,), _, err = update_json(lab)
    assert code == 0 and result["result"] == "updated", (result, err)
    assert result["hostname"] == ascii_name
    assert lab.internet.lookup(ascii_name) == [public]
    asked = [r["query"].get("name") for r in lab.internet.requests_log("cloudflare") if r["path"].endswith("/zones")]
    assert f"xn--bcher-kva.{acc['zone']}" in asked  # asked in Punycode...
    zones = [json.loads(r["body"]) for r in lab.internet.requests_log("cloudflare") if r["path"].endswith("/zones")]
    assert any(
        z["result"] and z["result"][0]["name"] == f"bücher.{acc['zone']}" for z in zones
    )  # ...answered in Unicode
    patch = [p for m, p in cf_writes(lab) if m == "PATCH"]
    assert patch and f"/zones/{zone['id']}/" in patch[0]


def test_rfc2136_stale_round_robin_is_replaced_and_kept_addresses_stay(home) -> None:  # type: ignore[no-untyped-def]
    lab = home
    public = lab.expected_public_ipv4
    host = rfc2136_host(lab)
    name, stale, kept = host["hostname"], "23.128.64.98", "198.51.100.7"
    lab.internet.set_record(name, "A", [public, stale])
    lab.write_config(hosts=[host])
    code, (result,), _, err = update_json(lab)
    # DNS already served our address, but beside a stale one: not "unchanged".
    assert code == 0 and result["result"] == "updated" and stale in result["message"], (result, err)
    assert lab.internet.lookup(name) == [public]

    lab.internet.set_record(name, "A", [OLD_ADDRESS, stale, kept])
    lab.write_config(hosts=[dict(host, keep_addresses=[kept])])
    code, (result,), _, err = update_json(lab)
    assert code == 0 and result["result"] == "updated", (result, err)
    assert sorted(lab.internet.lookup(name)) == sorted([public, kept])
    code, (again,), _, _ = update_json(lab)
    assert again["result"] == "unchanged" and again["sent"] is None, again


def test_dyndns2_refused_agent_and_badagent(home) -> None:  # type: ignore[no-untyped-def]
    """`good 127.0.0.1` (the update was ignored) is an error that stops the host; the tool's
    User-Agent passes the No-IP-style check that the old one failed (badagent)."""
    from checks.ddns.providers.base import user_agent
    from tests.lab.topology import VENV_BIN

    lab = home
    acc = lab.internet.accounts["dyndns2"]
    host = dyndns2_host(lab)
    lab.write_config(hosts=[host])
    lab.internet.set_fault("dyndns2", "agent-refused")
    code, (result,), _, err = update_json(lab)
    assert code == 1 and result["result"] == "error" and result["fatal"], (result, err)
    assert result["code"] == "good 127.0.0.1" and "ignored the update" in result["message"]
    assert lab.internet.lookup(host["hostname"]) == [OLD_ADDRESS]  # nothing was changed
    lab.internet.set_fault("dyndns2", None)

    ask = (
        "import httpx, sys\n"
        "r = httpx.get(sys.argv[1] + '/nic/update', params={'hostname': sys.argv[2]}, auth=(sys.argv[3], sys.argv[4]),"
        " headers={'User-Agent': sys.argv[5]}, verify=sys.argv[6], timeout=5)\n"
        "print(r.text.strip())\n"
    )
    old_agent = "ddns-wizard/0.1.0 https://github.com/ddns-wizard/ddns-wizard"  # before issue 12
    for agent, want in ((old_agent, "badagent"), ("python-httpx/0.28", "badagent"), (user_agent(), "good")):
        proc = lab.run(
            [
                str(VENV_BIN / "python"),
                "-c",
                ask,
                acc["server"],
                host["hostname"],
                acc["username"],
                acc["password"],
                agent,
                str(lab.internet.ca_path),
            ],
            timeout=30,
        )
        assert proc.stdout.split(" ")[0].strip() == want, (agent, proc.stdout, proc.stderr)
    assert lab.internet.lookup(host["hostname"]) == [lab.expected_public_ipv4]
