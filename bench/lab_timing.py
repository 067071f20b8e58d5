"""Time bringing each lab topology up and tearing it down (run as root from the repo root).

    .venv/bin/python bench/lab_timing.py [--runs 3] [--json bench/lab_timing.json]

"up" includes the lab internet's services (lab-services' start_internet) and
miniupnpd, each waited for until it answers; "net" is the namespace/link/
address/nftables part alone. Prints a Markdown table (median of the runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lab._netns import sweep_leftovers
from tests.lab.topology import Lab, Options

VARIANTS: list[tuple[str, dict]] = [
    ("public", {}),
    ("home", {}),
    ("home-no-upnp", {}),
    ("double-nat", {}),
    ("cgnat", {}),
    ("offline", {}),
    ("cgnat", {"ipv6": True}),
    ("home", {"latency_ms": 100, "loss_pct": 2}),
]


def label(topology: str, options: dict) -> str:
    extras = []
    if options.get("ipv6"):
        extras.append("ipv6")
    if options.get("latency_ms"):
        extras.append(f"{options['latency_ms']:g}ms")
    if options.get("loss_pct"):
        extras.append(f"{options['loss_pct']:g}% loss")
    return topology + (f" ({', '.join(extras)})" if extras else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw numbers here")
    args = parser.parse_args()
    sweep_leftovers()
    results: dict[str, list[dict[str, float]]] = {}
    for topology, options in VARIANTS:
        runs = []
        for _ in range(args.runs):
            lab = Lab(Options(topology, **options))
            try:
                lab.up()
            finally:
                lab.down()
            t = lab.timings
            net = sum(t.get(f"phase_{p}_s", 0.0) for p in ("netns", "links", "configure"))
            runs.append(
                {
                    "up_s": t["up_s"],
                    "down_s": t["down_s"],
                    "net_s": net,
                    "miniupnpd_s": t.get("phase_miniupnpd_s", 0.0),
                    "services_s": t.get("phase_services_s", 0.0),
                }
            )
        results[label(topology, options)] = runs
    print("| topology | up (s) | of which network (s) | miniupnpd (s) | services (s) | down (s) |")
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"| {name} | {med['up_s']:.2f} | {med['net_s']:.3f} | {med['miniupnpd_s']:.3f} | "
            f"{med['services_s']:.2f} | {med['down_s']:.2f} |"
        )
    print(f"\n(median of {args.runs} runs each)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
