"""The lab internet's services, measured from the lab host with ordinary clients.

Every request starts in the host namespace and crosses the lab's router/ISP
(NAT where the topology has one), like the tool's own traffic would. Clients are
curl and small Python one-liners (dnspython, raw sockets); nothing here imports
the product except where the product *is* the service (the probe server).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from . import plan

pytestmark = pytest.mark.lab
PY = sys.executable


# ---------------------------------------------------------------------- small clients
def curl(lab: Any, url: str, *args: str, timeout: float = 5, discard_body: bool = False) -> tuple[int, str]:
    """(HTTP status, body) of one request from the lab host; status 0 when no answer."""
    result = lab.run(
        [
            "curl",
            "-s",
            "--cacert",
            str(lab.internet.ca_path),
            "--max-time",
            str(timeout),
            "-w",
            "\n%{http_code}",
            *(["-o", "/dev/null"] if discard_body else []),
            *args,
            url,
        ],
        timeout=timeout + 10,
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status or 0), body


def py(lab: Any, code: str, *args: str, timeout: float = 20) -> Any:
    """Run a Python snippet in the lab host namespace; it prints JSON, we return it."""
    result = lab.run([PY, "-c", textwrap.dedent(code), *args], timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


DNS_QUERY = """
import json, sys, dns.message, dns.query, dns.rdataclass, dns.rcode
server, name, rtype, rclass = sys.argv[1:5]
q = dns.message.make_query(name, rtype, rdclass=dns.rdataclass.from_text(rclass))
try:
    r = (dns.query.tcp if len(sys.argv) > 5 else dns.query.udp)(q, server, timeout=3)
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__})); sys.exit(0)
print(json.dumps({"rcode": dns.rcode.to_text(r.rcode()),
                  "answers": [rd.to_text().strip('"') for rrset in r.answer for rd in rrset],
                  "ttl": [rrset.ttl for rrset in r.answer]}))
"""


def dig(lab: Any, server: str, name: str, rtype: str = "A", rclass: str = "IN", tcp: bool = False) -> dict[str, Any]:
    return py(lab, DNS_QUERY, server, name, rtype, rclass, *(["tcp"] if tcp else []))  # type: ignore[no-any-return]


STUN_TWO = """
import json, os, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); s.bind(("0.0.0.0", 0))
out = []
for server in sys.argv[1:]:
    txid = os.urandom(12)
    s.sendto(struct.pack("!HHI", 1, 0, 0x2112A442) + txid, (server, 3478))
    data, _ = s.recvfrom(2048)
    pos, mapped = 20, None
    while pos + 4 <= len(data):
        t, l = struct.unpack("!HH", data[pos:pos+4]); v = data[pos+4:pos+4+l]
        if t == 0x20:
            mapped = [socket.inet_ntoa(struct.pack("!I", struct.unpack("!I", v[4:8])[0] ^ 0x2112A442)),
                      struct.unpack("!H", v[2:4])[0] ^ 0x2112]
        pos += 4 + l + (-l % 4)
    out.append({"server": server, "txid_ok": data[8:20] == txid, "mapped": mapped})
print(json.dumps(out))
"""


def dyndns2_get(
    lab: Any,
    query: str,
    *,
    user: str | None = None,
    password: str | None = None,
    agent: str = "ddns-wizard-labtest/1.0 lab@example.invalid",
) -> tuple[int, str]:
    account = lab.internet.accounts["dyndns2"]
    args = ["-A", agent] if agent else ["-H", "User-Agent:"]
    if user is not None:
        args += ["-u", f"{user}:{password}"]
    return curl(lab, f"{account['server']}/nic/update?{query}", *args)


# ---------------------------------------------------------------------- IP echo, DNS echo, STUN
def test_https_echoes_report_the_nat_public_address(lab_home: Any) -> None:
    for url in lab_home.internet.endpoints()["ip_echo"]:
        assert curl(lab_home, url) == (200, lab_home.expected_public_ipv4 + "\n")


def test_https_echo_is_trusted_only_through_the_lab_ca(lab_home: Any) -> None:
    result = lab_home.run(
        ["curl", "-s", "--max-time", "5", "--capath", "/nonexistent", "--cacert", "/dev/null", f"https://{plan.ECHO1}/"]
    )
    assert result.returncode != 0  # TLS verification fails without the lab CA


def test_dns_echo_answers_the_three_styles_over_udp_and_tcp(lab_home: Any) -> None:
    public = lab_home.expected_public_ipv4
    assert dig(lab_home, plan.DNS_ECHO, "myip.opendns.com")["answers"] == [public]
    assert dig(lab_home, plan.DNS_ECHO, "whoami.cloudflare", "TXT", "CH")["answers"] == [public]
    assert dig(lab_home, plan.DNS_ECHO, "o-o.myaddr.l.google.com", "TXT")["answers"] == [public]
    assert dig(lab_home, plan.DNS_ECHO, "myip.opendns.com", tcp=True)["answers"] == [public]
    assert dig(lab_home, plan.DNS_ECHO, "whoami.cloudflare", "TXT", "IN")["rcode"] == "NXDOMAIN"
    assert dig(lab_home, plan.DNS_ECHO, "example.org")["rcode"] == "REFUSED"


def test_stun_binding_from_one_socket_to_both_addresses(lab_home: Any) -> None:
    """The NAT-behaviour probe: one socket, two STUN addresses, both answer with the mapping."""
    answers = py(lab_home, STUN_TWO, plan.STUN1, plan.STUN2)
    assert [a["txid_ok"] for a in answers] == [True, True]
    assert [a["mapped"][0] for a in answers] == [lab_home.expected_public_ipv4] * 2
    # the router's masquerade keeps one mapping for one socket (endpoint-independent)
    assert answers[0]["mapped"][1] == answers[1]["mapped"][1]


def test_stun_under_cgnat_reports_the_pool_address(lab_cgnat: Any) -> None:
    answers = py(lab_cgnat, STUN_TWO, plan.STUN1, plan.STUN2)
    assert [a["mapped"][0] for a in answers] == [plan.CGNAT_POOL_IP] * 2


# ---------------------------------------------------------------------- all-ports target
ALLPORTS = """
import json, socket, sys
out = {}
for port in (25, 80, 443, 8080, 51820, 65000):
    try:
        socket.create_connection((sys.argv[1], port), timeout=2).close(); out[port] = "open"
    except OSError as exc:
        out[port] = type(exc).__name__
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(2)
u.sendto(b"wg-probe", (sys.argv[1], 51820))
data, src = u.recvfrom(100)
out["udp"] = [data.decode(), src[1]]
print(json.dumps(out))
"""


def test_all_ports_target_accepts_every_tcp_port_and_echoes_udp(lab_home: Any) -> None:
    out = py(lab_home, ALLPORTS, plan.ALLPORTS)
    assert {k: v for k, v in out.items() if k != "udp"} == {
        p: "open" for p in ("25", "80", "443", "8080", "51820", "65000")
    }
    assert out["udp"] == ["wg-probe", 51820]


# ---------------------------------------------------------------------- probe server
LISTEN_AND_PROBE = """
import json, socket, sys, threading, urllib.request, ssl
ctx = ssl.create_default_context(cafile=sys.argv[1])
base = sys.argv[2]
tcp = socket.socket(); tcp.bind(("0.0.0.0", 0)); tcp.listen(4)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("0.0.0.0", 0))
def serve_tcp():
    c, _ = tcp.accept(); c.sendall(b"DDNSW nonce-7\\n"); c.close()
def serve_udp():
    data, addr = udp.recvfrom(200); udp.sendto(b"ACK " + data, addr)
threading.Thread(target=serve_tcp, daemon=True).start()
threading.Thread(target=serve_udp, daemon=True).start()
closed = socket.socket(); closed.bind(("0.0.0.0", 0)); closed_port = closed.getsockname()[1]; closed.close()
def get(path):
    with urllib.request.urlopen(base + path, context=ctx, timeout=10) as r:
        return json.load(r)
print(json.dumps({
    "tcp": get(f"/probe/tcp/{tcp.getsockname()[1]}"),
    "udp": get(f"/probe/udp/{udp.getsockname()[1]}?token=tok9"),
    "closed": get(f"/probe/tcp/{closed_port}"),
    "echoip": get(f"/port/{closed_port}"),
}))
"""


def test_probe_server_dials_back_the_public_host(lab_public: Any) -> None:
    """On `public` the host holds its address: the probe server reaches its listeners."""
    out = py(lab_public, LISTEN_AND_PROBE, str(lab_public.internet.ca_path), lab_public.internet.probe_url)
    public = lab_public.expected_public_ipv4
    assert out["tcp"]["result"] == "connected" and out["tcp"]["banner"] == "DDNSW nonce-7\n"
    assert out["tcp"]["ip"] == public
    assert out["udp"]["result"] == "replied" and out["udp"]["banner"] == "ACK DDNSW-PROBE tok9\n"
    assert out["closed"]["result"] == "refused"
    assert out["echoip"] == {"ip": public, "port": out["echoip"]["port"], "reachable": False}


def test_probe_server_cannot_reach_through_home_nat(lab_home: Any) -> None:
    """Behind the home router without a forward, the same listeners are out of reach."""
    out = py(lab_home, LISTEN_AND_PROBE, str(lab_home.internet.ca_path), lab_home.internet.probe_url, timeout=40)
    assert out["tcp"]["ip"] == lab_home.expected_public_ipv4
    assert out["tcp"]["result"] in ("refused", "timeout") and out["tcp"]["banner"] is None
    assert out["udp"]["result"] == "timeout"
    assert out["echoip"]["reachable"] is False


ABUSE = """
import asyncio, json, sys, httpx
ca, base = sys.argv[1], sys.argv[2]
async def main():
    codes = []
    # 16 connections: the server's cap per client address (more are refused with 429, or
    # closed unanswered once 16 refusals are under way: tests/test_probe_server.py).
    async with httpx.AsyncClient(verify=ca, base_url=base, timeout=15,
                                 limits=httpx.Limits(max_connections=16)) as c:
        async def one(i):
            path = ["/port/0", "/port/abc", "/port/65536", "/probe/udp/53", "/probe/tcp/22",
                    "/port/11.1.0.30:80", "/" + "x" * 3000, "/probe/tcp/80?host=11.1.0.30"][i % 8]
            try:
                r = await c.get(path, headers={"X-Forwarded-For": "11.1.0.30"})
                return r.status_code, (r.json().get("ip") if r.headers.get("content-type", "").startswith("application/json") else None)
            except httpx.HTTPError as exc:
                return -1, type(exc).__name__
        for _ in range(4):
            codes += await asyncio.gather(*(one(i) for i in range(60)))
        await asyncio.sleep(1.2)
        after = await c.get("/ip")
    print(json.dumps({"codes": codes, "after": [after.status_code, after.text]}))
asyncio.run(main())
"""


def test_probe_server_survives_abuse_and_never_dials_a_third_party(lab_public: Any) -> None:
    out = py(lab_public, ABUSE, str(lab_public.internet.ca_path), lab_public.internet.probe_url, timeout=120)
    statuses = [code for code, _ in out["codes"]]
    assert -1 not in statuses  # every request got an answer
    assert 429 in statuses and 400 in statuses  # limited and validated
    assert not [s for s in statuses if s >= 500 and s != 503]
    dialed = {ip for code, ip in out["codes"] if code == 200 and ip}
    assert dialed <= {lab_public.expected_public_ipv4}
    assert out["after"] == [200, lab_public.expected_public_ipv4 + "\n"]


# ---------------------------------------------------------------------- Knot + unbound
def test_authoritative_and_resolver_serve_the_lab_zones(lab_home: Any) -> None:
    accounts = lab_home.internet.accounts
    host = accounts["dyndns2"]["hostnames"][0]
    auth = dig(lab_home, plan.AUTH, host)
    assert auth["answers"] == ["23.128.64.99"] and auth["ttl"] == [plan.ZONE_TTL]
    for resolver in (plan.RESOLVER, plan.RESOLVER2):
        assert dig(lab_home, resolver, host)["answers"] == ["23.128.64.99"]
    assert dig(lab_home, plan.RESOLVER, f"missing.{plan.DYNDNS2_ZONE}")["rcode"] == "NXDOMAIN"
    ns = dig(lab_home, plan.RESOLVER, plan.CLOUDFLARE_ZONE, "NS")
    assert ns["answers"] == [f"ns1.{plan.CLOUDFLARE_ZONE}."]


RFC2136 = """
import json, sys, dns.query, dns.tsigkeyring, dns.update, dns.rcode
server, zone, name, keyname, secret, value = sys.argv[1:7]
ring = dns.tsigkeyring.from_text({keyname: ("hmac-sha256", secret)})
u = dns.update.UpdateMessage(zone, keyring=ring, keyname=keyname, keyalgorithm="hmac-sha256")
u.replace(name, 60, "A", value)
try:
    r = dns.query.tcp(u, server, timeout=3)
    print(json.dumps(dns.rcode.to_text(r.rcode())))
except Exception as exc:
    print(json.dumps(type(exc).__name__))
"""


def test_rfc2136_user_key_updates_its_zone_only(lab_factory: Any) -> None:
    lab = lab_factory("public")
    rfc = lab.internet.accounts["rfc2136"]
    host = rfc["hostnames"][0]
    ok = py(lab, RFC2136, rfc["server"], rfc["zone"], host + ".", rfc["key_name"], rfc["key_secret"], "23.128.64.10")
    assert ok == "NOERROR"
    assert dig(lab, plan.AUTH, host)["answers"] == ["23.128.64.10"]
    other = py(
        lab,
        RFC2136,
        rfc["server"],
        plan.DYNDNS2_ZONE,
        f"myhome.{plan.DYNDNS2_ZONE}.",
        rfc["key_name"],
        rfc["key_secret"],
        "23.128.64.10",
    )
    assert other in ("REFUSED", "NOTAUTH", "PeerBadKey")  # Knot: key not allowed there -> BADKEY
    assert dig(lab, plan.AUTH, f"myhome.{plan.DYNDNS2_ZONE}")["answers"] == ["23.128.64.99"]
    wrong_secret = base64.b64encode(b"0" * 32).decode()
    bad = py(lab, RFC2136, rfc["server"], rfc["zone"], host + ".", rfc["key_name"], wrong_secret, "23.128.64.11")
    assert bad != "NOERROR"
    assert dig(lab, plan.AUTH, host)["answers"] == ["23.128.64.10"]


# ---------------------------------------------------------------------- dyndns2
def test_dyndns2_update_reaches_dns_and_the_resolver_cache_lags(lab_factory: Any) -> None:
    lab = lab_factory("home")
    account = lab.internet.accounts["dyndns2"]
    host = account["hostnames"][0]
    cached = dig(lab, plan.RESOLVER, host)["answers"]  # resolver caches the old address
    assert cached == ["23.128.64.99"]
    status, body = dyndns2_get(lab, f"hostname={host}", user=account["username"], password=account["password"])
    public = lab.expected_public_ipv4
    assert (status, body) == (200, f"good {public}\n")  # no myip: the request's source address
    assert dig(lab, plan.AUTH, host)["answers"] == [public]
    assert dig(lab, plan.RESOLVER, host)["answers"] == cached  # still cached ("propagating")
    assert dig(lab, plan.RESOLVER2, host)["answers"] == cached
    lab.internet.flush_resolver()
    assert dig(lab, plan.RESOLVER, host)["answers"] == [public]
    again = dyndns2_get(lab, f"hostname={host}&myip={public}", user=account["username"], password=account["password"])
    assert again == (200, f"nochg {public}\n")
    queries = [e["query"] for e in lab.internet.requests_log("dyndns2")]
    assert queries == [{"hostname": host}, {"hostname": host, "myip": public}]


def test_dyndns2_refusals(lab_home: Any) -> None:
    account = lab_home.internet.accounts["dyndns2"]
    user, password = account["username"], account["password"]
    host = account["hostnames"][1]
    assert dyndns2_get(lab_home, f"hostname={host}", user=user, password="wrong") == (401, "badauth\n")
    assert dyndns2_get(lab_home, f"hostname={host}")[1] == "badauth\n"
    assert dyndns2_get(lab_home, f"hostname={host}", user=user, password=password, agent="")[1] == "badagent\n"
    assert (
        dyndns2_get(lab_home, f"hostname={host}", user=user, password=password, agent="python-httpx/0.27")[1]
        == "badagent\n"
    )
    special = ",".join(
        [
            account["abuse_hostname"],
            account["outage_hostname"],
            account["donator_hostname"],
            f"nothere.{plan.DYNDNS2_ZONE}",
            "nodots",
        ]
    )
    assert dyndns2_get(lab_home, f"hostname={special}&myip=23.128.64.5", user=user, password=password) == (
        200,
        "abuse\n911\n!donator\nnohost\nnotfqdn\n",
    )
    # the refused names were not written anywhere
    assert dig(lab_home, plan.AUTH, f"nothere.{plan.DYNDNS2_ZONE}")["rcode"] == "NXDOMAIN"


def test_dyndns2_sets_ipv4_and_ipv6_in_one_request(lab_factory: Any) -> None:
    lab = lab_factory("public")
    account = lab.internet.accounts["dyndns2"]
    host = account["hostnames"][1]
    status, body = dyndns2_get(
        lab,
        f"hostname={host}&myip=23.128.64.10,2a0c:b641:100:1::100",
        user=account["username"],
        password=account["password"],
    )
    assert (status, body) == (200, "good 23.128.64.10,2a0c:b641:100:1::100\n")
    assert dig(lab, plan.AUTH, host)["answers"] == ["23.128.64.10"]
    assert dig(lab, plan.AUTH, host, "AAAA")["answers"] == ["2a0c:b641:100:1::100"]


# ---------------------------------------------------------------------- DuckDNS
def test_duckdns_ok_ko_verbose_and_source_address(lab_factory: Any) -> None:
    lab = lab_factory("home")
    account = lab.internet.accounts["duckdns"]
    server, token = account["server"], account["token"]
    public = lab.expected_public_ipv4
    assert curl(lab, f"{server}/update?domains=myhome&token=wrong&ip=") == (200, "KO")
    assert curl(lab, f"{server}/update?domains=notmine&token={token}&ip=") == (200, "KO")
    assert curl(lab, f"{server}/update?domains=myhome&token={token}&ip=&verbose=true") == (
        200,
        f"OK\n{public}\n\nUPDATED",
    )
    assert curl(lab, f"{server}/update?domains=myhome&token={token}&ip=&verbose=true") == (
        200,
        f"OK\n{public}\n\nNOCHANGE",
    )
    assert dig(lab, plan.AUTH, f"myhome.{plan.DUCKDNS_ZONE}")["answers"] == [public]
    assert curl(lab, f"{server}/update?domains=myhome&token={token}&clear=true") == (200, "OK")
    assert dig(lab, plan.AUTH, f"myhome.{plan.DUCKDNS_ZONE}")["answers"] == []


# ---------------------------------------------------------------------- Cloudflare
CF_FLOW = """
import json, sys, httpx
ca, base, token, readonly, zone, name, value = sys.argv[1:8]
out = {}
def call(method, path, tok=token, **kw):
    r = httpx.request(method, base + path, headers={"Authorization": f"Bearer {tok}"}, verify=ca, timeout=5, **kw)
    return r.status_code, r.json()
out["verify"] = call("GET", "/user/tokens/verify")
status, zones = call("GET", f"/zones?name={zone}")
zid = zones["result"][0]["id"]
status, recs = call("GET", f"/zones/{zid}/dns_records?type=A&name={name}")
rid = recs["result"][0]["id"]
out["readonly_patch"] = call("PATCH", f"/zones/{zid}/dns_records/{rid}", tok=readonly, json={"content": value})
out["bad_token"] = call("GET", f"/zones?name={zone}", tok="not-a-token")
out["bad_content"] = call("PATCH", f"/zones/{zid}/dns_records/{rid}", json={"content": "not-an-ip"})
out["patch"] = call("PATCH", f"/zones/{zid}/dns_records/{rid}", json={"content": value})
out["create"] = call("POST", f"/zones/{zid}/dns_records", json={"type": "A", "name": "fresh", "content": value, "ttl": 120})
print(json.dumps(out))
"""


def test_cloudflare_api_subset_and_permissions(lab_factory: Any) -> None:
    lab = lab_factory("public")
    cf = lab.internet.accounts["cloudflare"]
    name = next(r["name"] for r in cf["records"] if r["type"] == "A" and not r.get("proxied"))
    out = py(
        lab,
        CF_FLOW,
        str(lab.internet.ca_path),
        cf["server"],
        cf["token"],
        cf["readonly_token"],
        cf["zone"],
        name,
        "23.128.64.10",
    )
    assert out["verify"][0] == 200 and out["verify"][1]["result"]["status"] == "active"
    assert out["readonly_patch"][0] == 403 and out["readonly_patch"][1]["errors"][0]["code"] == 10000
    assert out["bad_token"][0] in (401, 403) and out["bad_token"][1]["success"] is False
    assert out["bad_content"][0] == 400
    assert out["patch"][0] == 200 and out["patch"][1]["result"]["content"] == "23.128.64.10"
    assert out["create"][0] == 200 and out["create"][1]["result"]["name"] == f"fresh.{cf['zone']}"
    assert dig(lab, plan.AUTH, name)["answers"] == ["23.128.64.10"]
    fresh = dig(lab, plan.AUTH, f"fresh.{cf['zone']}")
    assert fresh["answers"] == ["23.128.64.10"] and fresh["ttl"] == [120]


# ---------------------------------------------------------------------- faults and restarts
def test_fault_injection_and_requests_log(lab_factory: Any) -> None:
    lab = lab_factory("public")
    account = lab.internet.accounts["dyndns2"]
    creds = {"user": account["username"], "password": account["password"]}
    host = account["hostnames"][0]
    lab.internet.set_fault("dyndns2", "500")
    assert dyndns2_get(lab, f"hostname={host}", **creds)[0] == 500
    lab.internet.set_fault("dyndns2", "garbage")
    status, _ = curl(lab, f"{account['server']}/nic/update?hostname={host}", discard_body=True)
    assert status == 200
    assert not lab.internet.requests_log("dyndns2")[-1]["body"].startswith(("good", "nochg"))
    lab.internet.set_fault("dyndns2", "911")
    assert dyndns2_get(lab, f"hostname={host}", **creds) == (200, "911\n")
    lab.internet.set_fault("dyndns2", "timeout")
    assert curl(lab, f"{account['server']}/nic/update?hostname={host}", timeout=1)[0] == 0
    lab.internet.set_fault("dyndns2", None)
    assert dyndns2_get(lab, f"hostname={host}", **creds)[1].startswith("good ")
    assert [e["fault"] for e in lab.internet.requests_log("dyndns2")] == ["500", "garbage", "911", "timeout", None]
    assert [e["status"] for e in lab.internet.requests_log("dyndns2")] == [500, 200, 200, 504, 200]
    lab.internet.set_fault("echo2", "wrong-ip")
    assert curl(lab, f"https://{plan.ECHO2}/")[1] != lab.expected_public_ipv4 + "\n"
    assert curl(lab, f"https://{plan.ECHO1}/")[1] == lab.expected_public_ipv4 + "\n"


def test_services_stop_and_start(lab_factory: Any) -> None:
    lab = lab_factory("public")
    internet = lab.internet
    internet.stop_service("echo1")
    assert curl(lab, f"https://{plan.ECHO1}/", timeout=2)[0] == 0
    internet.start_service("echo1")
    assert curl(lab, f"https://{plan.ECHO1}/")[0] == 200
    internet.stop_service("auth")
    assert "error" in dig(lab, plan.AUTH, f"myhome.{plan.DYNDNS2_ZONE}")
    internet.start_service("auth")
    assert dig(lab, plan.AUTH, f"myhome.{plan.DYNDNS2_ZONE}")["answers"] == ["23.128.64.99"]
    internet.stop_service("probe")
    assert curl(lab, f"{internet.probe_url}/ip", timeout=2)[0] == 0
    internet.start_service("probe")
    assert curl(lab, f"{internet.probe_url}/ip") == (200, lab.expected_public_ipv4 + "\n")
    internet.stop_service("stun")
    internet.start_service("stun")
    assert py(lab, STUN_TWO, plan.STUN1)[0]["mapped"][0] == lab.expected_public_ipv4


def test_ipv6_echo_and_probe(lab_factory: Any) -> None:
    lab = lab_factory("public", ipv6=True)
    for url in lab.internet.endpoints()["ip_echo_v6"]:
        assert curl(lab, url, "-6") == (200, lab.host_ipv6 + "\n")
        assert curl(lab, url, "-4") == (200, lab.expected_public_ipv4 + "\n")  # the same dual-stack name
    assert curl(lab, f"https://[{plan.PROBE_V6}]/ip") == (200, lab.host_ipv6 + "\n")


def _lab_address(text: str) -> bool:
    import ipaddress

    ip = ipaddress.ip_address(text)
    return ip in ipaddress.ip_network("11.0.0.0/8") or ip in ipaddress.ip_network("2a0c:b641:2::/48")


def test_internet_endpoints_table_points_only_at_lab_services(lab_home: Any) -> None:
    """Every endpoint is a lab address, or a lab name whose A and AAAA records (served by
    the lab's own resolver) are lab addresses: nothing can reach a real service."""
    import re
    import urllib.parse

    endpoints = lab_home.internet.endpoints()
    hosts: set[str] = set()
    for value in endpoints.values():
        for entry in [value] if isinstance(value, str) else value:
            text = entry.split("+", 1)[-1] if "+https://" in entry else entry
            if "://" in text:
                host = urllib.parse.urlsplit(text.replace("{port}", "0")).hostname or ""
            else:
                host = re.sub(r":\d+$", "", text.split("@", 1)[-1])
            hosts.add(host)
    assert hosts, endpoints
    for host in sorted(hosts):
        if host.endswith("." + plan.SERVICES_ZONE):
            a = dig(lab_home, plan.RESOLVER, host)["answers"]
            aaaa = dig(lab_home, plan.RESOLVER, host, "AAAA")["answers"]
            assert a and aaaa and all(_lab_address(x) for x in a + aaaa), (host, a, aaaa)
        else:
            assert _lab_address(host), host
    assert endpoints["port_check"] == [
        f"https://{plan.IFCONFIG_NAME}/port/{{port}}",
        f"portchecker+https://{plan.PORTCHECKER_NAME}",
    ]


# ---------------------------------------------------------------------- models of the public port checkers
def test_echoip_model_tests_the_address_the_request_came_from_once_a_minute(lab_factory: Any) -> None:
    """ifconfig.co as mpolden/echoip serves it: a client that does not pin the family goes
    out over IPv6 on a dual-stack line (curl, like httpx, tries the AAAA first), and
    the checker then tests and reports the IPv6 address — the trap of issue 11."""
    lab = lab_factory("home", ipv6=True)
    url = f"https://{plan.IFCONFIG_NAME}/port/18080"
    status, body = curl(lab, url)  # no family pinned
    assert status == 200 and json.loads(body) == {"ip": lab.host_ipv6, "port": 18080, "reachable": False}
    assert body.startswith('{\n  "ip": ')  # json.MarshalIndent(..., "", "  ")
    assert curl(lab, url, "-6") == (429, "Too Many Requests\n")  # one request a minute per client
    status, body = curl(lab, url, "-4")  # the IPv4 address is another client
    assert status == 200 and json.loads(body)["ip"] == lab.expected_public_ipv4
    assert curl(lab, url, "-4")[0] == 429
    state = lab.internet.rate_limit("ifconfig", over_limit="drop")
    assert state["refused"] == 2
    assert curl(lab, url, "-4", timeout=2)[0] == 0  # dropped: no answer at all
    lab.internet.rate_limit("ifconfig", over_limit="429", reset=True)
    status, body = curl(lab, f"https://{plan.IFCONFIG_NAME}/port/99999", "-4")
    assert status == 400 and json.loads(body) == {"status": 400, "error": "invalid port: 99999"}


def test_portchecker_model_answers_true_or_false_and_refuses_ipv6(lab_factory: Any) -> None:
    lab = lab_factory("public", ipv6=True)
    server = lab.popen(
        [PY, "-m", "http.server", "18081", "--bind", "::"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_listening(lab, 18081)
        base = f"https://{plan.PORTCHECKER_NAME}/api/me"
        assert curl(lab, f"{base}/18081", "-4") == (200, "True")
        assert curl(lab, f"{base}/18082", "-4") == (200, "False")
        status, body = curl(lab, f"{base}/18081", "-6")
        assert status == 400 and json.loads(body)["detail"] == "IPv6 is not currently supported"
    finally:
        server.terminate()
        server.wait(5)


def _wait_listening(lab: Any, port: int) -> None:
    import time

    deadline = time.monotonic() + 10
    while lab.run(["ss", "-Htln", f"sport = :{port}"]).stdout.strip() == "":
        assert time.monotonic() < deadline, f"nothing listens on {port}"
        time.sleep(0.05)


def test_dns_echo_answers_each_family_and_the_wrong_family_fault(lab_factory: Any) -> None:
    lab = lab_factory("public", ipv6=True)
    v6 = lab.host_ipv6
    assert dig(lab, plan.DNS_ECHO_V6, "myip.opendns.com", "AAAA")["answers"] == [v6]
    assert dig(lab, plan.DNS_ECHO_V6, "whoami.cloudflare", "TXT", "CH")["answers"] == [v6]
    lab.internet.set_fault("dns-echo", "wrong-family")
    from .services.dnsecho import LIE_V4, LIE_V6

    assert dig(lab, plan.DNS_ECHO, "myip.opendns.com")["answers"] == [LIE_V6]  # an AAAA to the A question
    assert dig(lab, plan.DNS_ECHO, "whoami.cloudflare", "TXT", "CH")["answers"] == [LIE_V6]
    assert dig(lab, plan.DNS_ECHO_V6, "whoami.cloudflare", "TXT", "CH")["answers"] == [LIE_V4]
