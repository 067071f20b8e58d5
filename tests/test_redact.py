"""Secrets are masked wherever a string can be printed, even when the secret is unknown."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checks.redact import AddressRedactor, Redactor


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("https://www.duckdns.org/update?domains=cam&token=4f1c2d3e-aaaa-bbbb&ip=", "4f1c2d3e-aaaa-bbbb"),
        ("https://sync.afraid.org/u/AbCdEfGh12345678/", "AbCdEfGh12345678"),
        ("https://alice:hunter2@members.example.org/nic/update", "hunter2"),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnopqrstuvwxyz012345"),
        ("https://dynamicdns.park-your-domain.com/update?host=@&domain=d.com&password=0123abcd", "0123abcd"),
    ],
)
def test_secret_shaped_pieces_are_masked_without_knowing_them(text: str, leak: str) -> None:
    out = Redactor().text(text)
    assert leak not in out
    assert "***" in out


def test_known_secrets_are_masked_anywhere() -> None:
    r = Redactor(secrets=["s3cr3t-value"])
    assert r.text("error: s3cr3t-value rejected") == "error: *** rejected"
    assert r.data({"a": ["x s3cr3t-value y"]}) == {"a": ["x *** y"]}


@given(st.text(min_size=4, max_size=40).filter(lambda s: s.strip() == s and len(s.strip()) >= 4), st.text(max_size=60))
def test_a_known_secret_never_survives(secret: str, around: str) -> None:
    out = Redactor(secrets=[secret]).text(around + secret + around)
    assert secret not in out


def test_address_redactor_keeps_private_and_is_stable() -> None:
    r = AddressRedactor(hostnames=["MyHome.duckdns.org"])
    out = r.text("23.128.64.20 then 192.168.1.1 then 23.128.64.20. myhome.duckdns.org 2a0c::1 fe80::1 10:30:00")
    assert out == "203.0.113.1 then 192.168.1.1 then 203.0.113.1. host-1.example 2001:db8::1 fe80::1 10:30:00"
