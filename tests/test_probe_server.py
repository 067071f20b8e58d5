"""The probe server (checks/probe_server.py), run for real on 127.0.0.1 with real sockets.

Everything here talks to 127.0.0.1 only: the server dials back the requester,
which is this test process.  The lab version (tests/lab/test_internet.py) runs
the same server across the lab's NAT.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

from checks import probe_server
from checks.probe_server import ProbeServerSettings, RunningProbeServer, TokenBuckets

REPO = Path(__file__).resolve().parents[1]
FAST = ProbeServerSettings(dial_timeout_s=1.0, banner_timeout_s=0.5, udp_timeout_s=0.6, udp_tries=3,
                           rate_per_s=200.0, burst=200)


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


@pytest.mark.parametrize("path", [
    "/port/0", "/port/65536", "/port/abc", "/port/-1", "/port/99999999999999", "/port/1.5", "/port/%20",
    "/probe/tcp/0", "/probe/tcp/70000", "/probe/udp/0?token=a", "/probe/udp/53",
    "/probe/udp/53?token=", "/probe/udp/53?token=has%20space", "/probe/udp/53?token=" + "a" * 65,
])
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
            (await client.get(f"/probe/tcp/{port}", headers={"X-Forwarded-For": "11.1.0.30",
                                                               "X-Real-IP": "11.1.0.30",
                                                               "Forwarded": "for=11.1.0.30"})).json(),
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
    settings = ProbeServerSettings(max_concurrent_probes=1, queue_timeout_s=0.1, banner_timeout_s=1.0)
    running = await _start(settings)

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    listener, port = await _listener(accept)
    try:
        async with _client(running) as client:
            answers = await asyncio.gather(*(client.get(f"/port/{port}") for _ in range(3)))
    finally:
        listener.close()
        await running.stop()
    codes = sorted(a.status_code for a in answers)
    assert codes[0] == 200 and 503 in codes


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
    running = await _start(ProbeServerSettings(rate_per_s=5.0, burst=20, dial_timeout_s=0.5,
                                               banner_timeout_s=0.2))
    host, port = running.tcp_addresses[0]
    closed = _free_tcp_port()
    try:
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=10,
                                     limits=httpx.Limits(max_connections=50)) as client:
            async def bad_http(i: int) -> int:
                path = ["/port/0", "/port/x", f"/probe/tcp/{closed}", "/probe/udp/1?token=%00",
                        "/" + "a" * 5000, "/port/65536", "/probe/udp/9?token=" + "z" * 200][i % 7]
                try:
                    return (await client.get(path, headers={"X-Forwarded-For": "11.1.0.30"})).status_code
                except httpx.HTTPError:
                    return -1

            raw_payloads = [b"\x16\x03\x01\x02\x00garbage\r\n\r\n", b"GET /" + b"A" * 100_000,
                            b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: " + b"y" * 70_000 + b"\r\n\r\n",
                            b"NOT HTTP AT ALL\r\n\r\n", b""]
            for _round in range(3):
                results = await asyncio.gather(
                    *(bad_http(i) for i in range(70)),
                    *(_raw(host, port, raw_payloads[i % len(raw_payloads)]) for i in range(30)))
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
    proc = subprocess.Popen([sys.executable, "-m", "wizard", "probe-server", "--listen", f"127.0.0.1:{port}"],
                            cwd=REPO, stderr=subprocess.PIPE, text=True)
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


@pytest.mark.parametrize("argv, message", [
    (["--listen", "localhost"], "HOST:PORT"),
    (["--listen", "example.org:80"], "IP address"),
    (["--listen", "127.0.0.1:0"], "1-65535"),
    (["--listen", "127.0.0.1:8080", "--tls-cert", "x.pem"], "go together"),
])
def test_cli_rejects_unusable_arguments_with_exit_2(argv: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "wizard", "probe-server", *argv], cwd=REPO,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_cli_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "wizard", "probe-server", "--listen", f"127.0.0.1:{port}"],
                                cwd=REPO, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "cannot serve" in result.stderr and "Traceback" not in result.stderr


def test_help_does_not_import_the_server_libraries() -> None:
    code = ("import sys, contextlib, io\nfrom wizard import cli\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    cli.main(['probe-server', '--help'])\n"
            "print(sorted(m for m in ('starlette', 'uvicorn', 'checks.probe_server') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=30,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.stdout.strip() == "[]"
