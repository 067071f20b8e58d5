"""The product's probes (checks/) on real networks: run inside the lab's host namespace.

Each test runs a few lines of Python calling the engine's probes inside the host
namespace (``lab.run([python, -c, ...])``) and compares what they report with the
lab's known facts (tests/lab/plan.py): the real coturn STUN server, miniupnpd's
UPnP IGD and NAT-PMP, the lab's DNS echo and HTTPS echo, nftables NAT. Nothing is
mocked.
"""

from __future__ import annotations

import json
import sys
import textwrap
from typing import Any

import pytest

from . import plan

pytestmark = pytest.mark.lab

PRELUDE = """
import asyncio, json, sys
from checks.probes import local, natpmp, publicip, stun, traceroute, upnp
from checks.model import to_jsonable

async def main():
{body}
    return result

print(json.dumps(to_jsonable(asyncio.run(main()))))
"""

STUN_SERVERS = [f"{plan.STUN1}:{plan.STUN_PORT}", f"{plan.STUN2}:{plan.STUN_PORT}"]


def probe(lab: Any, body: str, timeout: float = 60) -> Any:
    """Run ``body`` (async Python that sets ``result``) in the lab's host namespace; its JSON."""
    code = PRELUDE.format(body=textwrap.indent(textwrap.dedent(body).strip(), "    "))
    out = lab.run([sys.executable, "-c", code], env=lab.tool_env, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


# --------------------------------------------------------------------------- home
def test_home_stun_sees_router_wan_from_one_socket(lab_home: Any) -> None:
    sources, varies = probe(lab_home, f"result = await stun.stun_probe({STUN_SERVERS!r}, timeout_s=1.5)")
    assert [s["value"] for s in sources] == [lab_home.expected_public_ipv4] * 2, sources
    assert all(s["error"] is None and s["mapped_port"] for s in sources)
    # nftables masquerade keeps one mapping per socket: not "symmetric".
    assert varies is False


def test_home_ssdp_finds_router_and_igd_reports_wan(lab_home: Any) -> None:
    result = probe(
        lab_home,
        f"""
        location = await upnp.ssdp_discover(timeout_s=0.6, gateway={plan.HOME_GW!r})
        igd = await upnp.IgdClient.connect(location)
        result = dict(location=location, wan=await igd.external_ip(), lan=igd.lan_address,
                      status=await igd.status(), ctype=await igd.connection_type())
    """,
    )
    assert result["location"].startswith(f"http://{plan.HOME_GW}:")
    assert result["wan"] == lab_home.router_wan_ipv4
    assert result["lan"] == lab_home.host_ipv4
    assert result["status"][0] == "Connected"


def test_home_igd_add_list_delete_mapping(lab_factory: Any) -> None:
    """Changes the router's state, so it gets its own lab."""
    lab = lab_factory("home")
    result = probe(
        lab,
        f"""
        location = await upnp.ssdp_discover(gateway={plan.HOME_GW!r})
        igd = await upnp.IgdClient.connect(location)
        await igd.add_mapping(40123, "TCP", igd.lan_address, 8080, "ddns-wizard lab test", lease_s=600)
        listed = await igd.mappings()
        one = await igd.get_mapping(40123, "tcp")
        # secure_mode: miniupnpd refuses a mapping to another LAN host (718 or 606).
        try:
            await igd.add_mapping(40124, "TCP", {plan.HOME_OTHER!r}, 8080, "elsewhere")
            other = None
        except Exception as exc:
            other = [type(exc).__name__, getattr(exc, "code", None), str(exc)]
        deleted = await igd.delete_mapping(40123, "tcp")
        deleted_again = await igd.delete_mapping(40123, "tcp")
        after = await igd.mappings()
        result = dict(listed=listed, one=one, other=other, deleted=deleted, deleted_again=deleted_again,
                      after=after)
    """,
    )
    assert [(m["external_port"], m["protocol"], m["internal"]) for m in result["listed"]] == [
        (40123, "TCP", f"{lab.host_ipv4}:8080")
    ]
    assert result["one"]["description"] == "ddns-wizard lab test"
    assert result["other"] is not None and result["other"][0] == "UpnpError"
    assert result["other"][1] in (606, 718), result["other"]
    assert result["deleted"] is True and result["deleted_again"] is False
    assert result["after"] == []


def test_home_natpmp_external_address_is_router_wan(lab_home: Any) -> None:
    reply = probe(lab_home, f"result = await natpmp.natpmp_external_address({plan.HOME_GW!r})")
    assert reply["ok"] and reply["external_ipv4"] == lab_home.router_wan_ipv4, reply


def test_home_natpmp_map_and_unmap(lab_factory: Any) -> None:
    lab = lab_factory("home")
    made, removed = probe(
        lab,
        f"""
        made = await natpmp.natpmp_map({plan.HOME_GW!r}, "udp", 40200, 40200, 120)
        removed = await natpmp.natpmp_map({plan.HOME_GW!r}, "udp", 40200, 0, 0)
        result = [made, removed]
    """,
    )
    assert made["ok"] and made["internal_port"] == 40200 and made["external_port"] and made["lifetime"]
    assert removed["ok"] and removed["lifetime"] == 0


def test_home_probe_router_and_echoes(lab_home: Any) -> None:
    result = probe(
        lab_home,
        f"""
        import httpx
        router = await upnp.probe_router({plan.HOME_GW!r})
        async with httpx.AsyncClient() as client:
            http = await publicip.http_echo(client, "https://{plan.ECHO1}/")
        dns = [await publicip.dns_echo(f"{{m}}@{plan.DNS_ECHO}") for m in ("opendns", "cloudflare", "google")]
        info = await local.gather_local()
        result = dict(router=router, http=http, dns=dns, local=info,
                      summary=publicip.summarize_external([http, *dns], local=info))
    """,
    )
    router = result["router"]
    assert router["available"] and router["wan_ipv4"] == lab_home.router_wan_ipv4
    assert router["natpmp_available"] and router["natpmp_wan_ipv4"] == lab_home.router_wan_ipv4
    assert result["http"]["value"] == lab_home.expected_public_ipv4
    assert [d["value"] for d in result["dns"]] == [lab_home.expected_public_ipv4] * 3
    assert result["summary"]["ipv4"] == lab_home.expected_public_ipv4 and result["summary"]["agreement"]
    local_info = result["local"]
    assert (local_info["ipv4"], local_info["gateway_ipv4"]) == (lab_home.host_ipv4, lab_home.gateway_ipv4)
    assert local_info["vpn_interfaces"] == [] and not local_info["default_via_vpn"]


# --------------------------------------------------------------------------- cgnat
def test_cgnat_igd_found_but_not_available(lab_cgnat: Any) -> None:
    router = probe(lab_cgnat, f"result = await upnp.probe_router({plan.HOME_GW!r})")
    assert router["found"] and not router["available"]
    assert router["wan_ipv4"] in (plan.CGNAT_ROUTER_WAN, None)
    assert "upstream" in router["error"]
    assert router["natpmp_wan_ipv4"] in (plan.CGNAT_ROUTER_WAN, None)


def test_cgnat_igd_refuses_mappings(lab_cgnat: Any) -> None:
    """miniupnpd with a private WAN refuses every mapping: the user gets the code and a sentence."""
    result = probe(
        lab_cgnat,
        f"""
        igd = await upnp.IgdClient.connect(await upnp.ssdp_discover(gateway={plan.HOME_GW!r}))
        try:
            await igd.add_mapping(40123, "TCP", igd.lan_address, 8080, "ddns-wizard lab test", lease_s=600)
            await igd.delete_mapping(40123, "TCP")     # keep the shared lab clean if it ever succeeds
            result = None
        except upnp.UpnpError as exc:
            result = [exc.code, str(exc)]
    """,
    )
    assert result is not None, "the IGD behind CGNAT accepted a mapping"
    code, message = result
    assert code == 501 and "WAN may be down or private" in message


def test_cgnat_stun_sees_pool_address_and_traceroute_shows_shared_space(lab_cgnat: Any) -> None:
    sources, hops = probe(
        lab_cgnat,
        f"""
        sources, _ = await stun.stun_probe({STUN_SERVERS!r})
        result = [sources, await traceroute.trace_hops({plan.ECHO1!r})]
    """,
    )
    assert {s["value"] for s in sources} == {lab_cgnat.expected_public_ipv4}
    assert hops is not None and hops[0] == plan.HOME_GW and plan.CGNAT_GW in hops


# --------------------------------------------------------------------------- no UPnP, offline
def test_home_no_upnp_finds_no_igd(lab_home_no_upnp: Any) -> None:
    result = probe(
        lab_home_no_upnp,
        f"""
        result = dict(location=await upnp.ssdp_discover(timeout_s=0.6, gateway={plan.HOME_GW!r}),
                      router=await upnp.probe_router({plan.HOME_GW!r}, budget_s=1.0))
    """,
    )
    assert result["location"] is None
    router = result["router"]
    assert not router["found"] and not router["available"] and "no UPnP IGD answered" in router["error"]
    assert not router["natpmp_available"] and router["natpmp_error"]


def test_offline_probes_fail_as_data(lab_offline: Any) -> None:
    result = probe(
        lab_offline,
        f"""
        import httpx
        sources, varies = await stun.stun_probe({STUN_SERVERS!r}, timeout_s=0.5)
        async with httpx.AsyncClient() as client:
            http = await publicip.http_echo(client, "https://{plan.ECHO1}/", timeout_s=0.5)
        dns = await publicip.dns_echo("opendns@{plan.DNS_ECHO}", timeout_s=0.5)
        result = dict(stun=sources, varies=varies, http=http, dns=dns, local=await local.gather_local())
    """,
    )
    assert all(s["value"] is None and s["error"] for s in result["stun"]) and result["varies"] is None
    assert result["http"]["value"] is None and result["http"]["error"]
    assert result["dns"]["value"] is None and result["dns"]["error"]


# --------------------------------------------------------------------------- double NAT, IPv6
def test_double_nat_igd_reports_private_wan(lab_double_nat: Any) -> None:
    router = probe(lab_double_nat, f"result = await upnp.probe_router({plan.HOME_GW!r})")
    assert router["found"] and not router["available"]
    assert router["wan_ipv4"] in (plan.ISPBOX_ROUTER_WAN, None)
    assert "upstream" in router["error"]


def test_cgnat_v6_local_global_address_and_v6_echo(lab_cgnat_v6: Any) -> None:
    result = probe(
        lab_cgnat_v6,
        f"""
        import httpx
        async with httpx.AsyncClient() as client:
            v6 = await publicip.http_echo(client, "https://[{plan.ECHO1_V6}]/", family=6)
            v4_asked_as_v6 = await publicip.http_echo(client, "https://{plan.ECHO1}/", family=6)
        result = dict(local=await local.gather_local(), v6=v6, mismatch=v4_asked_as_v6)
    """,
    )
    assert lab_cgnat_v6.host_ipv6 in [a["address"] for a in result["local"]["ipv6_global"]]
    assert result["local"]["gateway_ipv6"]
    assert result["v6"]["value"] == lab_cgnat_v6.host_ipv6 and result["v6"]["family"] == 6
    # An IPv4-only answer to an IPv6 question is an error, never taken as the IPv6 address.
    assert result["mismatch"]["value"] is None and "IPv4" in result["mismatch"]["error"]


def test_default_route_through_a_tunnel_is_seen_as_vpn(lab_factory: Any) -> None:
    """A tun device with a name no list knows ("office0"), recognised by its kernel link kind."""
    lab = lab_factory("home")
    for argv in (
        ["ip", "tuntap", "add", "office0", "mode", "tun"],
        ["ip", "addr", "add", "10.99.0.2/24", "dev", "office0"],
        ["ip", "link", "set", "office0", "up"],
        ["ip", "route", "replace", "default", "dev", "office0"],
    ):
        out = lab.run(argv)
        assert out.returncode == 0, out.stderr
    info = probe(lab, "result = await local.gather_local()")
    assert info["interface"] == "office0" and info["ipv4"] == "10.99.0.2"
    assert info["vpn_interfaces"] == ["office0"] and info["default_via_vpn"] is True
    assert info["gateway_ipv4"] is None
