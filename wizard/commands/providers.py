"""`ddns-wizard providers [--json] [NAME]`: the supported providers and what each needs.

With a NAME: that provider's sign-up steps, pitfalls and credential fields.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from checks.ddns.providers.base import ProviderSpec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="show one provider's sign-up steps, pitfalls and fields")
    parser.add_argument("--json", action="store_true", help="print the registry as JSON")


def spec_json(spec: ProviderSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "title": spec.title,
        "family": spec.family,
        "cost": spec.cost,
        "needs": spec.needs,
        "url": spec.url,
        "default_server": spec.default_server,
        "supports_ipv6": spec.supports_ipv6,
        "domains": list(spec.domains),
        "fields": [
            {"name": f.name, "label": f.label, "secret": f.secret, "required": f.required, "help": f.help}
            for f in spec.fields
        ],
        "signup_steps": list(spec.signup_steps),
        "pitfalls": list(spec.pitfalls),
        "batch_max": spec.batch_max if spec.batch_fn is not None else None,
        "multi_record": bool(spec.options.get("multi_record")),
        "policy": {
            "min_interval_s": spec.policy.min_interval_s,
            "fatal_codes": sorted(spec.policy.fatal_codes),
            "retry_after_s": dict(spec.policy.retry_after_s),
            "default_retry_s": spec.policy.default_retry_s,
        },
    }


def run(args: argparse.Namespace) -> int:
    from checks.ddns.providers.registry import PROVIDERS, get_provider

    specs = [get_provider(args.name)] if args.name else list(PROVIDERS.values())
    if args.json:
        data = [spec_json(s) for s in specs]
        print(json.dumps(data[0] if args.name else data, indent=2))
        return 0
    from rich.console import Console

    console = Console(highlight=False)
    if args.name:
        _print_one(console, specs[0])
        return 0
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("name", no_wrap=True)
    table.add_column("provider")
    table.add_column("cost")
    table.add_column("IPv6", no_wrap=True)
    table.add_column("credentials")
    for s in specs:
        fields = ", ".join(f.name + ("" if f.required else "?") for f in s.fields if f.name != "hostname")
        table.add_row(s.name, s.title, s.cost, "yes" if s.supports_ipv6 else "no", fields)
    console.print(table)
    console.print("Details, sign-up steps and pitfalls: ddns-wizard providers NAME   (? = optional)", markup=False)
    return 0


def _print_one(console: Console, spec: ProviderSpec) -> None:
    console.print(f"[bold]{spec.title}[/] ({spec.name}) — {spec.cost}")
    console.print(f"Needs: {spec.needs}", markup=False)
    console.print(f"Sign up: {spec.url}", markup=False)
    if spec.domains:
        shown = ", ".join(spec.domains[:10]) + (", ..." if len(spec.domains) > 10 else "")
        console.print(f"Hostnames under: {shown}", markup=False)
    console.print("\n[bold]Steps[/]")
    for i, step in enumerate(spec.signup_steps, 1):
        console.print(f" {i}. {step}", markup=False)
    console.print("\n[bold]Pitfalls[/]")
    for p in spec.pitfalls:
        console.print(f" - {p}", markup=False)
    from checks.config import default_config_path

    # Issue 19: on the command line "enter it here" meant nothing: say where it goes.
    console.print(
        f"\nWhere it goes: run `ddns-wizard` (the wizard asks for it), or add a [[hosts]] table to "
        f"the configuration file ({default_config_path()}, or the file --config names), "
        "then keep it private: chmod 600 FILE.",
        markup=False,
    )
    console.print("\n[[hosts]]", markup=False)
    console.print(f'provider = "{spec.name}"', markup=False)
    for f in spec.fields:
        if f.required or f.name == "hostname":
            example = f.placeholder if getattr(f, "placeholder", "") and not f.secret else f"YOUR-{f.name.upper()}"
            console.print(f'{f.name} = "{example}"', markup=False)
    console.print("\nConfiguration keys ([[hosts]] table)", markup=False)
    for f in spec.fields:
        tag = "secret" if f.secret else ("optional" if not f.required else "required")
        console.print(f" {f.name:<14} {tag:<8} {f.help}", markup=False)
    if spec.batch_fn is not None:
        console.print(
            f"\nHostnames of one account that need the same address share a request (at most {spec.batch_max}).",
            markup=False,
        )
    if spec.options.get("multi_record"):
        console.print(
            "\nSeveral A/AAAA records per name: an update leaves only the current address (plus keep_addresses).",
            markup=False,
        )
    console.print(
        f"\nAt most one update every {spec.policy.min_interval_s} s; stops on: "
        f"{', '.join(sorted(spec.policy.fatal_codes)) or 'credential/permission errors'}.",
        markup=False,
    )
