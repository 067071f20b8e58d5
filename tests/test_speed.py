"""Scale and speed (issue 18): shared zone lookups, bounded requests, quiet cancels.

Timing goals live in bench/ (bench/run.py, bench/RESULTS.md); these tests check the
behaviour the speed-ups rely on: each zone's servers asked once per round, a name with
a zone of its own still looked up on its own, provider requests never more than the
pool keeps alive, and a cancelled hedged query never printing a traceback.
"""

from __future__ import annotations

import asyncio
import gc

import dns.exception
import dns.resolver
import httpx
import pytest

from checks.config import HostConfig
from checks.dns import verify as dnsverify
from checks.dns.verify import AuthServers, NameServer, ZoneCache
from checks.model import DnsAnswer


def test_a_cancelled_hedged_query_that_failed_prints_nothing() -> None:
    """The stray NXDOMAIN traceback of a 200-host run: an attempt that finished with an
    exception in the same loop turn its waiter was cancelled was never retrieved."""
    seen: list[dict] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
        gate: asyncio.Future[None] = loop.create_future()

        async def attempt() -> None:
            await gate
            raise dns.resolver.NXDOMAIN()

        outer = asyncio.ensure_future(dnsverify._hedged(attempt, delays=()))
        await asyncio.sleep(0)
        gate.set_result(None)  # the attempt ends with NXDOMAIN ...
        outer.cancel()  # ... in the turn its waiter is cancelled
        with pytest.raises(asyncio.CancelledError):
            await outer
        await asyncio.sleep(0.01)

    asyncio.run(main())
    gc.collect()
    assert [c.get("message") for c in seen] == []


ZONE = AuthServers(
    hostname="h0.example.net", zone="example.net", nameservers=(NameServer("ns1.example.net", ("192.0.2.53",)),)
)


def _answer(addresses: tuple[str, ...], *, lame: bool = False) -> DnsAnswer:
    return DnsAnswer(
        server="ns1.example.net (192.0.2.53)",
        answers=addresses,
        ttl=60,
        ok=False,
        rcode="NOERROR",
        error="not authoritative for this name (lame delegation)" if lame else None,
    )


def test_names_of_one_zone_share_one_lookup_per_round(monkeypatch: pytest.MonkeyPatch) -> None:
    walks: list[str] = []
    asked: list[str] = []

    async def find(hostname: str, *, resolvers, timeout_s):
        walks.append(hostname)
        await asyncio.sleep(0.01)
        return ZONE

    async def answers(hostname: str, auth: AuthServers, *, timeout_s: float, port: int = 53):
        asked.append(hostname)
        return (_answer(("198.51.100.7",)),)

    monkeypatch.setattr(dnsverify, "find_authoritative", find)
    monkeypatch.setattr(dnsverify, "authoritative_answers", answers)

    async def main() -> list:
        zones = ZoneCache()
        names = [f"h{i}.example.net" for i in range(50)] + ["other.example.org"]
        return await asyncio.gather(
            *(dnsverify.current_addresses(n, resolvers=["192.0.2.1"], zones=zones) for n in names)
        )

    results = asyncio.run(main())
    assert all(r == ("198.51.100.7", None, None) for r in results)
    # one walk for example.net's 50 names (the first), one for the other parent
    assert sorted(walks) == ["h0.example.net", "other.example.org"]
    assert len(asked) == 51  # every name still asked at its servers


def test_a_name_delegated_below_the_zone_is_looked_up_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """sub.example.net has its own zone: example.net's servers answer it with a referral
    (no AA flag), so the shared servers are not trusted for it."""
    sub_zone = AuthServers(
        hostname="sub.example.net",
        zone="sub.example.net",
        nameservers=(NameServer("ns.sub.example.net", ("192.0.2.99",)),),
    )
    walks: list[str] = []

    async def find(hostname: str, *, resolvers, timeout_s):
        walks.append(hostname)
        await asyncio.sleep(0.01 if hostname == "h0.example.net" else 0)
        return sub_zone if hostname == "sub.example.net" else ZONE

    async def answers(hostname: str, auth: AuthServers, *, timeout_s: float, port: int = 53):
        if hostname == "sub.example.net" and auth.zone == "example.net":
            return (_answer((), lame=True),)
        return (_answer(("203.0.113.9",) if auth.zone == "sub.example.net" else ("198.51.100.7",)),)

    monkeypatch.setattr(dnsverify, "find_authoritative", find)
    monkeypatch.setattr(dnsverify, "authoritative_answers", answers)

    async def main() -> list:
        zones = ZoneCache()
        return await asyncio.gather(
            *(
                dnsverify.current_addresses(n, resolvers=["192.0.2.1"], zones=zones)
                for n in ("h0.example.net", "sub.example.net")
            )
        )

    first, sub = asyncio.run(main())
    assert first == ("198.51.100.7", None, None)
    assert sub == ("203.0.113.9", None, None)
    assert walks == ["h0.example.net", "sub.example.net"]


def test_grouped_updates_stay_within_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """200 dyndns2 names of one account: 10 requests of 20 names (ddclient groups the same
    way, without the cap: its nic_dyndns2_update joins every host of a group with ','),
    at most POOL_KEEPALIVE of them in flight at once, every name read from its own line."""

    from checks.config import Config, Endpoints
    from checks.ddns.updater import PublicAddress, run_update_detailed
    from checks.http import POOL_KEEPALIVE

    in_flight = 0
    peak = 0
    requests: list[list[str]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        names = request.url.params["hostname"].split(",")
        requests.append(names)
        return httpx.Response(200, text="\n".join(f"good {request.url.params['myip']}" for _ in names))

    hosts = tuple(
        HostConfig(
            hostname=f"h{i:03d}.example.net",
            provider="dyndns2",
            server="https://dyn.example",
            username="u",
            password="secret-pw",
        )
        for i in range(200)
    )
    config = Config(hosts=hosts, endpoints=Endpoints())

    async def stale(hostname: str, resolvers) -> tuple:
        return ("23.128.64.99", None, None)

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await run_update_detailed(
                config, client=client, lookup=stale, public=PublicAddress(ipv4="23.128.64.20", ipv6=None)
            )

    run = asyncio.run(main())
    assert [r.result for r in run.results] == ["updated"] * 200
    assert len(requests) == 10 and all(len(names) == 20 for names in requests)
    assert sorted(n for names in requests for n in names) == [h.hostname for h in hosts]
    assert 1 < peak <= POOL_KEEPALIVE


def test_history_of_a_round_is_one_fsync_and_durable_at_close(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from checks.ddns.history import History, read_history

    syncs: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (syncs.append(fd), real(fd))[1])
    path = tmp_path / "history.jsonl"
    with History(path) as history:
        for i in range(200):
            history.append("update", hostname=f"h{i:03d}.example.net", sent="23.128.64.20", result="updated")
        history.sync()
        assert len(syncs) == 1
    assert len(syncs) == 1  # nothing new since: close has nothing to sync
    assert len(read_history(path).records) == 200


def test_remembered_redactions_follow_new_secrets() -> None:
    from checks.redact import Redactor

    r = Redactor()
    assert r.text("sent with pw-Hunter2-x") == "sent with pw-Hunter2-x"
    r.add(["pw-Hunter2-x"])
    assert r.text("sent with pw-Hunter2-x") == "sent with ***"


def test_our_probe_server_429_is_waited_out_not_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many ports at once can outrun the probe server's token bucket (10/s, burst 64); its
    429 says in Retry-After when the next token is there: the port is asked again then,
    instead of ending "rate-limited". An echoip-style 429 (a minute) is not waited for."""
    from checks.portcheck import probers
    from checks.portcheck.probers import ProberPacer, ask_probers, parse_prober

    own = parse_prober("ddnsw+https://probe.test")
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(probers.asyncio, "sleep", fake_sleep)
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(429, headers={"Retry-After": "1"}, text="rate limit exceeded, slow down")
        return httpx.Response(
            200,
            json={
                "ip": "23.128.64.20",
                "port": 8080,
                "protocol": "tcp",
                "result": "connected",
                "banner": "nonce",
                "ms": 1.0,
            },
        )

    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await ask_probers(client, [own], 8080, "tcp", token="nonce", pacer=ProberPacer(None))

    answer = asyncio.run(main())
    assert (answer.outcome, calls, slept) == ("reached", 2, [1.0])


def test_many_ports_are_spaced_to_the_probe_servers_bucket_not_to_429s() -> None:
    """100 ports at once against our probe server (10/s after a burst of 64): the first
    ones go at once, the rest at the refill rate, so no request meets a 429 (whose
    Retry-After, in whole seconds, would stall a port a full second); 50 ports go at once."""
    from checks.portcheck.probers import DDNSW_BURST, DDNSW_RATE_PER_S, ProberPacer, parse_prober

    now = [1000.0]
    pacer = ProberPacer(None, clock=lambda: now[0])
    own = parse_prober("ddnsw+https://probe.test")
    waits = [pacer.reserve(own, 4) for _ in range(100)]
    assert waits[:50] == [0.0] * 50  # a 50-port check is not held back at all
    assert waits[: int(DDNSW_BURST)] == [0.0] * int(DDNSW_BURST)
    later = waits[int(DDNSW_BURST) :]
    assert later == sorted(later) and later[-1] == pytest.approx((100 - DDNSW_BURST) / DDNSW_RATE_PER_S)
    # the whole run asks no faster than the server refills, after its burst
    assert later[-1] >= (100 - 64) / 10
    now[0] += 60  # a minute later the bucket is full again
    assert pacer.reserve(own, 4) == 0.0
