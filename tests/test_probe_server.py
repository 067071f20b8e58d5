"""The probe server (probeserver/server.py), run for real on 127.0.0.1 with real sockets.

Everything here talks to loopback only (127.0.0.0/8: several client addresses,
each a client of its own): the server dials back the requester, which is this
test process.  The IPv6 /64 test needs addresses of one /64, so it runs in a
private network namespace holding only `lo`.  The lab version
(tests/lab/test_internet.py) runs the same server across the lab's NAT.

The load and abuse tests (section at the end) replay the attacks of issue 13 with
tests/probe_attacks.py, each scaled down in time, and assert that a legitimate
client from another address is still served; timing targets are in
bench/probe_server.py, the bounds here only catch a hang.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from probeserver import server as probe_server
from probeserver.server import ProbeServerSettings, RunningProbeServer, TokenBuckets, client_key
from tests import probe_attacks as attacks

REPO = Path(__file__).resolve().parents[1]
FAST = ProbeServerSettings(
    dial_timeout_s=1.0, banner_timeout_s=0.5, udp_timeout_s=0.6, udp_tries=3, rate_per_s=200.0, burst=200
)


async def _start(settings: ProbeServerSettings = FAST) -> RunningProbeServer:
    return await probe_server.start([("127.0.0.1", 0)], udp_port=0, settings=settings)


@pytest.fixture
async def server() -> AsyncIterator[RunningProbeServer]:
    running = await _start()
    try:
        yield running
    finally:
        await running.stop()


def _client(running: RunningProbeServer) -> httpx.AsyncClient:
    host, port = running.tcp_addresses[0]
    return httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=10)


async def _listener(on_accept) -> tuple[asyncio.base_events.Server, int]:  # type: ignore[no-untyped-def]
    srv = await asyncio.start_server(on_accept, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_ip_echo_is_plain_text_address(server: RunningProbeServer) -> None:
    async with _client(server) as client:
        for path in ("/", "/ip"):
            response = await client.get(path)
            assert response.status_code == 200
            assert response.text == "127.0.0.1\n"
            assert response.headers["content-type"].startswith("text/plain")


async def test_port_check_sees_a_listener_and_not_a_closed_port(server: RunningProbeServer) -> None:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    listener, port = await _listener(accept)
    async with _client(server) as client:
        open_answer = (await client.get(f"/port/{port}")).json()
        listener.close()
        await listener.wait_closed()
        closed_answer = (await client.get(f"/port/{port}")).json()
        rich_closed = (await client.get(f"/probe/tcp/{port}")).json()
    assert open_answer == {"ip": "127.0.0.1", "port": port, "reachable": True}
    assert closed_answer == {"ip": "127.0.0.1", "port": port, "reachable": False}
    assert rich_closed["result"] == "refused" and rich_closed["banner"] is None


async def test_rich_tcp_probe_returns_the_nonce_the_listener_wrote(server: RunningProbeServer) -> None:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"DDNSW 5f3a9c\n")
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()

    listener, port = await _listener(accept)
    try:
        async with _client(server) as client:
            answer = (await client.get(f"/probe/tcp/{port}")).json()
    finally:
        listener.close()
    assert answer["result"] == "connected"
    assert answer["banner"] == "DDNSW 5f3a9c\n"
    assert answer["protocol"] == "tcp" and answer["ip"] == "127.0.0.1" and answer["port"] == port
    assert isinstance(answer["ms"], float)


async def test_silent_listener_is_connected_without_banner(server: RunningProbeServer) -> None:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(2)
        writer.close()

    listener, port = await _listener(accept)
    try:
        async with _client(server) as client:
            answer = (await client.get(f"/probe/tcp/{port}")).json()
    finally:
        listener.close()
    assert answer["result"] == "connected" and answer["banner"] is None


async def test_udp_probe_sends_the_token_and_reports_the_reply(server: RunningProbeServer) -> None:
    received: list[bytes] = []

    class Responder(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: object) -> None:
            received.append(data)
            self.transport.sendto(b"DDNSW-ACK " + data.split()[-1] + b"\n", addr)  # type: ignore[attr-defined]

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Responder, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        async with _client(server) as client:
            answer = (await client.get(f"/probe/udp/{port}", params={"token": "tok-42"})).json()
    finally:
        transport.close()
    assert received[0] == b"DDNSW-PROBE tok-42\n"
    assert answer["result"] == "replied" and answer["banner"] == "DDNSW-ACK tok-42\n"
    assert answer["protocol"] == "udp" and answer["port"] == port


async def test_udp_probe_to_a_silent_port_times_out_after_retries(server: RunningProbeServer) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    silent.setblocking(False)
    try:
        async with _client(server) as client:
            answer = (await client.get(f"/probe/udp/{silent.getsockname()[1]}", params={"token": "x"})).json()
        tries = 0
        while True:
            try:
                silent.recv(100)
                tries += 1
            except BlockingIOError:
                break
    finally:
        silent.close()
    assert answer["result"] == "timeout" and answer["banner"] is None
    assert tries == FAST.udp_tries


async def test_udp_echo_answers_with_the_senders_address(server: RunningProbeServer) -> None:
    host, port = server.udp_addresses[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.bind(("127.0.0.1", 0))
        s.sendto(b"hello", (host, port))
        data, source = await asyncio.to_thread(s.recvfrom, 200)  # the server shares this loop
        assert data == f"127.0.0.1 {s.getsockname()[1]}\n".encode()
        assert source == (host, port)


async def test_udp_echo_on_both_families_shares_one_port() -> None:
    """`--listen 0.0.0.0:P --listen [::]:P --udp-port N` (the dual-stack setup the systemd
    unit wants) failed with "Address already in use": Linux lets the [::] socket take
    IPv4 too. Each family now has its own socket on the same port, and each answers."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        probe.bind(("::", 0))  # a port free on both families
        udp_port = probe.getsockname()[1]
    running = await probe_server.start([("0.0.0.0", 0), ("::", 0)], udp_port=udp_port, settings=FAST)
    try:
        assert sorted(p for _h, p in running.udp_addresses) == [udp_port, udp_port]
        for family, loopback in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.settimeout(2)
                s.bind((loopback, 0))
                s.sendto(b"hello", (loopback, udp_port))
                data, _source = await asyncio.to_thread(s.recvfrom, 200)
                assert data == f"{loopback} {s.getsockname()[1]}\n".encode()
    finally:
        await running.stop()


@pytest.mark.parametrize(
    "path",
    [
        "/port/0",
        "/port/65536",
        "/port/abc",
        "/port/-1",
        "/port/99999999999999",
        "/port/1.5",
        "/port/%20",
        "/probe/tcp/0",
        "/probe/tcp/70000",
        "/probe/udp/0?token=a",
        "/probe/udp/53",
        "/probe/udp/53?token=",
        "/probe/udp/53?token=has%20space",
        "/probe/udp/53?token=" + "a" * 65,
    ],
)
async def test_malformed_requests_get_400_json(server: RunningProbeServer, path: str) -> None:
    async with _client(server) as client:
        response = await client.get(path)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400 and body["error"]
    assert server.stats.probes_started == 0  # nothing was dialed


async def test_unknown_path_and_method_are_4xx(server: RunningProbeServer) -> None:
    async with _client(server) as client:
        assert (await client.get("/etc/passwd")).status_code == 404
        assert (await client.post("/port/80")).status_code == 405


async def test_only_the_requester_is_ever_dialed(server: RunningProbeServer) -> None:
    """No parameter, header or path can make it dial someone else."""
    port = _free_tcp_port()
    async with _client(server) as client:
        answers = [
            (await client.get(f"/port/{port}", params={"host": "11.1.0.30", "ip": "11.1.0.30"})).json(),
            (
                await client.get(
                    f"/probe/tcp/{port}",
                    headers={"X-Forwarded-For": "11.1.0.30", "X-Real-IP": "11.1.0.30", "Forwarded": "for=11.1.0.30"},
                )
            ).json(),
        ]
        bad = await client.get("/port/11.1.0.30:80")
    assert all(a["ip"] == "127.0.0.1" for a in answers)
    assert bad.status_code == 400
    assert set(server.stats.dialed) == {"127.0.0.1"}


async def test_a_burst_from_one_client_gets_429_with_retry_after() -> None:
    running = await _start(ProbeServerSettings(rate_per_s=0.2, burst=5))
    try:
        async with _client(running) as client:
            statuses = [(await client.get("/ip")) for _ in range(12)]
    finally:
        await running.stop()
    codes = [r.status_code for r in statuses]
    assert codes[:5] == [200] * 5
    assert codes.count(429) >= 6
    limited = next(r for r in statuses if r.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["status"] == 429


def test_token_bucket_refills_over_time() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate_per_s=2.0, burst=2, max_keys=3, clock=lambda: now[0])
    assert buckets.take("a") == 0 and buckets.take("a") == 0
    assert buckets.take("a") > 0
    now[0] += 0.5  # one token back
    assert buckets.take("a") == 0
    assert buckets.take("b") == 0  # other clients have their own bucket
    for key in ("c", "d", "e"):
        buckets.take(key)
    assert len(buckets._buckets) == 3  # table stays bounded


async def test_concurrent_probes_are_bounded() -> None:
    settings = ProbeServerSettings(max_concurrent_probes=2, banner_timeout_s=0.4, rate_per_s=100, burst=100)
    running = await _start(settings)
    open_now = peak = 0

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        await reader.read()  # the prober closes after its banner wait
        open_now -= 1
        writer.close()

    listener, port = await _listener(accept)
    try:
        async with _client(running) as client:
            answers = await asyncio.gather(*(client.get(f"/probe/tcp/{port}") for _ in range(6)))
    finally:
        listener.close()
        await running.stop()
    assert [a.json()["result"] for a in answers] == ["connected"] * 6
    assert peak <= 2 and running.stats.peak_in_flight <= 2


async def test_busy_server_answers_503_instead_of_queueing_forever() -> None:
    """Two clients (127.0.0.1 and 127.0.0.2), one probe slot in all: the one who waits too
    long is told 503 (server busy) instead of queueing forever."""
    settings = ProbeServerSettings(max_concurrent_probes=1, reserve_share=0, queue_timeout_s=0.2, banner_timeout_s=1.5)
    running = await _start(settings)
    host, port = running.tcp_addresses[0]

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # silent: the prober waits its whole banner time
        writer.close()

    listener = await asyncio.start_server(accept, "0.0.0.0", 0)
    target = listener.sockets[0].getsockname()[1]
    try:
        first = asyncio.create_task(attacks.get_once(host, port, f"/probe/tcp/{target}", "127.0.0.1"))
        await asyncio.sleep(0.3)
        second = await attacks.get_once(host, port, f"/probe/tcp/{target}", "127.0.0.2")
        first_status = (await first)[0]
    finally:
        listener.close()
        await running.stop()
    assert first_status == 200
    assert second[0] == 503 and b"too many probes in flight" in second[2]


async def test_one_client_cannot_hold_more_probes_than_its_share() -> None:
    """Per client at most max_probes_per_client dial-backs at once; the next one waits for
    the client's own slot and, after queue_timeout_s, gets 429 with Retry-After."""
    settings = ProbeServerSettings(
        max_probes_per_client=2, queue_timeout_s=0.3, banner_timeout_s=1.5, rate_per_s=100, burst=100
    )
    running = await _start(settings)
    open_now = peak = 0

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        await reader.read()
        open_now -= 1
        writer.close()

    listener, target = await _listener(accept)
    try:
        async with _client(running) as client:
            answers = await asyncio.gather(*(client.get(f"/probe/tcp/{target}") for _ in range(3)))
    finally:
        listener.close()
        await running.stop()
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 200, 429]
    limited = next(a for a in answers if a.status_code == 429)
    assert "at most 2" in limited.json()["error"] and limited.headers["retry-after"] == "1"
    assert peak == 2 and running.stats.peak_in_flight == 2


async def _raw(host: str, port: int, payload: bytes) -> None:
    try:
        async with asyncio.timeout(1):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(payload)
            await writer.drain()
            await reader.read(1000)
            writer.close()
    except (OSError, TimeoutError):
        pass


async def test_survives_a_flood_of_malformed_and_abusive_requests() -> None:
    """A bounded loop of many concurrent bad requests; the server must keep answering."""
    running = await _start(ProbeServerSettings(rate_per_s=5.0, burst=20, dial_timeout_s=0.5, banner_timeout_s=0.2))
    host, port = running.tcp_addresses[0]
    closed = _free_tcp_port()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://{host}:{port}", timeout=10, limits=httpx.Limits(max_connections=50)
        ) as client:

            async def bad_http(i: int) -> int:
                path = [
                    "/port/0",
                    "/port/x",
                    f"/probe/tcp/{closed}",
                    "/probe/udp/1?token=%00",
                    "/" + "a" * 5000,
                    "/port/65536",
                    "/probe/udp/9?token=" + "z" * 200,
                ][i % 7]
                try:
                    return (await client.get(path, headers={"X-Forwarded-For": "11.1.0.30"})).status_code
                except httpx.HTTPError:
                    return -1

            raw_payloads = [
                b"\x16\x03\x01\x02\x00garbage\r\n\r\n",
                b"GET /" + b"A" * 100_000,
                b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: " + b"y" * 70_000 + b"\r\n\r\n",
                b"NOT HTTP AT ALL\r\n\r\n",
                b"",
            ]
            for _round in range(3):
                results = await asyncio.gather(
                    *(bad_http(i) for i in range(70)),
                    *(_raw(host, port, raw_payloads[i % len(raw_payloads)]) for i in range(30)),
                )
                codes = [r for r in results if isinstance(r, int)]
                assert not [c for c in codes if c >= 500 and c != 503], codes
                assert 429 in codes and 400 in codes
            await asyncio.sleep(0.5)  # let the bucket refill a little
            after = await client.get("/ip")
    finally:
        await running.stop()
    assert after.status_code == 200 and after.text == "127.0.0.1\n"
    assert set(running.stats.dialed) <= {"127.0.0.1"}


async def test_connections_that_never_send_a_request_are_closed() -> None:
    """Slow-loris guard: an idle or half-sent request does not hold a slot forever."""
    running = await _start(ProbeServerSettings(request_deadline_s=0.3))
    host, port = running.tcp_addresses[0]
    try:
        idle_reader, idle_writer = await asyncio.open_connection(host, port)
        half_reader, half_writer = await asyncio.open_connection(host, port)
        half_writer.write(b"GET /ip HTTP/1.1\r\nHost: x\r\n")  # never finished
        await half_writer.drain()
        async with asyncio.timeout(5):
            assert await idle_reader.read() == b""
            assert b"HTTP/1.1 200" not in await half_reader.read()
        async with _client(running) as client:
            assert (await client.get("/ip")).status_code == 200
        idle_writer.close()
        half_writer.close()
    finally:
        await running.stop()


def test_cli_serves_until_sigterm_and_exits_cleanly(tmp_path: Path) -> None:
    port = _free_tcp_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wizard", "probe-server", "--listen", f"127.0.0.1:{port}"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stderr.readline() if proc.stderr else ""
        assert f"http://127.0.0.1:{port}" in line
        assert httpx.get(f"http://127.0.0.1:{port}/ip", timeout=5).text == "127.0.0.1\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--listen", "localhost"], "HOST:PORT"),
        (["--listen", "example.org:80"], "IP address"),
        (["--listen", "127.0.0.1:0"], "1-65535"),
        (["--listen", "127.0.0.1:8080", "--tls-cert", "x.pem"], "go together"),
    ],
)
def test_cli_rejects_unusable_arguments_with_exit_2(argv: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wizard", "probe-server", *argv], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_cli_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "wizard", "probe-server", "--listen", f"127.0.0.1:{port}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert "cannot serve" in result.stderr and "Traceback" not in result.stderr


def test_help_does_not_import_the_server_libraries() -> None:
    code = (
        "import sys, contextlib, io\nfrom wizard import cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['probe-server', '--help'])\n"
        "print(sorted(m for m in ('starlette', 'uvicorn', 'probeserver.server') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.stdout.strip() == "[]"


def test_without_the_server_extra_it_says_how_to_install_it() -> None:
    """starlette/uvicorn are the ``server`` extra. Their absence is simulated (None in sys.modules
    makes ``import starlette`` fail as an uninstalled package would): this venv has them installed."""
    code = (
        "import sys\nsys.modules['starlette'] = None\nfrom wizard import cli\n"
        "sys.exit(cli.main(['probe-server', '--listen', '127.0.0.1:8080']))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "ddns-wizard[server]" in result.stderr and "Traceback" not in result.stderr


def test_the_client_side_of_the_wire_protocol_needs_no_server_libraries() -> None:
    code = (
        "import sys\nimport probeserver.wire, checks.portcheck.probers, checks.portcheck.listener\n"
        "print(sorted(m for m in ('starlette', 'uvicorn', 'probeserver.server') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ------------------------------------------------------------------ load and abuse (issue 13)
def _from(source: str, running: RunningProbeServer, timeout: float = 10) -> httpx.AsyncClient:
    """An httpx client whose connections come from ``source`` (a loopback address)."""
    host, port = running.tcp_addresses[0]
    return httpx.AsyncClient(
        base_url=f"http://{host}:{port}", timeout=timeout, transport=httpx.AsyncHTTPTransport(local_address=source)
    )


def test_a_client_is_an_ipv4_address_or_an_ipv6_64() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("2001:db8:13:0:1::9") == client_key("2001:db8:13::ffff") == "2001:db8:13::/64"
    assert client_key("2001:db8:13:1::1") == "2001:db8:13:1::/64"


async def test_ipv6_rate_limit_is_per_64_not_per_address() -> None:
    """100 addresses of one /64 share one bucket (they were 100 buckets: 4000 of 4000 passed).
    Driven through the ASGI app with the client address set, as uvicorn sets it; the same
    over real sockets is test_many_addresses_of_one_64_in_a_namespace."""
    app = probe_server.build_app(ProbeServerSettings(rate_per_s=10, burst=30), clock=lambda: 0.0)
    codes: list[int] = []
    for i in range(100):
        transport = httpx.ASGITransport(app=app, client=(f"2001:db8:13::{i + 1:x}", 40000 + i))
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            for _ in range(40):
                codes.append((await client.get("/ip")).status_code)
        other = httpx.ASGITransport(app=app, client=("2001:db8:14::1", 1))
    async with httpx.AsyncClient(transport=other, base_url="http://probe") as client:
        elsewhere = (await client.get("/ip")).status_code
    assert codes.count(200) == 30 and codes.count(429) == 3970
    assert elsewhere == 200  # another /64 has its own bucket


async def test_answers_are_not_held_back_by_nagle(server: RunningProbeServer) -> None:
    """The ~40 ms wait on every request after a connection's first came from Nagle's
    algorithm holding the body (uvicorn writes headers and body separately) until the
    client's delayed ACK: every served connection must have TCP_NODELAY. The timing
    itself is in bench/probe_server.py (first vs later request on a connection)."""
    async with _client(server) as client:
        for _ in range(3):
            assert (await client.get("/ip")).status_code == 200
        transports = server.connections.open_transports()
        assert transports
        for transport in transports:
            sock = transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


async def test_port_check_answers_without_waiting_for_a_banner() -> None:
    """/port/N reports only reachable: it must not wait for a banner (it waited up to 1 s)."""
    running = await _start(ProbeServerSettings(banner_timeout_s=30, rate_per_s=100, burst=100))

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    listener, target = await _listener(silent)
    try:
        async with _client(running) as client:
            answer = await client.get(f"/port/{target}", timeout=5)  # a banner wait would be 30 s
    finally:
        listener.close()
        await running.stop()
    assert answer.json() == {"ip": "127.0.0.1", "port": target, "reachable": True}


async def test_each_request_on_a_kept_alive_connection_has_its_own_deadline() -> None:
    """After a whole first request, half of the next (headers, or a body) is cut off at the
    deadline with 408 (it was held forever: the deadline fired only before the first)."""
    running = await _start(ProbeServerSettings(request_deadline_s=0.5, keep_alive_s=0.3, rate_per_s=100, burst=100))
    host, port = running.tcp_addresses[0]
    try:
        for half in (
            b"GET /ip HTTP/1.1\r\nHost: probe\r\nX-Slow: ",
            b"POST /ip HTTP/1.1\r\nHost: probe\r\nContent-Length: 100\r\n\r\nonly-a-part",
        ):
            reader, writer = await attacks.connect(host, port)
            writer.write(attacks.request_bytes("/ip"))
            assert (await attacks.read_response(reader))[0] == 200
            writer.write(half)
            started = time.monotonic()
            async with asyncio.timeout(5):
                rest = await reader.read()
                while chunk := await reader.read():
                    rest += chunk
            writer.close()
            assert rest.endswith(b'request not received in time"}') and b"HTTP/1.1 408" in rest
            assert time.monotonic() - started >= 0.4
        # Pipelined: the half request comes in the same packet as a whole one.
        reader, writer = await attacks.connect(host, port)
        writer.write(attacks.request_bytes("/ip") + b"GET /ip HTTP/1.1\r\nHost: pro")
        assert (await attacks.read_response(reader))[0] == 200
        async with asyncio.timeout(5):
            assert (await attacks.read_response(reader))[0] == 408  # not closed silently as idle
        writer.close()
        assert running.stats.deadline_closed == 3
        async with _client(running) as client:
            assert (await client.get("/ip")).status_code == 200
    finally:
        await running.stop()


async def test_slow_second_requests_from_many_connections_do_not_deny_service() -> None:
    """The issue's attack: ~128 connections complete one request, then send half of the next
    (8 addresses x 16, so the per-address cap does not stop them first). Before, they were
    held for good and the server answered 503 to everyone. Now each is cut at its deadline
    and a client from another address is served throughout."""
    running = await _start(ProbeServerSettings(request_deadline_s=1.0, max_connections=64))
    host, port = running.tcp_addresses[0]
    try:
        result = await attacks.slow_second_request(
            host,
            port,
            sources=[f"127.0.0.{i}" for i in range(2, 10)],
            per_source=16,
            hold_s=3.0,
            legit_source="127.0.0.1",
            legit_every_s=0.25,
        )
    finally:
        await running.stop()
    assert result.legit.results and result.legit.statuses == [200] * len(result.legit.results), result.summary()
    assert result.legit.worst_s < 2.0, result.summary()  # a hang bound, not a target
    assert result.attack_connections >= 48  # the attack did get in
    assert result.closed_by_server == result.attack_connections  # none outlived the 3 s hold
    assert running.stats.deadline_closed >= 48


async def test_idle_flood_from_one_address_is_capped_and_others_are_served() -> None:
    """300 idle connections from one address denied service to everyone; now that address
    holds at most max_connections_per_client, the rest are refused or dropped."""
    running = await _start(ProbeServerSettings(request_deadline_s=1.5))
    host, port = running.tcp_addresses[0]
    try:
        result = await attacks.idle_flood(
            host, port, sources=["127.0.0.2"], per_source=300, hold_s=2.5, legit_source="127.0.0.1", legit_every_s=0.25
        )
    finally:
        await running.stop()
    stats = running.stats
    assert result.legit.statuses == [200] * len(result.legit.results), result.summary()
    assert result.legit.worst_s < 2.0, result.summary()
    assert stats.peak_connections <= 16 + 1  # the flood's 16, and the legitimate client's one
    assert stats.connections_refused + stats.connections_dropped >= 300 - 16
    assert result.closed_by_server == result.attack_connections  # the admitted 16 hit the deadline


async def test_connections_beyond_the_per_client_cap_are_told_429() -> None:
    running = await _start(ProbeServerSettings(max_connections_per_client=4))
    host, port = running.tcp_addresses[0]
    held = [await attacks.connect(host, port, "127.0.0.2") for _ in range(4)]
    try:
        status, _took, body = await attacks.get_once(host, port, "/ip", "127.0.0.2")
        assert status == 429 and b"too many connections from your address" in body
        assert (await attacks.get_once(host, port, "/ip", "127.0.0.3"))[0] == 200
        writer = held[0][1]
        writer.write(attacks.request_bytes("/ip"))  # the admitted ones still work
        assert (await attacks.read_response(held[0][0]))[0] == 200
    finally:
        for _, w in held:
            w.close()
        await running.stop()


async def test_last_share_of_connections_is_kept_for_new_clients() -> None:
    """20 connections in all, a quarter kept: a client holding some gets no 16th once 15 are
    open (503), while a client holding none still gets in."""
    running = await _start(ProbeServerSettings(max_connections=20, reserve_share=0.25))
    host, port = running.tcp_addresses[0]
    held = [await attacks.connect(host, port, "127.0.0.2") for _ in range(15)]
    try:
        await asyncio.sleep(0.1)
        assert running.stats.connections_open == 15
        status, _, body = await attacks.get_once(host, port, "/ip", "127.0.0.2")
        assert status == 503 and b"kept for new clients" in body
        assert (await attacks.get_once(host, port, "/ip", "127.0.0.3"))[0] == 200
    finally:
        for _, w in held:
            w.close()
        await running.stop()


async def test_a_full_table_makes_room_by_closing_the_oldest_idle_connection() -> None:
    running = await _start(ProbeServerSettings(max_connections=8, reserve_share=0.0, max_connections_per_client=8))
    host, port = running.tcp_addresses[0]
    held = []
    for _ in range(8):
        held.append(await attacks.connect(host, port, "127.0.0.2"))
        await asyncio.sleep(0.01)  # a known order: the first is the oldest
    try:
        status, _, _ = await attacks.get_once(host, port, "/ip", "127.0.0.3")
        assert status == 200
        async with asyncio.timeout(5):
            assert await held[0][0].read() == b""  # the oldest idle one made room
        assert running.stats.connections_evicted == 1
        held[1][1].write(attacks.request_bytes("/ip"))
        assert (await attacks.read_response(held[1][0]))[0] == 200
    finally:
        for _, w in held:
            w.close()
        await running.stop()


async def test_black_holed_probes_from_three_clients_do_not_starve_others() -> None:
    """Three addresses, each within its rate limit, keep probing a port that drops SYNs
    (each probe takes the whole dial timeout). Before, they took every probe slot and a
    legitimate probe got 503 after waiting. Now each holds at most its share."""
    settings = ProbeServerSettings(
        dial_timeout_s=1.0, max_concurrent_probes=8, max_probes_per_client=2, queue_timeout_s=1.0, banner_timeout_s=0.2
    )
    running = await _start(settings)
    host, port = running.tcp_addresses[0]
    mine = await attacks.open_listener("127.0.0.1")
    try:
        result = await attacks.black_holed_probes(
            host,
            port,
            attackers=["127.0.0.2", "127.0.0.3", "127.0.0.4"],
            per_attacker=6,
            duration_s=3.0,
            legit_source="127.0.0.1",
            legit_port=mine.sockets[0].getsockname()[1],
            legit_every_s=0.3,
        )
    finally:
        mine.close()
        await running.stop()
    assert result.legit.statuses == [200] * len(result.legit.results), result.summary()
    assert result.legit.worst_s < 3.0, result.summary()
    assert running.stats.peak_in_flight <= 8 and running.stats.busy > 0  # the attackers were held back


async def test_a_client_that_stops_reading_is_cut_off() -> None:
    """Pipelined requests whose answers are never read fill the buffers; the connection
    is closed after request_deadline_s instead of holding its place for good. The
    server's send buffer is made small (from the test) so this takes few requests."""
    running = await _start(ProbeServerSettings(request_deadline_s=0.5, rate_per_s=1e6, burst=1_000_000))
    host, port = running.tcp_addresses[0]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.setblocking(False)
    try:
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(attacks.request_bytes("/ip"))
        assert (await attacks.read_response(reader))[0] == 200
        for transport in running.connections.open_transports():
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        writer.write(attacks.request_bytes("/ip") * 4000)  # ~280 kB of answers, none read
        async with asyncio.timeout(10):
            while running.stats.stalled_closed == 0:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        assert running.stats.connections_open == 0
        writer.close()
    finally:
        sock.close()
        await running.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    cert.private_key_and_cert_chain_pem.write_to_path(str(folder / "server.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    return str(folder / "server.pem"), str(folder / "server.pem"), str(folder / "ca.pem")


async def test_tls_handshake_and_requests_have_deadlines(tls_files: tuple[str, str, str]) -> None:
    """Over TLS: a connection that never finishes its handshake, or that stops halfway
    through a second request, is closed at the deadline; a TLS client is served."""
    certfile, keyfile, ca = tls_files
    running = await probe_server.start(
        [("127.0.0.1", 0)],
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        settings=ProbeServerSettings(request_deadline_s=0.5),
    )
    host, port = running.tcp_addresses[0]
    try:
        silent_reader, silent_writer = await attacks.connect(host, port, "127.0.0.2")
        half_reader, half_writer = await attacks.connect(host, port, "127.0.0.3")
        half_writer.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's start
        context = ssl.create_default_context(cafile=ca)
        tls_reader, tls_writer = await asyncio.open_connection(host, port, ssl=context)
        tls_writer.write(attacks.request_bytes("/ip"))
        assert await attacks.read_response(tls_reader) == (200, b"127.0.0.1\n")
        tls_writer.write(b"GET /ip HTTP/1.1\r\nHost: probe\r\n")
        async with asyncio.timeout(5):
            assert await silent_reader.read() == b""
            assert await half_reader.read() == b""
            rest = await tls_reader.read()
            while chunk := await tls_reader.read():
                rest += chunk
        assert b"HTTP/1.1 408" in rest
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca)) as client:
            answer = await client.get(f"https://{host}:{port}/ip")
        assert answer.status_code == 200 and answer.text == "127.0.0.1\n"
        assert running.stats.deadline_closed >= 3
        for w in (silent_writer, half_writer, tls_writer):
            w.close()
    finally:
        await running.stop()


V6_SCENARIO = """
import asyncio, json, sys
from probeserver import server as probe_server
from probeserver.server import ProbeServerSettings
from tests import probe_attacks as attacks

async def main():
    running = await probe_server.start([("2001:db8:13::1", 0)], settings=ProbeServerSettings(
        rate_per_s=10, burst=30, request_deadline_s=2.0))
    host, port = running.tcp_addresses[0]
    sources = [f"2001:db8:13::{i:x}" for i in range(0x10, 0x10 + 100)]
    started = asyncio.get_running_loop().time()
    counts = await attacks.many_addresses(host, port, sources=sources, requests_each=40)
    rate_s = asyncio.get_running_loop().time() - started
    await asyncio.sleep(1.0)
    flood = await attacks.idle_flood(host, port, sources=sources, per_source=3, hold_s=1.5,
                                     legit_source="2001:db8:14::1", legit_every_s=0.25)
    peak = running.stats.peak_connections
    await running.stop()
    print(json.dumps({"counts": counts, "rate_s": rate_s, "legit": flood.legit.results,
                      "flood_opened": flood.attack_connections, "peak": peak}))

asyncio.run(main())
"""


@pytest.mark.lab
def test_many_addresses_of_one_64_in_a_namespace() -> None:
    """100 addresses of one IPv6 /64 (on `lo` of a private namespace, nothing else in it)
    share one rate limit and one connection cap, and another /64 is served meanwhile."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to make a network namespace")
    from tests.lab import _netns

    name = _netns.new_prefix() + "-probe"
    _netns.create_namespaces([name])
    try:
        batch = ["link set lo up"] + [
            f"addr add 2001:db8:13::{i:x}/64 dev lo nodad" for i in [1, *range(0x10, 0x10 + 100)]
        ]
        batch.append("addr add 2001:db8:14::1/64 dev lo nodad")
        _netns.run_checked(["ip", "-n", name, "-batch", "-"], input="\n".join(batch) + "\n", what="addresses on lo")
        proc = subprocess.run(
            ["ip", "netns", "exec", name, sys.executable, "-c", V6_SCENARIO],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        _netns.kill_namespace_processes([name])
        _netns.delete_namespaces([name])
    assert proc.returncode == 0, proc.stderr[-2000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    counts = out["counts"]
    # One bucket for the whole /64: its burst plus what refilled while the test ran.
    assert counts["sent"] == 4000 and counts["ok"] <= 30 + 10 * out["rate_s"] + 1, out
    assert counts["limited"] > 0, out
    # One connection cap for the whole /64 (16) while its 100 addresses open 300.
    assert out["flood_opened"] == 300 and out["peak"] <= 16 + 1, out
    assert [s for s, _ in out["legit"]] == [200] * len(out["legit"]), out
