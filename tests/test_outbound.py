"""Outbound block test (checks/probes/outbound.py) against listeners on 127.0.0.1.

Real sockets for open and refused ports; a dropped SYN (timeout) and a DNS failure
cannot be produced on loopback, so those two patch asyncio's connect/resolve and
say so. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator

import pytest

from checks.probes import outbound
from checks.probes.outbound import check_outbound


@pytest.fixture
def listening_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


async def test_open_blocked_and_udp_unknown(listening_port: int) -> None:
    closed = closed_port()
    results = await check_outbound(
        "127.0.0.1", [(listening_port, "tcp"), (closed, "tcp"), (51820, "udp")], timeout_s=1.0, reference_ports=()
    )
    by_port = {r.port: r for r in results}
    assert [r.port for r in results] == [listening_port, closed, 51820]  # order as asked
    assert by_port[listening_port].verdict == "open" and by_port[listening_port].ms is not None
    assert by_port[closed].verdict == "blocked" and "refused or reset" in by_port[closed].detail
    assert by_port[51820].verdict == "unknown" and "TCP only" in by_port[51820].detail


async def test_blocked_25_is_called_normal_for_residential_lines(
    listening_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 25 itself may be in use on this machine: its refusal is simulated, the rest is real.
    real = asyncio.open_connection

    async def fake_open(host: str, port: int, **kw: object):  # type: ignore[no-untyped-def]
        if port == 25:
            raise ConnectionRefusedError(111, "Connection refused")
        return await real(host, port, **kw)

    monkeypatch.setattr(outbound.asyncio, "open_connection", fake_open)
    results = await check_outbound("127.0.0.1", [(25, "tcp")], timeout_s=1.0, reference_ports=(listening_port,))
    assert results[0].verdict == "blocked"
    assert "normal on residential lines" in results[0].detail and "587" in results[0].detail


async def test_timeout_is_blocked(listening_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # A silently dropped SYN cannot happen on loopback: the connect for one port hangs instead.
    real = asyncio.open_connection
    dropped = closed_port()

    async def fake_open(host: str, port: int, **kw: object):  # type: ignore[no-untyped-def]
        if port == dropped:
            await asyncio.sleep(30)
        return await real(host, port, **kw)

    monkeypatch.setattr(outbound.asyncio, "open_connection", fake_open)
    results = await check_outbound(
        "127.0.0.1", [(dropped, "tcp"), (listening_port, "tcp")], timeout_s=0.3, reference_ports=()
    )
    assert results[0].verdict == "blocked" and "timed out" in results[0].detail
    assert results[1].verdict == "open"


async def test_nothing_reaches_the_target_is_unknown_not_blocked() -> None:
    a, b = closed_port(), closed_port()
    results = await check_outbound("127.0.0.1", [(a, "tcp"), (b, "tcp")], timeout_s=1.0, reference_ports=())
    assert {r.verdict for r in results} == {"unknown"}
    assert "target is down or this network is offline" in results[0].detail


async def test_dns_failure_of_target_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    # Resolving a real name would query this machine's resolver: the failure is simulated.
    async def no_such_name(self, host, port, **kw):  # type: ignore[no-untyped-def]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", no_such_name)
    results = await check_outbound("portquiz.invalid", [(443, "tcp"), (25, "tcp")])
    assert [r.verdict for r in results] == ["unknown", "unknown"]
    assert "could not resolve portquiz.invalid" in results[0].detail


def test_cli_outbound_json(listening_port: int, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """`ports outbound PORT... --json` prints exactly the DESIGN.md list (port, verdict, ms ...)."""
    from wizard.cli import main

    cfg = tmp_path / "config.toml"
    cfg.write_text('[endpoints]\noutbound_target = "127.0.0.1"\n')
    closed = closed_port()
    code = main(
        ["--config", str(cfg), "ports", "outbound", str(listening_port), f"{closed}/tcp", "--json", "--timeout", "1"]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert [(d["port"], d["verdict"]) for d in data] == [(listening_port, "open"), (closed, "blocked")]
    assert all(set(d) >= {"port", "verdict", "ms"} for d in data)


def test_cli_outbound_rejects_bad_port(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from wizard.cli import main

    cfg = tmp_path / "config.toml"
    cfg.write_text('[endpoints]\noutbound_target = "127.0.0.1"\n')
    assert main(["--config", str(cfg), "ports", "outbound", "70000"]) == 2
    assert "1 to 65535" in capsys.readouterr().err
