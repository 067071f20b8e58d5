"""The engine's TLS look at a server: probeserver/tls.py with this machine's trust store.

The handshake and the certificate facts are shared with the probe server's ``/reach``
endpoint (the outside view), so both judge a certificate the same way; the code lives
in ``probeserver.tls`` because the probe server never imports the engine.  Here the
trust store is the engine's (checks.http.ssl_context: ``SSL_CERT_FILE`` /
``SSL_CERT_DIR``, else certifi), as for every other HTTPS connection the tool makes.
"""

from __future__ import annotations

import datetime as dt
import ssl

from probeserver.tls import (
    EXPIRY_WARNING_DAYS,
    TLS_ERRORS,
    TlsError,
    TlsFacts,
    cert_names,
    describe_chain,
    name_matches,
)
from probeserver.tls import tls_probe as _tls_probe


def verifying_context(cafile: str | None = None) -> ssl.SSLContext:
    """``cafile`` when given, else this machine's rules (checks.http.ssl_context)."""
    if cafile:
        context = ssl.create_default_context(cafile=cafile)
    else:
        from ..http import ssl_context

        context = ssl_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def tls_probe(
    ip: str,
    port: int,
    server_name: str,
    *,
    context: ssl.SSLContext | None = None,
    timeout_s: float = 4.0,
    now: dt.datetime | None = None,
) -> TlsFacts:
    """probeserver.tls.tls_probe with the engine's trust store by default."""
    return await _tls_probe(ip, port, server_name, context=context or verifying_context(), timeout_s=timeout_s, now=now)


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
