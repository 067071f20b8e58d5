"""Inbound port test (checks/portcheck/run.py, checks/portcheck/listener.py): verdict logic, nonce listeners,
prober response parsing, and mapping cleanup.

What is faked and why: the router's IGD is a fake that records add/delete calls
(the real miniupnpd is exercised in tests/lab/test_ports_lab.py); outside probers
are httpx.MockTransport handlers (echoip and ddnsw forms, garbage, errors,
timeouts), or the project's real probe server on 127.0.0.1 for the end-to-end
loop. No test sends traffic beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket

import httpx
import pytest

from checks.config import Endpoints
from checks.errors import UpnpError, UsageError
from checks.model import LocalInfo, PortMapping, UpnpInfo
from checks.portcheck.listener import open_listener
from checks.portcheck.probers import ProbeAnswer, Prober, ask_prober, ask_probers, parse_prober
from checks.portcheck.run import NetworkFacts, assess_nat, run_port_check
from checks.portcheck.spec import PortSpec, parse_port_spec
from checks.portcheck.verdict import PortEvidence, decide_port
from checks.portmap.ledger import MappingLedger
from checks.portmap.mapper import UpnpMapper
from probeserver.wire import banner_has_nonce

# --------------------------------------------------------------------------- helpers

HOME_LOCAL = LocalInfo(interface="eth0", ipv4="192.168.1.100", gateway_ipv4="192.168.1.1")
HOME_UPNP = UpnpInfo(
    available=True, found=True, location="http://192.168.1.1:5000/rootDesc.xml", wan_ipv4="23.128.64.20"
)
HOME = NetworkFacts(local=HOME_LOCAL, upnp=HOME_UPNP)
NO_UPNP = NetworkFacts(local=HOME_LOCAL, upnp=UpnpInfo(available=False))
CGNAT = NetworkFacts(
    local=HOME_LOCAL, upnp=UpnpInfo(available=False, found=True, location="http://x/", wan_ipv4="100.64.1.20")
)
PUBLIC = NetworkFacts(
    local=LocalInfo(interface="eth0", ipv4="23.128.64.10", gateway_ipv4="23.128.64.1"), upnp=UpnpInfo(available=False)
)


def answer(
    port: int,
    outcome: str,
    *,
    kind: str = "ddnsw",
    banner: str | None = None,
    protocol: str = "tcp",
    result: str | None = None,
    ip: str = "23.128.64.20",
) -> ProbeAnswer:
    default = {"reached": "connected", "not-reached": "timeout", "no-answer": None}[outcome]
    return ProbeAnswer(
        "probe.example",
        kind,
        port,
        protocol,
        outcome,
        result=result or default,  # type: ignore[arg-type]
        banner=banner,
        observed_ip=ip if outcome != "no-answer" else None,
        error="boom" if outcome == "no-answer" else None,
    )


def ev(
    port: int,
    ans: ProbeAnswer | None,
    *,
    nonce: str = "n0nce",
    listener: str = "listening",
    mapping: str = "none",
    protocol: str = "tcp",
    **kw: object,
) -> PortEvidence:
    return PortEvidence(
        port=port,
        protocol=protocol,
        nonce=nonce,
        listener=listener,  # type: ignore[arg-type]
        mapping=mapping,
        answer=ans,
        **kw,
    )  # type: ignore[arg-type]


def verdict(target: PortEvidence, control: PortEvidence | None, facts: NetworkFacts = HOME) -> str:
    nat = assess_nat(facts, "23.128.64.20" if facts is not PUBLIC else "23.128.64.10")
    return decide_port(target, control, nat, local_ip=facts.local.ipv4).verdict


# --------------------------------------------------------------------------- parsing


def test_port_specs() -> None:
    assert parse_port_spec("8080") == PortSpec(8080, "tcp")
    assert parse_port_spec("51820/UDP") == PortSpec(51820, "udp")
    for bad in ("0", "65536", "http", "80/sctp", "-1"):
        with pytest.raises(UsageError):
            parse_port_spec(bad)


def test_prober_forms() -> None:
    own = parse_prober("ddnsw+https://11.1.0.20")
    assert isinstance(own, Prober) and own.kind == "ddnsw" and own.url == "https://11.1.0.20"
    echo = parse_prober("https://ifconfig.co/port/{port}")
    assert isinstance(echo, Prober) and echo.kind == "echoip" and echo.host == "ifconfig.co"
    assert isinstance(parse_prober("https://example.org/check"), str)  # neither form: an error sentence
    assert isinstance(parse_prober("ddnsw+ftp://x"), str)


# --------------------------------------------------------------------------- verdicts on hand-built evidence


def test_open_when_nonce_comes_back() -> None:
    r = decide_port(ev(8080, answer(8080, "reached", banner="DDNSW n0nce\n")), None, assess_nat(HOME, "23.128.64.20"))
    assert r.verdict == "open"
    assert any("reached this very machine" in s for s in r.evidence)


def test_open_through_the_tests_own_mapping_is_open_for_the_test() -> None:
    r = decide_port(
        ev(8080, answer(8080, "reached", banner="DDNSW n0nce"), mapping="created"),
        None,
        assess_nat(HOME, "23.128.64.20"),
        maps="UPnP",
    )
    assert r.verdict == "open" and r.mapping == "temporary"
    assert any(e.startswith("Open for the test") and "closed now" in e for e in r.evidence)
    assert "this tool can keep it" in r.fix and "DHCP reservation" in r.fix
    assert r.next_steps == ("map-port",) and "ddns-wizard" not in r.fix  # the views word the command
    kept = decide_port(
        ev(8080, answer(8080, "reached", banner="DDNSW n0nce"), mapping="created"),
        None,
        assess_nat(HOME, "23.128.64.20"),
        maps="UPnP",
        kept="Kept as a lasting forward: ...",
    )
    assert kept.mapping == "kept" and "Kept as a lasting forward: ..." in kept.evidence
    existing = decide_port(
        ev(8080, answer(8080, "reached", banner="DDNSW n0nce"), mapping="existing"),
        None,
        assess_nat(HOME, "23.128.64.20"),
    )
    assert existing.mapping == "none" and not any("for the test" in e for e in existing.evidence)


def test_open_via_existing_service_says_it_cannot_confirm() -> None:
    r = decide_port(
        ev(22, answer(22, "reached", banner="SSH-2.0-OpenSSH_9.2\r\n"), listener="in-use"),
        None,
        assess_nat(HOME, "23.128.64.20"),
    )
    assert r.verdict == "open" and r.service_was_listening
    assert any("could not confirm it is this machine" in s for s in r.evidence)


def test_open_with_echoip_is_marked_unproven() -> None:
    r = decide_port(
        ev(8080, answer(8080, "reached", kind="echoip", result="reachable")), None, assess_nat(HOME, "23.128.64.20")
    )
    assert r.verdict == "open"
    assert any("cannot prove" in s for s in r.evidence)


def test_other_device_answering_is_not_forwarded_to_us() -> None:
    r = decide_port(
        ev(80, answer(80, "reached", banner="HTTP/1.1 400 Bad Request\r\n")), None, assess_nat(HOME, "23.128.64.20")
    )
    assert r.verdict == "not-forwarded"
    assert any("not this machine" in s for s in r.evidence)


def test_no_router_to_ask_both_dropped_is_blocked_or_not_forwarded_without_upnp_advice() -> None:
    """Issue 11: without UPnP/NAT-PMP/PCP nobody can confirm the forward, so a silent port may be
    unforwarded or blocked upstream: both checks in the fix, and no word of UPnP."""
    target = ev(8080, answer(8080, "not-reached"))
    control = ev(45000, answer(45000, "not-reached"), nonce="c")
    r = decide_port(target, control, assess_nat(NO_UPNP, "23.128.64.20"), local_ip="192.168.1.100")
    assert r.verdict == "blocked-or-not-forwarded"
    assert "192.168.1.100" in r.fix and "Port forwarding" in r.fix  # check 1: the forward
    assert "another external port" in r.fix and "ISP" in r.fix  # check 2: an ISP block
    assert "upnp" not in r.fix.lower()  # no advice to use what is not there
    assert not any("--upnp" in e or "upnp add" in e for e in r.evidence)
    assert any("no UPnP, NAT-PMP or PCP" in e for e in r.evidence)
    assert r.mapping == "none"


def test_a_router_that_can_map_gets_the_upnp_hint_to_tell_them_apart() -> None:
    target = ev(8080, answer(8080, "not-reached"))
    control = ev(45000, answer(45000, "not-reached"), nonce="c")
    r = decide_port(target, control, assess_nat(HOME, "23.128.64.20"), local_ip="192.168.1.100", maps="UPnP")
    assert r.verdict == "blocked-or-not-forwarded"
    assert any("router mapping the port and a control port" in e for e in r.evidence)
    assert r.next_steps == ("map-and-retest", "map-port")
    assert "let this tool make it over UPnP" in r.fix and "--upnp" not in r.fix


def test_natpmp_only_router_is_offered_the_keep_command_not_upnp_add() -> None:
    from checks.portcheck.verdict import forward_fix, keep_action

    fix = forward_fix(8080, "tcp", "192.168.1.100", "NAT-PMP")
    assert "over NAT-PMP" in fix and "upnp add" not in fix
    assert keep_action("NAT-PMP") == "map-and-test" and keep_action("UPnP") == "map-port"
    assert "UPnP" not in forward_fix(8080, "tcp", "192.168.1.100", None)


def test_reset_like_the_unforwarded_control_is_not_forwarded() -> None:
    """The router resets ports it does not forward (the unforwarded control got a reset); this
    port got the same answer: it reached the router and was not passed on."""
    target = ev(8080, answer(8080, "not-reached", result="refused"))
    control = ev(45000, answer(45000, "not-reached", result="refused"), nonce="c")
    r = decide_port(target, control, assess_nat(NO_UPNP, "23.128.64.20"), local_ip="192.168.1.100")
    assert r.verdict == "not-forwarded"
    assert any("reset exactly like the unforwarded control port" in e for e in r.evidence)


def test_dropped_while_the_unforwarded_control_was_reset_is_not_called_not_forwarded() -> None:
    target = ev(80, answer(80, "not-reached", result="timeout"))
    control = ev(45000, answer(45000, "not-reached", result="refused"), nonce="c")
    r = decide_port(target, control, assess_nat(NO_UPNP, "23.128.64.20"), local_ip="192.168.1.100")
    assert r.verdict == "blocked-or-not-forwarded"
    assert any("not treated as an unforwarded port" in e for e in r.evidence)


def test_a_reset_alone_proves_nothing() -> None:
    """Reset on the port, but the control was dropped (or echoip only said false): no pattern."""
    for control_result, kind in (("timeout", "ddnsw"), (None, "echoip")):
        target = ev(8080, answer(8080, "not-reached", result="refused"))
        control = ev(45000, answer(45000, "not-reached", result=control_result, kind=kind), nonce="c")
        r = decide_port(target, control, assess_nat(NO_UPNP, "23.128.64.20"))
        assert r.verdict == "blocked-or-not-forwarded", control_result


def test_a_forward_the_router_confirms_is_never_called_not_forwarded() -> None:
    target = ev(
        8080,
        answer(8080, "not-reached"),
        mapping="existing",
        mapping_detail="The router's UPnP table forwards 8080/TCP to this machine.",
    )
    control = ev(45000, answer(45000, "not-reached"), nonce="c")
    r = decide_port(target, control, assess_nat(HOME, "23.128.64.20"), maps="UPnP")
    assert r.verdict == "blocked-or-not-forwarded"
    assert any("forward is there" in e and "this machine's firewall" in e for e in r.evidence)


def test_upnp_control_passes_target_fails_is_isp_blocked() -> None:
    target = ev(80, answer(80, "not-reached"), mapping="created")
    control = ev(45000, answer(45000, "reached", banner="DDNSW c\n"), nonce="c", mapping="created")
    r = decide_port(target, control, assess_nat(HOME, "23.128.64.20"))
    assert r.verdict == "isp-blocked"
    assert "25, 80, 443 and 445" in r.fix and "tunnel" in r.fix
    assert any("commonly block" in s for s in r.evidence)


def test_unmapped_control_passing_means_everything_forwarded_so_isp_blocked() -> None:
    target = ev(443, answer(443, "not-reached"))
    control = ev(45000, answer(45000, "reached", banner="DDNSW c\n"), nonce="c")
    assert verdict(target, control, PUBLIC) == "isp-blocked"


def test_upnp_both_mapped_both_fail_is_blocked_with_both_explanations() -> None:
    target = ev(8080, answer(8080, "not-reached"), mapping="created")
    control = ev(45000, answer(45000, "not-reached"), nonce="c", mapping="created")
    r = decide_port(target, control, assess_nat(HOME, "23.128.64.20"))
    assert r.verdict == "blocked-or-not-forwarded"
    assert any("router's own firewall" in s and "ISP filters all inbound" in s for s in r.evidence)
    assert r.mapping == "temporary"


def test_mapping_conflict_while_control_passes_is_not_forwarded() -> None:
    target = ev(8080, answer(8080, "not-reached"), mapping="conflict")
    control = ev(45000, answer(45000, "reached", banner="DDNSW c\n"), nonce="c", mapping="created")
    assert verdict(target, control) == "not-forwarded"


def test_cgnat_router_wan_is_upstream_nat() -> None:
    target = ev(8080, answer(8080, "not-reached", ip="23.128.64.200"), mapping="created")
    r = decide_port(target, None, assess_nat(CGNAT, "23.128.64.200"))
    assert r.verdict == "upstream-nat"
    # The NAT's evidence is said once per run by the views (issue 19), not repeated for every port.
    assert not any("100.64.1.20" in s for s in r.evidence) and "carrier-grade NAT" in r.evidence[-1]
    assert "no forwarding at home" in r.fix and "tunnel" in r.fix.lower()


def test_router_claim_contradicted_from_outside_is_upstream_nat_only_when_the_path_says_so() -> None:
    target = ev(8080, answer(8080, "not-reached", ip="23.128.64.99"))
    # The router's word alone (it claims 23.128.64.20, the prober saw .99): not enough.
    assert decide_port(target, None, assess_nat(HOME, "23.128.64.99")).verdict == "blocked-or-not-forwarded"
    # A private router after ours: a second NAT, which forwarding at home cannot pass.
    traced = NetworkFacts(local=HOME_LOCAL, upnp=HOME_UPNP, hops=("192.168.1.1", "192.168.100.1", "23.128.64.1"))
    r = decide_port(target, None, assess_nat(traced, "23.128.64.99"))
    assert r.verdict == "upstream-nat"


def test_open_beats_upstream_facts() -> None:
    # Reaching our nonce is proof; NAT guesses never override it.
    r = decide_port(ev(8080, answer(8080, "reached", banner="DDNSW n0nce")), None, assess_nat(CGNAT, "23.128.64.200"))
    assert r.verdict == "open"


def test_public_host_both_fail_points_at_host_firewall() -> None:
    target = ev(8080, answer(8080, "not-reached", ip="23.128.64.10"))
    control = ev(45000, answer(45000, "not-reached", ip="23.128.64.10"), nonce="c")
    nat = assess_nat(PUBLIC, "23.128.64.10")
    assert nat.verdict == "none"
    r = decide_port(target, control, nat)
    assert r.verdict == "blocked-or-not-forwarded" and "firewall" in r.fix


def test_no_prober_answer_is_unknown() -> None:
    r = decide_port(ev(8080, answer(8080, "no-answer")), None, assess_nat(NO_UPNP, None))
    assert r.verdict == "unknown"
    assert any("No outside prober answered" in s for s in r.evidence)


def test_udp_with_only_echoip_is_unknown_and_says_why() -> None:
    target = ev(
        51820, None, protocol="udp", skipped_reason="only echoip-style probers are configured, and they test TCP only"
    )
    r = decide_port(target, None, assess_nat(NO_UPNP, None))
    assert r.verdict == "unknown"
    assert any("TCP only" in s for s in r.evidence) and "ddnsw+https://" in r.fix


def test_silent_existing_udp_service_is_unknown_not_a_router_problem() -> None:
    target = ev(
        51820, answer(51820, "not-reached", protocol="udp", result="timeout"), protocol="udp", listener="in-use"
    )
    control = ev(45000, answer(45000, "not-reached", protocol="udp", result="timeout"), protocol="udp", nonce="c")
    r = decide_port(target, control, assess_nat(NO_UPNP, "23.128.64.20"))
    assert r.verdict == "unknown" and any("WireGuard" in s for s in r.evidence)


def test_low_port_without_root_is_unknown_and_says_root() -> None:
    target = ev(
        80, None, listener="denied", listener_error="could not listen on port 80: ports 1-1023 need root to listen on"
    )
    r = decide_port(target, None, assess_nat(NO_UPNP, None))
    assert r.verdict == "unknown"
    assert "root" in " ".join(r.evidence) and "sudo" in r.fix


# --------------------------------------------------------------------------- listeners (real sockets)


async def test_tcp_listener_writes_nonce_banner() -> None:
    listener = await open_listener(0, "tcp", host="127.0.0.1", nonce="abc123")
    assert listener.listening
    port = listener._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        banner = (await asyncio.wait_for(reader.readline(), 2)).decode()
        writer.close()
    finally:
        await listener.close()
    assert banner_has_nonce(banner, "abc123")
    assert not banner_has_nonce(banner, "abc12")
    assert listener.hits == ["127.0.0.1"]


async def test_udp_listener_answers_only_probe_datagrams() -> None:
    listener = await open_listener(0, "udp", host="127.0.0.1", nonce="feed")
    port = listener._transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.3)
    try:
        sock.sendto(b"hello", ("127.0.0.1", port))
        with pytest.raises(socket.timeout):
            await asyncio.to_thread(sock.recvfrom, 100)
        sock.sendto(b"DDNSW-PROBE tok\n", ("127.0.0.1", port))
        data, _ = await asyncio.to_thread(sock.recvfrom, 100)
    finally:
        sock.close()
        await listener.close()
    assert banner_has_nonce(data.decode(), "feed")


async def test_listener_on_a_taken_port_reports_in_use() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        listener = await open_listener(holder.getsockname()[1], "tcp", host="127.0.0.1")
        assert listener.state == "in-use" and "already in use" in (listener.error or "")
    finally:
        holder.close()


async def test_permission_denied_says_ports_below_1024_need_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # We run as root here, so the kernel's EACCES is simulated.
    async def refuse(*a: object, **k: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(asyncio, "start_server", refuse)
    listener = await open_listener(80, "tcp")
    assert listener.state == "denied"
    assert "1-1023 need root" in (listener.error or "")


# --------------------------------------------------------------------------- prober responses (MockTransport)


def mock_client(handler) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


DDNSW = Prober("ddnsw", "https://probe.test", "probe.test")
ECHOIP = Prober("echoip", "https://echo.test/port/{port}", "echo.test")


async def test_ddnsw_tcp_answer_parsed_with_banner() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/probe/tcp/8080"
        return httpx.Response(
            200,
            json={
                "ip": "23.128.64.20",
                "port": 8080,
                "protocol": "tcp",
                "result": "connected",
                "banner": "DDNSW x\n",
                "ms": 3.2,
            },
        )

    async with mock_client(handler) as client:
        a = await ask_prober(client, DDNSW, 8080, "tcp", token="t")
    assert (a.outcome, a.banner, a.observed_ip) == ("reached", "DDNSW x\n", "23.128.64.20")


async def test_ddnsw_udp_sends_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/probe/udp/51820" and request.url.params["token"] == "tok"
        return httpx.Response(
            200,
            json={
                "ip": "23.128.64.20",
                "port": 51820,
                "protocol": "udp",
                "result": "timeout",
                "banner": None,
                "ms": 2000,
            },
        )

    async with mock_client(handler) as client:
        a = await ask_prober(client, DDNSW, 51820, "udp", token="tok")
    assert a.outcome == "not-reached"


@pytest.mark.parametrize("reachable,outcome", [(True, "reached"), (False, "not-reached")])
async def test_echoip_answer(reachable: bool, outcome: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/port/443"
        return httpx.Response(200, json={"ip": "23.128.64.20", "port": 443, "reachable": reachable})

    async with mock_client(handler) as client:
        a = await ask_prober(client, ECHOIP, 443, "tcp", token="t")
    assert a.outcome == outcome and a.observed_ip == "23.128.64.20"


@pytest.mark.parametrize(
    "status,body,needle",
    [
        (200, b"<html>hello</html>", "not JSON"),
        (200, json.dumps({"ip": "1.2.3.4", "port": 443}).encode(), "reachable"),
        (200, json.dumps({"ip": "1.2.3.4", "port": 444, "reachable": True}).encode(), "port 444"),
        (200, json.dumps([1, 2]).encode(), "unexpected JSON"),
        (400, json.dumps({"status": 400, "error": "bad port"}).encode(), "HTTP 400: bad port"),
        (503, b"overloaded", "HTTP 503"),
    ],
)
async def test_echoip_garbage_and_errors_are_no_answer(status: int, body: bytes, needle: str) -> None:
    async with mock_client(lambda r: httpx.Response(status, content=body)) as client:
        a = await ask_prober(client, ECHOIP, 443, "tcp", token="t")
    assert a.outcome == "no-answer" and needle in (a.error or "")


async def test_ddnsw_unknown_result_is_no_answer() -> None:
    body = {"ip": "1.2.3.4", "port": 80, "protocol": "tcp", "result": "maybe"}
    async with mock_client(lambda r: httpx.Response(200, json=body)) as client:
        a = await ask_prober(client, DDNSW, 80, "tcp", token="t")
    assert a.outcome == "no-answer" and "maybe" in (a.error or "")


async def test_prober_timeout_and_network_error_are_no_answer() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with mock_client(slow) as client:
        a = await ask_prober(client, DDNSW, 80, "tcp", token="t", timeout_s=0.5)
    assert a.outcome == "no-answer" and "did not answer" in (a.error or "")
    async with mock_client(down) as client:
        a = await ask_prober(client, DDNSW, 80, "tcp", token="t")
    assert a.outcome == "no-answer" and "could not reach" in (a.error or "")


async def test_hanging_prober_is_cut_at_the_deadline() -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    async with mock_client(hang) as client:
        a = await ask_prober(client, DDNSW, 80, "tcp", token="t", timeout_s=0.2)
    assert a.outcome == "no-answer"


async def test_a_429_is_never_retried_inside_the_window() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "30"}, json={"status": 429, "error": "slow down"})
        return httpx.Response(200, json={"ip": "1.2.3.4", "port": 80, "reachable": True})

    async with mock_client(handler) as client:
        a = await ask_prober(client, ECHOIP, 80, "tcp", token="t")
    assert (a.outcome, a.code, a.retry_after_s, len(calls)) == ("no-answer", "rate-limited", 30.0, 1)


async def test_falls_back_to_next_prober_and_skips_echoip_for_udp() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "probe.test":
            return httpx.Response(502)
        return httpx.Response(200, json={"ip": "1.2.3.4", "port": 80, "reachable": False})

    async with mock_client(handler) as client:
        a = await ask_probers(client, [DDNSW, ECHOIP], 80, "tcp", token="t")
        assert a is not None and a.prober == "echo.test" and a.outcome == "not-reached"
        assert await ask_probers(client, [ECHOIP], 51820, "udp", token="t") is None


# --------------------------------------------------------------------------- the run: cleanup


class FakeIgd:
    """Records every add/delete; ``existing`` pre-populates the router's table."""

    lan_address = "127.0.0.1"
    location = "http://fake/rootDesc.xml"

    def __init__(self, existing: dict[tuple[int, str], PortMapping] | None = None, fail_delete: bool = False) -> None:
        self.table: dict[tuple[int, str], PortMapping] = dict(existing or {})
        self.added: list[tuple[int, str]] = []
        self.deleted: list[tuple[int, str]] = []
        self.fail_delete = fail_delete

    async def get_mapping(self, port: int, proto: str) -> PortMapping | None:
        return self.table.get((port, proto.upper()))

    async def add_mapping(self, port: int, proto: str, host: str, iport: int, desc: str, lease: int = 0) -> None:
        if (port, proto) in self.table:
            raise UpnpError("conflict", code=718)
        self.table[(port, proto)] = PortMapping(port, proto, host, iport, desc, lease)  # type: ignore[arg-type]
        self.added.append((port, proto))

    async def delete_mapping(self, port: int, proto: str) -> bool:
        if self.fail_delete:
            raise UpnpError("Action not authorized", code=606)
        self.deleted.append((port, proto))
        return self.table.pop((port, proto), None) is not None


def opener_for(igd: FakeIgd):  # type: ignore[no-untyped-def]
    async def opener(facts: NetworkFacts):  # type: ignore[no-untyped-def]
        return UpnpMapper(igd), "fake IGD"

    return opener


LOOP_FACTS = NetworkFacts(
    local=LocalInfo(interface="lo", ipv4="127.0.0.1", gateway_ipv4=None), upnp=UpnpInfo(available=False), hops=()
)
ENDPOINTS = Endpoints(port_check=("ddnsw+https://probe.test",))


def free_port() -> int:
    from tests.samples import unused_port

    return unused_port(socket.AF_INET)


SEEN = "23.128.64.20"  # what a prober outside reports as our address (it dials 127.0.0.1 here)


async def dial_back(request: httpx.Request) -> httpx.Response:
    """A MockTransport stand-in for the probe server: really connects to 127.0.0.1:N."""
    port = int(request.url.path.rsplit("/", 1)[1])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return httpx.Response(
            200, json={"ip": SEEN, "port": port, "protocol": "tcp", "result": "refused", "banner": None, "ms": 1}
        )
    banner = (await asyncio.wait_for(reader.readline(), 2)).decode()
    writer.close()
    return httpx.Response(
        200, json={"ip": SEEN, "port": port, "protocol": "tcp", "result": "connected", "banner": banner, "ms": 1}
    )


async def test_upnp_run_maps_probes_and_removes_everything() -> None:
    igd = FakeIgd()
    port = free_port()
    async with mock_client(dial_back) as client:
        report = await run_port_check(
            [PortSpec(port)],
            endpoints=ENDPOINTS,
            client=client,
            use_upnp=True,
            facts=LOOP_FACTS,
            mapper_opener=opener_for(igd),
            listen_host="127.0.0.1",
        )
    assert report.results[0].verdict == "open" and report.results[0].upnp_mapped
    assert len(igd.added) == 2  # the port and the control port
    assert sorted(igd.deleted) == sorted(igd.added)
    assert igd.table == {} and report.leftovers == ()


async def test_mappings_removed_when_the_prober_blows_up() -> None:
    igd = FakeIgd()

    def explode(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("bug in the middle of the test")

    async with mock_client(explode) as client:
        with pytest.raises(RuntimeError):
            await run_port_check(
                [PortSpec(free_port())],
                endpoints=ENDPOINTS,
                client=client,
                use_upnp=True,
                facts=LOOP_FACTS,
                mapper_opener=opener_for(igd),
                listen_host="127.0.0.1",
            )
    assert igd.added and sorted(igd.deleted) == sorted(igd.added) and igd.table == {}


async def test_mappings_removed_on_cancellation_even_with_a_second_cancel() -> None:
    igd = FakeIgd()
    probing = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        probing.set()
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    slow_deletes: list[int] = []
    real_delete = igd.delete_mapping

    async def slow_delete(port: int, proto: str) -> bool:
        await asyncio.sleep(0.05)  # gives the second cancel a chance to land mid-cleanup
        slow_deletes.append(port)
        return await real_delete(port, proto)

    igd.delete_mapping = slow_delete  # type: ignore[method-assign]
    async with mock_client(hang) as client:
        task = asyncio.create_task(
            run_port_check(
                [PortSpec(free_port()), PortSpec(free_port())],
                endpoints=ENDPOINTS,
                client=client,
                use_upnp=True,
                facts=LOOP_FACTS,
                mapper_opener=opener_for(igd),
                listen_host="127.0.0.1",
            )
        )
        await asyncio.wait_for(probing.wait(), 5)
        task.cancel()  # Ctrl-C
        await asyncio.sleep(0.01)
        task.cancel()  # impatient second Ctrl-C during cleanup
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(igd.added) == 3 and sorted(igd.deleted) == sorted(igd.added) and igd.table == {}


async def test_failed_removal_is_reported_with_the_mapping() -> None:
    igd = FakeIgd(fail_delete=True)
    ledger = MappingLedger()
    async with mock_client(dial_back) as client:
        report = await run_port_check(
            [PortSpec(free_port())],
            endpoints=ENDPOINTS,
            client=client,
            use_upnp=True,
            ledger=ledger,
            facts=LOOP_FACTS,
            mapper_opener=opener_for(igd),
            listen_host="127.0.0.1",
        )
    assert len(report.leftovers) == 2
    described, error = report.leftovers[0]
    assert "UPnP mapping" in described and "→ 127.0.0.1:" in described and "606" in error


async def test_existing_mapping_to_us_is_used_and_kept_and_foreign_one_untouched() -> None:
    mine, theirs = free_port(), free_port()
    igd = FakeIgd(
        existing={
            (mine, "TCP"): PortMapping(mine, "TCP", "127.0.0.1", mine, "my server"),
            (theirs, "TCP"): PortMapping(theirs, "TCP", "192.168.1.50", theirs, "camera"),
        }
    )
    async with mock_client(dial_back) as client:
        report = await run_port_check(
            [PortSpec(mine), PortSpec(theirs)],
            endpoints=ENDPOINTS,
            client=client,
            use_upnp=True,
            facts=LOOP_FACTS,
            mapper_opener=opener_for(igd),
            listen_host="127.0.0.1",
        )
    assert (mine, "TCP") in igd.table and (theirs, "TCP") in igd.table  # neither removed
    assert (mine, "TCP") not in igd.deleted and (theirs, "TCP") not in igd.deleted
    by_port = {r.port: r for r in report.results}
    assert any("left as is" in s for s in by_port[mine].evidence)
    assert any("192.168.1.50" in s and "left that mapping alone" in s for s in by_port[theirs].evidence)


async def test_keep_leaves_the_tested_ports_mapping_as_a_lasting_forward() -> None:
    """--keep: the port's own mapping stays (permanent lease, the lasting description), the
    control port's is removed, and the result says how to remove it later."""
    igd = FakeIgd()
    port = free_port()
    async with mock_client(dial_back) as client:
        report = await run_port_check(
            [PortSpec(port)],
            endpoints=ENDPOINTS,
            client=client,
            use_upnp=True,
            facts=LOOP_FACTS,
            mapper_opener=opener_for(igd),
            listen_host="127.0.0.1",
            keep=True,
        )
    (r,) = report.results
    assert r.verdict == "open" and r.mapping == "kept"
    assert list(igd.table) == [(port, "TCP")]  # only the kept one is left
    kept = igd.table[(port, "TCP")]
    assert kept.lease_s == 0 and kept.description == "ddns-wizard"
    assert any("Remove it when you no longer need it" in e and "DHCP reservation" in e for e in r.evidence)
    assert r.next_steps == ("remove-mapping",)  # the CLI: `ddns-wizard upnp remove PORT`
    assert len(igd.deleted) == 1 and report.leftovers == ()


async def test_keep_falls_back_to_the_longest_lease_where_permanent_is_refused() -> None:
    igd = FakeIgd()
    real_add = igd.add_mapping

    async def no_permanent(port: int, proto: str, host: str, iport: int, desc: str, lease: int = 0) -> None:
        if lease == 0:
            raise UpnpError("Invalid Args", code=402)
        await real_add(port, proto, host, iport, desc, lease)

    igd.add_mapping = no_permanent  # type: ignore[method-assign]
    port = free_port()
    async with mock_client(dial_back) as client:
        report = await run_port_check(
            [PortSpec(port)],
            endpoints=ENDPOINTS,
            client=client,
            use_upnp=True,
            facts=LOOP_FACTS,
            mapper_opener=opener_for(igd),
            listen_host="127.0.0.1",
            keep=True,
        )
    assert report.results[0].mapping == "kept"
    assert igd.table[(port, "TCP")].lease_s == 7 * 86400
    assert any("7 days" in e for e in report.results[0].evidence)


async def test_keep_removes_everything_when_the_test_is_cancelled() -> None:
    igd = FakeIgd()
    probing = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        probing.set()
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    async with mock_client(hang) as client:
        task = asyncio.create_task(
            run_port_check(
                [PortSpec(free_port())],
                endpoints=ENDPOINTS,
                client=client,
                use_upnp=True,
                keep=True,
                facts=LOOP_FACTS,
                mapper_opener=opener_for(igd),
                listen_host="127.0.0.1",
            )
        )
        await asyncio.wait_for(probing.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert igd.added and igd.table == {}


async def test_without_upnp_a_forward_in_the_routers_table_is_read_not_touched() -> None:
    """Without --upnp the router's UPnP table is only read: a forward it lists counts as the
    router confirming it (so an unreached port is not called "not forwarded")."""
    port = free_port()
    igd = FakeIgd(existing={(port, "TCP"): PortMapping(port, "TCP", "127.0.0.1", port, "my server")})
    facts = NetworkFacts(
        local=LOOP_FACTS.local,
        upnp=UpnpInfo(available=True, found=True, location="http://fake/", wan_ipv4="23.128.64.20"),
        hops=(),
    )

    async def nobody_gets_in(request: httpx.Request) -> httpx.Response:
        n = int(request.url.path.rsplit("/", 1)[1])
        return httpx.Response(
            200, json={"ip": "23.128.64.20", "port": n, "protocol": "tcp", "result": "timeout", "banner": None, "ms": 1}
        )

    async with mock_client(nobody_gets_in) as client:
        report = await run_port_check(
            [PortSpec(port)],
            endpoints=ENDPOINTS,
            client=client,
            facts=facts,
            mapper_opener=opener_for(igd),
            listen_host="127.0.0.1",
        )
    (r,) = report.results
    assert r.verdict == "blocked-or-not-forwarded" and r.mapping == "none"
    assert any("UPnP table forwards" in e for e in r.evidence)
    assert igd.added == [] and igd.deleted == [] and (port, "TCP") in igd.table


async def test_end_to_end_with_the_real_probe_server_on_loopback() -> None:
    """The project's probe server (over plain HTTP on 127.0.0.1) dials back to our listeners:
    TCP and UDP both come back with the nonce."""
    from probeserver import server as probe_server

    server = await probe_server.start([("127.0.0.1", 0)])
    host, http_port = server.tcp_addresses[0]
    try:
        endpoints = Endpoints(port_check=(f"ddnsw+http://{host}:{http_port}",))
        tcp_port, udp_port = free_port(), free_port()
        inner = httpx.AsyncHTTPTransport()

        async def as_seen_from_outside(request: httpx.Request) -> httpx.Response:
            # On loopback the server dials (and names) 127.0.0.1, which the client rightly
            # refuses as a public address (next test); outside it names the NAT's address.
            response = await inner.handle_async_request(request)
            data = json.loads(await response.aread())
            return httpx.Response(response.status_code, json=dict(data, ip=SEEN))

        async with httpx.AsyncClient(transport=httpx.MockTransport(as_seen_from_outside)) as client:
            report = await run_port_check(
                [PortSpec(tcp_port), PortSpec(udp_port, "udp")],
                endpoints=endpoints,
                client=client,
                facts=LOOP_FACTS,
                listen_host="127.0.0.1",
            )
        await inner.aclose()
        async with httpx.AsyncClient() as client:
            loopback = await run_port_check(
                [PortSpec(free_port())], endpoints=endpoints, client=client, facts=LOOP_FACTS, listen_host="127.0.0.1"
            )
    finally:
        await server.stop()
    verdicts = {(r.port, r.protocol): r.verdict for r in report.results}
    assert verdicts == {(tcp_port, "tcp"): "open", (udp_port, "udp"): "open"}
    assert all(any("reached this very machine" in s for s in r.evidence) for r in report.results)
    # A prober that dialled a loopback (or private) address tested this host or LAN, not the
    # way in from the internet: its answer counts for nothing.
    (result,) = loopback.results
    assert result.verdict == "unknown" and result.reason == "no-prober-answered", result
    assert any("tested 127.0.0.1, not this line's public IPv4 address" in e for e in result.evidence)


async def test_mapping_being_added_when_cancelled_is_removed_too() -> None:
    """Ctrl-C while the router is still adding a mapping: miniupnpc keeps working in its thread,
    modelled here by a shielded add that completes after the cancel (calls serialised like IgdClient's)."""
    igd = FakeIgd()
    lock = asyncio.Lock()
    adding = asyncio.Event()
    real_add, real_delete = igd.add_mapping, igd.delete_mapping

    async def slow_add(*args: object) -> None:
        async def work() -> None:
            async with lock:
                adding.set()
                await asyncio.sleep(0.1)
                await real_add(*args)  # type: ignore[arg-type]

        await asyncio.shield(asyncio.ensure_future(work()))

    async def serial_delete(port: int, proto: str) -> bool:
        async with lock:
            return await real_delete(port, proto)

    igd.add_mapping = slow_add  # type: ignore[method-assign]
    igd.delete_mapping = serial_delete  # type: ignore[method-assign]
    async with mock_client(dial_back) as client:
        task = asyncio.create_task(
            run_port_check(
                [PortSpec(free_port())],
                endpoints=ENDPOINTS,
                client=client,
                use_upnp=True,
                facts=LOOP_FACTS,
                mapper_opener=opener_for(igd),
                listen_host="127.0.0.1",
            )
        )
        await asyncio.wait_for(adding.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert igd.added and igd.table == {}


# --------------------------------------------------------------------------- the command


@pytest.fixture
def cli_lab(monkeypatch: pytest.MonkeyPatch, tmp_path):  # type: ignore[no-untyped-def]
    """`ports check` through wizard.cli.main with the facts, the IGD and the prober faked
    (nothing leaves 127.0.0.1): returns (fake IGD, config path)."""
    import checks.http
    import checks.portcheck.run

    igd = FakeIgd()

    async def facts() -> NetworkFacts:
        return LOOP_FACTS

    monkeypatch.setattr(checks.portcheck.run, "gather_facts", facts)
    monkeypatch.setattr(checks.portcheck.run, "open_mapper", opener_for(igd))
    monkeypatch.setattr(checks.http, "make_client", lambda **kw: mock_client(dial_back))
    cfg = tmp_path / "config.toml"
    cfg.write_text('[endpoints]\nport_check = ["ddnsw+https://probe.test"]\n')
    return igd, cfg


def test_cli_check_json(cli_lab, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from wizard.cli import main

    igd, cfg = cli_lab
    port = free_port()
    assert main(["--config", str(cfg), "ports", "check", str(port), "--upnp", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(d["port"], d["protocol"], d["verdict"]) for d in data] == [(port, "tcp", "open")]
    assert isinstance(data[0]["evidence"], list) and data[0]["evidence"]
    assert igd.table == {}


def test_cli_reports_a_mapping_it_could_not_remove_loudly(cli_lab, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from wizard.cli import main

    igd, cfg = cli_lab
    igd.fail_delete = True
    port = free_port()
    assert main(["--config", str(cfg), "ports", "check", str(port), "--upnp", "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]["verdict"] == "open"  # stdout stays pure JSON
    assert "could not remove" in captured.err and f"ddns-wizard upnp remove {port}/tcp" in captured.err


def test_cli_without_prober_is_a_usage_error(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from wizard.cli import main

    cfg = tmp_path / "config.toml"
    cfg.write_text("[endpoints]\nport_check = []\n")
    assert main(["--config", str(cfg), "ports", "check", "8080"]) == 2
    assert "port_check is empty" in capsys.readouterr().err


def test_leases_read_as_people_say_them() -> None:
    """Routers report what is left of a lease: 604799 s is still "7 days" to a person."""
    from checks.portcheck.run import _lease_words

    assert [_lease_words(s) for s in (0, 604800, 604799, 86400, 7190, 300)] == [
        "permanent",
        "7 days",
        "7 days",
        "1 day",
        "2 hours",
        "300 s",
    ]
