"""checks/probes/tlsprobe.py against real TLS servers on loopback with trustme certificates.

Nothing is mocked: each test starts an asyncio TLS server with the certificate under test
and the probe does real handshakes with SNI; only the trust store is the test's own CA.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trustme

from checks.probes.tlsprobe import TlsFacts, name_matches, tls_probe, verifying_context

NAME = "myhome.example.org"
NOW = dt.datetime.now(dt.UTC)


@asynccontextmanager
async def tls_server(cert_pem: bytes, key_pem: bytes) -> AsyncIterator[int]:
    """A TLS server on 127.0.0.1 presenting ``cert_pem`` (which may hold a chain)."""
    import tempfile

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.NamedTemporaryFile(suffix=".pem") as cert, tempfile.NamedTemporaryFile(suffix=".pem") as key:
        cert.write(cert_pem)
        cert.flush()
        key.write(key_pem)
        key.flush()
        context.load_cert_chain(cert.name, key.name)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(1)
        except (OSError, ssl.SSLError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def _trust(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def _probe(cert_pem: bytes, key_pem: bytes, ca: trustme.CA, name: str = NAME) -> TlsFacts:
    async with tls_server(cert_pem, key_pem) as port:
        return await tls_probe("127.0.0.1", port, name, context=_trust(ca), timeout_s=5)


def _chain(leaf: trustme.LeafCert) -> bytes:
    return b"".join(p.bytes() for p in leaf.cert_chain_pems)


async def test_valid_certificate_reports_names_issuer_and_expiry() -> None:
    ca = trustme.CA(organization_name="Lab CA")
    leaf = ca.issue_cert(NAME, "www.example.org", not_after=NOW + dt.timedelta(days=60))
    facts = await _probe(_chain(leaf), leaf.private_key_pem.bytes(), ca)
    assert facts.ok and facts.error is None
    assert set(facts.names) == {NAME, "www.example.org"}
    assert facts.issuer  # trustme names its CA
    assert facts.days_left in (59, 60)
    assert facts.not_after and facts.not_after.endswith("Z")
    assert not facts.expiring_soon
    assert facts.fingerprint and len(facts.fingerprint) == 64


async def test_expiring_within_14_days_is_flagged() -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert(NAME, not_after=NOW + dt.timedelta(days=5))
    facts = await _probe(_chain(leaf), leaf.private_key_pem.bytes(), ca)
    assert facts.ok and facts.expiring_soon and facts.days_left in (4, 5)


async def test_expired_certificate() -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert(NAME, not_before=NOW - dt.timedelta(days=100), not_after=NOW - dt.timedelta(days=3))
    facts = await _probe(_chain(leaf), leaf.private_key_pem.bytes(), ca)
    assert not facts.ok
    assert facts.error == "expired"
    assert facts.days_left is not None and facts.days_left < 0
    assert facts.names == (NAME,)  # the facts are still there for an invalid certificate


async def test_wrong_name() -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("other.example.net")
    facts = await _probe(_chain(leaf), leaf.private_key_pem.bytes(), ca)
    assert not facts.ok and facts.error == "wrong-name"
    assert facts.names == ("other.example.net",)


async def test_expired_and_wrong_name_lists_both_problems() -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert(
        "other.example.net", not_before=NOW - dt.timedelta(days=100), not_after=NOW - dt.timedelta(days=1)
    )
    facts = await _probe(_chain(leaf), leaf.private_key_pem.bytes(), ca)
    assert not facts.ok
    assert set(facts.problems) >= {"expired", "wrong-name"}
    assert facts.error == facts.problems[0]


async def test_self_signed() -> None:
    """A certificate that signs itself (a router's or a fresh install's default)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    facts = await _probe(cert_pem, key_pem, trustme.CA())
    assert not facts.ok and facts.error == "self-signed"
    assert facts.names == (NAME,)


async def test_incomplete_chain_server_sends_only_its_own_certificate() -> None:
    root = trustme.CA()
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert(NAME)
    # The full chain validates ...
    good = await _probe(_chain(leaf), leaf.private_key_pem.bytes(), root)
    assert good.ok and good.chain_length >= 2
    # ... the leaf alone (cert.pem instead of fullchain.pem) does not.
    facts = await _probe(leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes(), root)
    assert not facts.ok and facts.error == "incomplete-chain"
    assert facts.chain_length == 1


async def test_untrusted_private_ca() -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert(NAME)
    facts = await _probe(_chain(leaf), leaf.private_key_pem.bytes(), trustme.CA())  # another CA trusted
    assert not facts.ok and facts.error in ("incomplete-chain", "untrusted-root")


async def test_plain_tcp_port_is_no_tls() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        facts = await tls_probe("127.0.0.1", port, NAME, context=verifying_context(), timeout_s=3)
    finally:
        server.close()
    assert not facts.ok and facts.error == "no-tls"


async def test_closed_port_is_refused() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    facts = await tls_probe("127.0.0.1", port, NAME, timeout_s=2)
    assert not facts.ok and facts.error == "refused"


def test_wire_round_trip_and_garbage() -> None:
    facts = TlsFacts(
        ok=False,
        server_name=NAME,
        names=(NAME,),
        issuer="X",
        not_after="2030-01-01T00:00:00Z",
        days_left=3,
        error="expired",
        problems=("expired",),
    )
    assert TlsFacts.from_dict(facts.to_dict(), NAME) == facts
    assert TlsFacts.from_dict({"ok": "yes"}, NAME) is None
    assert TlsFacts.from_dict({"ok": False, "error": "<script>", "names": [1, "a"]}, NAME).error == "invalid"


@pytest.mark.parametrize(
    "name,names,ok",
    [
        ("a.example.org", ["*.example.org"], True),
        ("example.org", ["*.example.org"], False),
        ("a.b.example.org", ["*.example.org"], False),
        ("MyHome.Example.org", ["myhome.example.org"], True),
        ("1.2.3.4", ["1.2.3.4"], True),
        ("1.2.3.4", ["*.2.3.4"], False),
    ],
)
def test_name_matching(name: str, names: list[str], ok: bool) -> None:
    assert name_matches(name, names) is ok
