"""`ddns-wizard probe-server --listen HOST:PORT [--udp-port N] [--tls-cert F --tls-key F]`.

Runs the self-hostable outside prober (probeserver/server.py; needs the ``server`` extra) until Ctrl-C or
SIGTERM.  Starlette and uvicorn are imported inside ``run`` only, so ``--help``
stays fast.
"""

from __future__ import annotations

import argparse
import sys

from probeserver import wire


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        action="append",
        required=True,
        help="address to serve HTTP(S) on, e.g. 0.0.0.0:8080 or [::]:8080 (repeatable)",
    )
    parser.add_argument(
        "--udp-port",
        metavar="N",
        type=int,
        default=None,
        help="also answer UDP datagrams on this port of each listen address with '<ip> <port>'",
    )
    parser.add_argument("--tls-cert", metavar="FILE", help="PEM certificate chain: serve HTTPS")
    parser.add_argument("--tls-key", metavar="FILE", help="PEM private key for --tls-cert")
    parser.add_argument(
        "--rate",
        metavar="PER_S",
        type=float,
        default=wire.DEFAULT_RATE_PER_S,
        help="requests per second allowed per client: an IPv4 address or an IPv6 /64 (default %(default)g)",
    )
    parser.add_argument(
        "--burst",
        metavar="N",
        type=int,
        default=wire.DEFAULT_BURST,
        help="burst of requests allowed per client (default %(default)s)",
    )
    parser.add_argument(
        "--max-probes",
        metavar="N",
        type=int,
        default=32,
        help="dial-backs in flight at once, all clients together (default 32)",
    )
    parser.add_argument(
        "--max-probes-per-client",
        metavar="N",
        type=int,
        default=4,
        help="dial-backs in flight at once per client; more wait, then 429 (default 4)",
    )
    parser.add_argument(
        "--max-connections",
        metavar="N",
        type=int,
        default=1000,
        help="open connections, all clients together; the last quarter is kept for clients holding none (default 1000)",
    )
    parser.add_argument(
        "--max-connections-per-client",
        metavar="N",
        type=int,
        default=16,
        help="open connections per client; more are answered 429 and closed (default 16)",
    )


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port); UsageError (AddressError) when unusable."""
    from checks.addresses import split_host_port

    return split_host_port(text, what="--listen", require_ip=True)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from checks.errors import DdnsWizardError, UsageError

    listen = [parse_listen(item) for item in args.listen]
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    if args.udp_port is not None and not 0 < args.udp_port < 65536:
        raise UsageError("--udp-port must be 1-65535")
    if (
        args.rate <= 0
        or min(
            args.burst,
            args.max_probes,
            args.max_probes_per_client,
            args.max_connections,
            args.max_connections_per_client,
        )
        < 1
    ):
        raise UsageError(
            "--rate, --burst, --max-probes, --max-probes-per-client, --max-connections and "
            "--max-connections-per-client must be positive"
        )
    if args.max_connections < 4:
        raise UsageError("--max-connections must be at least 4")

    try:
        from probeserver import server as probe_server
    except ModuleNotFoundError as exc:
        if exc.name not in ("starlette", "uvicorn") and not (exc.name or "").startswith(("starlette.", "uvicorn.")):
            raise
        raise UsageError(
            f"probe-server needs the optional server dependencies (starlette, uvicorn; {(exc.name or '').split('.')[0]} is not "
            "installed): install ddns-wizard with its server extra, e.g. pip install 'ddns-wizard[server]' "
            "(pipx: pipx install --force 'ddns-wizard[server]')"
        ) from None

    settings = probe_server.ProbeServerSettings(
        rate_per_s=args.rate,
        burst=args.burst,
        max_concurrent_probes=args.max_probes,
        max_probes_per_client=args.max_probes_per_client,
        max_connections=args.max_connections,
        max_connections_per_client=args.max_connections_per_client,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def announce(running: probe_server.RunningProbeServer) -> None:
            scheme = "https" if args.tls_cert else "http"
            urls = ", ".join(f"{scheme}://{_hostport(h, p)}" for h, p in running.tcp_addresses)
            udp = ", ".join(_hostport(h, p) for h, p in running.udp_addresses)
            print(
                f"probe-server: serving {urls}" + (f"; UDP echo on {udp}" if udp else ""), file=sys.stderr, flush=True
            )

        await probe_server.serve(
            listen,
            udp_port=args.udp_port,
            ssl_certfile=args.tls_cert,
            ssl_keyfile=args.tls_key,
            settings=settings,
            on_ready=announce,
            stop_event=stop,
        )

    try:
        asyncio.run(main())
    except OSError as exc:
        raise DdnsWizardError(f"cannot serve on {', '.join(args.listen)}: {exc.strerror or exc}") from None
    return 0


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
