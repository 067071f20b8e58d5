"""Attacks on the probe server and a small load generator, shared by the suite and the bench.

Used by tests/test_probe_server.py (against an in-process server on loopback or in a
private network namespace) and bench/probe_server.py (against a `ddns-wizard
probe-server` process in a private namespace). Everything here talks only to the
address it is given, from the source addresses it is given (127.0.0.0/8 works on
any loopback; other addresses must be on the namespace's `lo`), and every loop is
bounded in count and time.

Each attack returns what a *legitimate* client got while it ran (status and
latency of each of its requests, from a source address of its own), plus what the
attack itself saw (how long the server let its connections live).
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

REQUEST_TIMEOUT_S = 10.0


# --------------------------------------------------------------------------- raw HTTP/1.1


async def connect(
    host: str, port: int, source: str | None = None, timeout_s: float = 5.0
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    async with asyncio.timeout(timeout_s):
        return await asyncio.open_connection(host, port, local_addr=(source, 0) if source else None)


def request_bytes(path: str, host: str = "probe") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: probe-attacks\r\n\r\n".encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response (Content-Length framing, which the server always uses)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return status, body


async def get_once(
    host: str, port: int, path: str, source: str | None = None, timeout_s: float = REQUEST_TIMEOUT_S
) -> tuple[int, float, bytes]:
    """A new client's request on a new connection: (status or -1, seconds, body)."""
    started = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await connect(host, port, source, timeout_s)
            writer.write(request_bytes(path))
            await writer.drain()
            status, body = await read_response(reader)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
        status, body = -1, b""
    finally:
        if writer is not None:
            writer.close()
    return status, time.perf_counter() - started, body


@dataclass
class Legit:
    """What a legitimate client got: one (status, seconds) per request."""

    results: list[tuple[int, float]] = field(default_factory=list)

    @property
    def statuses(self) -> list[int]:
        return [s for s, _ in self.results]

    @property
    def worst_s(self) -> float:
        return max((t for _, t in self.results), default=0.0)

    @property
    def served(self) -> int:
        return sum(1 for s, _ in self.results if s == 200)

    def summary(self) -> dict[str, Any]:
        times = [t for _, t in self.results]
        return {
            "requests": len(self.results),
            "served": self.served,
            "statuses": sorted(set(self.statuses)),
            "p50_ms": round(statistics.median(times) * 1000, 1) if times else None,
            "worst_ms": round(self.worst_s * 1000, 1),
        }


async def legit_poll(
    host: str,
    port: int,
    path: str,
    source: str,
    *,
    every_s: float,
    duration_s: float,
    check: Callable[[bytes], bool] | None = None,
) -> Legit:
    """A legitimate client asking ``path`` every ``every_s`` for ``duration_s``, each time
    on a new connection (a new visitor). A 200 whose body fails ``check`` counts as -2."""
    legit = Legit()
    end = time.monotonic() + duration_s
    while time.monotonic() < end:
        status, took, body = await get_once(host, port, path, source)
        if status == 200 and check is not None and not check(body):
            status = -2
        legit.results.append((status, took))
        await asyncio.sleep(max(0.0, every_s - took))
    return legit


async def _closed_after(reader: asyncio.StreamReader, since: float, limit_s: float) -> float | None:
    """Seconds until the server closed this connection (None: still open after limit_s)."""
    try:
        async with asyncio.timeout(max(0.0, since + limit_s - time.monotonic())):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return time.monotonic() - since


@dataclass
class AttackResult:
    legit: Legit
    attack_connections: int  # connections the attacker managed to open
    closed_by_server: int  # of those, closed by the server before the hold ended
    longest_held_s: float | None  # the longest a connection lived (None: some outlived the hold)
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "legit": self.legit.summary(),
            "attack_connections": self.attack_connections,
            "closed_by_server": self.closed_by_server,
            "longest_held_s": None if self.longest_held_s is None else round(self.longest_held_s, 2),
            **self.extra,
        }


async def _hold_and_watch(
    readers: list[asyncio.StreamReader], since: float, hold_s: float, legit_task: Awaitable[Legit]
) -> tuple[Legit, list[float | None]]:
    watch = asyncio.gather(*(_closed_after(r, since, hold_s) for r in readers))
    legit, closed = await asyncio.gather(legit_task, watch)
    return legit, list(closed)


def _result(legit: Legit, opened: int, closed: list[float | None], **extra: Any) -> AttackResult:
    done = [c for c in closed if c is not None]
    longest = None if len(done) < len(closed) else max(done, default=0.0)
    return AttackResult(legit, opened, len(done), longest, extra)


async def _open_many(
    host: str, port: int, sources: list[str], per_source: int
) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    async def one(source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            return await connect(host, port, source, timeout_s=3.0)
        except (OSError, TimeoutError):
            return None

    opened = await asyncio.gather(*(one(s) for s in sources for _ in range(per_source)))
    return [c for c in opened if c is not None]


def _close_all(conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> None:
    for _, writer in conns:
        writer.close()


# --------------------------------------------------------------------------- the attacks


async def slow_second_request(
    host: str,
    port: int,
    *,
    sources: list[str],
    per_source: int,
    hold_s: float,
    legit_source: str,
    legit_every_s: float = 0.5,
) -> AttackResult:
    """Each connection sends one whole request, reads the answer, then sends half of the
    next request and goes silent (slow loris after a first request)."""
    conns = await _open_many(host, port, sources, per_source)

    async def first_then_half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                writer.write(request_bytes("/ip"))
                await writer.drain()
                status, _ = await read_response(reader)
                writer.write(b"GET /ip HTTP/1.1\r\nHost: probe\r\nX-Slow: ")
                await writer.drain()
                return status in (200, 429)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            return False

    primed = await asyncio.gather(*(first_then_half(r, w) for r, w in conns))
    live = [(r, w) for (r, w), ok in zip(conns, primed, strict=True) if ok]
    since = time.monotonic()
    try:
        legit, closed = await _hold_and_watch(
            [r for r, _ in live],
            since,
            hold_s,
            legit_poll(host, port, "/ip", legit_source, every_s=legit_every_s, duration_s=hold_s),
        )
    finally:
        _close_all(conns)
    return _result(legit, len(live), closed, refused_or_failed_first=len(conns) - len(live))


async def idle_flood(
    host: str,
    port: int,
    *,
    sources: list[str],
    per_source: int,
    hold_s: float,
    legit_source: str,
    legit_every_s: float = 0.5,
) -> AttackResult:
    """Connections that are opened and never send a byte."""
    conns = await _open_many(host, port, sources, per_source)
    since = time.monotonic()
    try:
        legit, closed = await _hold_and_watch(
            [r for r, _ in conns],
            since,
            hold_s,
            legit_poll(host, port, "/ip", legit_source, every_s=legit_every_s, duration_s=hold_s),
        )
    finally:
        _close_all(conns)
    return _result(legit, len(conns), closed)


async def many_addresses(
    host: str, port: int, *, sources: list[str], requests_each: int, path: str = "/ip"
) -> dict[str, int]:
    """Every source asks ``requests_each`` times, one request after the other, each on a
    new connection (curl in a loop); all sources at once. Counts the answers: ``ok``
    (200), ``limited`` (429: rate limit, or too many connections), ``other`` (anything
    else, -1 for a connection closed without an answer)."""
    counts = {"sent": 0, "ok": 0, "limited": 0, "other": 0}

    async def one(source: str) -> None:
        for _ in range(requests_each):
            counts["sent"] += 1
            status, _, _ = await get_once(host, port, path, source)
            counts["ok" if status == 200 else "limited" if status == 429 else "other"] += 1

    await asyncio.gather(*(one(s) for s in sources))
    return counts


def black_hole(source: str) -> tuple[socket.socket, list[socket.socket]]:
    """A port on ``source`` that drops every SYN: a listener that never accepts, with a
    backlog of 0 and its one queue place taken (Linux then drops further SYNs, so a
    dial to it times out exactly like one to a firewalled port). Close both when done."""
    listener = socket.socket(socket.AF_INET6 if ":" in source else socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((source, 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname()[:2], timeout=2)
    return listener, [filler]


async def black_holed_probes(
    host: str,
    port: int,
    *,
    attackers: list[str],
    per_attacker: int,
    duration_s: float,
    legit_source: str,
    legit_port: int,
    legit_every_s: float = 0.5,
) -> AttackResult:
    """Each attacker keeps ``per_attacker`` requests for `/probe/tcp/<its black-holed port>`
    in flight (each takes the server's whole dial timeout) while a legitimate client
    probes its own open port."""
    holes = [black_hole(a) for a in attackers]
    end = time.monotonic() + duration_s
    sent = {"requests": 0}

    async def hammer(source: str, hole_port: int) -> None:
        while time.monotonic() < end:
            sent["requests"] += 1
            status, _took, _ = await get_once(host, port, f"/probe/tcp/{hole_port}", source)
            if status in (429, 503, -1):
                await asyncio.sleep(0.2)  # keep under the rate limit, as the attacker did

    try:
        tasks = [
            asyncio.create_task(hammer(a, h[0].getsockname()[1]))
            for a, h in zip(attackers, holes, strict=True)
            for _ in range(per_attacker)
        ]
        await asyncio.sleep(min(1.0, duration_s / 4))  # let the attack fill the slots first
        legit = await legit_poll(
            host,
            port,
            f"/probe/tcp/{legit_port}",
            legit_source,
            every_s=legit_every_s,
            duration_s=max(0.5, end - time.monotonic()),
            check=lambda body: b'"connected"' in body,
        )
        await asyncio.gather(*tasks)
    finally:
        for listener, fillers in holes:
            for f in fillers:
                f.close()
            listener.close()
    return AttackResult(legit, len(attackers) * per_attacker, 0, None, {"attack_requests": sent["requests"]})


async def open_listener(source: str, banner: bytes | None = b"DDNSW bench\n") -> asyncio.base_events.Server:
    """A port on ``source`` the server can dial back: writes ``banner`` (or nothing) and
    closes when the prober does."""

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if banner:
                writer.write(banner)
                await writer.drain()
            async with asyncio.timeout(5):
                await reader.read()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(accept, source, 0)


# --------------------------------------------------------------------------- load


@dataclass
class LoadResult:
    requests: int
    ok: int
    seconds: float
    latencies_s: list[float]
    first_s: list[float]  # the first request of each connection
    later_s: list[float]  # every later request on a kept-alive connection

    def summary(self) -> dict[str, Any]:
        def pct(values: list[float], q: float) -> float | None:
            if not values:
                return None
            ordered = sorted(values)
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

        return {
            "requests": self.requests,
            "ok": self.ok,
            "seconds": round(self.seconds, 2),
            "rps": round(self.requests / self.seconds, 1) if self.seconds else None,
            "p50_ms": pct(self.latencies_s, 0.5),
            "p99_ms": pct(self.latencies_s, 0.99),
            "first_p50_ms": pct(self.first_s, 0.5),
            "later_p50_ms": pct(self.later_s, 0.5),
        }


async def load(
    host: str,
    port: int,
    path_of: Callable[[str], str],
    *,
    sources: list[str],
    connections_per_source: int,
    requests_per_connection: int,
) -> LoadResult:
    """Every connection sends ``requests_per_connection`` requests one after the other
    (keep-alive), all connections at once. ``path_of(source)`` gives the path to ask."""
    latencies: list[float] = []
    first: list[float] = []
    later: list[float] = []
    ok = 0
    total = 0

    async def worker(source: str) -> None:
        nonlocal ok, total
        try:
            reader, writer = await connect(host, port, source)
        except (OSError, TimeoutError):
            return
        try:
            for i in range(requests_per_connection):
                started = time.perf_counter()
                writer.write(request_bytes(path_of(source)))
                await writer.drain()
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    status, _ = await read_response(reader)
                took = time.perf_counter() - started
                total += 1
                latencies.append(took)
                (first if i == 0 else later).append(took)
                if status == 200:
                    ok += 1
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            pass
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(s) for s in sources for _ in range(connections_per_source)))
    return LoadResult(total, ok, time.perf_counter() - started, latencies, first, later)
