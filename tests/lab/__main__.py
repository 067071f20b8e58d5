"""The network lab by hand (run as root from the repository root).

python -m tests.lab up home                       # bring a lab up, print how to enter, Ctrl-C ends it
python -m tests.lab up cgnat --ipv6 --shell       # ...or a shell in the host namespace (exit ends it)
python -m tests.lab up home --latency 200 --loss 5 --run ddns-wizard diagnose
python -m tests.lab plan double-nat --ipv6        # print the ip/nft plan (no root needed)
python -m tests.lab sweep                         # remove leftovers of killed runs
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
from typing import Any

from . import plan
from ._netconf import TOPOLOGIES, Options, namespace_configs
from ._netns import sweep_leftovers


def _options(args: argparse.Namespace) -> Options:
    return Options(
        args.topology,
        ipv6=args.ipv6,
        latency_ms=args.latency,
        loss_pct=args.loss,
        block_inbound=tuple(args.block_in),
        block_outbound=tuple(args.block_out),
        upnp=False if args.no_upnp else None,
        router_ext_ip=args.router_ext_ip,
    )


def _describe(lab: Any) -> str:
    env = lab.tool_env
    tool_env = " ".join(
        f"{k}={shlex.quote(env[k])}" for k in ("DDNS_WIZARD_CONFIG", "SSL_CERT_FILE", "HOME") if k in env
    )
    lines = [
        f"lab {lab.prefix}: topology {lab.topology}"
        + (" +ipv6" if lab.ipv6 else "")
        + (f" latency {lab.opts.latency_ms:g} ms" if lab.opts.latency_ms else "")
        + (f" loss {lab.opts.loss_pct:g}%" if lab.opts.loss_pct else "")
        + f" (up in {lab.timings.get('up_s', 0):.2f} s)",
        "namespaces: " + ", ".join(f"{role}={name}" for role, name in lab.ns.items()),
        f"host address {lab.host_ipv4}, gateway {lab.gateway_ipv4}"
        + (f", IPv6 {lab.host_ipv6}" if lab.host_ipv6 else ""),
        f"the internet sees this customer as {lab.expected_public_ipv4 or '(nothing: offline)'}",
        f"config (lab endpoints only): {lab.config_path}",
        "",
        "enter the user's machine:",
        f"  ip netns exec {lab.ns['host']} bash",
        "run the tool there against the lab:",
        f"  ip netns exec {lab.ns['host']} env {tool_env} {sys.executable.rsplit('/', 1)[0]}/ddns-wizard",
        "look around:",
        f"  ip netns exec {lab.ns['host']} curl --cacert {lab.ca_path} https://{plan.ECHO1}/",
        f"  ip netns exec {lab.ns['host']} upnpc -s",
    ]
    return "\n".join(lines)


def cmd_up(args: argparse.Namespace) -> int:
    from .fixtures import lab_unavailable_reason
    from .topology import Lab

    opts = _options(args)
    reason = lab_unavailable_reason(opts)
    if reason:
        print(f"cannot build the lab: {reason}", file=sys.stderr)
        return 2
    sweep_leftovers()
    lab = Lab(opts, keep_workdir=args.keep)

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        lab.up()
        print(_describe(lab), file=sys.stderr)
        if args.run:
            proc = subprocess.run(lab._netns_argv("host", args.run), env=lab.tool_env)
            return proc.returncode
        if args.shell:
            env = dict(lab.tool_env, PS1=f"[lab {lab.topology} host] \\w# ")
            subprocess.run(lab._netns_argv("host", ["bash", "--norc", "-i"]), env=env)
            return 0
        print("\nCtrl-C tears the lab down.", file=sys.stderr)
        signal.pause()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        lab.down()
        print(f"lab {lab.prefix} torn down in {lab.timings.get('down_s', 0):.2f} s", file=sys.stderr)


def cmd_plan(args: argparse.Namespace) -> int:
    opts = _options(args)
    edge = {
        "public": plan.PUBLIC_HOST_IP,
        "home": plan.ROUTER_WAN_IP,
        "home-no-upnp": plan.ROUTER_WAN_IP,
        "double-nat": plan.ISPBOX_WAN_IP,
        "cgnat": plan.CGNAT_ROUTER_WAN,
    }.get(opts.topology, "")
    for role, cfg in namespace_configs(opts, edge_ipv4=edge, cgnat_pool_ip=plan.CGNAT_POOL_IP).items():
        print(f"### {role}")
        for key, value in cfg.sysctls.items():
            print(f"sysctl {key.replace('/', '.')}={value}")
        print("\n".join(f"ip {line}" for line in cfg.ip_lines))
        if cfg.nft:
            print(cfg.nft, end="")
        print()
    return 0


def cmd_sweep(_args: argparse.Namespace) -> int:
    removed = sweep_leftovers()
    print(f"removed {len(removed)} leftover namespace(s)" + (f": {', '.join(removed)}" if removed else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.lab",
        description="The ddns-wizard network lab.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, helptext in (
        ("up", cmd_up, "bring a lab up (root)"),
        ("plan", cmd_plan, "print a topology's configuration"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.set_defaults(func=func)
        p.add_argument("topology", choices=TOPOLOGIES)
        p.add_argument("--ipv6", action="store_true", help="dual stack: a routed /64 on the LAN")
        p.add_argument("--latency", type=float, default=0.0, metavar="MS", help="round-trip time added on the ISP link")
        p.add_argument(
            "--loss", type=float, default=0.0, metavar="PCT", help="packet loss (each direction) on the ISP link"
        )
        p.add_argument(
            "--block-in",
            action="append",
            default=[],
            metavar="PORT/PROTO",
            help="ISP drops new inbound flows to this port (repeatable), e.g. 80/tcp",
        )
        p.add_argument(
            "--block-out",
            action="append",
            default=[],
            metavar="PORT/tcp",
            help="ISP drops new outbound TCP to this port (repeatable), e.g. 25/tcp",
        )
        p.add_argument("--no-upnp", action="store_true", help="no miniupnpd on the router")
        p.add_argument(
            "--router-ext-ip",
            metavar="IPV4",
            default=None,
            help=f"miniupnpd claims this public WAN address (ext_ip=), e.g. {plan.CLAIMED_WAN_IP}",
        )
        if name == "up":
            p.add_argument("--keep", action="store_true", help="keep the work dir (logs, configs) afterwards")
            mode = p.add_mutually_exclusive_group()
            mode.add_argument("--shell", action="store_true", help="open a shell in the host namespace")
            mode.add_argument(
                "--run",
                nargs=argparse.REMAINDER,
                metavar="CMD",
                help="run CMD in the host namespace with the tool's lab environment",
            )
    sweep = sub.add_parser("sweep", help="remove namespaces of killed lab runs")
    sweep.set_defaults(func=cmd_sweep)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
