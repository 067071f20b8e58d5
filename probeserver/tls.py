"""A TLS handshake with SNI, and the facts of the certificate the server sent.

``tls_probe(ip, port, server_name)`` connects to ``ip:port``, does a TLS handshake
with SNI = ``server_name`` and returns :class:`TlsFacts`: the names the certificate
covers, its issuer, its expiry, whether it validates for ``server_name`` against
the trust store, and why not.  Used by the probe server's ``/reach`` endpoint (the
outside view, probeserver/reach.py) and, through checks/probes/tlsprobe.py, by the
engine's reach check (the inside view, to tell a working hairpin NAT from a router
that answers its own public address itself).  It lives here, not in the engine,
because the probe server is a deployable of its own that never imports ``checks``;
like ``wire`` it imports no web framework (standard library and ``cryptography``).

How: one verifying handshake (the server name checked, the trust store given).  When
it fails on the certificate, OpenSSL's verify code says why, and a second,
non-verifying handshake collects the certificate so the facts can still be shown
(an expired certificate's dates are the useful part).  Reasons (``error``):

- ``expired`` / ``not-yet-valid``: X509_V_ERR_CERT_HAS_EXPIRED (10) / _NOT_YET_VALID (9);
- ``wrong-name``: X509_V_ERR_HOSTNAME_MISMATCH (62), or an IP-address mismatch (64);
- ``self-signed``: X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT (18);
- ``untrusted-root``: X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN (19): the chain ends in a
  root this trust store does not hold (a private CA);
- ``incomplete-chain``: X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY (20), _UNABLE_TO_
  VERIFY_LEAF_SIGNATURE (21), _UNABLE_TO_GET_ISSUER_CERT (2): the issuer of the last
  certificate the server sent is neither sent nor trusted here — almost always a
  server configured with ``cert.pem`` instead of ``fullchain.pem`` (browsers often
  paper over it by fetching the intermediate; curl, apps and many clients do not);
  when the last certificate sent is a CA certificate it is ``untrusted-root``;
- ``invalid``: any other verify failure (``detail`` has OpenSSL's words);
- ``no-tls``: the handshake itself failed (the port does not speak TLS, or no common
  protocol version/cipher); ``timeout``: no handshake within the deadline.

(OpenSSL codes: include/openssl/x509_vfy.h.)  ``problems`` lists every reason found,
OpenSSL's first and then the date and name checks done here on the certificate, so an
expired certificate for the wrong name shows both.

Certificates are read with ``cryptography`` (x509).  The chain the server sent comes
from ``SSLObject.get_unverified_chain()`` (public in Python 3.13; the same method is
on the private ``_sslobj`` since 3.10), else just the leaf.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
import ssl
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

TlsError = Literal[
    "expired",
    "not-yet-valid",
    "wrong-name",
    "self-signed",
    "untrusted-root",
    "incomplete-chain",
    "invalid",
    "no-tls",
    "timeout",
    "refused",
    "unreachable",
]
TLS_ERRORS: tuple[str, ...] = (
    "expired",
    "not-yet-valid",
    "wrong-name",
    "self-signed",
    "untrusted-root",
    "incomplete-chain",
    "invalid",
    "no-tls",
    "timeout",
    "refused",
    "unreachable",
)
EXPIRY_WARNING_DAYS = 14

_VERIFY_CODES: dict[int, TlsError] = {
    10: "expired",
    9: "not-yet-valid",
    62: "wrong-name",
    64: "wrong-name",
    18: "self-signed",
    19: "untrusted-root",
    20: "incomplete-chain",
    21: "incomplete-chain",
    2: "incomplete-chain",
}


@dataclass(frozen=True)
class TlsFacts:
    """The outcome of one TLS look at a server (a fact, never an exception)."""

    ok: bool  # the handshake verified for server_name against the trust store
    server_name: str
    names: tuple[str, ...] = ()  # DNS names and IP addresses the certificate covers
    issuer: str | None = None  # issuer's common name (else its organisation, else the RFC 4514 text)
    not_after: str | None = None  # ISO 8601, UTC
    days_left: int | None = None  # whole days until not_after (negative: expired that long ago)
    error: TlsError | None = None  # why not ok (module docstring)
    detail: str | None = None  # OpenSSL's / the socket's own words
    problems: tuple[str, ...] = ()  # every reason found (error first)
    fingerprint: str | None = None  # SHA-256 of the leaf certificate (hex): same server or not
    chain_length: int = 0  # certificates the server sent
    version: str | None = None  # TLSv1.3 ...
    ms: float = 0.0

    @property
    def expiring_soon(self) -> bool:
        return self.ok and self.days_left is not None and self.days_left <= EXPIRY_WARNING_DAYS

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["names"] = list(self.names)
        data["problems"] = list(self.problems)
        return data

    @classmethod
    def from_dict(cls, data: Any, server_name: str) -> TlsFacts | None:
        """Parse a prober's ``tls`` object (untrusted input: wrong types give None)."""
        if not isinstance(data, dict) or not isinstance(data.get("ok"), bool):
            return None

        def text(key: str, limit: int = 300) -> str | None:
            value = data.get(key)
            return value[:limit] if isinstance(value, str) else None

        def number(key: str) -> int | None:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key)
            return tuple(v[:255] for v in value[:100] if isinstance(v, str)) if isinstance(value, list) else ()

        error = text("error")
        ms = data.get("ms")
        return cls(
            ok=data["ok"],
            server_name=server_name,
            names=strings("names"),
            issuer=text("issuer"),
            not_after=text("not_after", 40),
            days_left=number("days_left"),
            error=error if error in TLS_ERRORS else ("invalid" if error else None),  # type: ignore[arg-type]
            detail=text("detail"),
            problems=tuple(p for p in strings("problems") if p in TLS_ERRORS),
            fingerprint=text("fingerprint", 64),
            chain_length=number("chain_length") or 0,
            version=text("version", 16),
            ms=float(ms) if isinstance(ms, (int, float)) and not isinstance(ms, bool) else 0.0,
        )


# --------------------------------------------------------------------------- certificates


def _load(der: bytes) -> Any:
    from cryptography import x509

    return x509.load_der_x509_certificate(der)


def _name_text(name: Any) -> str:
    from cryptography.x509.oid import NameOID

    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
        attrs = name.get_attributes_for_oid(oid)
        if attrs:
            return str(attrs[0].value)
    return name.rfc4514_string() or "(empty name)"


def cert_names(cert: Any) -> tuple[str, ...]:
    """The DNS names and IP addresses a certificate covers (its subjectAltName; the
    common name only when it has none, as old certificates do)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return tuple(names)


def name_matches(server_name: str, names: Sequence[str]) -> bool:
    """RFC 6125 matching as browsers do it: exact (case-insensitive), or a wildcard that
    stands for exactly one left-most label (``*.example.org`` covers ``a.example.org``,
    not ``example.org`` nor ``a.b.example.org``); an IP address only matches itself."""
    wanted = server_name.rstrip(".").lower()
    try:
        wanted_ip = ipaddress.ip_address(wanted)
    except ValueError:
        wanted_ip = None
    for raw in names:
        name = raw.rstrip(".").lower()
        if wanted_ip is not None:
            try:
                if ipaddress.ip_address(name) == wanted_ip:
                    return True
            except ValueError:
                pass
            continue
        if name == wanted:
            return True
        if name.startswith("*.") and "." in wanted:
            label, rest = wanted.split(".", 1)
            if label and rest == name[2:]:
                return True
    return False


def _self_issued(cert: Any) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:
        return False
    return True


def _is_ca(cert: Any) -> bool:
    from cryptography import x509

    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def describe_chain(chain_der: Sequence[bytes], server_name: str, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The facts of the leaf (first) certificate and what is wrong with it by date and name."""
    if not chain_der:
        return {
            "names": (),
            "issuer": None,
            "not_after": None,
            "days_left": None,
            "fingerprint": None,
            "problems": (),
            "self_issued": False,
            "top_is_ca": False,
        }
    now = now or dt.datetime.now(dt.UTC)
    leaf = _load(chain_der[0])
    top = _load(chain_der[-1]) if len(chain_der) > 1 else leaf
    not_after = leaf.not_valid_after_utc
    not_before = leaf.not_valid_before_utc
    names = cert_names(leaf)
    problems: list[str] = []
    if now > not_after:
        problems.append("expired")
    elif now < not_before:
        problems.append("not-yet-valid")
    if not name_matches(server_name, names):
        problems.append("wrong-name")
    self_issued = len(chain_der) == 1 and _self_issued(leaf)
    if self_issued:
        problems.append("self-signed")
    return {
        "names": names,
        "issuer": _name_text(leaf.issuer),
        "not_after": not_after.isoformat().replace("+00:00", "Z"),
        "days_left": int((not_after - now).total_seconds() // 86400),
        "fingerprint": hashlib.sha256(chain_der[0]).hexdigest(),
        "problems": tuple(problems),
        "self_issued": self_issued,
        "top_is_ca": _is_ca(top) and not self_issued,
    }


# --------------------------------------------------------------------------- handshakes


def _peer_chain(ssl_object: Any) -> list[bytes]:
    """DER certificates the server sent, leaf first."""
    for holder in (ssl_object, getattr(ssl_object, "_sslobj", None)):
        method = getattr(holder, "get_unverified_chain", None)
        if method is None:
            continue
        try:
            chain = method()
        except Exception:
            continue
        if chain:
            out = []
            for cert in chain:
                if isinstance(cert, bytes):
                    out.append(cert)
                else:
                    out.append(cert.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
            return out
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []


async def _handshake(
    ip: str, port: int, server_name: str, context: ssl.SSLContext, timeout_s: float
) -> tuple[list[bytes], str | None]:
    """One TLS handshake; (chain, TLS version).  Raises what the handshake raises."""
    # An IP literal as server_hostname is checked against the certificate's IP addresses
    # and not sent as SNI (Python's ssl module does both).
    async with asyncio.timeout(timeout_s):
        _reader, writer = await asyncio.open_connection(
            ip, port, ssl=context, server_hostname=server_name, ssl_handshake_timeout=timeout_s
        )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return _peer_chain(ssl_object), ssl_object.version()
    finally:
        writer.close()
        try:
            async with asyncio.timeout(0.5):
                await writer.wait_closed()
        except (TimeoutError, OSError, ssl.SSLError):
            pass


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def verifying_context(cafile: str | None = None) -> ssl.SSLContext:
    """A verifying client context: ``cafile`` when given, else the system's trust store
    (the engine passes its own: checks/probes/tlsprobe.py)."""
    context = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _lenient_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _ordered(first: str | None, more: Sequence[str]) -> tuple[str, ...]:
    out = [first] if first else []
    out += [p for p in more if p not in out]
    return tuple(out)


async def tls_probe(
    ip: str,
    port: int,
    server_name: str,
    *,
    context: ssl.SSLContext | None = None,
    timeout_s: float = 4.0,
    now: dt.datetime | None = None,
) -> TlsFacts:
    """Handshake with ``ip:port`` as ``server_name`` (SNI) and judge its certificate.

    ``context``: the verifying context (default :func:`verifying_context`).  Both
    handshakes together stay within ``timeout_s``.  Never raises for network or TLS
    trouble: the failure is the ``error`` of the result."""
    started = time.monotonic()
    ctx = context or verifying_context()

    def ms() -> float:
        return round((time.monotonic() - started) * 1000.0, 1)

    def left() -> float:
        return max(0.2, timeout_s - (time.monotonic() - started))

    try:
        chain, version = await _handshake(ip, port, server_name, ctx, left())
    except ssl.SSLCertVerificationError as exc:
        code = getattr(exc, "verify_code", None)
        words = getattr(exc, "verify_message", None) or str(exc)
        try:
            chain, version = await _handshake(ip, port, server_name, _lenient_context(), left())
        except (OSError, TimeoutError, ssl.SSLError) as again:
            return TlsFacts(
                ok=False,
                server_name=server_name,
                error=_VERIFY_CODES.get(code or -1, "invalid"),
                detail=f"{words}; the certificate could not be fetched again: {again or type(again).__name__}",
                ms=ms(),
            )
        facts = describe_chain(chain, server_name, now=now)
        error: TlsError = _VERIFY_CODES.get(code or -1, "invalid")
        if error == "incomplete-chain" and facts["top_is_ca"]:
            error = "untrusted-root"
        return TlsFacts(
            ok=False,
            server_name=server_name,
            names=facts["names"],
            issuer=facts["issuer"],
            not_after=facts["not_after"],
            days_left=facts["days_left"],
            error=error,
            detail=words,
            problems=_ordered(error, facts["problems"]),
            fingerprint=facts["fingerprint"],
            chain_length=len(chain),
            version=version,
            ms=ms(),
        )
    except TimeoutError:
        return TlsFacts(
            ok=False,
            server_name=server_name,
            error="timeout",
            detail=f"no TLS handshake within {timeout_s:g} s",
            ms=ms(),
        )
    except ConnectionRefusedError:
        return TlsFacts(ok=False, server_name=server_name, error="refused", detail="connection refused", ms=ms())
    except ssl.SSLError as exc:
        return TlsFacts(
            ok=False,
            server_name=server_name,
            error="no-tls",
            detail=exc.reason or str(exc) or type(exc).__name__,
            ms=ms(),
        )
    except (OSError, EOFError) as exc:
        # A peer that closes the connection during the handshake: it does not speak TLS here.
        if isinstance(exc, (ConnectionResetError, EOFError, ConnectionAbortedError)):
            return TlsFacts(
                ok=False,
                server_name=server_name,
                error="no-tls",
                detail=f"the connection was closed during the TLS handshake ({type(exc).__name__})",
                ms=ms(),
            )
        return TlsFacts(
            ok=False,
            server_name=server_name,
            error="unreachable",
            detail=getattr(exc, "strerror", None) or str(exc) or type(exc).__name__,
            ms=ms(),
        )
    facts = describe_chain(chain, server_name, now=now)
    return TlsFacts(
        ok=True,
        server_name=server_name,
        names=facts["names"],
        issuer=facts["issuer"],
        not_after=facts["not_after"],
        days_left=facts["days_left"],
        fingerprint=facts["fingerprint"],
        chain_length=len(chain),
        version=version,
        ms=ms(),
    )


__all__ = [
    "EXPIRY_WARNING_DAYS",
    "TLS_ERRORS",
    "TlsError",
    "TlsFacts",
    "cert_names",
    "describe_chain",
    "name_matches",
    "tls_probe",
    "verifying_context",
]
