"""Temporary listeners that prove an outside probe reached *this* machine.

An outside prober that only says "reachable" cannot tell this machine from any
other device the router might forward the port to (or from the router itself
answering).  So ``ports check`` listens on the port for the duration of the test
and answers with a random nonce:

- TCP: on every accepted connection it writes ``DDNSW <nonce>\\n`` and closes;
- UDP: to a datagram ``DDNSW-PROBE <token>`` it replies ``DDNSW <nonce>\\n``
  (other datagrams are ignored: we never reflect arbitrary traffic).

The project's probe server returns what it read (``banner``), so finding the nonce
there proves the packet went all the way to this process.

Opening the listener can fail in two ways that matter to the user:

- the port is taken (``EADDRINUSE``): a service already listens there; the test
  then probes that service instead, and can only say "reached a service on this
  port; could not confirm it is this machine";
- permission denied (``EACCES``): ports 1-1023 need root (or
  CAP_NET_BIND_SERVICE) to listen on.
"""

from __future__ import annotations

import asyncio
import errno
import secrets
from dataclasses import dataclass, field
from typing import Literal

from probeserver.wire import UDP_PROBE_PREFIX, banner_for

ListenState = Literal["listening", "in-use", "denied", "error"]
Protocol = Literal["tcp", "udp"]


def new_nonce() -> str:
    """A fresh random nonce (16 hex digits)."""
    return secrets.token_hex(8)


def needs_root_message(port: int) -> str:
    return (
        f"could not listen on port {port}: ports 1-1023 need root to listen on "
        f"(run the command with sudo, or grant CAP_NET_BIND_SERVICE)"
    )


@dataclass
class NonceListener:
    """A temporary listener. ``state`` says whether it could be opened; ``hits`` records the
    peers that received our nonce (the outside prober's address when the test worked)."""

    port: int
    protocol: Protocol
    nonce: str
    host: str = "0.0.0.0"
    state: ListenState = "error"
    error: str | None = None
    hits: list[str] = field(default_factory=list)
    _server: asyncio.AbstractServer | None = None
    _transport: asyncio.DatagramTransport | None = None

    @property
    def listening(self) -> bool:
        return self.state == "listening"

    async def start(self) -> NonceListener:
        try:
            if self.protocol == "tcp":
                self._server = await asyncio.start_server(
                    self._on_tcp, self.host, self.port, reuse_address=True, backlog=16
                )
            else:
                loop = asyncio.get_running_loop()
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpNonceProtocol(self), local_addr=(self.host, self.port)
                )
                self._transport = transport
            self.state = "listening"
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                self.state = "in-use"
                self.error = f"port {self.port}/{self.protocol} is already in use by a service on this machine"
            elif exc.errno in (errno.EACCES, errno.EPERM):
                self.state = "denied"
                self.error = needs_root_message(self.port)
            else:
                self.state = "error"
                self.error = f"could not listen on {self.port}/{self.protocol}: {exc.strerror or exc}"
        return self

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            writer.write(banner_for(self.nonce))
            await asyncio.wait_for(writer.drain(), 2.0)
            if peer:
                self.hits.append(str(peer[0]))
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            except (TimeoutError, OSError):
                pass

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            except (TimeoutError, OSError):
                pass
            self._server = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> NonceListener:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _UdpNonceProtocol(asyncio.DatagramProtocol):
    def __init__(self, listener: NonceListener) -> None:
        self.listener = listener
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # Answer only our own probe format, and only with a short fixed reply (no amplification).
        if not data.startswith(UDP_PROBE_PREFIX) or len(data) > 200 or self.transport is None:
            return
        self.transport.sendto(banner_for(self.listener.nonce), addr)
        self.listener.hits.append(str(addr[0]))


async def open_listener(
    port: int, protocol: Protocol, *, nonce: str | None = None, host: str = "0.0.0.0"
) -> NonceListener:
    """Open a nonce listener (never raises for bind failures: see ``state``/``error``)."""
    listener = NonceListener(port=port, protocol=protocol, nonce=nonce or new_nonce(), host=host)
    return await listener.start()
