"""Outside port probers (checks/portcheck/probers.py): forms, answers, limits, families.

The probers are httpx.MockTransport handlers shaped like the real services
(mpolden/echoip's /port/N JSON, portchecker.io's /api/me/N text, the project's probe
server); the clock of the pacing ledger is injected so a "minute later" takes no
time. The lab runs the same code against models of the services on real networks
(tests/lab/test_ports_lab.py). Nothing leaves this process.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import pytest

from checks.config import Endpoints
from checks.http import FAMILY_EXTENSION
from checks.model import LocalInfo, UpnpInfo
from checks.portcheck.probers import (
    ProberPacer,
    ask_prober,
    ask_probers,
    parse_probe_response,
    parse_prober,
)
from checks.portcheck.run import NetworkFacts, run_port_check
from checks.portcheck.spec import PortSpec

IFCONFIG = parse_prober("https://ifconfig.test/port/{port}")
PORTCHECKER = parse_prober("portchecker+https://portchecker.test")
OWN = parse_prober("ddnsw+https://probe.test")
SEEN = "23.128.64.20"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def mock(handler) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def test_prober_forms_and_their_limits() -> None:
    assert IFCONFIG.kind == "echoip" and IFCONFIG.policy.min_interval_s == 60
    assert PORTCHECKER.kind == "portchecker" and PORTCHECKER.url == "https://portchecker.test"
    assert OWN.kind == "ddnsw" and OWN.policy.min_interval_s == 0
    assert isinstance(parse_prober("portchecker+ftp://x"), str)
    assert OWN.tests("udp") and not IFCONFIG.tests("udp") and not PORTCHECKER.tests("udp")


@pytest.mark.parametrize("body, outcome", [(b"True", "reached"), (b"False", "not-reached")])
def test_portchecker_text_answers(body: bytes, outcome: str) -> None:
    a = parse_probe_response(PORTCHECKER, 8080, "tcp", 200, body)
    assert a.outcome == outcome and a.observed_ip is None


def test_portchecker_refuses_ipv6_requesters_with_400() -> None:
    # What portchecker.io answers an IPv6 requester (dsgnr/portchecker.io helpers/query.py).
    body = json.dumps({"status_code": 400, "detail": "IPv6 is not currently supported"}).encode()
    a = parse_probe_response(PORTCHECKER, 8080, "tcp", 400, body)
    assert a.outcome == "no-answer" and "IPv6 is not currently supported" in (a.error or "")


def test_an_echoip_answer_about_the_other_family_is_discarded() -> None:
    """Issue 11: the "IPv4" test went out over IPv6, so echoip dialled the IPv6 address;
    its answer says nothing about IPv4 and its address is no public IPv4."""
    body = json.dumps({"ip": "2a0c:b641:100:1::100", "port": 8080, "reachable": True}).encode()
    a = parse_probe_response(IFCONFIG, 8080, "tcp", 200, body, family=4)
    assert a.outcome == "no-answer" and a.observed_ip is None
    assert "tested 2a0c:b641:100:1::100, not this line's public IPv4 address" in (a.error or "")


async def test_every_request_carries_the_family_pin() -> None:
    seen: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions.get(FAMILY_EXTENSION))
        return httpx.Response(200, json={"ip": SEEN, "port": 80, "reachable": True})

    async with mock(handler) as client:
        await ask_prober(client, IFCONFIG, 80, "tcp", token="t", family=4)
    assert seen == [4]


async def test_a_rate_limited_prober_is_not_asked_again_inside_its_window_and_a_second_takes_over() -> None:
    clock = Clock()
    pacer = ProberPacer(None, clock)
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.host)
        if request.url.host == "ifconfig.test":
            return httpx.Response(200, json={"ip": SEEN, "port": 8080, "reachable": True})
        return httpx.Response(200, text="True")

    async with mock(handler) as client:
        first = await ask_probers(client, [IFCONFIG, PORTCHECKER], 8080, "tcp", token="t", pacer=pacer)
        clock.now += 20  # a second run 20 s later
        second = await ask_probers(client, [IFCONFIG, PORTCHECKER], 8080, "tcp", token="t", pacer=pacer)
        clock.now += 20
        only = await ask_probers(client, [IFCONFIG], 8080, "tcp", token="t", pacer=pacer)
        clock.now += 21  # the minute is over
        again = await ask_probers(client, [IFCONFIG], 8080, "tcp", token="t", pacer=pacer)
    assert (first.prober, first.outcome) == ("ifconfig.test", "reached")
    assert (second.prober, second.outcome) == ("portchecker.test", "reached")
    assert only.outcome == "no-answer" and only.code == "rate-limited" and only.retry_after_s == 20
    assert "allows one automated request a minute" in (only.error or "") and "asked it 40 s ago" in (only.error or "")
    assert again.outcome == "reached"
    assert asked == ["ifconfig.test", "portchecker.test", "ifconfig.test"]


async def test_a_429_closes_the_window_for_retry_after_and_the_next_prober_answers() -> None:
    clock = Clock()
    pacer = ProberPacer(None, clock)
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.host)
        if request.url.host == "ifconfig.test":
            return httpx.Response(429, headers={"Retry-After": "90"}, text="Too Many Requests")
        return httpx.Response(200, text="False")

    async with mock(handler) as client:
        a = await ask_probers(client, [IFCONFIG, PORTCHECKER], 8080, "tcp", token="t", pacer=pacer)
        clock.now += 70  # past the minute, inside Retry-After
        b = await ask_probers(client, [IFCONFIG], 8080, "tcp", token="t", pacer=pacer)
    assert (a.prober, a.outcome) == ("portchecker.test", "not-reached")
    assert b.code == "rate-limited" and b.retry_after_s == 20 and "HTTP 429" in (b.error or "")
    assert asked == ["ifconfig.test", "portchecker.test"]


async def test_silence_from_the_only_prober_is_said_with_when_to_try_again() -> None:
    pacer = ProberPacer(None, Clock())

    async def silent(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        raise AssertionError("not reached")

    async with mock(silent) as client:
        a = await ask_probers(client, [IFCONFIG], 8080, "tcp", token="t", pacer=pacer, timeout_s=0.2)
        b = await ask_probers(client, [IFCONFIG], 8080, "tcp", token="t", pacer=pacer, timeout_s=0.2)
    assert (a.outcome, a.code, a.retry_after_s) == ("no-answer", "prober-silent", 60)
    assert b.code == "rate-limited" and "did not answer this machine's request" in (b.error or "")


async def test_pacing_survives_between_runs_in_the_state_file(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "probers.json"

    families: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        family = request.extensions.get(FAMILY_EXTENSION)
        families.append(family)
        ip = SEEN if family == 4 else "2a0c:b641:100:1::100"
        return httpx.Response(200, json={"ip": ip, "port": 8080, "reachable": True})

    async with mock(handler) as client:
        await ask_probers(client, [IFCONFIG], 8080, "tcp", token="t", pacer=ProberPacer(path, clock))
        clock.now += 10
        later = await ask_probers(client, [IFCONFIG], 8080, "tcp", token="t", pacer=ProberPacer(path, clock))
        v6 = await ask_probers(client, [IFCONFIG], 8080, "tcp", token="t", family=6, pacer=ProberPacer(path, clock))
    assert later.code == "rate-limited" and later.retry_after_s == 50
    assert v6.outcome == "reached" and families == [4, 6]  # the IPv6 address is another client


async def test_several_ports_share_the_limit_the_ones_not_asked_say_so() -> None:
    pacer = ProberPacer(None, Clock())

    def handler(request: httpx.Request) -> httpx.Response:
        port = int(request.url.path.rsplit("/", 1)[1])
        return httpx.Response(200, json={"ip": SEEN, "port": port, "reachable": True})

    async with mock(handler) as client:
        answers = await asyncio.gather(
            *(ask_probers(client, [IFCONFIG], p, "tcp", token="t", pacer=pacer) for p in (8080, 8081))
        )
    assert sorted(a.outcome for a in answers) == ["no-answer", "reached"]
    assert next(a for a in answers if a.outcome == "no-answer").code == "rate-limited"


# --------------------------------------------------------------------------- the run


FACTS = NetworkFacts(
    local=LocalInfo(interface="lo", ipv4="127.0.0.1", gateway_ipv4=None), upnp=UpnpInfo(available=False), hops=()
)


def free_port() -> int:
    from tests.samples import unused_port

    return unused_port(socket.AF_INET)


def dialling_echoip(asked: list[int]):  # type: ignore[no-untyped-def]
    """echoip's /port/N for real: a TCP connect to 127.0.0.1:N within 2 s."""

    async def handler(request: httpx.Request) -> httpx.Response:
        port = int(request.url.path.rsplit("/", 1)[1])
        asked.append(port)
        try:
            _r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
            w.close()
            reachable = True
        except OSError:
            reachable = False
        return httpx.Response(200, json={"ip": SEEN, "port": port, "reachable": reachable})

    return handler


async def test_an_open_port_costs_one_request_no_control_port() -> None:
    asked: list[int] = []
    port = free_port()
    async with mock(dialling_echoip(asked)) as client:
        report = await run_port_check(
            [PortSpec(port)],
            endpoints=Endpoints(port_check=(IFCONFIG.url,)),
            client=client,
            facts=FACTS,
            listen_host="127.0.0.1",
            pacer=ProberPacer(None, Clock()),
        )
    assert report.results[0].verdict == "open" and asked == [port]


async def test_a_port_not_reached_asks_the_control_of_the_next_prober() -> None:
    """The tested port is refused (nothing forwards it: here, the prober is told the
    port is unreachable); the control port then goes to the second prober, since the
    first one allows one request a minute."""
    asked: list[tuple[str, int]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        port = int(request.url.path.rsplit("/", 1)[1])
        asked.append((request.url.host, port))
        if request.url.host == "ifconfig.test":
            return httpx.Response(200, json={"ip": SEEN, "port": port, "reachable": False})
        return httpx.Response(200, text="True")

    port = free_port()
    async with mock(handler) as client:
        report = await run_port_check(
            [PortSpec(port)],
            endpoints=Endpoints(port_check=(IFCONFIG.url, "portchecker+https://portchecker.test")),
            client=client,
            facts=FACTS,
            listen_host="127.0.0.1",
            pacer=ProberPacer(None, Clock()),
        )
    assert asked[0] == ("ifconfig.test", port) and len(asked) == 2 and asked[1][0] == "portchecker.test"
    control = report.controls[0]
    assert asked[1][1] == control.port
    assert any(f"Control port {control.label}" in e for e in report.results[0].evidence)


async def test_only_prober_rate_limited_gives_unknown_with_the_reason_and_when() -> None:
    clock = Clock()
    pacer = ProberPacer(None, clock)
    asked: list[int] = []
    endpoints = Endpoints(port_check=(IFCONFIG.url,))
    async with mock(dialling_echoip(asked)) as client:
        first = await run_port_check(
            [PortSpec(free_port())],
            endpoints=endpoints,
            client=client,
            facts=FACTS,
            listen_host="127.0.0.1",
            pacer=pacer,
        )
        clock.now += 15
        second = await run_port_check(
            [PortSpec(free_port())],
            endpoints=endpoints,
            client=client,
            facts=FACTS,
            listen_host="127.0.0.1",
            pacer=pacer,
        )
    assert first.results[0].verdict == "open"
    result = second.results[0]
    assert (result.verdict, result.reason, result.retry_after_s) == ("unknown", "rate-limited", 45)
    assert len(asked) == 1
    assert any("can be asked again in 45 s" in e for e in result.evidence)


async def test_udp_without_a_udp_prober_has_its_own_reason() -> None:
    listener_port = free_port()
    async with mock(lambda r: httpx.Response(500)) as client:
        report = await run_port_check(
            [PortSpec(listener_port, "udp")],
            endpoints=Endpoints(port_check=(IFCONFIG.url,)),
            client=client,
            facts=FACTS,
            listen_host="127.0.0.1",
            pacer=ProberPacer(None, Clock()),
        )
    result = report.results[0]
    assert (result.verdict, result.reason) == ("unknown", "no-udp-prober")
    assert "ddnsw+https://" in result.fix
