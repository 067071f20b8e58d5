"""What every lab HTTP(S) service shares: request log, fault injection, an in-process server.

Faults (``ServiceState.fault``):
- ``"500"``      answer 500 with a short text body;
- ``"timeout"``  hold the request (no answer) until the fault is cleared or the
                 service stops, at most five minutes; it is never processed;
- ``"garbage"``  answer 200 with bytes that are neither the expected text nor JSON;
- service-specific values (``"911"`` for dyndns2, ``"wrong-ip"`` for the echoes)
  are read by the service itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

GARBAGE = b"<html><body>\xff\xfe\x00 Service Temporarily Unavailable \x1b[31m{{broken\x00</body>"
LOG_LIMIT = 2000


@dataclass
class ServiceState:
    name: str
    fault: str | None = None
    stopping: bool = False
    log: list[dict[str, Any]] = field(default_factory=list)


def client_ip(scope: Scope) -> str:
    import ipaddress

    host = (scope.get("client") or ("0.0.0.0", 0))[0]
    ip = ipaddress.ip_address(host.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def instrument(app: ASGIApp, state: ServiceState) -> ASGIApp:
    """Wrap an ASGI app: log each request and its answer, apply generic faults."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        query_string = scope.get("query_string", b"").decode("latin-1")
        entry: dict[str, Any] = {
            "time": time.time(),
            "client": client_ip(scope),
            "method": scope["method"],
            "path": scope["path"],
            "query_string": query_string,
            "query": {k: v if len(v) > 1 else v[0] for k, v in parse_qs(query_string, keep_blank_values=True).items()},
            "user_agent": headers.get("user-agent"),
            "authorization": headers.get("authorization"),
            "fault": state.fault,
            "status": None,
            "body": "",
            "request_body": "",
        }
        state.log.append(entry)
        del state.log[:-LOG_LIMIT]
        body_chunks: list[bytes] = []

        async def logging_receive() -> Message:
            message = await receive()
            if message.get("type") == "http.request":
                body_chunks.append(message.get("body", b""))
                entry["request_body"] = b"".join(body_chunks).decode("utf-8", errors="replace")[:4000]
            return message

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            elif message["type"] == "http.response.body":
                entry["body"] += message.get("body", b"").decode("utf-8", errors="replace")[:4000]
                if not message.get("more_body"):
                    entry["done"] = time.time()  # the service's own time: done - time (bench/run.py)
            await send(message)

        fault = state.fault
        if fault == "timeout":
            # Hold the request; it is never processed, even once the fault is cleared
            # (the client has given up by then): it ends with a 504 nobody reads.
            deadline = time.monotonic() + 300
            while state.fault == "timeout" and not state.stopping and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await _plain(logging_send, 504, b"held by the timeout fault\n")
            return
        if fault == "500":
            await _plain(logging_send, 500, b"Internal Server Error\n")
            return
        if fault == "garbage":
            await _plain(logging_send, 200, GARBAGE, content_type=b"text/html")
            return
        await app(scope, logging_receive, logging_send)

    return wrapped


async def _plain(send: Send, status: int, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Server(uvicorn.Server):
    def capture_signals(self):  # type: ignore[override]
        return contextlib.nullcontext()


def bind(host: str, port: int, kind: int = socket.SOCK_STREAM) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
    return sock


class HttpsService:
    """One ASGI app served over HTTPS on some addresses, stoppable and restartable
    (plain HTTP when ``certfile`` is None: the webhook sink)."""

    def __init__(
        self,
        state: ServiceState,
        app: ASGIApp,
        addresses: list[str],
        port: int,
        certfile: str | None,
        keyfile: str | None,
    ) -> None:
        self.state = state
        self.app = instrument(app, state)
        self.addresses = addresses
        self.port = port
        self.certfile = certfile
        self.keyfile = keyfile
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        self.state.stopping = False
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=self.certfile,
            ssl_keyfile=self.keyfile,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=1,
            proxy_headers=False,
        )
        server = _Server(config)
        sockets = [bind(address, self.port) for address in self.addresses]
        self._task = asyncio.create_task(server.serve(sockets=sockets))
        while not server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"{self.state.name} did not start")
            await asyncio.sleep(0.005)
        self._server = server

    async def stop(self) -> None:
        server, task = self._server, self._task
        if server is None or task is None:
            return
        self.state.stopping = True
        server.should_exit = True
        try:
            async with asyncio.timeout(3):
                await task
        except TimeoutError:
            server.force_exit = True
            with contextlib.suppress(Exception):
                await task
        self._server = None
        self._task = None
