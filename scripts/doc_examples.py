#!/usr/bin/env python3
"""Capture the real output the docs show, inside lab topologies (Linux, root).

    sudo .venv/bin/python scripts/doc_examples.py [--out DIR] [home] [cgnat]

Builds the lab (network namespaces joined only to each other: nothing touches this
machine's network), writes a configuration with throwaway accounts at the lab's provider
emulators, runs each documented command in the lab's user machine and writes its output
to DIR/NAME.txt (command line, stdout, stderr, exit status, time). Paste from there into
docs/commands.md and docs/json.md when a command's output changes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENV = {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"}


def capture(lab, out: Path, name: str, *args: str, timeout: float = 90) -> None:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    proc = lab.tool(*args, timeout=timeout, env=ENV)
    took = time.monotonic() - start
    text = f"$ ddns-wizard {' '.join(args)}\n{proc.stdout}"
    if proc.stderr:
        text += f"--- stderr\n{proc.stderr}"
    (out / f"{name}.txt").write_text(text + f"--- exit {proc.returncode} ({took:.2f} s)\n", encoding="utf-8")
    print(f"{name}: exit {proc.returncode}, {took:.2f} s", file=sys.stderr)


def home(out: Path) -> None:
    from tests.lab.topology import Lab, Options

    lab = Lab(Options("home", ipv6=True, block_inbound=("80/tcp",), block_outbound=("25/tcp",)))
    try:
        lab.up()
        acc = lab.internet.accounts
        dyn, duck = acc["dyndns2"], acc["duckdns"]
        hosts = [
            {
                "hostname": dyn["hostnames"][0],
                "provider": "dyndns2",
                "server": dyn["server"],
                "username": dyn["username"],
                "password": dyn["password"],
            },
            {
                "hostname": f"myhome.{duck['zone']}",
                "provider": "duckdns",
                "server": duck["server"],
                "token": duck["token"],
            },
        ]
        lab.write_config(hosts=hosts, endpoints_override={"port_check": ["ddnsw+https://probe.lab-services.net"]})
        capture(lab, out, "home-diagnose", "diagnose")
        capture(lab, out, "home-diagnose-json", "diagnose", "--json")
        capture(lab, out, "home-ports-check", "ports", "check", "80", "8080", "--upnp")
        capture(lab, out, "home-ports-check-json", "ports", "check", "8080", "--json")
        capture(lab, out, "home-ports-check-v6-json", "ports", "check", "8443", "--ipv6", "--json")
        capture(lab, out, "home-ports-outbound", "ports", "outbound", "25", "443", "51820/udp")
        capture(lab, out, "home-ports-outbound-json", "ports", "outbound", "25", "443", "--json")
        capture(lab, out, "home-upnp-add", "upnp", "add", "8080", "--lease", "3600")
        capture(lab, out, "home-upnp-list", "upnp", "list")
        capture(lab, out, "home-upnp-list-json", "upnp", "list", "--json")
        capture(lab, out, "home-upnp-remove", "upnp", "remove", "8080")
        capture(lab, out, "home-update-dry", "update", "--dry-run")
        capture(lab, out, "home-update", "update")
        capture(lab, out, "home-update-json", "update", "--json")
        capture(lab, out, "home-verify", "verify", dyn["hostnames"][0], "--no-ping")
        capture(lab, out, "home-verify-json", "verify", dyn["hostnames"][0], "--json")
        capture(lab, out, "home-providers", "providers")
        capture(lab, out, "home-providers-json", "providers", "duckdns", "--json")
        capture(lab, out, "home-bad-port", "ports", "check", "99999")
        capture(lab, out, "home-no-such-cmd", "frobnicate")
        # IPv6 too: the DuckDNS name keeps its AAAA record as well
        lab.write_config(
            hosts=[dict(hosts[1], ipv6=True)],
            endpoints_override={"port_check": ["ddnsw+https://probe.lab-services.net"]},
        )
        capture(lab, out, "home-update-v6-json", "update", "--json")
        capture(lab, out, "home-verify-v6", "verify", hosts[1]["hostname"], "--no-ping")
    finally:
        lab.down()


def cgnat(out: Path) -> None:
    from tests.lab.topology import Lab, Options

    lab = Lab(Options("cgnat", ipv6=True))
    try:
        lab.up()
        lab.write_config()
        capture(lab, out, "cgnat-diagnose", "diagnose")
        capture(lab, out, "cgnat-ports-check", "ports", "check", "8080", "--upnp")
    finally:
        lab.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labs", nargs="*", choices=["home", "cgnat"], default=["home", "cgnat"])
    parser.add_argument("--out", type=Path, default=Path("/tmp/ddns-wizard-doc-examples"))
    args = parser.parse_args()

    from tests.lab._netns import sweep_leftovers
    from tests.lab.fixtures import lab_unavailable_reason
    from tests.lab.topology import Options

    reason = lab_unavailable_reason(Options("home"))
    if reason:
        print(f"doc_examples: cannot build the lab: {reason}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    sweep_leftovers()
    for name in args.labs or ["home", "cgnat"]:
        {"home": home, "cgnat": cgnat}[name](args.out)
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
