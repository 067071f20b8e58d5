"""A small HTTPS service for the lab's home host: ``python -m tests.lab.services.https_service
--cert CHAIN.pem --key KEY.pem --port 443 [--listen 0.0.0.0]``.

Stands in for the user's web server (nginx/Caddy with a certificate): answers every
request with a short page. Prints ``ready`` once listening. Runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys

PAGE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 12\r\nconnection: close\r\n\r\nhello, home\n"


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--listen", default="any", help="an address, or 'any' (IPv4 and IPv6)")
    args = parser.parse_args(argv)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                await reader.readuntil(b"\r\n\r\n")
            writer.write(PAGE)
            await writer.drain()
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            writer.close()

    host = None if args.listen == "any" else args.listen
    server = await asyncio.start_server(handle, host, args.port, ssl=context)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
