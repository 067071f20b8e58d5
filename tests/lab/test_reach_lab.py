"""`ddns-wizard reach` in the lab: a real HTTPS service at home, a real router, the real probe server.

The home host runs an HTTPS service (tests/lab/services/https_service.py) with a
certificate from the lab CA (which the tool and the probe server trust, as they
would trust a public CA); the router forwards the port by hand (its admin page,
``Lab.forward_port``), without NAT loopback unless ``Lab.hairpin`` turns it on. The
name lives in the lab's Knot (RFC 2136 zone) and is resolved through unbound — by
the tool and, separately, by the probe server, which connects only to the
requester's own address. Nothing is mocked; the tool runs as a subprocess in the
host namespace with lab endpoints only.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab import plan
from tests.lab.internet import OLD_ADDRESS, Internet

pytestmark = pytest.mark.lab

NAME = f"www.{plan.RFC2136_ZONE}"
PORT = 443
NOW = dt.datetime.now(dt.UTC)


class Service:
    """The HTTPS service on the home host; ``restart(cert)`` swaps its certificate."""

    def __init__(self, lab: Any, ns: str = "host") -> None:
        self.lab = lab
        self.ns = ns
        self.proc: subprocess.Popen[str] | None = None

    def start(self, chain: bytes, key: bytes, port: int = PORT) -> None:
        self.stop()
        d = self.lab.workdir / f"https-service-{self.ns}-{port}"
        d.mkdir(exist_ok=True)
        (d / "chain.pem").write_bytes(chain)
        (d / "key.pem").write_bytes(key)
        self.proc = self.lab.popen(
            [
                sys.executable,
                "-m",
                "tests.lab.services.https_service",
                "--cert",
                str(d / "chain.pem"),
                "--key",
                str(d / "key.pem"),
                "--port",
                str(port),
            ],
            ns=self.ns,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", line

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
        self.proc = None


@pytest.fixture(scope="module")
def home(_lab_session: None) -> Iterator[tuple[Any, Service]]:
    from tests.lab.topology import Lab, Options

    lab = Lab(Options("home")).up()
    try:
        lab.write_config(endpoints_override=Internet.own_prober())
        lab.internet.set_record(NAME, "A", [lab.router_wan_ipv4], ttl=5)
        service = Service(lab)
        service.start(*lab.internet.issue_cert(NAME))
        lab.forward_port(PORT)  # by hand, in the router's admin page
        yield lab, service
        service.stop()
    finally:
        lab.down()


def reach(lab: Any, *args: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    proc = lab.tool("reach", *args, "--json", timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), elapsed


def only_port(data: dict[str, Any]) -> dict[str, Any]:
    assert len(data["ports"]) == 1, data["ports"]
    return data["ports"][0]


def test_reachable_with_a_valid_certificate_and_no_hairpin(home) -> None:  # type: ignore[no-untyped-def]
    lab, _service = home
    data, elapsed = reach(lab, NAME, "443")
    print(f"reach wall time (lab): {elapsed:.2f} s")
    assert data["hostname"] == NAME and data["addresses"] == [lab.router_wan_ipv4]
    assert data["points_here"] is True
    assert data["verdict"] == "reachable", data["findings"]
    p = only_port(data)
    assert p["outside"] == "open"
    assert p["tls"]["ok"] is True and NAME in p["tls"]["names"] and p["tls"]["error"] is None
    assert p["tls"]["issuer"] and p["tls"]["days_left"] > 14
    # From inside, the router's own public address has nothing on 443: no NAT loopback.
    assert p["inside"] == "closed" and p["hairpin"] == "broken"
    ids = [f["id"] for f in data["findings"]]
    assert "hairpin-broken" in ids and "reachable" in ids
    hairpin = next(f for f in data["findings"] if f["id"] == "hairpin-broken")
    assert "split DNS" in hairpin["fix"] and "hosts" in hairpin["fix"]
    # The human view says the same.
    text = lab.tool("reach", NAME).stdout
    assert "REACHABLE" in text and "no NAT loopback" in text


def test_hairpin_on_works(home) -> None:  # type: ignore[no-untyped-def]
    lab, _service = home
    lab.hairpin(PORT)
    data, _ = reach(lab, NAME)  # 443 is the default
    p = only_port(data)
    assert data["verdict"] == "reachable"
    assert p["inside"] == "open" and p["hairpin"] == "works"
    assert "hairpin-broken" not in [f["id"] for f in data["findings"]]


@pytest.mark.parametrize("case", ["expired", "wrong-name", "incomplete-chain"])
def test_certificate_problems_are_named(home, case: str) -> None:  # type: ignore[no-untyped-def]
    lab, service = home
    if case == "expired":
        chain, key = lab.internet.issue_cert(
            NAME, not_before=NOW - dt.timedelta(days=90), not_after=NOW - dt.timedelta(days=2)
        )
    elif case == "wrong-name":
        chain, key = lab.internet.issue_cert(f"other.{plan.RFC2136_ZONE}")
    else:
        full, key = lab.internet.issue_cert(NAME, intermediate=True)
        chain = full.split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"  # leaf only
    try:
        service.start(chain, key)
        data, _ = reach(lab, NAME, "443")
    finally:
        service.start(*lab.internet.issue_cert(NAME))
    p = only_port(data)
    assert p["outside"] == "open"
    assert p["tls"]["ok"] is False and p["tls"]["error"] == case, p["tls"]
    assert data["tls_ok"] is False
    assert data["findings"][0]["id"] == f"tls-{case}" and data["findings"][0]["severity"] == "error"
    if case == "expired":
        assert p["tls"]["days_left"] < 0
    if case == "wrong-name":
        assert p["tls"]["names"] == [f"other.{plan.RFC2136_ZONE}"]


def test_expiring_certificate_is_a_warning(home) -> None:  # type: ignore[no-untyped-def]
    lab, service = home
    try:
        service.start(*lab.internet.issue_cert(NAME, not_after=NOW + dt.timedelta(days=6)))
        data, _ = reach(lab, NAME)
    finally:
        service.start(*lab.internet.issue_cert(NAME))
    p = only_port(data)
    assert data["verdict"] == "reachable" and p["tls"]["ok"] is True and p["tls"]["expiring_soon"] is True
    warn = next(f for f in data["findings"] if f["id"] == "tls-expiring")
    assert warn["severity"] == "warning"


def test_port_not_forwarded_is_unreachable_with_the_port_reasoning(home) -> None:  # type: ignore[no-untyped-def]
    lab, _service = home
    other = 8443
    service2 = Service(lab)
    service2.start(*lab.internet.issue_cert(NAME), port=other)  # it runs at home; nobody forwarded it
    try:
        data, _ = reach(lab, NAME, str(other))
    finally:
        service2.stop()
    p = only_port(data)
    assert data["verdict"] == "unreachable"
    assert p["outside"] in ("closed", "filtered") and p["tls"] is None
    assert p["port_verdict"] in ("blocked-or-not-forwarded", "not-forwarded")
    assert "forward" in p["fix"].lower() and str(other) in p["fix"]
    assert any("answers on" in e and "inside the LAN" in e for e in p["evidence"])  # the service runs
    assert data["findings"][0]["id"] == "reach-port-unreachable"


def test_name_pointing_elsewhere_is_wrong_address(home) -> None:  # type: ignore[no-untyped-def]
    lab, _service = home
    elsewhere = f"elsewhere.{plan.RFC2136_ZONE}"
    lab.internet.set_record(elsewhere, "A", [OLD_ADDRESS], ttl=5)
    data, _ = reach(lab, elsewhere, "443")
    assert data["verdict"] == "wrong-address" and data["points_here"] is False
    assert data["addresses"] == [OLD_ADDRESS]
    assert data["findings"][0]["id"] == "reach-wrong-address"
    assert only_port(data)["outside"] == "unknown"


def test_probe_server_refuses_a_name_that_does_not_resolve_to_the_requester(home) -> None:  # type: ignore[no-untyped-def]
    """Asked directly (curl from the home host): the prober is no scanner of third parties."""
    lab, _service = home
    elsewhere = f"third-party.{plan.RFC2136_ZONE}"
    lab.internet.set_record(elsewhere, "A", [plan.ALLPORTS], ttl=5)  # accepts every port: a tempting target
    url = f"https://{plan.PROBE_NAME}/reach/tcp/443?name={elsewhere}&tls=1"
    proc = lab.run(["curl", "-sS", "--cacert", str(lab.ca_path), "-w", "\n%{http_code}", url], timeout=20)
    body, status = proc.stdout.rsplit("\n", 1)
    assert status == "403", proc.stdout + proc.stderr
    answer = json.loads(body)
    assert answer["code"] == "not-your-address" and answer["addresses"] == [plan.ALLPORTS]
    assert answer["ip"] == lab.router_wan_ipv4
    # ... while the name that does point here is answered.
    ok = lab.run(
        ["curl", "-sS", "--cacert", str(lab.ca_path), f"https://{plan.PROBE_NAME}/reach/tcp/443?name={NAME}"],
        timeout=20,
    )
    assert json.loads(ok.stdout)["result"] == "connected"


def test_no_prober_says_how_to_get_one(home) -> None:  # type: ignore[no-untyped-def]
    lab, _service = home
    config = lab.workdir / "no-prober.toml"
    import tomli_w

    from checks.config import write_private_file

    endpoints = dict(lab.endpoints())
    endpoints.update({"port_check": [], "port_check_v6": []})
    write_private_file(config, tomli_w.dumps({"endpoints": endpoints}).encode())
    proc = lab.tool("reach", NAME, "--json", config=config, timeout=60)
    data = json.loads(proc.stdout)
    assert data["verdict"] == "unknown" and data["points_here"] is True
    f = next(f for f in data["findings"] if f["id"] == "reach-needs-prober")
    assert "ddnsw+https://" in f["fix"] and f["actions"] == ["probe-server"]
    human = " ".join(lab.tool("reach", NAME, config=config, timeout=60).stdout.split())  # wrapped at 80
    assert "Next: ddns-wizard probe-server --listen 0.0.0.0:443 --tls-cert CERT --tls-key KEY" in human


def test_watch_records_reach_results_in_the_history(home, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`[watch] reach = ["443"]`: the real watch updates the name (RFC 2136 to Knot), then checks it
    end to end and writes the result to its history."""
    import signal

    import tomli_w

    from checks.config import write_private_file
    from tests.lab.topology import VENV_BIN

    lab, _service = home
    acc = lab.internet.accounts["rfc2136"]
    host = {
        "hostname": acc["hostnames"][0],
        "provider": "rfc2136",
        "server": acc["server"],
        "zone": acc["zone"],
        "key_name": acc["key_name"],
        "key_algorithm": acc["key_algorithm"],
        "tsig_secret": acc["key_secret"],
    }
    endpoints = dict(lab.endpoints())
    endpoints.update(Internet.own_prober())
    config = lab.workdir / "watch-reach.toml"
    write_private_file(
        config, tomli_w.dumps({"endpoints": endpoints, "hosts": [host], "watch": {"reach": ["443"]}}).encode()
    )
    history = tmp_path / "history.jsonl"
    env = dict(lab.tool_env, DDNS_WIZARD_CONFIG=str(config))
    proc = lab.popen(
        [str(VENV_BIN / "ddns-wizard"), "watch", "--interval", "10", "--history", str(history)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def reach_records() -> list[dict[str, Any]]:
        if not history.exists():
            return []
        return [
            json.loads(line)
            for line in history.read_text().splitlines()
            if line.strip() and json.loads(line).get("event") == "reach"
        ]

    try:
        deadline = time.monotonic() + 40
        while not reach_records() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        records = reach_records()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert records, f"no reach record; watch said: {out} {err}"
    r = records[0]
    assert r["hostname"] == acc["hostnames"][0] and r["verdict"] == "reachable", r
    assert r["ports"][0]["outside"] == "open" and r["ports"][0]["tls_ok"] is False  # the cert names www.*
    assert r["ports"][0]["tls_error"] == "wrong-name"
    assert "tls-wrong-name" in r["findings"]
    assert f"{acc['hostnames'][0]}: reach reachable" in out
    assert acc["key_secret"] not in history.read_text()


def test_dual_stack_name_is_tested_over_both_families(_lab_session: None) -> None:  # type: ignore[no-untyped-def]
    """A name with A and AAAA: friends on IPv6 use the AAAA, so it is tested too. The home router's
    IPv6 firewall drops new inbound connections (as home routers do) until the port is allowed."""
    from tests.lab.topology import Lab, Options

    lab = Lab(Options("home", ipv6=True)).up()
    try:
        lab.write_config(endpoints_override=Internet.own_prober())
        lab.internet.set_record(NAME, "A", [lab.router_wan_ipv4], ttl=1)
        lab.internet.set_record(NAME, "AAAA", [lab.host_ipv6], ttl=1)
        service = Service(lab)
        service.start(*lab.internet.issue_cert(NAME))
        lab.forward_port(PORT)
        data, _ = reach(lab, NAME)
        by_family = {p["family"]: p for p in data["ports"]}
        assert set(by_family) == {4, 6}, data["ports"]
        assert by_family[4]["outside"] == "open" and by_family[6]["outside"] == "filtered"
        assert by_family[6]["address"] == lab.host_ipv6
        assert data["verdict"] == "unreachable"  # IPv6 visitors cannot get in
        assert any(f["id"] == "reach-port-unreachable" and "IPv6" in f["detail"] for f in data["findings"])

        lab.allow_inbound_v6(PORT)
        lab.internet.flush_resolver()
        data, _ = reach(lab, NAME)
        by_family = {p["family"]: p for p in data["ports"]}
        assert data["verdict"] == "reachable", data["findings"]
        assert by_family[6]["outside"] == "open" and by_family[6]["tls"]["ok"] is True
        service.stop()
    finally:
        lab.down()


def test_behind_carrier_grade_nat_the_name_is_unreachable(_lab_session: None) -> None:  # type: ignore[no-untyped-def]
    """The name points at the ISP's shared address (what every IP echo sees): the forward at home
    is there, yet nothing gets in."""
    from tests.lab.topology import Lab, Options

    lab = Lab(Options("cgnat")).up()
    try:
        lab.write_config(endpoints_override=Internet.own_prober())
        lab.internet.set_record(NAME, "A", [lab.expected_public_ipv4], ttl=1)
        service = Service(lab)
        service.start(*lab.internet.issue_cert(NAME))
        lab.forward_port(PORT)
        data, _ = reach(lab, NAME)
        service.stop()
    finally:
        lab.down()
    assert data["points_here"] is True and data["addresses"] == [lab.expected_public_ipv4]
    assert data["verdict"] == "unreachable"
    p = only_port(data)
    assert p["outside"] in ("closed", "filtered")
    assert any("no forward at home can help: a full diagnosis tells" in e for e in p["evidence"])
    f = next(f for f in data["findings"] if f["id"] == "reach-port-unreachable")
    assert "diagnose" in f["actions"]  # the command line prints it as `Next: ddns-wizard diagnose`


def test_router_admin_page_on_its_own_address_is_no_hairpin(_lab_session: None) -> None:  # type: ignore[no-untyped-def]
    """Many routers without NAT loopback answer their public address from the LAN with their own
    web page: the connection works, but reaches the router. The certificate tells them apart."""
    from tests.lab.topology import Lab, Options

    lab = Lab(Options("home")).up()
    try:
        lab.write_config(endpoints_override=Internet.own_prober())
        lab.internet.set_record(NAME, "A", [lab.router_wan_ipv4], ttl=1)
        service = Service(lab)
        service.start(*lab.internet.issue_cert(NAME))
        lab.forward_port(PORT)
        admin = Service(lab, ns="router")  # the router's own HTTPS admin page
        admin.start(*lab.internet.issue_cert("router.lan", lab.router_wan_ipv4))
        data, _ = reach(lab, NAME)
        admin.stop()
        service.stop()
    finally:
        lab.down()
    p = only_port(data)
    assert data["verdict"] == "reachable" and p["tls"]["ok"] is True
    assert p["inside"] == "open" and p["hairpin"] == "broken"
    assert any("admin page" in e for e in p["evidence"])
