"""The lab's "internet": every outside service the tool talks to, in one namespace.

``start_internet(netns, workdir, ipv6=...)`` is called by tests/lab/topology.py once
the inet namespace exists with the plan.py service addresses on its ``lo``. It
starts, in parallel:

- ``runner``   one Python process (tests/lab/services/runner.py) with the HTTPS IP
               echoes (ECHO1, ECHO2, and their IPv6 addresses), the webhook sink
               (SINK:80, plain HTTP: notifications and pings), the models of the
               public port checkers (ifconfig.co's echoip, portchecker.io; see
               services/portcheckers.py), the all-ports target, the DNS echo and the
               provider emulators (dyndns2, DuckDNS, Cloudflare);
- ``probe``    the product's own ``ddns-wizard probe-server`` (PROBE:443, UDP echo);
- ``stun``     coturn ``turnserver`` in STUN-only mode on STUN1 and STUN2;
- ``auth``     Knot, authoritative for the lab zones, RFC 2136 updates with TSIG;
- ``resolver`` unbound on RESOLVER and RESOLVER2, stub zones pointing at Knot;

then waits until each one answers (connect / query), never a sleep. Everything
lives under ``workdir``; nothing is written to /etc, /var/log or /var/lib.

The echo and port-check services are reached by *names* (plan.SERVICE_NAMES in the
zone plan.SERVICES_ZONE) with A and AAAA records, dual-stack like the real ones, and
``endpoints()`` uses them the way the shipped defaults use ipify / icanhazip /
ifconfig.co / portchecker.io: a client that does not pin the address family goes
out over IPv6 on a dual-stack line and is caught.

Accounts (``internet.accounts``) are generated per lab; see ``_make_accounts``.
Fault hooks: ``set_fault(name, "500"|"timeout"|"garbage"|None)`` for the emulators
and the HTTPS echoes (plus ``"911"`` for dyndns2, ``"wrong-ip"`` for echo1/echo2/
dns-echo, ``"servfail"`` for dns-echo, ``"wrong-family"`` for dns-echo: an IPv6
address to the IPv4 question and the reverse).  ``rate_limit("ifconfig", ...)``
sets the echoip model's limit (window, 429 or drop, reset).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import string
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import plan
from .services.netns import run_in_netns

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = Path(__file__).resolve().parent / "services" / "templates"
ALLPORTS_LISTEN_PORT = 7777
OLD_ADDRESS = "23.128.64.99"  # the "stale" public address records start with
OLD_ADDRESS_V6 = "2a0c:b641:100:1::99"
READY_TIMEOUT_S = 20.0
_CERTS: tuple[bytes, bytes, bytes] | None = None  # (CA, server chain, server key), per process
_CA: Any = None  # the trustme CA behind _CERTS (issue_cert for home services)

# in-runner services vs. separate daemons
RUNNER_SERVICES = (
    "echo1",
    "echo2",
    "ifconfig",
    "portchecker",
    "allports",
    "dns-echo",
    "dyndns2",
    "duckdns",
    "cloudflare",
    "sink",
)
PROCESS_SERVICES = ("probe", "stun", "auth", "resolver")
SERVICE_NAMES = RUNNER_SERVICES + PROCESS_SERVICES


class InternetError(RuntimeError):
    """A lab internet service did not start or did not answer."""


def _python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _tsig_secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class _Process:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None


class Internet:
    """Handle on the running lab internet (see the module docstring)."""

    def __init__(self, netns: str, workdir: Path, *, ipv6: bool) -> None:
        self.netns = netns
        self.workdir = Path(workdir)
        self.ipv6 = ipv6
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ca_path = self.workdir / "ca.pem"
        self.cert_path = self.workdir / "server.pem"
        self.key_path = self.workdir / "server-key.pem"
        self.control_socket = self.workdir / "control.sock"
        self.probe_url = f"https://{plan.PROBE}"
        self.probe_udp = (plan.PROBE, plan.PROBE_UDP_PORT)
        self.startup_seconds: float | None = None
        self.tsig = {"name": "ddnsw-emulators.", "algorithm": "hmac-sha256", "secret": _tsig_secret()}
        self.accounts = _make_accounts()
        self._procs: dict[str, _Process] = {}
        self._stopped = False
        self._v6 = {
            name: getattr(plan, name, None) if ipv6 else None
            for name in (
                "ECHO1_V6",
                "ECHO2_V6",
                "PROBE_V6",
                "AUTH_V6",
                "RESOLVER_V6",
                "STUN1_V6",
                "IFCONFIG_V6",
                "PORTCHECKER_V6",
                "DNS_ECHO_V6",
            )
        }

    # ------------------------------------------------------------------ public API
    def endpoints(self) -> dict[str, Any]:
        """The config's [endpoints] table: lab services only, used the way the shipped
        defaults (checks/config.py) use the real ones — dual-stack names for the echoes,
        the echoip model (ifconfig.co) then the portchecker.io model as port probers.
        A test that needs the project's own probe server (nonce banner, UDP) names it
        (``own_prober()``)."""
        return {
            "ip_echo": [f"https://{plan.ECHO1_NAME}/", f"https://{plan.ECHO2_NAME}/"],
            "ip_echo_v6": [f"https://{plan.ECHO1_NAME}/", f"https://{plan.ECHO2_NAME}/"],
            "dns_echo": [
                f"opendns@{plan.DNS_ECHO_NAME}",
                f"cloudflare@{plan.DNS_ECHO_NAME}",
                f"google@{plan.DNS_ECHO_NAME}",
            ],
            "dns_echo_v6": [f"opendns@{plan.DNS_ECHO_NAME}", f"cloudflare@{plan.DNS_ECHO_NAME}"],
            "stun": [f"{plan.STUN1}:{plan.STUN_PORT}", f"{plan.STUN2}:{plan.STUN_PORT}"],
            "port_check": [
                f"https://{plan.IFCONFIG_NAME}/port/{{port}}",
                f"portchecker+https://{plan.PORTCHECKER_NAME}",
            ],
            "port_check_v6": [f"https://{plan.IFCONFIG_NAME}/port/{{port}}"],
            "outbound_target": plan.ALLPORTS,
            "resolvers": [plan.RESOLVER, plan.RESOLVER2],
        }

    @staticmethod
    def own_prober() -> dict[str, list[str]]:
        """[endpoints] overrides for the project's own probe server (by name, both families)."""
        return {
            "port_check": [f"ddnsw+https://{plan.PROBE_NAME}"],
            "port_check_v6": [f"ddnsw+https://{plan.PROBE_NAME}"],
        }

    def rate_limit(
        self,
        name: str = "ifconfig",
        *,
        window_s: float | None = None,
        over_limit: str | None = None,
        reset: bool = False,
    ) -> dict[str, Any]:
        """The echoip model's limit: ``window_s`` (60 = ifconfig.co), what a request over it
        gets (``"429"`` or ``"drop"``), ``reset`` forgets every client. Returns the state."""
        body: dict[str, Any] = {"reset": reset}
        if window_s is not None:
            body["window_s"] = window_s
        if over_limit is not None:
            body["over_limit"] = over_limit
        return self._control("PUT", f"/ratelimit/{name}", body)  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Stop every process (idempotent). SIGKILL: nothing here has state worth a
        graceful exit (Knot writes each update to its zone file at once), and teardown
        time adds up over a test run."""
        self._stopped = True
        procs = [p for p in self._procs.values() if p.popen is not None]
        for proc in procs:
            _signal(proc, signal.SIGKILL)
        for proc in procs:
            assert proc.popen is not None
            proc.popen.wait(timeout=10)
            proc.popen = None

    def stop_service(self, name: str) -> None:
        if name in RUNNER_SERVICES:
            self._control("POST", f"/services/{name}/stop")
        elif name in PROCESS_SERVICES:
            proc = self._procs[name]
            if proc.popen is not None:
                _signal(proc, signal.SIGTERM)
                try:
                    proc.popen.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    _signal(proc, signal.SIGKILL)
                    proc.popen.wait(timeout=5)
                proc.popen = None
        else:
            raise KeyError(f"unknown lab service {name!r}; known: {', '.join(SERVICE_NAMES)}")

    def start_service(self, name: str) -> None:
        if name in RUNNER_SERVICES:
            self._control("POST", f"/services/{name}/start")
        elif name in PROCESS_SERVICES:
            proc = self._procs[name]
            if proc.popen is None or proc.popen.poll() is not None:
                self._launch(proc)
            self._wait_ready(_checks_for(name, self))
        else:
            raise KeyError(f"unknown lab service {name!r}; known: {', '.join(SERVICE_NAMES)}")

    def flush_resolver(self) -> None:
        """Empty unbound's cache (a restart, ~50 ms), so "propagating" ends without waiting a TTL."""
        self.stop_service("resolver")
        self.start_service("resolver")

    def set_fault(self, name: str, fault: str | None) -> None:
        """Make an in-runner service misbehave ("500", "timeout", "garbage", ...) or heal it (None)."""
        if name not in RUNNER_SERVICES:
            raise KeyError(f"faults are available for {', '.join(RUNNER_SERVICES)}")
        self._control("PUT", f"/faults/{name}", {"fault": fault})

    def requests_log(self, name: str) -> list[dict[str, Any]]:
        """Requests an in-runner service received, oldest first (secrets kept: lab data)."""
        return self._control("GET", f"/log/{name}")  # type: ignore[no-any-return]

    def clear_requests_log(self, name: str) -> None:
        self._control("DELETE", f"/log/{name}")

    def cloudflare_records(self) -> list[dict[str, Any]]:
        return self._control("GET", "/cloudflare/records")  # type: ignore[no-any-return]

    def lookup(self, fqdn: str, rtype: str = "A", server: str = plan.AUTH) -> list[str]:
        """Ask a lab DNS server (default: the authoritative Knot) from inside the inet namespace."""
        import dns.message
        import dns.query
        import dns.rdatatype

        def ask() -> list[str]:
            response = dns.query.udp(dns.message.make_query(fqdn, rtype), server, timeout=2)
            wanted = dns.rdatatype.from_text(rtype)
            return [r.to_text() for rrset in response.answer if rrset.rdtype == wanted for r in rrset]

        return run_in_netns(self.netns, ask)

    def set_record(self, fqdn: str, rtype: str, values: list[str], ttl: int = plan.ZONE_TTL) -> None:
        """Write a record straight into Knot (emulator key), e.g. to publish a private address."""
        import asyncio

        from .services.dnsupdate import Authority, replace_rrset

        zone = _zone_for(fqdn)
        auth = Authority(plan.AUTH, self.tsig["name"], self.tsig["secret"])
        run_in_netns(self.netns, lambda: asyncio.run(replace_rrset(auth, zone, fqdn, rtype, values, ttl)))

    def set_records(self, fqdns: Sequence[str], rtype: str, values: list[str], ttl: int = plan.ZONE_TTL) -> None:
        """``set_record`` for many names at once (one namespace entry, updates 16 at a time)."""
        import asyncio

        from .services.dnsupdate import Authority, replace_rrset

        auth = Authority(plan.AUTH, self.tsig["name"], self.tsig["secret"])

        async def all_of() -> None:
            gate = asyncio.Semaphore(16)

            async def one(fqdn: str) -> None:
                async with gate:
                    await replace_rrset(auth, _zone_for(fqdn), fqdn, rtype, values, ttl)

            await asyncio.gather(*(one(f) for f in fqdns))

        run_in_netns(self.netns, lambda: asyncio.run(all_of()))

    def lookups(self, fqdns: Sequence[str], rtype: str = "A", server: str = plan.AUTH) -> dict[str, list[str]]:
        """``lookup`` for many names (one namespace entry)."""
        import dns.message
        import dns.query
        import dns.rdatatype

        wanted = dns.rdatatype.from_text(rtype)

        def ask() -> dict[str, list[str]]:
            out = {}
            for fqdn in fqdns:
                response = dns.query.udp(dns.message.make_query(fqdn, rtype), server, timeout=2)
                out[fqdn] = [r.to_text() for rrset in response.answer if rrset.rdtype == wanted for r in rrset]
            return out

        return run_in_netns(self.netns, ask)

    def issue_cert(
        self, *names: str, not_before: Any = None, not_after: Any = None, intermediate: bool = False
    ) -> tuple[bytes, bytes]:
        """(chain PEM, key PEM) from the lab CA — the one the tool and the probe server trust —
        for a service at home (tests/lab/test_reach_lab.py). ``intermediate``: issued by a
        child CA, the chain holding the leaf and that intermediate."""
        assert _CA is not None, "the lab internet has not made its CA yet"
        issuer = _CA.create_child_ca() if intermediate else _CA
        leaf = issuer.issue_cert(*names, not_before=not_before, not_after=not_after)
        return b"".join(b.bytes() for b in leaf.cert_chain_pems), leaf.private_key_pem.bytes()

    # ------------------------------------------------------------------ start-up
    def start(self) -> None:
        started = time.monotonic()
        self._write_knot()
        self._write_unbound()
        self._procs = {
            "auth": _Process("auth", ["knotd", "-c", str(self.workdir / "knot.conf")], self.workdir / "knot.log"),
            "resolver": _Process(
                "resolver", ["unbound", "-d", "-c", str(self.workdir / "unbound.conf")], self.workdir / "unbound.log"
            ),
            "stun": _Process("stun", self._turnserver_argv(), self.workdir / "turnserver.out"),
            "probe": _Process("probe", self._probe_argv(), self.workdir / "probe-server.log"),
            "runner": _Process(
                "runner",
                [_python(), "-m", "tests.lab.services.runner", str(self.workdir / "runner.json")],
                self.workdir / "runner.log",
            ),
        }
        # The daemons need no certificate: start them first, then make the CA meanwhile.
        for name in ("auth", "resolver", "stun"):
            self._launch(self._procs[name])
        self._write_certificates()
        self._write_runner_config()
        for name in ("probe", "runner"):
            self._launch(self._procs[name])
        self._install_allports_nat()
        checks = [c for name in ("runner", *PROCESS_SERVICES) for c in _checks_for(name, self)]
        self._wait_ready(checks)
        self.startup_seconds = time.monotonic() - started

    def _launch(self, proc: _Process) -> None:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        if proc.name == "probe":
            # The /reach endpoint judges certificates against this trust store: the lab CA
            # plays the public CAs (probeserver/reach.py).
            env["DDNSW_PROBE_CA_FILE"] = str(self.ca_path)
        with open(proc.log, "ab") as log:
            proc.popen = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, *proc.argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO,
                start_new_session=True,
                env=env,
            )

    def _wait_ready(self, checks: list[tuple[str, Any]]) -> None:
        pending = list(checks)
        deadline = time.monotonic() + READY_TIMEOUT_S

        def poll() -> list[tuple[str, Any]]:
            still = []
            for name, check in pending:
                try:
                    ok = check()
                except OSError:
                    ok = False
                if not ok:
                    still.append((name, check))
            return still

        while pending:
            pending = run_in_netns(self.netns, poll)
            if not pending:
                break
            for proc in self._procs.values():
                if proc.popen is not None and proc.popen.poll() is not None and not self._stopped:
                    raise InternetError(f"lab {proc.name} exited ({proc.popen.returncode}): {_tail(proc.log)}")
            if time.monotonic() > deadline:
                names = sorted({name for name, _ in pending})
                raise InternetError(
                    f"lab services not answering after {READY_TIMEOUT_S:.0f}s: {names}; "
                    + "; ".join(f"{p.name}: {_tail(p.log)}" for p in self._procs.values())
                )
            time.sleep(0.02)

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        import httpx

        transport = httpx.HTTPTransport(uds=str(self.control_socket))
        with httpx.Client(transport=transport, base_url="http://lab-control", timeout=10) as client:
            response = client.request(method, path, json=body)
        if response.status_code >= 400:
            raise KeyError(response.text)
        return response.json()

    # ------------------------------------------------------------------ files
    def _service_ips(self) -> list[str]:
        ips = [
            plan.ECHO1,
            plan.ECHO2,
            plan.PROBE,
            plan.IFCONFIG,
            plan.PORTCHECKER,
            plan.ALLPORTS,
            plan.DYNDNS2,
            plan.DUCKDNS,
            plan.CLOUDFLARE,
            plan.STUN1,
            plan.STUN2,
            plan.RESOLVER,
            plan.RESOLVER2,
            plan.AUTH,
            plan.DNS_ECHO,
        ]
        ips += [
            a
            for a in (
                getattr(plan, "ECHO1_V6", None),
                getattr(plan, "ECHO2_V6", None),
                getattr(plan, "PROBE_V6", None),
                plan.IFCONFIG_V6,
                plan.PORTCHECKER_V6,
            )
            if a
        ]
        return ips

    def _write_certificates(self) -> None:
        """A throwaway CA and one server certificate with every service address as an IP SAN.

        Made once per test process and copied into each lab (key generation and the
        cryptography import are the slow part of a lab's start)."""
        global _CERTS, _CA
        if _CERTS is None:
            import trustme

            ca = _CA = trustme.CA(organization_name="ddns-wizard lab CA")
            server = ca.issue_cert(*self._service_ips(), *plan.SERVICE_NAMES, "lab.invalid")
            _CERTS = (
                ca.cert_pem.bytes(),
                b"".join(b.bytes() for b in server.cert_chain_pems),
                server.private_key_pem.bytes(),
            )
        ca_pem, chain_pem, key_pem = _CERTS
        self.ca_path.write_bytes(ca_pem)
        self.cert_path.write_bytes(chain_pem)
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)

    def _zones(self) -> dict[str, list[str]]:
        """Zone -> extra records (relative names) beyond SOA/NS/glue."""
        dyn = self.accounts["dyndns2"]
        duck = self.accounts["duckdns"]
        cf = self.accounts["cloudflare"]
        rfc = self.accounts["rfc2136"]
        cf_lines = []
        for record in cf["records"]:
            rel = record["name"][: -len(plan.CLOUDFLARE_ZONE) - 1]
            value = record["content"]
            if record.get("proxied"):
                from .services.emulators import PROXY_V4, PROXY_V6

                value = PROXY_V6 if record["type"] == "AAAA" else PROXY_V4
            cf_lines.append(f"{rel} 300 {record['type']} {value}")
        services = []
        for name, (v4, v6) in plan.SERVICE_NAMES.items():
            label = name[: -len(plan.SERVICES_ZONE) - 1]
            services += [f"{label} A {v4}", f"{label} AAAA {v6}"]
        return {
            plan.SERVICES_ZONE: services,
            plan.DYNDNS2_ZONE: [f"{h.split('.')[0]} A {OLD_ADDRESS}" for h in dyn["hostnames"][:1]]
            + [f"{dyn['abuse_hostname'].split('.')[0]} A {OLD_ADDRESS}"]
            + [f"{h.split('.')[0]} A {OLD_ADDRESS}" for h in dyn["bulk_hostnames"]],
            plan.DUCKDNS_ZONE: [f"{duck['domains'][0]} A {OLD_ADDRESS}"],
            plan.CLOUDFLARE_ZONE: cf_lines,
            plan.RFC2136_ZONE: [f"{h.split('.')[0]} A {OLD_ADDRESS}" for h in rfc["hostnames"][:1]],
        }

    def _write_knot(self) -> None:
        knot = self.workdir / "knot"
        zonedir = knot / "zones"
        for d in (knot, knot / "db", zonedir):
            d.mkdir(parents=True, exist_ok=True)
        auth_v6 = self._v6["AUTH_V6"]
        listen = f"    listen: [ {plan.AUTH}@53" + (f", {auth_v6}@53" if auth_v6 else "") + " ]"
        zone_entries = []
        for zone, records in self._zones().items():
            lines = [
                f"$ORIGIN {zone}.",
                f"$TTL {plan.ZONE_TTL}",
                f"@ SOA ns1 hostmaster 1 3600 600 86400 {plan.ZONE_TTL}",
                "@ NS ns1",
                f"ns1 A {plan.AUTH}",
            ]
            if auth_v6:
                lines.append(f"ns1 AAAA {auth_v6}")
            (zonedir / f"{zone}.zone").write_text("\n".join(lines + records) + "\n")
            acl = "[emulators, user]" if zone == plan.RFC2136_ZONE else "[emulators]"
            zone_entries.append(f"  - domain: {zone}\n    acl: {acl}")
        rfc = self.accounts["rfc2136"]
        text = string.Template((TEMPLATES / "knot.conf.tmpl").read_text()).substitute(
            rundir=knot,
            storage=knot / "db",
            zonedir=zonedir,
            listen=listen,
            emulator_key_name=self.tsig["name"],
            emulator_key_secret=self.tsig["secret"],
            user_key_name=rfc["key_name"],
            user_key_secret=rfc["key_secret"],
            zones="\n".join(zone_entries),
        )
        (self.workdir / "knot.conf").write_text(text)

    def _write_unbound(self) -> None:
        interfaces = [plan.RESOLVER, plan.RESOLVER2]
        if self._v6["RESOLVER_V6"]:
            interfaces.append(self._v6["RESOLVER_V6"])
        zones = [plan.SERVICES_ZONE, plan.DYNDNS2_ZONE, plan.DUCKDNS_ZONE, plan.CLOUDFLARE_ZONE, plan.RFC2136_ZONE]
        auth_addrs = [plan.AUTH] + ([self._v6["AUTH_V6"]] if self._v6["AUTH_V6"] else [])
        stubs = "\n".join(
            f'stub-zone:\n    name: "{zone}"\n' + "".join(f"    stub-addr: {a}\n" for a in auth_addrs) for zone in zones
        )
        text = string.Template((TEMPLATES / "unbound.conf.tmpl").read_text()).substitute(
            workdir=self.workdir,
            do_ip6="yes" if self.ipv6 else "no",
            interfaces="\n".join(f"    interface: {a}" for a in interfaces),
            insecure="\n".join(f'    domain-insecure: "{z}"' for z in zones),
            stubs=stubs,
        )
        (self.workdir / "unbound.conf").write_text(text)

    def _write_runner_config(self) -> None:
        def dual(v4: str, v6_key: str) -> list[str]:
            return [v4] + ([self._v6[v6_key]] if self._v6[v6_key] else [])

        echo1, echo2 = dual(plan.ECHO1, "ECHO1_V6"), dual(plan.ECHO2, "ECHO2_V6")
        config = {
            "control_socket": str(self.control_socket),
            "ready_file": str(self.workdir / "runner.ready"),
            "cert": str(self.cert_path),
            "key": str(self.key_path),
            "authority": {"server": plan.AUTH, "key_name": self.tsig["name"], "key_secret": self.tsig["secret"]},
            "zone_ttl": plan.ZONE_TTL,
            "services": {
                "echo1": {"addresses": echo1},
                "echo2": {"addresses": echo2},
                "ifconfig": {"addresses": dual(plan.IFCONFIG, "IFCONFIG_V6")},
                "portchecker": {"addresses": dual(plan.PORTCHECKER, "PORTCHECKER_V6")},
                "allports": {"address": plan.ALLPORTS, "port": ALLPORTS_LISTEN_PORT},
                "dns-echo": {"addresses": dual(plan.DNS_ECHO, "DNS_ECHO_V6")},
                "dyndns2": {
                    "addresses": [plan.DYNDNS2],
                    "zone": plan.DYNDNS2_ZONE,
                    "account": self.accounts["dyndns2"],
                },
                "duckdns": {
                    "addresses": [plan.DUCKDNS],
                    "zone": plan.DUCKDNS_ZONE,
                    "account": self.accounts["duckdns"],
                },
                "cloudflare": {"addresses": [plan.CLOUDFLARE], "account": self.accounts["cloudflare"]},
                "sink": {"addresses": [plan.SINK], "port": 80},
            },
        }
        path = self.workdir / "runner.json"
        path.write_text(json.dumps(config, indent=1))
        os.chmod(path, 0o600)
        (self.workdir / "runner.ready").unlink(missing_ok=True)

    def _install_allports_nat(self) -> None:
        """DNAT every TCP/UDP port of ALLPORTS to the one listener (portquiz.net stand-in)."""
        target = f"{plan.ALLPORTS}:{ALLPORTS_LISTEN_PORT}"
        rules = (
            "table ip ddnsw_allports {\n"
            "  chain pre { type nat hook prerouting priority dstnat; policy accept;\n"
            f"    ip daddr {plan.ALLPORTS} tcp dport 1-65535 dnat to {target}\n"
            f"    ip daddr {plan.ALLPORTS} udp dport 1-65535 dnat to {target}\n  }}\n"
            "  chain out { type nat hook output priority -100; policy accept;\n"
            f"    ip daddr {plan.ALLPORTS} tcp dport 1-65535 dnat to {target}\n"
            f"    ip daddr {plan.ALLPORTS} udp dport 1-65535 dnat to {target}\n  }}\n"
            "}\n"
        )
        result = subprocess.run(
            ["ip", "netns", "exec", self.netns, "nft", "-f", "-"],
            input=rules,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if result.returncode != 0:
            raise InternetError(f"nft (all-ports target) failed: {result.stderr.strip()}")

    def _turnserver_argv(self) -> list[str]:
        conf = self.workdir / "turnserver.conf"
        conf.write_text("# empty: every option is on the command line (tests/lab/internet.py)\n")
        argv = [
            "turnserver",
            "-c",
            str(conf),
            "--stun-only",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "--no-auth",
            "--listening-port",
            str(plan.STUN_PORT),
            "--listening-ip",
            plan.STUN1,
            "--listening-ip",
            plan.STUN2,
            "--log-file",
            "stdout",
            "--simple-log",
            "--no-software-attribute",
            "--pidfile",
            str(self.workdir / "turnserver.pid"),
            "--userdb",
            str(self.workdir / "turndb"),
            "--no-rfc5780",
        ]
        if self._v6["STUN1_V6"]:
            argv += ["--listening-ip", self._v6["STUN1_V6"]]
        return argv

    def _probe_argv(self) -> list[str]:
        argv = [_python(), "-m", "wizard", "probe-server", "--listen", f"{plan.PROBE}:{plan.PROBE_HTTP_PORT}"]
        if self._v6["PROBE_V6"]:
            argv += ["--listen", f"[{self._v6['PROBE_V6']}]:{plan.PROBE_HTTP_PORT}"]
        return argv + [
            "--udp-port",
            str(plan.PROBE_UDP_PORT),
            "--tls-cert",
            str(self.cert_path),
            "--tls-key",
            str(self.key_path),
        ]


# ---------------------------------------------------------------------- readiness checks
def _tcp_open(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def _dns_answers(server: str, name: str, rtype: str = "SOA") -> bool:
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode

    try:
        response = dns.query.udp(dns.message.make_query(name, rtype), server, timeout=0.3)
    except dns.exception.DNSException:
        return False
    return response.rcode() == dns.rcode.NOERROR and bool(response.answer)


def stun_binding(
    server: str, port: int = plan.STUN_PORT, sock: socket.socket | None = None, timeout: float = 0.5
) -> tuple[str, int] | None:
    """One RFC 5389 Binding request; the XOR-MAPPED-ADDRESS (IPv4) or None."""
    own = sock is None
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        txid = secrets.token_bytes(12)
        s.sendto(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + txid, (server, port))
        data, _ = s.recvfrom(2048)
    except OSError:
        return None
    finally:
        if own:
            s.close()
    if len(data) < 20 or data[8:20] != txid or struct.unpack("!H", data[:2])[0] != 0x0101:
        return None
    pos = 20
    while pos + 4 <= len(data):
        atype, alen = struct.unpack("!HH", data[pos : pos + 4])
        value = data[pos + 4 : pos + 4 + alen]
        if atype == 0x0020 and value[1] == 0x01:
            xport = struct.unpack("!H", value[2:4])[0] ^ 0x2112
            xaddr = struct.unpack("!I", value[4:8])[0] ^ 0x2112A442
            return socket.inet_ntoa(struct.pack("!I", xaddr)), xport
        pos += 4 + alen + (-alen % 4)
    return None


def _checks_for(name: str, internet: Internet) -> list[tuple[str, Any]]:
    zones = [plan.SERVICES_ZONE, plan.DYNDNS2_ZONE, plan.DUCKDNS_ZONE, plan.CLOUDFLARE_ZONE, plan.RFC2136_ZONE]
    if name == "runner":
        ready = internet.workdir / "runner.ready"
        return [("runner", ready.exists)]
    if name == "probe":
        return [("probe", lambda: _tcp_open(plan.PROBE, plan.PROBE_HTTP_PORT))]
    if name == "stun":
        return [(f"stun {ip}", lambda ip=ip: stun_binding(ip) is not None) for ip in (plan.STUN1, plan.STUN2)]
    if name == "auth":
        return [(f"auth {z}", lambda z=z: _dns_answers(plan.AUTH, z)) for z in zones]
    if name == "resolver":
        return [
            (f"resolver {ip}", lambda ip=ip: _dns_answers(ip, plan.DYNDNS2_ZONE))
            for ip in (plan.RESOLVER, plan.RESOLVER2)
        ]
    return []


# ---------------------------------------------------------------------- helpers
def _signal(proc: _Process, sig: int) -> None:
    if proc.popen is None or proc.popen.poll() is not None:
        return
    try:
        os.killpg(proc.popen.pid, sig)
    except ProcessLookupError:
        pass


def _tail(path: Path, chars: int = 400) -> str:
    try:
        return path.read_text(errors="replace")[-chars:].strip() or "(no output)"
    except OSError:
        return "(no log)"


def _zone_for(fqdn: str) -> str:
    fqdn = fqdn.rstrip(".").lower()
    for zone in sorted(
        [plan.DYNDNS2_ZONE, plan.DUCKDNS_ZONE, plan.CLOUDFLARE_ZONE, plan.RFC2136_ZONE], key=len, reverse=True
    ):
        if fqdn == zone or fqdn.endswith("." + zone):
            return zone
    raise ValueError(f"{fqdn} is in none of the lab zones")


BULK_HOSTNAMES = 256


def _make_accounts() -> dict[str, Any]:
    """Fresh credentials for each lab (never a fixed secret)."""
    dyn, duck, cfz, rfcz = plan.DYNDNS2_ZONE, plan.DUCKDNS_ZONE, plan.CLOUDFLARE_ZONE, plan.RFC2136_ZONE
    zone_id = secrets.token_hex(16)
    return {
        "dyndns2": {
            "server": f"https://{plan.DYNDNS2}",
            "username": "labuser",
            "password": secrets.token_urlsafe(12),
            "hostnames": [f"myhome.{dyn}", f"other.{dyn}"],  # myhome starts at OLD_ADDRESS, other absent
            # bench/run.py's update at scale: more names of the same account, all at OLD_ADDRESS
            "bulk_hostnames": [f"h{i:03d}.{dyn}" for i in range(BULK_HOSTNAMES)],
            "abuse_hostname": f"abused.{dyn}",  # always "abuse"
            "outage_hostname": f"outage.{dyn}",  # always "911"
            "donator_hostname": f"premium.{dyn}",  # always "!donator"
            "zone": dyn,
            "initial": {f"myhome.{dyn}": OLD_ADDRESS},
        },
        "duckdns": {
            "server": f"https://{plan.DUCKDNS}",
            "token": str(uuid.uuid4()),
            "domains": ["myhome", "other"],  # myhome.duckdns.org starts at OLD_ADDRESS
            "zone": duck,
            "initial": {f"myhome.{duck}": OLD_ADDRESS},
        },
        "cloudflare": {
            "server": f"https://{plan.CLOUDFLARE}/client/v4",
            "token": secrets.token_urlsafe(30),  # Zone:Read + DNS:Edit
            "readonly_token": secrets.token_urlsafe(30),  # Zone:Read + DNS:Read: edits get 403/10000
            "dns_only_token": secrets.token_urlsafe(30),  # DNS:Edit alone: enough, it sees its zone (favonia)
            "disabled_token": secrets.token_urlsafe(30),  # verify says "disabled", everything else 403
            "zone": cfz,
            "zone_id": zone_id,
            "account_id": secrets.token_hex(16),
            "records": [
                {"id": secrets.token_hex(16), "type": "A", "name": f"home.{cfz}", "content": OLD_ADDRESS, "ttl": 60},
                {
                    "id": secrets.token_hex(16),
                    "type": "AAAA",
                    "name": f"home.{cfz}",
                    "content": OLD_ADDRESS_V6,
                    "ttl": 60,
                },
                {
                    "id": secrets.token_hex(16),
                    "type": "A",
                    "name": f"proxied.{cfz}",
                    "content": OLD_ADDRESS,
                    "ttl": 1,
                    "proxied": True,
                },
            ],
        },
        "rfc2136": {
            "server": plan.AUTH,
            "zone": rfcz,
            "hostnames": [f"myhome.{rfcz}"],
            "key_name": "ddnsw-user.",
            "key_algorithm": "hmac-sha256",
            "key_secret": _tsig_secret(),
            "initial": {f"myhome.{rfcz}": OLD_ADDRESS},
        },
    }


def start_internet(netns: str, workdir: Path, *, ipv6: bool) -> Internet:
    """Start the lab internet in ``netns`` (service addresses already on its lo) and wait for it."""
    internet = Internet(netns, Path(workdir), ipv6=ipv6)
    try:
        internet.start()
    except BaseException:
        internet.stop()
        raise
    return internet
