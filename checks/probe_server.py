"""The self-hostable outside prober behind ``ddns-wizard probe-server``.

Run it on a VPS or a friend's machine and point ``[endpoints] port_check`` at it
(``"ddnsw+https://HOST"``) so the port check does not depend on public services.

HTTP API (all answers are about the *requester*; there is no host parameter):

- ``GET /`` and ``GET /ip`` -> ``text/plain``: the requester's IP and ``"\\n"``.
- ``GET /port/N`` -> echoip-compatible ``{"ip", "port", "reachable"}`` (TCP dial back).
- ``GET /probe/tcp/N`` -> ``{"ip", "port", "protocol": "tcp", "result":
  "connected"|"refused"|"timeout"|"error", "banner": str|None, "ms"}``; after
  connecting it reads up to 256 bytes (until a newline) for at most one second.
- ``GET /probe/udp/N?token=T`` -> sends ``DDNSW-PROBE T\\n`` to requester:N (three
  tries within two seconds) and returns ``{..., "protocol": "udp", "result":
  "replied"|"timeout"|"error", "banner": reply|None, "ms"}``.
- a UDP echo socket: each datagram is answered with ``"<ip> <port>\\n"`` of its sender.

Abuse resistance: the only address it ever dials is the source address of the
request being served (no proxy headers are trusted, so it cannot be turned into a
scanner of third parties); probes share a bounded semaphore (503 when it stays
full); each client IP has a token bucket (429 with ``Retry-After``), the UDP echo
too; malformed requests get a 4xx JSON ``{"status", "error"}``.

Starlette and uvicorn are imported here, so import this module only where the
server is really wanted (``wizard/commands/probe_server.py`` does it inside ``run``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("ddns_wizard.probe_server")

BANNER_MAX_BYTES = 256
UDP_REPLY_MAX_BYTES = 512
_PORT_RE = re.compile(r"^[0-9]{1,5}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True)
class ProbeServerSettings:
    """Limits of one probe server; the defaults suit a small public VPS."""

    dial_timeout_s: float = 2.0        # TCP connect deadline (echoip uses 2 s)
    banner_timeout_s: float = 1.0      # how long to wait for the listener's banner
    udp_timeout_s: float = 2.0         # overall deadline of a UDP probe
    udp_tries: int = 3                 # datagrams sent within udp_timeout_s
    max_concurrent_probes: int = 32    # dial-backs in flight, all clients together
    queue_timeout_s: float = 5.0       # wait for a probe slot before answering 503
    rate_per_s: float = 10.0           # token bucket refill per client IP
    burst: int = 30                    # token bucket size per client IP
    udp_echo_rate_per_s: float = 20.0  # UDP echo replies per source IP
    udp_echo_burst: int = 40
    max_tracked_clients: int = 10_000  # bucket table size (oldest evicted)
    request_deadline_s: float = 10.0   # a connection must deliver a request within this


class TokenBuckets:
    """Per-key token buckets with a bounded table (least recently used evicted)."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """Take one token; return 0.0 when admitted, else seconds until one is available."""
        now = self._clock()
        tokens, stamp = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - stamp) * self._rate)
        if tokens >= 1.0:
            tokens -= 1.0
            wait = 0.0
        else:
            wait = (1.0 - tokens) / self._rate if self._rate > 0 else 60.0
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait


def requester_ip(raw: str | None) -> str | None:
    """The client's address in canonical text form (IPv4-mapped IPv6 unwrapped)."""
    if not raw:
        return None
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def parse_port(text: str) -> int | None:
    """A TCP/UDP port 1..65535 from its decimal text, else None."""
    if not _PORT_RE.match(text):
        return None
    port = int(text)
    return port if 1 <= port <= 65535 else None


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": status, "error": message}, status_code=status, headers=headers)


def _elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 1)


async def dial_tcp(ip: str, port: int, *, dial_timeout_s: float,
                   banner_timeout_s: float) -> dict[str, Any]:
    """Connect to ip:port, read a banner; the outcome as data (never raises)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(dial_timeout_s):
            reader, writer = await asyncio.open_connection(ip, port)
    except TimeoutError:
        return {"result": "timeout", "banner": None, "ms": _elapsed_ms(started)}
    except ConnectionRefusedError:
        return {"result": "refused", "banner": None, "ms": _elapsed_ms(started)}
    except OSError as exc:
        return {"result": "error", "banner": None, "ms": _elapsed_ms(started),
                "error": exc.strerror or type(exc).__name__}
    connect_ms = _elapsed_ms(started)
    banner = b""
    try:
        async with asyncio.timeout(banner_timeout_s):
            # Stop at the first newline: the tool's listener writes one line.
            while len(banner) < BANNER_MAX_BYTES and b"\n" not in banner:
                chunk = await reader.read(BANNER_MAX_BYTES - len(banner))
                if not chunk:
                    break
                banner += chunk
    except (TimeoutError, OSError):
        pass
    finally:
        writer.close()
        try:
            async with asyncio.timeout(0.5):
                await writer.wait_closed()
        except (TimeoutError, OSError):
            pass
    text = banner.decode("utf-8", errors="replace") if banner else None
    return {"result": "connected", "banner": text, "ms": connect_ms}


class _OneReply(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and friends: keep waiting, a later try may pass.
        pass


async def probe_udp(ip: str, port: int, token: str, *, timeout_s: float, tries: int) -> dict[str, Any]:
    """Send ``DDNSW-PROBE token`` to ip:port up to ``tries`` times; report the reply."""
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            _OneReply, remote_addr=(ip, port), family=family)
    except OSError as exc:
        return {"result": "error", "banner": None, "ms": _elapsed_ms(started),
                "error": exc.strerror or type(exc).__name__}
    payload = f"DDNSW-PROBE {token}\n".encode()
    interval = timeout_s / max(1, tries)
    try:
        for attempt in range(max(1, tries)):
            try:
                transport.sendto(payload)
            except OSError:
                pass
            remaining = timeout_s - (time.monotonic() - started)
            wait = min(interval, remaining) if attempt < tries - 1 else remaining
            if wait <= 0:
                continue  # late (loaded machine): still send every try
            try:
                data = await asyncio.wait_for(asyncio.shield(protocol.reply), wait)
            except TimeoutError:
                continue
            return _udp_replied(data, started)
        if protocol.reply.done():  # arrived while this loaded loop was late
            return _udp_replied(protocol.reply.result(), started)
        return {"result": "timeout", "banner": None, "ms": _elapsed_ms(started)}
    finally:
        transport.close()


def _udp_replied(data: bytes, started: float) -> dict[str, Any]:
    text = data[:UDP_REPLY_MAX_BYTES].decode("utf-8", errors="replace")
    return {"result": "replied", "banner": text, "ms": _elapsed_ms(started)}


class _RateLimit:
    """ASGI middleware: one token bucket per client IP, 429 when empty."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets, stats: "ProbeStats") -> None:
        self.app = app
        self.buckets = buckets
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            ip = requester_ip(client[0] if client else None) or "unknown"
            wait = self.buckets.take(ip)
            if wait > 0:
                self.stats.rate_limited += 1
                response = _error(429, "rate limit exceeded, slow down",
                                  headers={"Retry-After": str(max(1, int(wait + 0.999)))})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


@dataclass
class ProbeStats:
    """Counters the tests (and a curious operator) can read."""

    probes_started: int = 0
    probes_in_flight: int = 0
    peak_in_flight: int = 0
    rate_limited: int = 0
    busy: int = 0
    dialed: list[str] = field(default_factory=list)  # last addresses dialed (bounded)


def build_app(settings: ProbeServerSettings | None = None, *,
              clock: Callable[[], float] = time.monotonic,
              stats: ProbeStats | None = None) -> Starlette:
    """The probe server's ASGI app (no sockets opened here)."""
    cfg = settings or ProbeServerSettings()
    counters = stats if stats is not None else ProbeStats()
    slots = asyncio.Semaphore(cfg.max_concurrent_probes)

    def client_ip(request: Request) -> str | None:
        return requester_ip(request.client.host if request.client else None)

    async def with_slot(ip: str, work: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(cfg.queue_timeout_s):
                await slots.acquire()
        except TimeoutError:
            counters.busy += 1
            return None
        counters.probes_started += 1
        counters.probes_in_flight += 1
        counters.peak_in_flight = max(counters.peak_in_flight, counters.probes_in_flight)
        counters.dialed.append(ip)
        del counters.dialed[:-100]
        try:
            return await work()
        finally:
            counters.probes_in_flight -= 1
            slots.release()

    async def echo_ip(request: Request) -> Response:
        ip = client_ip(request)
        if ip is None:
            return _error(400, "cannot tell your address")
        return PlainTextResponse(ip + "\n")

    def port_or_error(request: Request) -> tuple[str, int] | Response:
        ip = client_ip(request)
        if ip is None:
            return _error(400, "cannot tell your address")
        text = request.path_params["port"]
        port = parse_port(text)
        if port is None:
            return _error(400, f"invalid port: {text[:16]}")
        return ip, port

    def tcp(ip: str, port: int) -> Callable[[], Awaitable[dict[str, Any]]]:
        return lambda: dial_tcp(ip, port, dial_timeout_s=cfg.dial_timeout_s,
                                banner_timeout_s=cfg.banner_timeout_s)

    async def echoip_port(request: Request) -> Response:
        checked = port_or_error(request)
        if isinstance(checked, Response):
            return checked
        ip, port = checked
        outcome = await with_slot(ip, tcp(ip, port))
        if outcome is None:
            return _error(503, "too many probes in flight, try again shortly")
        return JSONResponse({"ip": ip, "port": port, "reachable": outcome["result"] == "connected"})

    async def probe_tcp(request: Request) -> Response:
        checked = port_or_error(request)
        if isinstance(checked, Response):
            return checked
        ip, port = checked
        outcome = await with_slot(ip, tcp(ip, port))
        if outcome is None:
            return _error(503, "too many probes in flight, try again shortly")
        return JSONResponse({"ip": ip, "port": port, "protocol": "tcp", **outcome})

    async def probe_udp_route(request: Request) -> Response:
        checked = port_or_error(request)
        if isinstance(checked, Response):
            return checked
        ip, port = checked
        token = request.query_params.get("token", "")
        if not _TOKEN_RE.match(token):
            return _error(400, "token must be 1-64 characters of A-Z a-z 0-9 _ . : -")
        outcome = await with_slot(ip, lambda: probe_udp(
            ip, port, token, timeout_s=cfg.udp_timeout_s, tries=cfg.udp_tries))
        if outcome is None:
            return _error(503, "too many probes in flight, try again shortly")
        return JSONResponse({"ip": ip, "port": port, "protocol": "udp", **outcome})

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, "not found")

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        return _error(405, "method not allowed")

    routes = [
        Route("/", echo_ip, methods=["GET"]),
        Route("/ip", echo_ip, methods=["GET"]),
        Route("/port/{port}", echoip_port, methods=["GET"]),
        Route("/probe/tcp/{port}", probe_tcp, methods=["GET"]),
        Route("/probe/udp/{port}", probe_udp_route, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: method_not_allowed})
    buckets = TokenBuckets(cfg.rate_per_s, cfg.burst, cfg.max_tracked_clients, clock)
    app.add_middleware(_RateLimit, buckets=buckets, stats=counters)
    app.state.stats = counters
    app.state.settings = cfg
    return app


class _UdpEcho(asyncio.DatagramProtocol):
    """Answers every datagram with ``"<ip> <port>\\n"`` of its sender (rate-limited)."""

    def __init__(self, buckets: TokenBuckets) -> None:
        self.buckets = buckets
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        ip = requester_ip(addr[0])
        if ip is None or self.transport is None:
            return
        if self.buckets.take(ip) > 0:
            return  # over its budget: drop silently (a reflector must not amplify floods)
        try:
            self.transport.sendto(f"{ip} {addr[1]}\n".encode(), addr)
        except OSError:
            pass

    def error_received(self, exc: Exception) -> None:
        pass


def _guarded_h11(request_deadline_s: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing connections that send no complete request in time.

    uvicorn only times out idle keep-alive connections *after* a response, so a
    client that connects and sends nothing (or half a request line) would hold a
    connection slot forever (slow loris).
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11(H11Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
            super().connection_made(transport)  # type: ignore[arg-type]
            self._request_guard = self.loop.call_later(request_deadline_s, self._close_if_no_request)

        def _close_if_no_request(self) -> None:
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._request_guard.cancel()
            super().connection_lost(exc)

    return GuardedH11


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the caller decides when to stop."""

    def capture_signals(self):  # type: ignore[override]
        import contextlib

        return contextlib.nullcontext()


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket (IPv6 sockets are v6-only, so v4 and v6 can coexist)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class RunningProbeServer:
    """A started probe server: its bound addresses and a way to stop it."""

    def __init__(self, server: _Server, task: asyncio.Task[None], app: Starlette,
                 tcp_addresses: list[tuple[str, int]], udp_addresses: list[tuple[str, int]],
                 udp_transports: list[asyncio.DatagramTransport]) -> None:
        self._server = server
        self._task = task
        self.app = app
        self.tcp_addresses = tcp_addresses
        self.udp_addresses = udp_addresses
        self._udp_transports = udp_transports

    @property
    def stats(self) -> ProbeStats:
        return self.app.state.stats  # type: ignore[no-any-return]

    async def wait_closed(self) -> None:
        await self._task

    async def stop(self) -> None:
        for transport in self._udp_transports:
            transport.close()
        self._server.should_exit = True
        try:
            async with asyncio.timeout(5):
                await asyncio.shield(self._task)
        except TimeoutError:
            self._server.force_exit = True
            await self._task


async def start(listen: list[tuple[str, int]], *, udp_port: int | None = None,
                ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
                settings: ProbeServerSettings | None = None,
                log_level: str = "warning") -> RunningProbeServer:
    """Bind every (host, port) in ``listen`` (port 0 = ephemeral), start serving, return.

    ``udp_port`` opens the UDP echo on each listen host (0 = ephemeral).
    """
    cfg = settings or ProbeServerSettings()
    app = build_app(cfg)
    sockets = [bind_tcp(host, port) for host, port in listen]
    config = uvicorn.Config(
        app, log_level=log_level, access_log=False, lifespan="off",
        ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
        # Whole-server bounds on top of the per-client ones: no slow-loris pile-up.
        limit_concurrency=max(64, cfg.max_concurrent_probes * 4),
        timeout_keep_alive=5, server_header=False,
        # Never believe X-Forwarded-For (uvicorn trusts it from 127.0.0.1 by default):
        # the dial-back target must be the TCP peer itself.
        proxy_headers=False,
        http=_guarded_h11(cfg.request_deadline_s),
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started:
        if task.done():
            task.result()  # re-raise the startup failure
            raise OSError("probe server stopped during start-up")
        await asyncio.sleep(0.01)
    tcp_addresses = [s.getsockname()[:2] for s in sockets]
    udp_transports: list[asyncio.DatagramTransport] = []
    udp_addresses: list[tuple[str, int]] = []
    if udp_port is not None:
        echo_buckets = TokenBuckets(cfg.udp_echo_rate_per_s, cfg.udp_echo_burst, cfg.max_tracked_clients)
        loop = asyncio.get_running_loop()
        for host, _ in listen:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            transport, _proto = await loop.create_datagram_endpoint(
                lambda: _UdpEcho(echo_buckets), local_addr=(host, udp_port), family=family)
            udp_transports.append(transport)
            udp_addresses.append(transport.get_extra_info("sockname")[:2])
    return RunningProbeServer(server, task, app, tcp_addresses, udp_addresses, udp_transports)


async def serve(listen: list[tuple[str, int]], *, udp_port: int | None = None,
                ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
                settings: ProbeServerSettings | None = None,
                on_ready: Callable[[RunningProbeServer], None] | None = None,
                stop_event: asyncio.Event | None = None) -> None:
    """Run until ``stop_event`` is set (or the task is cancelled)."""
    running = await start(listen, udp_port=udp_port, ssl_certfile=ssl_certfile,
                          ssl_keyfile=ssl_keyfile, settings=settings)
    if on_ready is not None:
        on_ready(running)
    stopper = stop_event or asyncio.Event()
    try:
        waiter = asyncio.create_task(stopper.wait())
        await asyncio.wait({waiter, running._task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    finally:
        await running.stop()
