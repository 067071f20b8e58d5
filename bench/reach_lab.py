"""Time `ddns-wizard reach` in the lab (run as root from the repo root).

    .venv/bin/python bench/reach_lab.py [--runs 5] [--latency-ms 0]

Topology `home`: an HTTPS service on the LAN host (lab-CA certificate), port 443
forwarded by hand, the lab's probe server as the outside prober. Prints the median
wall time of the whole command (process start included) and of the check itself
(`duration_ms`), for a reachable name and for an unforwarded port.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lab.internet import Internet
from tests.lab.test_reach_lab import NAME, Service
from tests.lab.topology import Lab, Options


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    lab = Lab(Options("home", latency_ms=args.latency_ms)).up()
    try:
        lab.write_config(endpoints_override=Internet.own_prober())
        lab.internet.set_record(NAME, "A", [lab.router_wan_ipv4], ttl=5)
        service = Service(lab)
        service.start(*lab.internet.issue_cert(NAME))
        lab.forward_port(443)
        print(f"| case | wall (median of {args.runs}) | duration_ms (median) | verdict |")
        print("|---|---|---|---|")
        for case, port in (("reachable, TLS checked", "443"), ("port not forwarded", "8443")):
            walls, inner, verdicts = [], [], set()
            for _ in range(args.runs):
                started = time.monotonic()
                proc = lab.tool("reach", NAME, port, "--json", timeout=60)
                walls.append(time.monotonic() - started)
                data = json.loads(proc.stdout)
                inner.append(data["duration_ms"])
                verdicts.add(data["verdict"])
            print(
                f"| {case} | {statistics.median(walls):.2f} s | {statistics.median(inner):.0f} ms | "
                f"{', '.join(sorted(verdicts))} |"
            )
        service.stop()
    finally:
        lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
