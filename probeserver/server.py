"""The self-hostable outside prober behind ``ddns-wizard probe-server``.

Run it on a VPS or a friend's machine and point ``[endpoints] port_check`` at it
(``"ddnsw+https://HOST"``) so the port check does not depend on public services.

HTTP API (all answers are about the *requester*; there is no host parameter):

- ``GET /`` and ``GET /ip`` -> ``text/plain``: the requester's IP and ``"\\n"``.
- ``GET /port/N`` -> echoip-compatible ``{"ip", "port", "reachable"}`` (TCP dial back;
  answered as soon as the connection is made or refused, no banner is read).
- ``GET /probe/tcp/N`` -> ``{"ip", "port", "protocol": "tcp", "result":
  "connected"|"refused"|"timeout"|"error", "banner": str|None, "ms"}``; after
  connecting it reads up to 256 bytes (until a newline) for at most one second.
- ``GET /probe/udp/N?token=T`` -> sends ``DDNSW-PROBE T\\n`` to requester:N (three
  tries within two seconds) and returns ``{..., "protocol": "udp", "result":
  "replied"|"timeout"|"error", "banner": reply|None, "ms"}``.
- ``GET /reach/tcp/N?name=HOST[&tls=1]`` -> is HOST:N reachable from here (probeserver/reach.py):
  resolves HOST and dials the requester's address only if HOST resolves to it (else 403
  ``not-your-address``); with ``tls=1`` a TLS handshake with SNI = HOST and the certificate's
  facts (probeserver/tls.py; trust store: the system's, or ``DDNSW_PROBE_CA_FILE``).
- a UDP echo socket: each datagram is answered with ``"<ip> <port>\\n"`` of its sender.

Abuse resistance. The only address it ever dials is the source address of the
request being served (no proxy headers are trusted, so it cannot be turned into a
scanner of third parties). A *client* is an IPv4 address or an IPv6 /64 (one
subscriber's network: an IPv6 host can pick any address of its /64). Per client:
a token bucket (429 with ``Retry-After``), at most ``max_probes_per_client``
dial-backs in flight (more wait, then 429), at most ``max_connections_per_client``
open connections (more are answered 429 and closed). For everyone together:
``max_concurrent_probes`` dial-backs and ``max_connections`` connections, of which
a share (``reserve_share``) is kept for clients that hold none; when the table is
full a newcomer takes the slot of the oldest idle connection of the client that
holds the most. Every request on a connection - the first (TLS handshake
included) and each one after it on a kept-alive connection - must arrive whole,
headers and body, within ``request_deadline_s`` of the connection being ready for
it; an idle kept-alive connection is closed after ``keep_alive_s``.

How it is built, and why. HTTP is uvicorn's h11 protocol (a strict, sans-I/O
parser), driven by starlette. uvicorn's own settings cannot express the limits
above: ``timeout_keep_alive`` is cancelled by the first byte of the next request
and never re-armed (so half a second request holds a connection forever - the
root cause is also described in xorbitsai/inference PR #5213), ``limit_concurrency``
counts idle connections of all clients together and then answers 503 to
everyone, nothing is per client, and TLS handshakes run before any protocol code
sees the connection (asyncio's 60 s default). So the server plugs its own protocol
class into uvicorn's ``http=`` option: a gate that admits or refuses each TCP
connection by client before anything else (and runs the TLS handshake itself,
with a deadline), then hands the connection to uvicorn's h11 protocol extended
with the per-request deadline. Listening sockets are made with
``proto=IPPROTO_TCP`` so asyncio switches Nagle off on each accepted connection:
without it uvicorn's separate writes of headers and body met the client's delayed
ACK and every request after the first on a connection waited ~40 ms.

Starlette and uvicorn are imported here, so import this module only where the
server is really wanted (``wizard/commands/probe_server.py`` does it inside ``run``); the
wire protocol the client shares is in ``probeserver/wire.py``, which imports neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import logging
import re
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from probeserver import wire
from probeserver.reach import make_route
from probeserver.wire import (
    ECHOIP_PORT_PATH,
    IP_PATHS,
    PROBE_TCP_PATH,
    PROBE_UDP_PATH,
    REACH_TCP_PATH,
    TOKEN_RE,
    TcpResult,
    UdpResult,
    udp_probe_payload,
)

log = logging.getLogger("ddns_wizard.probe_server")

BANNER_MAX_BYTES = 256
UDP_REPLY_MAX_BYTES = 512
_PORT_RE = re.compile(r"^[0-9]{1,5}$")
IPV6_CLIENT_PREFIX = 64  # one subscriber's network (RFC 6177: a site gets a /64 or shorter)


@dataclass(frozen=True)
class ProbeServerSettings:
    """Limits of one probe server; the defaults suit a small public VPS."""

    dial_timeout_s: float = 2.0  # TCP connect deadline (echoip uses 2 s)
    banner_timeout_s: float = 1.0  # /probe/tcp: how long to wait for the listener's banner
    udp_timeout_s: float = 2.0  # overall deadline of a UDP probe
    udp_tries: int = 3  # datagrams sent within udp_timeout_s
    max_concurrent_probes: int = 32  # dial-backs in flight, all clients together
    max_probes_per_client: int = 4  # dial-backs in flight per client (the tool sends 4 at most)
    queue_timeout_s: float = 5.0  # wait for a probe slot before answering 429/503
    rate_per_s: float = wire.DEFAULT_RATE_PER_S  # token bucket refill per client
    burst: int = wire.DEFAULT_BURST  # token bucket size per client
    udp_echo_rate_per_s: float = 20.0  # UDP echo replies per client
    udp_echo_burst: int = 40
    max_tracked_clients: int = 10_000  # bucket table size (oldest evicted)
    request_deadline_s: float = 10.0  # every request (headers + body) must arrive within this
    keep_alive_s: float = 5.0  # an idle kept-alive connection is closed after this
    max_connections: int = 1000  # open connections, all clients together
    max_connections_per_client: int = 16
    reserve_share: float = 0.25  # of connections and probe slots, kept for clients holding none
    refusal_deadline_s: float = 2.0  # a refused connection gets this long to send its request
    tls_shutdown_s: float = 2.0  # wait for the client's TLS close_notify at most this long


def client_key(ip: str) -> str:
    """Who a limit applies to: the IPv4 address, or the IPv6 /64 the address is in."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((addr, IPV6_CLIENT_PREFIX), strict=False))
    return str(addr)


class TokenBuckets:
    """Per-key token buckets with a bounded table (least recently used evicted)."""

    def __init__(
        self, rate_per_s: float, burst: int, max_keys: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
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


class ProbeSlots:
    """Dial-backs in flight: at most ``total``, at most ``per_client`` per client, and
    the last ``reserve`` slots only for clients that have none in flight.

    ``acquire`` waits (FIFO-ish) until the client may take a slot, at most ``timeout_s``.
    """

    def __init__(self, total: int, per_client: int, reserve: int) -> None:
        self.total = total
        self.per_client = max(1, min(per_client, total))
        self.reserve = max(0, min(reserve, total - 1))
        self.in_flight = 0
        self.held: dict[str, int] = {}
        self._changed = asyncio.Condition()

    def _may_take(self, key: str) -> bool:
        held = self.held.get(key, 0)
        if held >= self.per_client or self.in_flight >= self.total:
            return False
        return held == 0 or self.in_flight < self.total - self.reserve

    async def acquire(self, key: str, timeout_s: float) -> bool:
        async with self._changed:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._changed.wait_for(lambda: self._may_take(key))
            except TimeoutError:
                return False
            self.held[key] = self.held.get(key, 0) + 1
            self.in_flight += 1
            return True

    async def release(self, key: str) -> None:
        async with self._changed:
            left = self.held.get(key, 1) - 1
            if left > 0:
                self.held[key] = left
            else:
                self.held.pop(key, None)
            self.in_flight -= 1
            self._changed.notify_all()


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


def _outcome(result: TcpResult | UdpResult, banner: str | None, ms: float, **extra: Any) -> dict[str, Any]:
    """A /probe answer's result fields (the words: probeserver/wire.py)."""
    return {"result": result, "banner": banner, "ms": ms, **extra}


def _elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 1)


async def dial_tcp(
    ip: str, port: int, *, dial_timeout_s: float, banner_timeout_s: float, read_banner: bool = True
) -> dict[str, Any]:
    """Connect to ip:port, read a banner (unless ``read_banner`` is false); the outcome
    as data (never raises)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(dial_timeout_s):
            reader, writer = await asyncio.open_connection(ip, port)
    except TimeoutError:
        return _outcome("timeout", None, _elapsed_ms(started))
    except ConnectionRefusedError:
        return _outcome("refused", None, _elapsed_ms(started))
    except OSError as exc:
        return _outcome("error", None, _elapsed_ms(started), error=exc.strerror or type(exc).__name__)
    connect_ms = _elapsed_ms(started)
    banner = b""
    try:
        if read_banner:
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
    return _outcome("connected", text, connect_ms)


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
        transport, protocol = await loop.create_datagram_endpoint(_OneReply, remote_addr=(ip, port), family=family)
    except OSError as exc:
        return _outcome("error", None, _elapsed_ms(started), error=exc.strerror or type(exc).__name__)
    payload = udp_probe_payload(token)
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
        return _outcome("timeout", None, _elapsed_ms(started))
    finally:
        transport.close()


def _udp_replied(data: bytes, started: float) -> dict[str, Any]:
    text = data[:UDP_REPLY_MAX_BYTES].decode("utf-8", errors="replace")
    return _outcome("replied", text, _elapsed_ms(started))


class _RateLimit:
    """ASGI middleware: one token bucket per client (IPv4 address / IPv6 /64), 429 when empty."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets, stats: ProbeStats) -> None:
        self.app = app
        self.buckets = buckets
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            ip = requester_ip(client[0] if client else None)
            wait = self.buckets.take(client_key(ip) if ip else "unknown")
            if wait > 0:
                self.stats.rate_limited += 1
                response = _error(
                    429, "rate limit exceeded, slow down", headers={"Retry-After": str(max(1, int(wait + 0.999)))}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


@dataclass
class ProbeStats:
    """Counters the tests, the benchmark (and a curious operator) can read."""

    probes_started: int = 0
    probes_in_flight: int = 0
    peak_in_flight: int = 0
    rate_limited: int = 0
    busy: int = 0  # probe requests turned away (no slot in time)
    dialed: list[str] = field(default_factory=list)  # last addresses dialed (bounded)
    connections_open: int = 0  # admitted connections now
    peak_connections: int = 0
    connections_refused: int = 0  # answered 429/503 and closed
    connections_dropped: int = 0  # closed at once (too many refusals already under way)
    connections_evicted: int = 0  # idle connections closed to make room for a new client
    deadline_closed: int = 0  # closed: a request (or TLS handshake) did not arrive in time
    stalled_closed: int = 0  # closed: the client stopped reading our answer


def build_app(
    settings: ProbeServerSettings | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    stats: ProbeStats | None = None,
) -> Starlette:
    """The probe server's ASGI app (no sockets opened here)."""
    cfg = settings or ProbeServerSettings()
    counters = stats if stats is not None else ProbeStats()
    slots = ProbeSlots(
        cfg.max_concurrent_probes, cfg.max_probes_per_client, int(cfg.max_concurrent_probes * cfg.reserve_share)
    )

    def client_ip(request: Request) -> str | None:
        return requester_ip(request.client.host if request.client else None)

    async def with_slot(ip: str, work: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any] | Response:
        key = client_key(ip)
        if not await slots.acquire(key, cfg.queue_timeout_s):
            counters.busy += 1
            if slots.held.get(key, 0) >= slots.per_client:
                who = "your /64" if "/" in key else "your address"
                return _error(
                    429,
                    f"too many probes in flight from {who} (at most {slots.per_client} at once), try again shortly",
                    headers={"Retry-After": "1"},
                )
            return _error(503, "too many probes in flight, try again shortly", headers={"Retry-After": "1"})
        counters.probes_started += 1
        counters.probes_in_flight += 1
        counters.peak_in_flight = max(counters.peak_in_flight, counters.probes_in_flight)
        counters.dialed.append(ip)
        del counters.dialed[:-100]
        try:
            return await work()
        finally:
            counters.probes_in_flight -= 1
            await slots.release(key)

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

    def tcp(ip: str, port: int, *, read_banner: bool) -> Callable[[], Awaitable[dict[str, Any]]]:
        return lambda: dial_tcp(
            ip, port, dial_timeout_s=cfg.dial_timeout_s, banner_timeout_s=cfg.banner_timeout_s, read_banner=read_banner
        )

    async def echoip_port(request: Request) -> Response:
        checked = port_or_error(request)
        if isinstance(checked, Response):
            return checked
        ip, port = checked
        # echoip's answer has no banner: reply as soon as the dial is decided.
        outcome = await with_slot(ip, tcp(ip, port, read_banner=False))
        if isinstance(outcome, Response):
            return outcome
        return JSONResponse({"ip": ip, "port": port, "reachable": outcome["result"] == "connected"})

    async def probe_tcp(request: Request) -> Response:
        checked = port_or_error(request)
        if isinstance(checked, Response):
            return checked
        ip, port = checked
        outcome = await with_slot(ip, tcp(ip, port, read_banner=True))
        if isinstance(outcome, Response):
            return outcome
        return JSONResponse({"ip": ip, "port": port, "protocol": "tcp", **outcome})

    async def probe_udp_route(request: Request) -> Response:
        checked = port_or_error(request)
        if isinstance(checked, Response):
            return checked
        ip, port = checked
        token = request.query_params.get("token", "")
        if not TOKEN_RE.match(token):
            return _error(400, "token must be 1-64 characters of A-Z a-z 0-9 _ . : -")
        outcome = await with_slot(
            ip, lambda: probe_udp(ip, port, token, timeout_s=cfg.udp_timeout_s, tries=cfg.udp_tries)
        )
        if isinstance(outcome, Response):
            return outcome
        return JSONResponse({"ip": ip, "port": port, "protocol": "udp", **outcome})

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, "not found")

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        return _error(405, "method not allowed")

    routes = [
        *(Route(path, echo_ip, methods=["GET"]) for path in IP_PATHS),
        Route(ECHOIP_PORT_PATH, echoip_port, methods=["GET"]),
        Route(PROBE_TCP_PATH, probe_tcp, methods=["GET"]),
        Route(PROBE_UDP_PATH, probe_udp_route, methods=["GET"]),
        Route(
            REACH_TCP_PATH,
            make_route(
                port_or_error=port_or_error, with_slot=with_slot, dial_tcp=dial_tcp, dial_timeout_s=cfg.dial_timeout_s
            ),
            methods=["GET"],
        ),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: method_not_allowed})
    buckets = TokenBuckets(cfg.rate_per_s, cfg.burst, cfg.max_tracked_clients, clock)
    app.add_middleware(_RateLimit, buckets=buckets, stats=counters)
    app.state.stats = counters
    app.state.settings = cfg
    app.state.probe_slots = slots
    return app


class _UdpEcho(asyncio.DatagramProtocol):
    """Answers every datagram with ``"<ip> <port>\\n"`` of its sender (rate-limited per client)."""

    def __init__(self, buckets: TokenBuckets) -> None:
        self.buckets = buckets
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        ip = requester_ip(addr[0])
        if ip is None or self.transport is None:
            return
        if self.buckets.take(client_key(ip)) > 0:
            return  # over its budget: drop silently (a reflector must not amplify floods)
        try:
            self.transport.sendto(f"{ip} {addr[1]}\n".encode(), addr)
        except OSError:
            pass

    def error_received(self, exc: Exception) -> None:
        pass


# --------------------------------------------------------------------------- connections


@dataclass(eq=False)
class _Ticket:
    """One open connection's place in the table (released exactly once)."""

    key: str
    refusal: tuple[int, str] | None = None  # (status, message) when the connection is refused
    owner: Any = None  # the protocol that holds it: .evictable(), .evict()
    released: bool = False


class ConnectionTable:
    """Admission of TCP connections by client (IPv4 address or IPv6 /64).

    A connection is admitted while its client holds fewer than
    ``max_connections_per_client`` and the table has room; once the table is
    ``1 - reserve_share`` full only clients holding no connection are admitted; when
    it is full, a new client takes the place of the oldest idle connection of the
    client that holds the most. A refused connection is answered 429/503 and closed
    (bounded: beyond as many refusals under way again, per client, it is closed at once).
    """

    def __init__(self, cfg: ProbeServerSettings, stats: ProbeStats) -> None:
        self.cfg = cfg
        self.stats = stats
        self.by_key: dict[str, list[_Ticket]] = {}  # each client's tickets, oldest first
        self.total = 0
        self.soft_limit = cfg.max_connections - int(cfg.max_connections * cfg.reserve_share)
        self.refusing: dict[str, int] = {}
        self.refusing_total = 0
        self.max_refusing = max(16, cfg.max_connections // 4)

    def admit(self, ip: str | None) -> _Ticket | None:
        """A ticket (admitted, or refused with a reason to tell), or None: close at once."""
        key = client_key(ip) if ip else "unknown"
        held = len(self.by_key.get(key, ()))
        cap = self.cfg.max_connections_per_client
        refusal: tuple[int, str] | None = None
        if held >= cap:
            who = "your /64" if "/" in key else "your address"
            refusal = (429, f"too many connections from {who} ({held} open, at most {cap}): reuse the ones you have")
        elif self.total >= self.soft_limit and held > 0:
            refusal = (503, "server busy: the remaining connections are kept for new clients; reuse the ones you have")
        elif self.total >= self.cfg.max_connections and not self._evict_for_newcomer():
            refusal = (503, "server busy: too many connections, try again shortly")
        if refusal is not None:
            if self.refusing.get(key, 0) >= cap or self.refusing_total >= self.max_refusing:
                self.stats.connections_dropped += 1
                return None
            self.refusing[key] = self.refusing.get(key, 0) + 1
            self.refusing_total += 1
            self.stats.connections_refused += 1
            return _Ticket(key, refusal)
        ticket = _Ticket(key)
        self.by_key.setdefault(key, []).append(ticket)
        self.total += 1
        self.stats.connections_open = self.total
        self.stats.peak_connections = max(self.stats.peak_connections, self.total)
        return ticket

    def release(self, ticket: _Ticket) -> None:
        if ticket.released:
            return
        ticket.released = True
        if ticket.refusal is not None:
            left = self.refusing.get(ticket.key, 1) - 1
            if left > 0:
                self.refusing[ticket.key] = left
            else:
                self.refusing.pop(ticket.key, None)
            self.refusing_total -= 1
            return
        tickets = self.by_key.get(ticket.key, [])
        try:
            tickets.remove(ticket)
        except ValueError:
            pass
        if not tickets:
            self.by_key.pop(ticket.key, None)
        self.total -= 1
        self.stats.connections_open = self.total

    def _evict_for_newcomer(self) -> bool:
        """Close the oldest idle connection of the client holding the most; False if none is idle."""
        for key in sorted(self.by_key, key=lambda k: len(self.by_key[k]), reverse=True):
            for ticket in self.by_key[key]:  # oldest first
                if ticket.owner is not None and ticket.owner.evictable():
                    owner = ticket.owner
                    self.release(ticket)
                    self.stats.connections_evicted += 1
                    owner.evict()
                    return True
        return False

    def open_transports(self) -> list[asyncio.BaseTransport]:
        """The transports of the admitted connections (tests read their socket options)."""
        out = []
        for tickets in self.by_key.values():
            for ticket in tickets:
                transport = getattr(ticket.owner, "transport", None)
                if transport is not None:
                    out.append(transport)
        return out


def _refusal_app(status: int, message: str) -> ASGIApp:
    body = json.dumps({"status": status, "error": message}, separators=(",", ":")).encode()

    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"1"),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return refuse


_TIMEOUT_BODY = json.dumps({"status": 408, "error": "request not received in time"}, separators=(",", ":")).encode()
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\nconnection: close\r\n\r\n" + _TIMEOUT_BODY
)


def _protocol_class(
    cfg: ProbeServerSettings, table: ConnectionTable, stats: ProbeStats, tls: ssl.SSLContext | None
) -> type[asyncio.Protocol]:
    """The class given to uvicorn as ``http=``: a gate per TCP connection, then h11."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class DeadlineH11(H11Protocol):
        """uvicorn's h11 protocol where every request has a deadline for its headers and body.

        Armed when the connection is ready for a request (accepted, or the previous
        answer sent), disarmed once the request is whole; when it fires, a half-sent
        request gets 408 and the connection is closed. A client that stops reading
        our answers is cut off after the same time.
        """

        def __init__(self, *args: Any, ticket: _Ticket, first_deadline: float, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.ticket = ticket
            self._first_deadline = first_deadline
            self._deadline: asyncio.TimerHandle | None = None
            self._stall: asyncio.TimerHandle | None = None
            if ticket.refusal is not None:
                self.app = _refusal_app(*ticket.refusal)

        # -- the deadline
        def _arm(self, when: float) -> None:
            self._disarm()
            self._deadline = self.loop.call_at(when, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _request_is_in(self) -> bool:
            return self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR)

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing() or not self.evictable():
                return
            stats.deadline_closed += 1
            partial = bool(self.conn.trailing_data[0]) or self.conn.their_state is h11.SEND_BODY
            if partial:
                self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()

        # -- uvicorn's protocol, extended
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.ticket.owner = self
            self._arm(self._first_deadline)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._deadline is not None and self._request_is_in():
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.transport.is_closing() or self._request_is_in():
                return
            if self.conn.trailing_data[0] or self.conn.their_state is h11.SEND_BODY:
                # Part of the next request came with this one (pipelined): the connection
                # is not idle, so uvicorn's keep-alive timer must not close it silently.
                self._unset_keepalive_if_required()
            self._arm(self.loop.time() + cfg.request_deadline_s)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._stall is not None:
                self._stall.cancel()
            table.release(self.ticket)
            super().connection_lost(exc)

        def pause_writing(self) -> None:
            super().pause_writing()
            if self._stall is None:
                self._stall = self.loop.call_later(cfg.request_deadline_s, self._stalled)

        def resume_writing(self) -> None:
            super().resume_writing()
            if self._stall is not None:
                self._stall.cancel()
                self._stall = None

        def _stalled(self) -> None:
            stats.stalled_closed += 1
            self.transport.abort()

        # -- for the connection table
        def evictable(self) -> bool:
            """No request is being answered (idle, or a request still arriving)."""
            return self.cycle is None or self.cycle.response_complete

        def evict(self) -> None:
            self.transport.close()

    class Gate(asyncio.Protocol):
        """Per TCP connection: admit or refuse by client, TLS handshake under the deadline,
        then hand the connection to :class:`DeadlineH11`."""

        def __init__(
            self,
            config: uvicorn.Config,
            server_state: Any,
            app_state: dict[str, Any],
            _loop: asyncio.AbstractEventLoop | None = None,
        ) -> None:
            self._uvicorn = (config, server_state, app_state)
            self.loop = _loop or asyncio.get_event_loop()
            self.transport: asyncio.Transport | None = None
            self.ticket: _Ticket | None = None
            self._early: list[bytes] = []
            self._lost = False
            self._timer: asyncio.TimerHandle | None = None
            self._task: asyncio.Task[None] | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            peer = transport.get_extra_info("peername")
            ticket = table.admit(requester_ip(peer[0] if peer else None))
            if ticket is None:
                transport.abort()  # type: ignore[attr-defined]
                return
            self.transport = transport  # type: ignore[assignment]
            self.ticket = ticket
            ticket.owner = self
            budget = cfg.refusal_deadline_s if ticket.refusal is not None else cfg.request_deadline_s
            deadline = self.loop.time() + budget
            if tls is None:
                self._hand_over(transport, deadline)  # type: ignore[arg-type]
                return
            self._uvicorn[1].connections.add(self)
            self._timer = self.loop.call_at(deadline, self._expired)
            self._task = self.loop.create_task(self._handshake(deadline))  # held: not collected mid-way

        async def _handshake(self, deadline: float) -> None:
            assert self.transport is not None and tls is not None
            try:
                secure = await self.loop.start_tls(
                    self.transport,
                    self,
                    tls,
                    server_side=True,
                    ssl_handshake_timeout=max(0.1, deadline - self.loop.time()),
                    ssl_shutdown_timeout=cfg.tls_shutdown_s,
                )
            except (OSError, ValueError, RuntimeError, asyncio.CancelledError):
                self._finish()
                return
            if self._lost or secure is None:
                self._finish()
                return
            self._hand_over(secure, deadline)

        def _hand_over(self, transport: asyncio.Transport, deadline: float) -> None:
            self._cancel_timer()
            self._uvicorn[1].connections.discard(self)
            assert self.ticket is not None
            config, server_state, app_state = self._uvicorn
            http = DeadlineH11(
                config=config,
                server_state=server_state,
                app_state=app_state,
                _loop=self.loop,
                ticket=self.ticket,
                first_deadline=deadline,
            )
            transport.set_protocol(http)
            http.connection_made(transport)
            if self._early:
                http.data_received(b"".join(self._early))
                self._early.clear()

        def _cancel_timer(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self) -> None:
            self._timer = None
            stats.deadline_closed += 1
            if self.transport is not None:
                self.transport.abort()

        def _finish(self) -> None:
            self._cancel_timer()
            self._uvicorn[1].connections.discard(self)
            if self.transport is not None and not self.transport.is_closing():
                self.transport.abort()
            if self.ticket is not None:
                table.release(self.ticket)

        # Between the end of the TLS handshake and the hand-over (a loop turn),
        # application data may already arrive: keep it for the HTTP protocol.
        def data_received(self, data: bytes) -> None:
            self._early.append(data)

        def eof_received(self) -> bool | None:
            return None

        def connection_lost(self, exc: Exception | None) -> None:
            self._lost = True
            self._finish()

        # uvicorn calls this on shutdown for everything in server_state.connections
        def shutdown(self) -> None:
            self._finish()

        def evictable(self) -> bool:
            return True  # still in its TLS handshake: nothing asked yet

        def evict(self) -> None:
            self._finish()

    return Gate


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the caller decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket (IPv6 sockets are v6-only, so v4 and v6 can coexist).

    ``proto=IPPROTO_TCP`` matters: asyncio sets TCP_NODELAY on accepted sockets only
    when their ``proto`` says TCP, and an accepted socket inherits the listener's.
    With proto 0 Nagle stayed on and the answer's body (a second small write) waited
    for the client's delayed ACK: ~40 ms on every request after a connection's first.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _fit_file_limit(cfg: ProbeServerSettings) -> ProbeServerSettings:
    """Raise the soft open-files limit to what the limits need (up to the hard limit);
    shrink ``max_connections`` to what fits when it cannot be raised enough."""
    import resource

    spare = 64 + cfg.max_concurrent_probes + max(16, cfg.max_connections // 4)  # refusals, probes, files
    need = cfg.max_connections + spare
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return cfg
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    except (ValueError, OSError):
        pass
    if soft >= need:
        return cfg
    fits = max(16, soft - spare)
    log.warning("open-files limit %d: serving at most %d connections instead of %d", soft, fits, cfg.max_connections)
    return dataclasses.replace(cfg, max_connections=fits)


def _tls_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile)
    except OSError as exc:  # ssl.SSLError is one too
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
        raise OSError(exc.errno, f"cannot load the TLS certificate and key ({certfile}, {keyfile}): {reason}") from None
    context.set_alpn_protocols(["http/1.1"])
    return context


class RunningProbeServer:
    """A started probe server: its bound addresses and a way to stop it."""

    def __init__(
        self,
        server: _Server,
        task: asyncio.Task[None],
        app: Starlette,
        tcp_addresses: list[tuple[str, int]],
        udp_addresses: list[tuple[str, int]],
        udp_transports: list[asyncio.DatagramTransport],
        connections: ConnectionTable,
    ) -> None:
        self._server = server
        self._task = task
        self.app = app
        self.tcp_addresses = tcp_addresses
        self.udp_addresses = udp_addresses
        self._udp_transports = udp_transports
        self.connections = connections

    @property
    def stats(self) -> ProbeStats:
        return self.app.state.stats  # type: ignore[no-any-return]

    @property
    def settings(self) -> ProbeServerSettings:
        return self.app.state.settings  # type: ignore[no-any-return]

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


async def start(
    listen: list[tuple[str, int]],
    *,
    udp_port: int | None = None,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    settings: ProbeServerSettings | None = None,
    log_level: str = "error",
) -> RunningProbeServer:
    """Bind every (host, port) in ``listen`` (port 0 = ephemeral), start serving, return.

    ``udp_port`` opens the UDP echo on each listen host (0 = ephemeral). uvicorn logs
    at ``error`` by default: its warnings are one line per malformed request, which
    any client could turn into a flood of the operator's log.
    """
    cfg = _fit_file_limit(settings or ProbeServerSettings())
    tls = _tls_context(ssl_certfile, ssl_keyfile) if ssl_certfile and ssl_keyfile else None
    app = build_app(cfg)
    stats: ProbeStats = app.state.stats
    table = ConnectionTable(cfg, stats)
    sockets = [bind_tcp(host, port) for host, port in listen]
    # uvicorn types timeout_keep_alive as int but uses it as a delay in seconds (loop.call_later):
    # a fraction is fine, and the tests use one.
    keep_alive: int = cfg.keep_alive_s  # type: ignore[assignment]
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        # TLS is done by the gate (with a deadline), not by uvicorn; so are the
        # connection limits (per client, with a reserve), hence no limit_concurrency.
        limit_concurrency=None,
        timeout_keep_alive=keep_alive,
        server_header=False,
        # Never believe X-Forwarded-For (uvicorn trusts it from 127.0.0.1 by default):
        # the dial-back target must be the TCP peer itself.
        proxy_headers=False,
        http=_protocol_class(cfg, table, stats, tls),
        # No WebSocket upgrades: nothing here speaks it, and an upgraded connection would
        # leave the h11 protocol (and its place in the connection table) behind.
        ws="none",
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
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                if family == socket.AF_INET6:
                    # Linux binds [::] to IPv4 too unless told otherwise (net.ipv6.bindv6only=0):
                    # then "--listen 0.0.0.0:443 --listen [::]:443 --udp-port N" failed with
                    # "Address already in use" on the second socket. One socket per family.
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((host, udp_port))
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
            transport, _proto = await loop.create_datagram_endpoint(lambda: _UdpEcho(echo_buckets), sock=sock)
            udp_transports.append(transport)
            udp_addresses.append(transport.get_extra_info("sockname")[:2])
    return RunningProbeServer(server, task, app, tcp_addresses, udp_addresses, udp_transports, table)


async def serve(
    listen: list[tuple[str, int]],
    *,
    udp_port: int | None = None,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    settings: ProbeServerSettings | None = None,
    on_ready: Callable[[RunningProbeServer], None] | None = None,
    stop_event: asyncio.Event | None = None,
) -> None:
    """Run until ``stop_event`` is set (or the task is cancelled)."""
    running = await start(
        listen, udp_port=udp_port, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, settings=settings
    )
    if on_ready is not None:
        on_ready(running)
    stopper = stop_event or asyncio.Event()
    try:
        waiter = asyncio.create_task(stopper.wait())
        await asyncio.wait({waiter, running._task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    finally:
        await running.stop()
