"""`ddns-wizard service install [--user|--system] [--dry-run] | status | remove`.

Installs `ddns-wizard watch` as a systemd service (see checks/ddns/service.py): writes the
unit, reloads systemd, enables and starts it (user: also `loginctl enable-linger`).
Without systemd, says so and prints the equivalent cron line.  Exit 0 done, 1 a step
failed or there is no systemd, 2 usage/configuration problems.
"""

from __future__ import annotations

import argparse

from wizard.commands import SubcommandsWithConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = SubcommandsWithConfig(parser.add_subparsers(dest="service_action", metavar="ACTION", required=True))
    for name, text in (
        ("install", "write the unit, reload systemd, enable and start it"),
        ("remove", "stop, disable and delete the unit"),
        ("status", "is the service installed, enabled, running?"),
    ):
        p = sub.add_parser(name, help=text)
        scope = p.add_mutually_exclusive_group()
        scope.add_argument(
            "--user", dest="scope", action="store_const", const="user", help="a user service (default when not root)"
        )
        scope.add_argument(
            "--system",
            dest="scope",
            action="store_const",
            const="system",
            help="a system service, hardened (default as root)",
        )
        if name != "status":
            p.add_argument("--dry-run", action="store_true", help="print what would be written and run; do nothing")
        if name == "install":
            p.add_argument(
                "--interval",
                type=int,
                default=300,
                metavar="SECONDS",
                help="seconds between address checks (default 300; at least 10)",
            )


def run(args: argparse.Namespace) -> int:
    from checks.ddns import service
    from checks.errors import UsageError

    if args.service_action == "status":
        states = service.service_status(args.scope)
        from wizard.keep_text import service_status_lines

        for line in service_status_lines(states):
            print(line)
        return 0
    scope = args.scope or service.default_scope()
    if args.service_action == "remove":
        outcome = service.remove(service.plan_remove(scope), dry_run=args.dry_run)
    else:
        from checks.config import load_config, resolve_path
        from checks.ddns.notify import notify_settings
        from checks.ddns.updater import check_config

        if args.interval < 10:
            raise UsageError("--interval must be at least 10 seconds (providers block clients that poll too often)")
        config = load_config(args.config, must_exist=True)
        check_config(config)  # a service for a configuration that cannot work: exit 2 now
        notify_settings(config)
        plan = service.plan_install(scope, config_path=resolve_path(args.config), interval_s=args.interval)
        outcome = service.install(plan, dry_run=args.dry_run)
    from wizard.keep_text import service_outcome_lines

    for line in service_outcome_lines(outcome, action=args.service_action):
        print(line)
    return 0 if outcome.ok else 1
