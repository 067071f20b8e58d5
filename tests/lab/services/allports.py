"""The all-ports target (portquiz.net stand-in).

One TCP listener and one UDP echo on ALLPORTS:LISTEN_PORT; nftables in the
namespace DNATs every TCP/UDP port of ALLPORTS to them (see internet.py), so a
connection to any port is accepted.  TCP: answers an HTTP request with a short
page, otherwise writes nothing and closes after 10 s idle.  UDP: echoes the
datagram back.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from .httpcommon import ServiceState

LISTEN_PORT = 7777


class AllPorts:
    def __init__(self, state: ServiceState, address: str, port: int = LISTEN_PORT) -> None:
        self.state = state
        self.address = address
        self.port = port
        self._server: asyncio.base_events.Server | None = None
        self._udp: asyncio.BaseTransport | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        self.state.log.append({"client": peer[0] if peer else None, "protocol": "tcp"})
        del self.state.log[:-1000]
        try:
            async with asyncio.timeout(10):
                data = await reader.read(1024)
                if data[:4] in (b"GET ", b"HEAD", b"POST"):
                    body = b"Port test successful!\n"
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                    )
                    await writer.drain()
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()

    async def start(self) -> None:
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        state = self.state

        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                state.log.append({"client": addr[0], "protocol": "udp"})
                del state.log[:-1000]
                self.transport.sendto(data, addr)  # type: ignore[attr-defined]

        self._server = await asyncio.start_server(self._client, self.address, self.port, reuse_address=True)
        self._udp, _ = await loop.create_datagram_endpoint(Echo, local_addr=(self.address, self.port))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await self._server.wait_closed()
        if self._udp is not None:
            self._udp.close()
        self._server = None
        self._udp = None
