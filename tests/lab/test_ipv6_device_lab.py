"""IPv6 for another LAN device: prefix + fixed suffix, followed across a renumbering.

The home lab with IPv6: the host (this machine) runs `update` for a hostname whose AAAA is
another device's address (`ipv6_suffix`). The ISP then moves the LAN to a new /64
(Lab.set_ipv6_prefix): the next update publishes the new prefix + the same suffix.
Real echo services, real dyndns2 emulator, real Knot.
"""

from __future__ import annotations

import json

import pytest

from tests.lab.test_providers_lab import dyndns2_host

pytestmark = pytest.mark.lab

SUFFIX = "::1234:5678:9abc:def0"


def test_suffix_host_publishes_prefix_plus_suffix_after_the_prefix_changes(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory("home", ipv6=True)
    nas = dict(dyndns2_host(lab), ipv6_suffix=SUFFIX)
    lab.write_config(hosts=[nas])
    proc = lab.tool("update", "--json", timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result,) = json.loads(proc.stdout)
    assert result["result"] == "updated", result
    assert lab.internet.lookup(nas["hostname"], "AAAA") == ["2a0c:b641:100:1:1234:5678:9abc:def0"]
    assert lab.internet.lookup(nas["hostname"]) == [lab.expected_public_ipv4]
    assert "for the device" in result["message"] and "fixed suffix" in result["message"]

    lab.set_ipv6_prefix("2a0c:b641:100:5::/64")
    proc = lab.tool("update", "--json", timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result,) = json.loads(proc.stdout)
    assert result["result"] == "updated" and result["sent"].endswith("2a0c:b641:100:5:1234:5678:9abc:def0"), result
    assert lab.internet.lookup(nas["hostname"], "AAAA") == ["2a0c:b641:100:5:1234:5678:9abc:def0"]
    # ...and then it is stable: nothing more to send
    proc = lab.tool("update", "--json", timeout=90)
    assert json.loads(proc.stdout)[0]["result"] == "unchanged"
