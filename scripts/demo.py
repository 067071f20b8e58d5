#!/usr/bin/env python3
"""Try the wizard on a lab network, never on your own (Linux, root).

    sudo .venv/bin/python scripts/demo.py [TOPOLOGY] [--ipv6] [--block-in 80/tcp] [--latency MS] [--loss PCT]

TOPOLOGY: public, home (default), home-no-upnp, double-nat, cgnat, offline.
Builds the lab (network namespaces joined only to each other: nothing touches this
machine's network), prints the lab's throwaway provider accounts, opens the wizard in
the lab's "user machine" with a configuration that points every outside service at
the lab, and tears everything down when the wizard exits.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from tests.lab._netconf import TOPOLOGIES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topology", nargs="?", default="home", choices=TOPOLOGIES)
    parser.add_argument("--ipv6", action="store_true", help="dual stack: a routed /64 on the LAN")
    parser.add_argument(
        "--block-in",
        action="append",
        default=[],
        metavar="PORT/PROTO",
        help="the ISP drops inbound flows to this port (repeatable), e.g. 80/tcp",
    )
    parser.add_argument("--latency", type=float, default=0.0, metavar="MS")
    parser.add_argument("--loss", type=float, default=0.0, metavar="PCT")
    args = parser.parse_args()

    from tests.lab._netns import sweep_leftovers
    from tests.lab.fixtures import lab_unavailable_reason
    from tests.lab.topology import Lab, Options

    opts = Options(
        args.topology, ipv6=args.ipv6, latency_ms=args.latency, loss_pct=args.loss, block_inbound=tuple(args.block_in)
    )
    reason = lab_unavailable_reason(opts)
    if reason:
        print(f"demo: cannot build the lab: {reason}", file=sys.stderr)
        return 2
    sweep_leftovers()
    lab = Lab(opts)
    try:
        print(f"demo: building the {args.topology} lab…", file=sys.stderr)
        lab.up()
        acc = lab.internet.accounts if lab.internet is not None else {}
        hosts = []
        if acc:
            duck, cf = acc["duckdns"], acc["cloudflare"]
            # Pre-set the emulators' addresses (the real providers' are the default), so picking
            # DuckDNS or Cloudflare in the wizard only asks for the name and the secret.
            hosts = [
                {"hostname": f"{duck['domains'][0]}.{duck['zone']}", "provider": "duckdns", "server": duck["server"]},
                {"hostname": f"home.{cf['zone']}", "provider": "cloudflare", "server": cf["server"]},
            ]
        lab.write_config(hosts=hosts)
        print(
            f"\nlab {args.topology}: the internet sees this network as "
            f"{lab.expected_public_ipv4 or '(nothing: offline)'}",
            file=sys.stderr,
        )
        if acc:
            dyn, duck, cf = acc["dyndns2"], acc["duckdns"], acc["cloudflare"]
            print(
                "throwaway accounts at the lab's provider emulators (this lab only):\n"
                f"  dyndns2 server  server {dyn['server']}  username {dyn['username']}  "
                f"password {dyn['password']}\n"
                f"                  hostnames {', '.join(dyn['hostnames'])}\n"
                f"  DuckDNS         token {duck['token']}  hostname {duck['domains'][0]}.{duck['zone']}\n"
                f"  Cloudflare      API token {cf['token']}  hostname home.{cf['zone']}",
                file=sys.stderr,
            )
        input("\npress Enter to open the wizard (Ctrl+Q in it ends the demo) ")
        wizard = ROOT / ".venv" / "bin" / "ddns-wizard"
        argv = ["ip", "netns", "exec", lab.ns["host"], str(wizard)]
        return subprocess.run(argv, env=lab.tool_env).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        lab.down()
        print("demo: lab torn down", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
