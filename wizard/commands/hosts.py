"""`ddns-wizard hosts list [--json]` and `ddns-wizard hosts remove NAME`.

The configuration is saved atomically with mode 0600; only [[hosts]] changes.
Adding a host is done in the wizard (it checks the credentials with the provider).
"""

from __future__ import annotations

import argparse
import json

from wizard.commands import SubcommandsWithConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = SubcommandsWithConfig(parser.add_subparsers(dest="hosts_action", metavar="ACTION", required=True))
    p = sub.add_parser("list", help="list the configured hostnames (no secrets)")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p = sub.add_parser("remove", help="remove a hostname from the configuration")
    p.add_argument("name", help="the hostname to remove")


def run(args: argparse.Namespace) -> int:
    from checks.config import load_config
    from checks.ddns.hosts import host_json, list_hosts, remove_host

    if args.hosts_action == "list":
        config = load_config(args.config)
        summaries = list_hosts(config)
        if args.json:
            print(json.dumps([host_json(s) for s in summaries], indent=2))
            return 0
        if not summaries:
            where = config.path if config.path and config.path.exists() else "the configuration (none yet)"
            print(f"No hostnames configured in {where}. Run `ddns-wizard` to set one up.")
            return 0
        print(f"{len(summaries)} hostname{'s' if len(summaries) != 1 else ''} in {config.path}:")
        w_host = max(len(s.hostname) for s in summaries)
        w_prov = max(len(s.provider) for s in summaries)
        for s in summaries:
            extra = f", IPv6 of another device ({s.device})" if s.device else ""
            print(f"  {s.hostname:<{w_host}}  {s.provider:<{w_prov}}  {s.families}{extra}")
        return 0
    config = load_config(args.config, must_exist=True)
    new, path = remove_host(config, args.name)
    print(f"Removed {args.name} from {path}; {len(new.hosts)} hostname{'s' if len(new.hosts) != 1 else ''} left.")
    if not new.hosts:
        print("Nothing is left to update: a running `watch` will stop at its next start (no hostnames).")
    else:
        print("A running `watch` picks the change up when it restarts (e.g. systemctl restart ddns-wizard).")
    return 0
