"""checks/reach.py: verdict order, hairpin, findings, the prober's answers; probeserver/reach.py.

The probe-server endpoint tests run the real endpoint logic against real loopback
services (TCP and TLS with trustme certificates); only the name lookup is a stub
(there is no DNS zone on loopback), which is what the "not your address" rule is about.
The end-to-end runs with a real DNS server and routers are in tests/lab/test_reach_lab.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl

import pytest
import trustme

from checks.portcheck.probers import Prober
from checks.probes.tlsprobe import TlsFacts
from checks.reach import (
    OutsideAnswer,
    ReachPort,
    build_findings,
    judge_hairpin,
    parse_reach_port,
    parse_reach_response,
    result_json,
    verdict_of,
)
from probeserver.reach import check_name, reach_answer

NAME = "myhome.example.org"
PROBER = Prober("ddnsw", "https://probe.example.net", "probe.example.net")


def tls(ok: bool = True, error: str | None = None, fp: str = "aa", days: int = 60) -> TlsFacts:
    return TlsFacts(
        ok=ok,
        server_name=NAME,
        names=(NAME,),
        issuer="Lab CA",
        not_after="2030-01-01T00:00:00Z",
        days_left=days,
        error=error,
        fingerprint=fp,
    )  # type: ignore[arg-type]


def port(
    outside: str = "open", inside: str = "closed", hairpin: str = "broken", t: TlsFacts | None = None, **kw: object
) -> ReachPort:
    return ReachPort(443, "tcp", 4, "203.0.113.7", outside, inside, hairpin, t, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- verdict


def test_verdict_order_name_first_then_port_then_reachable() -> None:
    closed = port("closed", hairpin="unknown")
    assert verdict_of(False, [closed]) == "wrong-address"  # the name first, whatever the port says
    assert verdict_of(True, [closed, port()]) == "unreachable"  # one port closed is enough
    assert verdict_of(True, [port(t=tls(ok=False, error="expired"))]) == "reachable"  # TLS is a finding
    assert verdict_of(True, [port("unknown")]) == "unknown"
    assert verdict_of(None, [port()]) == "unknown"
    # IPv4 opened, IPv6 untested (no IPv6 prober): reachable, the gap is a finding.
    v6 = ReachPort(443, "tcp", 6, "2001:db8::7", "unknown", "unknown", "unknown", None)
    assert verdict_of(True, [port(), v6]) == "reachable"
    other = ReachPort(8443, "tcp", 4, "203.0.113.7", "unknown", "unknown", "unknown", None)
    assert verdict_of(True, [port(), other]) == "unknown"  # a port nobody tested is not reachable


def test_findings_are_in_fix_first_order() -> None:
    bad_tls = port(t=tls(ok=False, error="expired"), evidence=("Inside: refused.",))
    closed = port("filtered", hairpin="unknown", evidence=("x",), fix="forward it")
    ids = [
        f.id for f in build_findings(NAME, True, "ok", "", ["203.0.113.7"], ["203.0.113.7"], [bad_tls, closed], "probe")
    ]
    assert ids.index("reach-port-unreachable") < ids.index("tls-expired") < ids.index("hairpin-broken")
    wrong = build_findings(NAME, False, "wrong-ip", "stale", ["198.51.100.1"], ["203.0.113.7"], [port("unknown")], None)
    assert wrong[0].id == "reach-wrong-address" and "198.51.100.1" in wrong[0].detail


def test_expiring_certificate_is_a_warning_and_reachable_stays() -> None:
    found = build_findings(
        NAME,
        True,
        "ok",
        "",
        ["203.0.113.7"],
        ["203.0.113.7"],
        [port(inside="open", hairpin="works", t=tls(days=9))],
        "probe",
    )
    ids = {f.id: f for f in found}
    assert ids["tls-expiring"].severity == "warning" and "9 days" in ids["tls-expiring"].title
    assert "reachable" in ids


@pytest.mark.parametrize(
    "error,fix_word",
    [
        ("expired", "Renew"),
        ("wrong-name", NAME),
        ("self-signed", "Let's Encrypt"),
        ("incomplete-chain", "fullchain.pem"),
    ],
)
def test_each_tls_reason_has_its_own_finding_and_fix(error: str, fix_word: str) -> None:
    found = build_findings(
        NAME, True, "ok", "", ["203.0.113.7"], ["203.0.113.7"], [port(t=tls(ok=False, error=error))], "probe"
    )
    f = next(f for f in found if f.id == f"tls-{error}")
    assert f.severity == "error" and fix_word in f.fix
    assert not any(x.id == "reachable" for x in found)


def test_no_prober_says_how_to_get_one() -> None:
    p = port("unknown", hairpin="unknown", outside_detail=OutsideAnswer("unknown", code="no-prober"))
    found = build_findings(NAME, True, "ok", "", ["203.0.113.7"], ["203.0.113.7"], [p], None)
    f = next(f for f in found if f.id == "reach-needs-prober")
    assert "ddnsw+https://" in f.fix and f.actions == ("probe-server",)
    from wizard.words import action_commands

    assert action_commands(f.actions) == ["ddns-wizard probe-server --listen 0.0.0.0:443 --tls-cert CERT --tls-key KEY"]


def test_a_wrong_address_is_worded_as_a_command_on_the_cli_and_as_a_step_in_the_wizard() -> None:
    """The engine gives the next step as a code; the command line names the command, the
    wizard its own step (the fix once said `ddns-wizard update` on the wizard's Done step)."""
    from checks.reach import ReachResult
    from wizard.commands.reach import summary_lines
    from wizard.tui.words import action_hints

    found = build_findings(NAME, False, "wrong-ip", "", ["198.51.100.9"], ["203.0.113.7"], [], None)
    f = next(f for f in found if f.id == "reach-wrong-address")
    assert f.actions == ("update",) and "ddns-wizard" not in f.fix
    result = ReachResult(
        NAME, ("198.51.100.9",), False, "203.0.113.7", None, "wrong-ip", "", "wrong-address", (), tuple(found)
    )
    cli = " ".join(text for _, text in summary_lines(result))
    tui = " ".join(text for _, text in summary_lines(result, action_hints))
    assert "ddns-wizard update" in cli and "ddns-wizard update" not in tui
    assert "Hostname & update step" in tui


def test_a_rate_limited_prober_is_named_as_the_reason() -> None:
    """Right after a port check the public echoip-style prober (one request a minute) is not
    asked again: the finding says so and when to retry, not "check your connection"."""
    why = "ifconfig.co was not asked: one request a minute, next in 48 s"
    p = port(
        "unknown",
        hairpin="unknown",
        outside_detail=OutsideAnswer("unknown", "ifconfig.co", code="rate-limited", error=why),
    )
    found = build_findings(NAME, True, "ok", "", ["203.0.113.7"], ["203.0.113.7"], [p], None)
    f = next(f for f in found if f.id == "reach-outside-unknown")
    assert "rate limit" in f.title and f.detail == why
    assert "again in a minute" in f.fix and "connection" not in f.fix


# --------------------------------------------------------------------------- hairpin


def test_hairpin_from_the_two_views() -> None:
    assert judge_hairpin("open", "closed", None, None)[0] == "broken"
    assert judge_hairpin("open", "filtered", None, None)[0] == "broken"
    assert judge_hairpin("open", "open", tls(fp="aa"), tls(fp="aa"))[0] == "works"
    # Inside reaches the router's own admin page: another certificate.
    state, why = judge_hairpin("open", "open", tls(fp="aa"), tls(fp="bb"))
    assert state == "broken" and "admin page" in (why or "")
    assert judge_hairpin("closed", "open", None, None)[0] == "unknown"


# --------------------------------------------------------------------------- prober answers


def test_parse_reach_response() -> None:
    ok = json.dumps(
        {
            "ip": "203.0.113.7",
            "port": 443,
            "result": "connected",
            "tls": {
                "ok": True,
                "names": [NAME],
                "issuer": "R11",
                "not_after": "2030-01-01T00:00:00Z",
                "days_left": 80,
                "error": None,
            },
        }
    ).encode()
    a = parse_reach_response(PROBER, NAME, 200, ok, family=4)
    assert a.state == "open" and a.tls is not None and a.tls.ok and a.tls.issuer == "R11"
    refused = parse_reach_response(PROBER, NAME, 200, b'{"result": "refused", "tls": null}', family=4)
    assert refused.state == "closed" and refused.tls is None
    assert parse_reach_response(PROBER, NAME, 200, b'{"result": "timeout"}', family=4).state == "filtered"
    other = parse_reach_response(
        PROBER,
        NAME,
        403,
        json.dumps({"code": "not-your-address", "addresses": ["198.51.100.1"], "error": "no"}).encode(),
        family=4,
    )
    assert other.state == "unknown" and other.code == "not-your-address" and other.prober_addresses == ("198.51.100.1",)
    assert parse_reach_response(PROBER, NAME, 404, b'{"error": "not found"}', family=4).code == "prober-failed"
    assert parse_reach_response(PROBER, NAME, 200, b"<html>", family=4).code == "prober-failed"
    assert parse_reach_response(PROBER, NAME, 429, b"{}", family=4).code == "rate-limited"


def test_parse_reach_port() -> None:
    assert parse_reach_port("443").tls and parse_reach_port("443/tcp").tls
    assert not parse_reach_port("22").tls and parse_reach_port("8080/tls").tls
    assert not parse_reach_port("443/plain").tls
    for bad in ("0", "65536", "x", "53/udp", "٤٤٣"):
        with pytest.raises(ValueError):
            parse_reach_port(bad)


def test_result_json_has_the_contract_keys() -> None:
    from checks.reach import ReachResult

    r = ReachResult(
        NAME,
        ("203.0.113.7",),
        True,
        "203.0.113.7",
        None,
        "ok",
        "",
        "reachable",
        (port(inside="open", hairpin="works", t=tls()),),
        (),
    )
    data = result_json(r)
    assert {"hostname", "addresses", "points_here", "verdict", "ports", "findings"} <= set(data)
    p = data["ports"][0]
    assert {"port", "protocol", "outside", "inside", "hairpin", "tls"} <= set(p)
    assert {"ok", "names", "issuer", "not_after", "days_left", "error"} <= set(p["tls"])
    from pathlib import Path

    import jsonschema

    schema = json.loads((Path(__file__).resolve().parents[1] / "checks/schema/reach-1.schema.json").read_text())
    jsonschema.validate(data, schema)


# --------------------------------------------------------------------------- the probe server's endpoint


async def _dial(ip: str, port_: int) -> dict:
    try:
        _r, w = await asyncio.wait_for(asyncio.open_connection(ip, port_), 2)
    except ConnectionRefusedError:
        return {"result": "refused", "banner": None, "ms": 1.0}
    w.close()
    return {"result": "connected", "banner": None, "ms": 1.0}


async def _resolves_to(*addresses: str):  # type: ignore[no-untyped-def]
    async def resolve(name: str) -> list[str]:
        return list(addresses)

    return resolve


async def test_endpoint_refuses_a_name_that_does_not_resolve_to_the_requester() -> None:
    dialed: list[tuple[str, int]] = []

    async def dial(ip: str, p: int) -> dict:
        dialed.append((ip, p))
        return {"result": "connected", "ms": 1.0}

    status, body = await reach_answer(
        "203.0.113.7", 443, NAME, "1", dial=dial, resolve=await _resolves_to("198.51.100.1")
    )
    assert status == 403 and body["code"] == "not-your-address" and body["addresses"] == ["198.51.100.1"]
    status, body = await reach_answer("203.0.113.7", 443, NAME, "1", dial=dial, resolve=await _resolves_to())
    assert status == 403
    assert dialed == []  # nothing was ever dialled


async def test_endpoint_refuses_addresses_and_bad_names() -> None:
    async def dial(ip: str, p: int) -> dict:  # pragma: no cover - must not be called
        raise AssertionError("dialled")

    for raw in ("203.0.113.7", "", "a..b", "x" * 300, "ex ample.org"):
        status, _ = await reach_answer(
            "203.0.113.7", 443, raw, "1", dial=dial, resolve=await _resolves_to("203.0.113.7")
        )
        assert status == 400, raw
    assert check_name("MyHome.Example.ORG") == "myhome.example.org"
    status, _ = await reach_answer("203.0.113.7", 443, NAME, "yes", dial=dial, resolve=await _resolves_to())
    assert status == 400


async def test_endpoint_dials_only_the_requester_and_reports_tls() -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert(NAME, not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=30))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(server_ctx)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(1)
        except (OSError, ssl.SSLError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    p = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    dialed: list[str] = []

    async def dial(ip: str, port_: int) -> dict:
        dialed.append(ip)
        return await _dial(ip, port_)

    try:
        status, body = await reach_answer(
            "127.0.0.1",
            p,
            NAME,
            "1",
            dial=dial,
            resolve=await _resolves_to("127.0.0.2", "127.0.0.1"),
            context=client_ctx,
        )
    finally:
        server.close()
    assert status == 200, body
    assert dialed == ["127.0.0.1"]  # never the name's other address
    assert body["result"] == "connected" and body["name"] == NAME
    assert body["tls"]["ok"] is True and body["tls"]["names"] == [NAME] and body["tls"]["days_left"] in (29, 30)


async def test_endpoint_reports_a_closed_port_without_tls() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    status, body = await reach_answer("127.0.0.1", p, NAME, "1", dial=_dial, resolve=await _resolves_to("127.0.0.1"))
    assert status == 200 and body["result"] == "refused" and body["tls"] is None


async def test_endpoint_passes_a_busy_slot_through() -> None:
    async def in_slot(work):  # type: ignore[no-untyped-def]
        return "429-response"

    status, body = await reach_answer(
        "127.0.0.1", 443, NAME, "0", dial=_dial, resolve=await _resolves_to("127.0.0.1"), in_slot=in_slot
    )
    assert status == -1 and body["response"] == "429-response"


def test_report_carries_the_reach_result_redacted() -> None:
    """The exported report (JSON, Markdown, HTML) holds the Verify step's reach result."""
    from dataclasses import replace as dc_replace

    from checks.reach import ReachResult
    from tests.samples import home_diagnosis
    from wizard.report import render_report, report_data

    r = ReachResult(
        NAME,
        ("203.0.113.7",),
        True,
        "203.0.113.7",
        None,
        "ok",
        "",
        "reachable",
        (port(inside="closed", hairpin="broken", t=tls(days=9)),),
        build_findings(NAME, True, "ok", "", ["203.0.113.7"], ["203.0.113.7"], [port(t=tls(days=9))], "probe"),
    )
    d = dc_replace(home_diagnosis(), extra={"reach": [result_json(r)]})
    data = report_data(d)
    assert data["reach"][0]["verdict"] == "reachable" and "reach" not in data["environment"]
    md = render_report(d, "md")
    assert "Reachable from outside" in md and "renew soon" in md
    assert "Reachable from outside" in render_report(d, "html")
    # A real public address is redacted like every other address of the report.
    public = ReachResult(
        NAME,
        ("23.128.64.20",),
        True,
        "23.128.64.20",
        None,
        "ok",
        "",
        "reachable",
        (ReachPort(443, "tcp", 4, "23.128.64.20", "open", "open", "works", tls()),),
        (),
    )
    d2 = dc_replace(home_diagnosis(), extra={"reach": [result_json(public)]})
    redacted = report_data(d2, redact=True)["reach"][0]
    assert redacted["verdict"] == "reachable"
    assert "23.128.64.20" not in json.dumps(redacted)


@pytest.mark.parametrize(
    "argv,words",
    [
        (["reach"], "no hostname given"),
        (["reach", "bad..name"], "not a valid host name"),
        (["reach", NAME, "70000"], "not a port"),
        (["reach", NAME, "53/udp"], "ports check 53/udp"),
        (["reach", NAME] + [str(p) for p in range(1000, 1009)], "at most 8 ports"),
    ],
)
def test_cli_usage_errors_exit_2_without_touching_the_network(tmp_path, capsys, argv, words) -> None:  # type: ignore[no-untyped-def]
    from wizard.cli import main

    config = tmp_path / "c.toml"
    config.write_text("")
    assert main(["--config", str(config), *argv]) == 2
    assert words in capsys.readouterr().err


def test_watch_reach_config_error_exits_2(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from wizard.cli import main

    config = tmp_path / "c.toml"
    config.write_text(
        '[[hosts]]\nhostname = "myhome.duckdns.org"\nprovider = "duckdns"\n'
        'token = "a1b2c3d4-1234-5678-9abc-def012345678"\n[watch]\nreach = "443"\n'
    )
    config.chmod(0o600)
    assert main(["--config", str(config), "watch", "--history", str(tmp_path / "h.jsonl")]) == 2
    assert "[watch] reach" in capsys.readouterr().err


# --------------------------------------------------------------------------- the route in the real app


async def test_reach_route_in_the_probe_server_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """/reach/tcp/N through the probe server's ASGI app (its rate limit, its probe slots), the
    client address set as uvicorn sets it.  The lookup is the stub: loopback has no zone."""
    import httpx

    import probeserver.reach as reach_mod
    from probeserver import server as probe_server

    zone = {NAME: ["127.0.0.1"], "elsewhere.example.org": ["198.51.100.1"]}

    async def lookup(name: str, *, timeout_s: float = 3.0) -> list[str]:
        return zone.get(name, [])

    monkeypatch.setattr(reach_mod, "resolve_name", lookup)
    app = probe_server.build_app(probe_server.ProbeServerSettings(rate_per_s=1, burst=3), clock=lambda: 0.0)
    stats = app.state.stats
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port_ = listener.sockets[0].getsockname()[1]
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            ok = await client.get(f"/reach/tcp/{port_}", params={"name": NAME})
            other = await client.get(f"/reach/tcp/{port_}", params={"name": "elsewhere.example.org", "tls": "1"})
            bad = await client.get(f"/reach/tcp/{port_}", params={"name": "127.0.0.1"})
            limited = await client.get(f"/reach/tcp/{port_}", params={"name": NAME})
    finally:
        listener.close()
    assert ok.status_code == 200 and ok.json()["result"] == "connected" and ok.json()["tls"] is None
    assert other.status_code == 403 and other.json()["code"] == "not-your-address"
    assert bad.status_code == 400
    assert limited.status_code == 429  # the server's rate limit covers /reach too
    assert "198.51.100.1" not in stats.dialed  # never dialled anything but the requester
