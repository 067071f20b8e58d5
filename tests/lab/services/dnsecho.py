"""DNS "what is my address" echo: OpenDNS, Cloudflare and Google style, UDP and TCP.

- A/AAAA ``myip.opendns.com`` (class IN) -> the querier's address (of that family);
- TXT class CH ``whoami.cloudflare`` -> the querier's address (class IN: NXDOMAIN,
  as a recursive resolver would answer);
- TXT ``o-o.myaddr.l.google.com`` -> the querier's address;
- anything else: REFUSED.
Faults: "timeout" (drop queries), "servfail", "wrong-ip" (answer LIE_ADDRESS of the
querier's family), "wrong-family" (answer an address of the *other* family: LIE_V6 to
an IPv4 querier — as an AAAA record to OpenDNS's A question, or in the TXT — and
LIE_V4 to an IPv6 querier).
"""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

LIE_V4 = "23.128.64.250"
LIE_V6 = "2a0c:b641:100:1::250"
_OPENDNS = dns.name.from_text("myip.opendns.com")
_CLOUDFLARE = dns.name.from_text("whoami.cloudflare")
_GOOGLE = dns.name.from_text("o-o.myaddr.l.google.com")


def _querier(addr: Any) -> str:
    ip = ipaddress.ip_address(addr[0].split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class DnsEcho:
    def __init__(self, addresses: list[str], port: int = 53) -> None:
        self.addresses = addresses
        self.port = port
        self.fault: str | None = None
        self._transports: list[asyncio.BaseTransport] = []
        self._servers: list[asyncio.base_events.Server] = []
        self.log: list[dict[str, Any]] = []

    def answer(self, wire: bytes, querier: str) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return None
        response = dns.message.make_response(query)
        question = query.question[0]
        self.log.append(
            {
                "name": question.name.to_text(),
                "type": dns.rdatatype.to_text(question.rdtype),
                "class": dns.rdataclass.to_text(question.rdclass),
                "client": querier,
            }
        )
        del self.log[:-1000]
        if self.fault == "timeout":
            return None
        if self.fault == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        ip = querier
        if self.fault == "wrong-ip":
            ip = LIE_V6 if ":" in querier else LIE_V4
        elif self.fault == "wrong-family":
            ip = LIE_V4 if ":" in querier else LIE_V6
        family_type = dns.rdatatype.AAAA if ":" in ip else dns.rdatatype.A
        qname, qtype, qclass = question.name, question.rdtype, question.rdclass
        response.flags |= dns.flags.AA
        if qname == _OPENDNS and qclass == dns.rdataclass.IN:
            if qtype == family_type or (
                self.fault == "wrong-family" and qtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
            ):
                response.answer.append(dns.rrset.from_text(qname, 0, "IN", family_type, ip))
        elif qname == _CLOUDFLARE:
            if qclass != dns.rdataclass.CH:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif qtype == dns.rdatatype.TXT:
                response.answer.append(dns.rrset.from_text(qname, 0, "CH", "TXT", f'"{ip}"'))
        elif qname == _GOOGLE and qclass == dns.rdataclass.IN:
            if qtype == dns.rdatatype.TXT:
                response.answer.append(dns.rrset.from_text(qname, 60, "IN", "TXT", f'"{ip}"'))
        else:
            response.set_rcode(dns.rcode.REFUSED)
        return response.to_wire()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        echo = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                reply = echo.answer(data, _querier(addr))
                if reply is not None:
                    self.transport.sendto(reply, addr)  # type: ignore[attr-defined]

        async def tcp_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            querier = _querier(writer.get_extra_info("peername"))
            try:
                while True:
                    async with asyncio.timeout(10):
                        (length,) = struct.unpack("!H", await reader.readexactly(2))
                        wire = await reader.readexactly(length)
                    reply = echo.answer(wire, querier)
                    if reply is None:
                        continue
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
            except (asyncio.IncompleteReadError, TimeoutError, OSError, struct.error):
                pass
            finally:
                writer.close()

        for address in self.addresses:
            transport, _ = await loop.create_datagram_endpoint(Udp, local_addr=(address, self.port))
            self._transports.append(transport)
            self._servers.append(await asyncio.start_server(tcp_client, address, self.port, reuse_address=True))

    async def stop(self) -> None:
        for transport in self._transports:
            transport.close()
        for server in self._servers:
            server.close()
        self._transports.clear()
        self._servers.clear()
