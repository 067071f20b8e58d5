"""IPv6 for other devices: prefix + fixed suffix or EUI-64 (checks/ddns/ipv6device.py)."""

from __future__ import annotations

import pytest

from checks.config import Config, HostConfig
from checks.ddns.ipv6device import choose, eui64_interface_id, suffix_interface_id, target_ipv6
from checks.ddns.updater import PublicAddress, check_config, decide
from checks.errors import ConfigError

NAS = HostConfig("nas.example.net", "dyndns2", options={"ipv6_suffix": "::1234:5678:9abc:def0"})


def test_eui64_from_a_mac_follows_rfc_4291() -> None:
    # RFC 4291 appendix A: 00:11:22:33:44:55 -> 0211:22ff:fe33:4455 (U/L bit inverted)
    assert eui64_interface_id("00:11:22:33:44:55") == 0x021122FFFE334455
    assert eui64_interface_id("02-11-22-33-44-55") == 0x001122FFFE334455
    for bad in ("00:11:22:33:44", "zz:11:22:33:44:55", "00:00:00:00:00:00"):
        with pytest.raises(ValueError):
            eui64_interface_id(bad)


def test_suffix_is_the_low_64_bits_only() -> None:
    assert suffix_interface_id("::1234:5678:9abc:def0") == 0x123456789ABCDEF0
    for bad in ("2001:db8::1", "::", "hello"):
        with pytest.raises(ValueError):
            suffix_interface_id(bad)


def test_device_address_is_this_prefix_plus_the_suffix_and_follows_a_renumbering() -> None:
    assert target_ipv6(NAS, "2a0c:b641:100:1::100") == "2a0c:b641:100:1:1234:5678:9abc:def0"
    assert target_ipv6(NAS, "2a0c:b641:100:7:a:b:c:d") == "2a0c:b641:100:7:1234:5678:9abc:def0"
    mac = HostConfig("cam.example.net", "dyndns2", options={"ipv6_mac": "00:11:22:33:44:55"})
    assert target_ipv6(mac, "2a0c:b641:100:1::100") == "2a0c:b641:100:1:211:22ff:fe33:4455"
    plain = HostConfig("me.example.net", "dyndns2", options={"ipv6": True})
    assert target_ipv6(plain, "2a0c:b641:100:1::100") == "2a0c:b641:100:1::100"


def test_ula_and_unknown_prefixes_are_never_published_and_the_reason_is_said() -> None:
    c = choose(NAS, "fd00:1:2:3::100")
    assert c is not None and c.address is None and "ULA" in c.why
    c = choose(NAS, None)
    assert c is not None and c.address is None and "unknown" in c.why
    c = choose(NAS, "2a0c:b641:100:1::100")
    assert c is not None and "2a0c:b641:100:1::/64" in c.why and "fixed suffix" in c.why


def test_update_decision_sends_the_device_address_and_explains_it() -> None:
    public = PublicAddress("23.128.64.20", "2a0c:b641:100:1::100")
    d = decide(NAS, "dyndns2", public, ("23.128.64.20", "2a0c:b641:100:1::99", None), force=False, allow_private=False)
    assert d.send_ipv6 == "2a0c:b641:100:1:1234:5678:9abc:def0"
    assert any("publishing 2a0c:b641:100:1:1234:5678:9abc:def0 for the device" in n for n in d.notes)
    same = decide(
        NAS,
        "dyndns2",
        public,
        ("23.128.64.20", "2a0c:b641:100:1:1234:5678:9abc:def0", None),
        force=False,
        allow_private=False,
    )
    assert same.result is not None and same.result.result == "unchanged"


def test_bad_device_keys_are_configuration_errors() -> None:
    host = HostConfig(
        "nas.dyn.example.net",
        "dyndns2",
        server="https://dyn.example.net",
        username="u",
        password="p-secret",
        options={"ipv6_suffix": "2001:db8::1"},
    )
    with pytest.raises(ConfigError, match="prefix"):
        check_config(Config(hosts=(host,)))
    both = HostConfig(
        "nas.dyn.example.net",
        "dyndns2",
        server="https://dyn.example.net",
        username="u",
        password="p-secret",
        options={"ipv6_suffix": "::1", "ipv6_mac": "00:11:22:33:44:55"},
    )
    with pytest.raises(ConfigError, match="not both"):
        check_config(Config(hosts=(both,)))
