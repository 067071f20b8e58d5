"""checks.http.make_client against a real HTTPS server on 127.0.0.1 with a throwaway CA.

Nothing is mocked: the server is Python's http.server wrapped in TLS with a trustme
certificate, the way the lab serves its echo services.
"""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from checks.http import USER_AGENT, make_client


class _EchoHeaders(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (self.headers.get("User-Agent") or "").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server(ca: trustme.CA) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoHeaders)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    p = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(p))
    return p


async def test_ssl_cert_file_is_trusted_and_user_agent_sent(
    server: str, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    async with make_client(timeout_s=5) as client:
        response = await client.get(server)
    assert response.status_code == 200
    assert response.text == USER_AGENT and USER_AGENT.startswith("ddns-wizard/")


async def test_an_unknown_ca_is_refused(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    async with make_client(timeout_s=5) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(server)


async def test_proxy_variables_are_ignored(server: str, ca_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy would make every echo service report the proxy's address as ours."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # discard port: nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with make_client(timeout_s=5) as client:
        response = await client.get(server)
    assert response.status_code == 200
    async with make_client(timeout_s=5, use_proxy_env=True) as client:  # the opt-in does use them
        with pytest.raises(httpx.HTTPError):
            await client.get(server)


def test_importing_the_client_factory_leaves_httpx_cli_out() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import checks.http, httpx; "
        "print('click' in sys.modules, 'rich' in sys.modules, hasattr(httpx, 'AsyncClient'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False", "True"], out.stderr


def test_a_trust_store_that_cannot_be_read_is_named_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Falling back to certifi would turn a mistyped or unreadable SSL_CERT_FILE into
    # "certificate verify failed" on every request. (A directory stands in for an
    # unreadable file: the suite runs as root, which reads anything.)
    from checks.errors import ConfigError

    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path))
    with pytest.raises(ConfigError, match=r"SSL_CERT_FILE=.* cannot be read \(Is a directory\)"):
        make_client()
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))  # absent: ignored, as httpx does
    make_client()


async def test_a_request_deadline_bounds_the_whole_exchange_not_each_phase() -> None:
    # The server answers after 3 s: inside httpx's per-phase timeout (5 s), outside the
    # 0.5 s deadline for the whole exchange, which is what the provider client uses.
    import asyncio

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(3)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(slow, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        async with make_client(timeout_s=5, request_deadline_s=0.5) as client:
            with pytest.raises(httpx.ReadTimeout, match=r"no complete answer within 0\.5 s"):
                await client.get(url)
        async with make_client(timeout_s=5) as client:  # per phase only: it waits
            assert (await client.get(url)).text == "ok"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_family_pinned_request_to_a_dual_stack_name_uses_that_family_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name with an IPv4 and an IPv6 address (here from a hosts file): the IPv4 question
    reaches the server over IPv4 and the IPv6 question over IPv6, whatever order the
    system would try them in. The server answers with the address it saw, as an echo does."""
    import asyncio

    import checks.names
    from checks.http import connection_family, family_extensions, fetch_over

    async def echo_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        seen = writer.get_extra_info("peername")[0].encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(seen), seen))
        await writer.drain()
        writer.close()

    try:
        v6 = await asyncio.start_server(echo_peer, "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    port = v6.sockets[0].getsockname()[1]
    v4 = await asyncio.start_server(echo_peer, "127.0.0.1", port)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 dual.test\n::1 dual.test\n")
    monkeypatch.setattr(checks.names, "HOSTS_PATH", hosts)
    try:
        async with make_client(timeout_s=5) as client:
            for family, expected in ((4, "127.0.0.1"), (6, "::1")):
                response, body, used = await fetch_over(client, "GET", f"http://dual.test:{port}/", family, timeout_s=5)
                assert (body.decode(), used) == (expected, family)
            response = await client.get(f"http://127.0.0.1:{port}/", extensions=family_extensions(4))
            assert response.text == "127.0.0.1" and connection_family(response) in (4, None)
            with pytest.raises(httpx.ConnectError):  # an IPv4 literal cannot be asked over IPv6
                await client.get(f"http://127.0.0.1:{port}/", extensions=family_extensions(6))
    finally:
        v4.close()
        v6.close()
