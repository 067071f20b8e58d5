"""`ddns-wizard upnp list [--json]`, `upnp add EXTERNAL_PORT[/proto] [--to HOST:PORT]
[--description TEXT] [--lease SECONDS]`, `upnp remove EXTERNAL_PORT[/proto]`.

The router's UPnP IGD port-mapping inventory.  ``list`` marks mappings that expose
a risky service (checks/risky.py) and mappings whose LAN host no longer answers
(a quick TCP connect, then the ARP table).  UPnP error codes become sentences with
the way out (606, 718, 725, 728, 729).  No IGD → exit status 1 with the
alternatives (NAT-PMP for tests, a manual forward in the router's web page).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from checks.portcheck.inventory import MappingStatus


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="upnp_command", metavar="ACTION", required=True)
    lst = sub.add_parser(
        "list",
        help="every mapping on the router, with risky and stale ones marked",
        description="List the router's UPnP port mappings; mark those exposing risky "
        "services and those pointing at LAN hosts that no longer answer.",
    )
    lst.add_argument("--json", action="store_true", help="print the result as JSON")
    add = sub.add_parser(
        "add",
        help="add a port mapping on the router",
        description="Add a UPnP port mapping (default: to this machine, same port, permanent).",
    )
    add.add_argument("external", metavar="EXTERNAL_PORT[/tcp|/udp]")
    add.add_argument(
        "--to", metavar="HOST[:PORT]", help="LAN host and port to forward to (default: this machine, same port)"
    )
    add.add_argument("--description", default="ddns-wizard", metavar="TEXT", help="label shown in the router")
    add.add_argument("--lease", type=int, default=0, metavar="SECONDS", help="lease time; 0 = permanent (default)")
    rm = sub.add_parser(
        "remove",
        help="remove a port mapping from the router",
        description="Remove a UPnP port mapping (or, on a router with NAT-PMP only, this "
        "machine's NAT-PMP mapping of that port).",
    )
    rm.add_argument("external", metavar="EXTERNAL_PORT[/tcp|/udp]")
    rm.add_argument(
        "--ipv6",
        action="store_true",
        help="remove a kept opening of the router's IPv6 firewall (`ports check PORT --ipv6 --upnp --keep`)",
    )


def run(args: argparse.Namespace) -> int:
    import asyncio

    from .ports import _Progress

    with _Progress(sys.stderr.isatty()) as say:
        say("looking for the router's UPnP IGD")
        return asyncio.run(_main(args, say))


async def _connect() -> Any:
    """An IgdClient for this network's router, or UpnpError explaining the alternatives."""
    import asyncio

    from checks.errors import UpnpError
    from checks.probes.local import gather_local
    from checks.probes.natpmp import natpmp_external_address
    from checks.probes.upnp import IgdClient, ssdp_discover

    local = await gather_local()
    gateway = local.gateway_ipv4
    natpmp_task = asyncio.ensure_future(natpmp_external_address(gateway, timeout_s=0.6)) if gateway else None
    location = await ssdp_discover(timeout_s=1.0, gateway=gateway)
    natpmp = None
    if natpmp_task is not None:
        try:
            natpmp = await natpmp_task
        except Exception:
            natpmp = None
    if location is None:
        if natpmp is not None and natpmp.ok:
            alt = (
                f"The router at {gateway} answers NAT-PMP, which `ddns-wizard ports check PORT --upnp` uses "
                "for test mappings; `ddns-wizard ports check PORT --upnp --keep` keeps one (NAT-PMP forwards "
                "expire: a week, renewed by running it again), and `ddns-wizard upnp remove PORT` removes it. "
                "For a forward that never expires use the router's web page ('Port forwarding' / "
                "'Virtual server')."
            )
        else:
            alt = (
                "It does not answer NAT-PMP either: forward ports by hand in the router's web page "
                "('Port forwarding' / 'Virtual server'), to this machine's fixed LAN address"
                + (f" ({local.ipv4})" if local.ipv4 else "")
                + "."
            )
        raise UpnpError(
            "no UPnP IGD answered on this network (UPnP is switched off on the router, or it has none). " + alt
        )
    return await IgdClient.connect(location)


def _explain(exc: Exception, *, action: str) -> str:
    from checks.portmap.upnp_errors import upnp_error_text

    return f"{action}: {upnp_error_text(exc)}"


async def _main(args: argparse.Namespace, say: Any = None) -> int:
    from checks.errors import UpnpError, UsageError
    from checks.portcheck.spec import parse_port_spec

    if args.upnp_command in ("add", "remove"):
        spec = parse_port_spec(args.external)
    if args.upnp_command == "add" and args.lease < 0:
        raise UsageError("--lease must be 0 (permanent) or a number of seconds")
    if args.upnp_command == "remove":
        done_kept = await _remove_kept(spec, ipv6=bool(getattr(args, "ipv6", False)), say=say)
        if done_kept is not None:
            return done_kept
    try:
        igd = await _connect()
    except UpnpError as exc:
        if args.upnp_command == "list":
            return await _list_kept_only(args, say, str(exc))
        if args.upnp_command == "add":
            return await _add_without_igd(spec, args, say, str(exc))
        if args.upnp_command != "remove":
            raise
        # A forward kept over NAT-PMP (`ports check --upnp --keep`): NAT-PMP removes it, asked
        # from this machine with lifetime 0.
        if await _remove_over_natpmp(spec):
            if say is not None:
                say("")
            print(f"Removed this machine's NAT-PMP mapping for {spec}.")
            return 0
        raise
    if say is not None:
        say(
            {
                "list": "reading the mapping table and checking the LAN hosts",
                "add": "adding the mapping",
                "remove": "removing the mapping",
            }[args.upnp_command]
        )
    done = say or (lambda _msg: None)
    if args.upnp_command == "list":
        return await _list(igd, args, done)
    if args.upnp_command == "add":
        return await _add(igd, spec, args, done)
    proto = spec.protocol.upper()
    try:
        deleted = await igd.delete_mapping(spec.port, proto)
    except UpnpError as exc:
        raise UpnpError(_explain(exc, action=f"removing {spec}"), code=exc.code) from None
    done("")
    _ledger().forget(spec.port, spec.protocol)
    if not deleted:
        raise UpnpError(f"the router has no mapping for {spec} (see `ddns-wizard upnp list`)", code=714)
    print(f"Removed the mapping for {spec}.")
    return 0


def _ledger() -> Any:
    from checks.portmap.lasting import ForwardsLedger

    return ForwardsLedger.default()


async def _remove_kept(spec: Any, *, ipv6: bool, say: Any) -> int | None:
    """Remove a kept PCP / NAT-PMP forward or IPv6 pinhole this tool's ledger knows; None when the
    ledger has none for ``spec`` (then the IGD is asked as before)."""
    from checks.errors import UpnpError

    ledger = _ledger()
    fwd = ledger.find(spec.port, spec.protocol, family=6 if ipv6 else 4)
    if fwd is None:
        if ipv6:
            raise UpnpError(
                f"this tool keeps no IPv6 firewall opening for {spec} (see `ddns-wizard upnp list`); "
                "openings made in the router's settings are removed there"
            )
        return None
    if fwd.via == "upnp":
        return None
    from checks.portmap.lasting import remove_kept

    ok, what = await remove_kept(fwd)
    if say is not None:
        say("")
    if not ok:
        raise UpnpError(f"removing {spec} ({fwd.via}): {what}")
    ledger.forget(spec.port, spec.protocol, family=6 if ipv6 else 4)
    print(f"Removed {what}.")
    return 0


async def _list_kept_only(args: argparse.Namespace, say: Any, why: str) -> int:
    """No IGD: still list the forwards this tool keeps (PCP, NAT-PMP, pinholes); fail as before
    when there are none."""
    from checks.errors import UpnpError

    kept = _ledger().load()
    if not kept:
        raise UpnpError(why)
    if say is not None:
        say("")
    if args.json:
        print(json.dumps([_kept_json(f) for f in kept], indent=2))
        return 0
    print(f"No UPnP IGD to list ({why.split('. ')[0]}). Forwards this tool keeps:")
    for f in kept:
        print(f"  {f.label()}  lease {lease_text(f.lease_s)}")
    return 0


def _kept_json(f: Any) -> dict[str, Any]:
    internal = (
        f"[{f.internal_host}]:{f.internal_port}" if ":" in f.internal_host else f"{f.internal_host}:{f.internal_port}"
    )
    return {
        "external_port": f.external_port,
        "protocol": f.protocol.upper(),
        "internal": internal,
        "internal_host": f.internal_host,
        "internal_port": f.internal_port,
        "description": "ddns-wizard",
        "lease_s": f.lease_s,
        "enabled": True,
        "remote_host": "",
        "risky": False,
        "risky_service": None,
        "stale": False,
        "note": f.note,
        "ours": True,
        "via": f.via,
        "family": 6 if f.via.endswith("pinhole") else 4,
    }


async def _add_without_igd(spec: Any, args: argparse.Namespace, say: Any, why: str) -> int:
    """No IGD: a lasting forward to this machine over PCP or NAT-PMP (they map only the asking host)."""
    from checks.errors import MappingError, UpnpError
    from checks.portcheck.run import gather_facts, keep_forward, open_mapper

    facts = await gather_facts()
    mapper, _what = await open_mapper(facts)
    if mapper is None:
        raise UpnpError(why)
    host, port = _parse_to(args.to, mapper.lan_address or facts.local.ipv4, spec.port)
    if host != (mapper.lan_address or facts.local.ipv4) or port != spec.port:
        raise UpnpError(
            f"{why.split('. ')[0]}. The router answers {mapper.name}, which forwards ports only to the "
            "computer that asks, on the same port: run this on that computer, without --to"
        )
    try:
        sentence = await keep_forward(mapper, spec.port, spec.protocol, host)
    except MappingError as exc:
        raise UpnpError(f"adding {spec} over {mapper.name}: {exc}") from None
    if say is not None:
        say("")
    print(sentence)
    return 0


async def _remove_over_natpmp(spec: Any) -> bool:
    """Delete this machine's NAT-PMP mapping of ``spec`` (internal port = the port); True when the
    router confirmed it."""
    from checks.probes.local import gather_local
    from checks.probes.natpmp import natpmp_map

    local = await gather_local()
    if not local.gateway_ipv4:
        return False
    reply = await natpmp_map(local.gateway_ipv4, spec.protocol, spec.port, 0, 0)
    return bool(reply.ok)


def _parse_to(value: str | None, default_host: str | None, default_port: int) -> tuple[str, int]:
    from checks.addresses import parse_ip, split_host_port
    from checks.errors import UsageError

    if not value:
        if not default_host:
            raise UsageError("could not learn this machine's LAN address: give --to HOST:PORT")
        return default_host, default_port
    host, port = split_host_port(value, default_port=default_port, what="--to")
    address = parse_ip(host)
    if address is None or address.version != 4:
        raise UsageError(f"--to {value!r}: give an IPv4 LAN address, optionally with :PORT")
    return host, port


async def _add(igd: Any, spec: Any, args: argparse.Namespace, done: Any) -> int:
    from checks.errors import UpnpError
    from checks.risky import RISKY_ADVICE, risky_service

    host, port = _parse_to(args.to, igd.lan_address, spec.port)
    proto = spec.protocol.upper()
    try:
        await igd.add_mapping(spec.port, proto, host, port, args.description, args.lease)
    except UpnpError as exc:
        hint = ""
        other_host = bool(igd.lan_address) and host != igd.lan_address
        if exc.code in (718, 606) and other_host:
            # miniupnpd's secure mode (on by default) refuses a mapping to any host but the one asking,
            # with 718 ConflictInMappingEntry (606 on IGDv2): miniupnpd upnpsoap.c AddPortMapping,
            # "Client %s tried to redirect port to %s". The table is empty then; no conflict to list.
            raise UpnpError(
                f"adding {spec} → {host}:{port}: the router refused to forward to another computer "
                f"(UPnP {exc.code}). Routers in UPnP secure mode (miniupnpd's default) only let a computer "
                f"forward ports to itself: run this on {host}, or add the forward in the router's web page.",
                code=exc.code,
            ) from None
        if exc.code == 718:
            hint = " Run `ddns-wizard upnp list` to see who holds it; remove it or choose another external port."
        elif exc.code == 606:
            hint = " Look for 'Allow users to make port forwarding changes' / UPnP read-write in the router."
        text = _explain(exc, action=f"adding {spec} → {host}:{port}").rstrip()
        if not text.endswith("."):
            text += "."
        raise UpnpError(text + hint, code=exc.code) from None
    made = None
    try:
        made = await igd.get_mapping(spec.port, proto)
    except UpnpError:
        pass
    done("")
    try:
        from checks.portmap.lasting import LastingForward

        _ledger().record(
            LastingForward(
                "upnp",
                spec.port,
                spec.protocol,
                host,
                port,
                lease_s=made.lease_s if made is not None else args.lease,
                router=getattr(igd, "location", None),
            )
        )
    except Exception:
        pass  # the ledger never stops the command: the mapping exists either way
    print(f"Mapped {spec} → {host}:{port} ({args.description}).")
    if made is not None and args.lease and made.lease_s == 0:
        print(
            "The router accepts only permanent mappings (UPnP 725): it was made permanent; remove it with "
            f"`ddns-wizard upnp remove {spec}` when done."
        )
    elif args.lease:
        print(f"Lease: {args.lease} s (the router drops it afterwards).")
    service = risky_service(port, spec.protocol) or risky_service(spec.port, spec.protocol)
    if service:
        print(
            f"Warning: port {port} usually carries {service}, which scanners probe constantly. {RISKY_ADVICE}",
            file=sys.stderr,
        )
    return 0


def lease_text(seconds: int) -> str:
    """'permanent', '45 s', '12m 5s', '3h 20m', '6d 23h'."""
    if seconds <= 0:
        return "permanent"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs} s"


def list_json(items: tuple[MappingStatus, ...]) -> list[dict[str, Any]]:
    out = []
    for s in items:
        m = s.mapping
        out.append(
            {
                "external_port": m.external_port,
                "protocol": m.protocol,
                "internal": m.internal,
                "internal_host": m.internal_host,
                "internal_port": m.internal_port,
                "description": m.description,
                "lease_s": m.lease_s,
                "enabled": m.enabled,
                "remote_host": m.remote_host,
                "risky": s.risky_service is not None,
                "risky_service": s.risky_service,
                "stale": s.stale,
                "note": s.note,
            }
        )
    return out


async def _list(igd: Any, args: argparse.Namespace, done: Any) -> int:
    from checks.errors import UpnpError
    from checks.portcheck.inventory import inspect_mappings

    try:
        mappings = await igd.mappings()
    except UpnpError as exc:
        raise UpnpError(_explain(exc, action="reading the mapping table"), code=exc.code) from None
    items = await inspect_mappings(mappings)
    done("")
    ledger = _ledger()
    ours = {
        (s.mapping.external_port, s.mapping.protocol.lower())
        for s in items
        if ledger.is_ours(s.mapping.external_port, s.mapping.protocol, s.mapping.internal_host)
    }
    in_table = {(s.mapping.external_port, s.mapping.protocol.lower()) for s in items}
    # Forwards kept over PCP / NAT-PMP / as pinholes: no UPnP table lists them.
    extra = [
        f
        for f in ledger.load()
        if f.via != "upnp" and (f.via.endswith("pinhole") or (f.external_port, f.protocol) not in in_table)
    ]
    if args.json:
        listed = list_json(items)
        for entry in listed:
            key = (entry["external_port"], str(entry["protocol"]).lower())
            entry.update({"ours": key in ours, "family": 4, "via": "upnp"})
        print(json.dumps(listed + [_kept_json(f) for f in extra], indent=2))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from checks.risky import RISKY_ADVICE

    out = Console()
    if not items:
        out.print("The router has no UPnP port mappings.")
        for f in extra:
            out.print(f"Kept by this tool: {escape(f.label())}  lease {lease_text(f.lease_s)}")
        return 0
    table = Table(title=f"UPnP mappings on {igd.location}", title_justify="left")
    for col, just in (
        ("external", "right"),
        ("→ internal", "left"),
        ("description", "left"),
        ("lease", "right"),
        ("marks", "left"),
    ):
        table.add_column(col, justify=just, overflow="fold")  # type: ignore[arg-type]
    for s in items:
        m = s.mapping
        marks = []
        if s.risky_service:
            marks.append(f"[bold red]risky: {escape(s.risky_service)}[/]")
        if s.stale:
            marks.append("[yellow]stale: host does not answer[/]")
        if not m.enabled:
            marks.append("[dim]disabled[/]")
        if (m.external_port, m.protocol.lower()) in ours:
            marks.append("[green]ours[/]")
        table.add_row(
            f"{m.external_port}/{m.protocol.lower()}",
            escape(m.internal),
            escape(m.description),
            lease_text(m.lease_s),
            " ".join(marks),
        )
    out.print(table)
    if extra:
        out.print("Also kept by this tool (PCP / NAT-PMP / IPv6 pinholes, which the UPnP table does not list):")
        for f in extra:
            out.print(f"  {escape(f.label())}  lease {lease_text(f.lease_s)}")
    if any(s.risky_service for s in items):
        out.print(f"[red]Risky:[/] {escape(RISKY_ADVICE)}")
    if any(s.stale for s in items):
        out.print(
            "[yellow]Stale:[/] the LAN host no longer answers; remove the mapping "
            "(`ddns-wizard upnp remove PORT/proto`) so a new device given that address is not exposed."
        )
    return 0
