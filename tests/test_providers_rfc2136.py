"""RFC 2136 + TSIG: the UPDATE message we build, and the answers of a server that checks TSIG.

The "server" is a small TCP DNS responder on 127.0.0.1 built with dnspython that
verifies the TSIG signature with its own keyring (the lab's Knot is exercised in
tests/lab/test_providers_lab.py).
"""

from __future__ import annotations

import asyncio
import base64
import struct

import dns.message
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import pytest

from checks.config import HostConfig
from checks.ddns.providers import rfc2136
from checks.ddns.providers.registry import get_provider
from checks.model import to_jsonable

SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
WRONG = base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()
SPEC = get_provider("rfc2136")


def host(port: int, secret: str = SECRET, key_name: str = "ddns-key") -> HostConfig:
    return HostConfig(
        hostname="home.selfhosted.lab-ddns.net",
        provider="rfc2136",
        server=f"127.0.0.1:{port}",
        options={
            "zone": "selfhosted.lab-ddns.net",
            "key_name": key_name,
            "key_algorithm": "hmac-sha256",
            "tsig_secret": secret,
        },
    )


class FakeDnsServer:
    """Accepts UPDATEs signed with ddns-key; answers like an authoritative server would."""

    def __init__(self, rcode: int = dns.rcode.NOERROR) -> None:
        self.keyring = dns.tsigkeyring.from_text({"ddns-key": SECRET})
        self.rcode = rcode
        self.received: list[dns.message.Message] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            wire = await reader.readexactly(length)
            try:
                msg = dns.message.from_wire(wire, keyring=self.keyring)
            except dns.message.UnknownTSIGKey:
                reply = self._unsigned_error(wire, dns.rcode.NOTAUTH, dns.rcode.BADKEY)
            except dns.tsig.BadSignature:
                reply = self._unsigned_error(wire, dns.rcode.NOTAUTH, dns.rcode.BADSIG)
            else:
                self.received.append(msg)
                response = dns.message.make_response(msg)
                response.set_rcode(self.rcode)
                reply = response.to_wire()
            writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()
        finally:
            writer.close()

    @staticmethod
    def _unsigned_error(wire: bytes, rcode: int, tsig_error: int) -> bytes:
        msg = dns.message.from_wire(wire, keyring=False)  # do not verify: just echo the header
        response = dns.message.make_response(msg)
        response.set_rcode(rcode)
        if msg.had_tsig:
            response.use_tsig(dns.tsig.Key(msg.keyname, b"\0" * 16, msg.keyalgorithm), tsig_error=tsig_error)
        return response.to_wire()  # a BADKEY/BADSIG answer carries a TSIG record with an empty MAC

    async def __aenter__(self) -> FakeDnsServer:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()


async def test_update_replaces_the_a_rrset_signed_with_the_key() -> None:
    async with FakeDnsServer() as server:
        r = await SPEC.update(host(server.port), "23.128.64.20", None, None)
    assert r.result == "updated" and r.code == "NOERROR"
    (msg,) = server.received
    assert msg.had_tsig and str(msg.keyname) == "ddns-key."
    updates = [(str(rr.name), rr.rdtype, rr.ttl, [str(x) for x in rr]) for rr in msg.update]
    # delete the A RRset, then add the new address with a short TTL
    assert ("home.selfhosted.lab-ddns.net.", dns.rdatatype.A, 0, []) in updates
    assert ("home.selfhosted.lab-ddns.net.", dns.rdatatype.A, 60, ["23.128.64.20"]) in updates


async def test_wrong_secret_is_refused_clearly_and_fatally() -> None:
    async with FakeDnsServer() as server:
        r = await SPEC.update(host(server.port, secret=WRONG), "23.128.64.20", None, None)
    assert r.result == "error" and r.fatal
    assert "TSIG" in r.message and server.received == []
    assert WRONG not in str(to_jsonable(r))


async def test_unknown_key_name_is_refused_clearly() -> None:
    async with FakeDnsServer() as server:
        r = await SPEC.update(host(server.port, key_name="other-key"), "23.128.64.20", None, None)
    assert r.result == "error" and r.fatal and r.code == "BADKEY" and "does not know key 'other-key'" in r.message


@pytest.mark.parametrize(
    "rcode, fatal, words",
    [
        (dns.rcode.REFUSED, True, "not allowed to update"),
        (dns.rcode.NOTAUTH, True, "not authoritative"),
        (dns.rcode.NOTZONE, True, "not inside the zone"),
        (dns.rcode.SERVFAIL, False, "retry later"),
    ],
)
async def test_rcodes(rcode: int, fatal: bool, words: str) -> None:
    async with FakeDnsServer(rcode) as server:
        r = await SPEC.update(host(server.port), "23.128.64.20", None, None)
    assert r.result == "error" and r.fatal is fatal and words in r.message


async def test_preflight_sends_a_prerequisite_only_update() -> None:
    async with FakeDnsServer() as server:
        res = await SPEC.preflight(host(server.port), None)
    assert res.ok and "Nothing was modified" in res.message
    (msg,) = server.received
    assert list(msg.update) == [] and len(msg.prerequisite) == 1


async def test_unreachable_server_is_retried_not_fatal() -> None:
    async with FakeDnsServer() as server:
        port = server.port
    r = await SPEC.update(host(port), "23.128.64.20", None, None)  # server closed: connection refused
    assert r.result == "error" and not r.fatal and r.retry_after_s


@pytest.mark.parametrize(
    "options, problem",
    [
        ({"key_name": "k", "tsig_secret": "not base64!"}, "base64"),
        ({"key_name": "k", "tsig_secret": SECRET, "key_algorithm": "hmac-foo"}, "key_algorithm"),
        ({"tsig_secret": SECRET}, "key_name"),
        ({"key_name": "k", "key": SECRET}, None),  # `key` is accepted for the secret
    ],
)
def test_validation(options: dict, problem: str | None) -> None:
    h = HostConfig(hostname="home.example.org", provider="rfc2136", server="192.0.2.53", options=options)
    problems = SPEC.validate(h)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems)
        assert SECRET not in " ".join(problems)


def test_server_of() -> None:
    from checks.errors import AddressError

    assert rfc2136.server_of("11.1.0.54") == ("11.1.0.54", 53)
    assert rfc2136.server_of("ns1.example.org:5353") == ("ns1.example.org", 5353)
    assert rfc2136.server_of("[2001:db8::53]:53") == ("2001:db8::53", 53)
    with pytest.raises(AddressError):
        rfc2136.server_of("not a host")
    assert rfc2136.check_server("ns1.example.org:99999") is not None
