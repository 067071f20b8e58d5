"""The one way the engine builds an HTTP client.

Every HTTP request the tool makes (IP echo, port checks, provider updates) goes
through a client made here, so verification, timeouts and the User-Agent are the
same everywhere:

- Certificate verification is always on.  The trust store is ``$SSL_CERT_FILE``
  (or ``$SSL_CERT_DIR``) when set, else certifi's bundle: the same rule httpx
  0.28 applies with ``trust_env=True``; it is spelled out here because we turn
  ``trust_env`` off (below) and the lab's throwaway CA reaches the tool this way.
- Proxy variables (``HTTPS_PROXY`` ...) are ignored by default: a diagnosis
  through a proxy would report the proxy's public address as the user's.
  ``use_proxy_env=True`` restores them for callers that only need the request to
  arrive (nothing in the engine does today).
- HTTP/1.1 only: every request is a single small GET or POST.
"""

from __future__ import annotations

import os
import ssl

# checks/__init__.py keeps httpx from importing its CLI (and rich with it).
import httpx

from . import __version__

USER_AGENT = f"ddns-wizard/{__version__} (+https://github.com/ddns-wizard/ddns-wizard)"


def ssl_context() -> ssl.SSLContext:
    """A verifying TLS context that honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``.

    A named trust store that exists but cannot be read is a ConfigError: falling back
    to certifi would turn it into a puzzling "certificate verify failed" on every
    HTTPS request. (A name that does not exist is ignored, as httpx does.)"""
    cafile = os.environ.get("SSL_CERT_FILE")
    capath = os.environ.get("SSL_CERT_DIR")
    if cafile:
        try:
            with open(cafile, "rb"):
                pass
        except FileNotFoundError:
            cafile = None
        except OSError as exc:
            from .errors import ConfigError

            raise ConfigError(f"SSL_CERT_FILE={cafile} cannot be read ({exc.strerror or exc}); "
                              "fix its permissions or unset SSL_CERT_FILE") from None
    if cafile and os.path.isfile(cafile):
        return ssl.create_default_context(cafile=cafile)
    if capath and os.path.isdir(capath):
        return ssl.create_default_context(capath=capath)
    import certifi  # only when no trust store was named

    return ssl.create_default_context(cafile=certifi.where())


class _DeadlineTransport(httpx.AsyncBaseTransport):
    """Bounds each exchange as a whole. httpx's timeouts are per phase (connect, write,
    read each get ``timeout_s``), so on a lossy line SYN and TLS retransmissions plus a
    slow answer can add up to several times the nominal timeout."""

    def __init__(self, inner: httpx.AsyncBaseTransport, deadline_s: float) -> None:
        self.inner = inner
        self.deadline_s = deadline_s

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import asyncio

        try:
            async with asyncio.timeout(self.deadline_s):
                return await self.inner.handle_async_request(request)
        except TimeoutError:
            raise httpx.ReadTimeout(f"no complete answer within {self.deadline_s:g} s", request=request) from None

    async def aclose(self) -> None:
        await self.inner.aclose()


def make_client(
    *,
    timeout_s: float = 3.0,
    user_agent: str | None = None,
    use_proxy_env: bool = False,
    local_address: str | None = None,
    request_deadline_s: float | None = None,
) -> httpx.AsyncClient:
    """A new ``httpx.AsyncClient``; the caller closes it (``async with``).

    ``timeout_s`` bounds each phase (connect, read, write, pool); callers that
    need a tighter deadline for a whole request wrap it in ``asyncio.timeout``.
    ``local_address`` binds every connection to this source address (the IPv6 port
    test: the prober must see, and dial back, this host's stable address rather
    than a temporary one; an IPv6 source also means IPv6 is used).
    ``request_deadline_s`` bounds each exchange as a whole (connect, TLS, request, the
    response's headers), not only each phase.
    """
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=8)
    context = ssl_context()
    transport: httpx.AsyncBaseTransport | None = None
    if local_address or request_deadline_s:
        transport = httpx.AsyncHTTPTransport(verify=context, local_address=local_address, limits=limits)
        if request_deadline_s:
            transport = _DeadlineTransport(transport, request_deadline_s)
    return httpx.AsyncClient(
        transport=transport,
        verify=context,
        timeout=httpx.Timeout(timeout_s),
        headers={"User-Agent": user_agent or USER_AGENT},
        follow_redirects=False,
        trust_env=use_proxy_env,
        limits=limits,
    )
