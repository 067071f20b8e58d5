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
- Address families are never mixed: a request made with ``family_extensions(4)``
  (or 6) leaves over that family only, whatever the name resolves to.  httpx/anyio
  try a dual-stack name's IPv6 address first (happy eyeballs order in anyio's
  ``connect_tcp``), so an "IPv4" echo or port test would otherwise learn, or test,
  the IPv6 address.  The pin is twofold: a connection pool whose sockets are bound
  to the family's wildcard address (``0.0.0.0`` / ``::``, so a literal of the other
  family cannot even be connected to), and a network backend that looks up only
  that family's record (A or AAAA, checks/names.py: a coroutine with hedged
  retries, so a lossy line or a probe's deadline is not at the mercy of the system
  resolver's uncancellable thread) and connects to those addresses; TLS still
  verifies the name (httpcore passes the URL's host as the server name).
  ``connection_family(response)`` reads the family the exchange really used, so a
  caller can refuse an answer that came the wrong way (a fake transport in tests
  reports None).
"""

from __future__ import annotations

import os
import ssl
from typing import Any

# checks/__init__.py keeps httpx from importing its CLI (and rich with it).
import httpcore
import httpx

from checks import __version__

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
            from checks.errors import ConfigError

            raise ConfigError(
                f"SSL_CERT_FILE={cafile} cannot be read ({exc.strerror or exc}); "
                "fix its permissions or unset SSL_CERT_FILE"
            ) from None
    if cafile and os.path.isfile(cafile):
        return ssl.create_default_context(cafile=cafile)
    if capath and os.path.isdir(capath):
        return ssl.create_default_context(capath=capath)
    import certifi  # only when no trust store was named

    return ssl.create_default_context(cafile=certifi.where())


# Request extension naming the address family a request must use (4 or 6).
FAMILY_EXTENSION = "ddns_wizard.family"


def family_extensions(family: int) -> dict[str, Any]:
    """``extensions=`` for a request that must leave over IPv4 (4) or IPv6 (6) only."""
    if family not in (4, 6):
        raise ValueError(f"family must be 4 or 6, not {family!r}")
    return {FAMILY_EXTENSION: family}


def address_family(address: str) -> int:
    return 6 if ":" in address else 4


def connection_family(response: httpx.Response) -> int | None:
    """The address family the response came over, from the connection's local address
    (None when the transport does not say: fakes in tests, or a connection already
    closed — ask before reading the body)."""
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    try:
        local = stream.get_extra_info("client_addr")
    except Exception:
        return None
    if isinstance(local, tuple) and local and isinstance(local[0], str):
        return address_family(local[0])
    return None


async def fetch_over(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    family: int,
    *,
    timeout_s: float,
    max_bytes: int = 65536,
    headers: dict[str, str] | None = None,
    json: Any = None,
) -> tuple[httpx.Response, bytes, int | None]:
    """One request that must use ``family`` (4 or 6): (response, body up to ``max_bytes``,
    the family the exchange really used or None when the transport does not say).

    Raises httpx errors like ``client.request``; the caller decides what a response
    that came over the other family means (it is never a fact of this family)."""
    async with client.stream(
        method, url, timeout=timeout_s, headers=headers, json=json, extensions=family_extensions(family)
    ) as response:
        used = connection_family(response)
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                break
    return response, body[:max_bytes], used


class _FamilyBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend for a family-pinned pool: the name's A (or AAAA)
    records only, looked up by checks/names.py, then a connection to each in turn."""

    def __init__(self, family: int) -> None:
        self.family = family
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> Any:
        from checks.names import LookupFailed, lookup

        try:
            addresses = await lookup(host, self.family, timeout_s=timeout or 5.0)
        except LookupFailed as exc:
            raise httpcore.ConnectError(str(exc)) from None
        last: Exception | None = None
        for address in addresses[:4]:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> Any:  # pragma: no cover - not used
        return await self.inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _FamilyTransport(httpx.AsyncBaseTransport):
    """Routes each request to a connection pool for its address family (see the module
    docstring): requests without the family extension use the default pool."""

    def __init__(self, make: Any, local_address: str | None) -> None:
        self._make = make
        self._local = local_address
        self._pools: dict[int | None, httpx.AsyncBaseTransport] = {}

    def _pool(self, family: int | None) -> httpx.AsyncBaseTransport:
        if self._local is not None:
            if family is not None and address_family(self._local) != family:
                raise httpx.ConnectError(f"this client leaves from {self._local}, so it cannot ask over IPv{family}")
            family = None  # the bound address already decides the family
        pool = self._pools.get(family)
        if pool is None:
            local = self._local or {4: "0.0.0.0", 6: "::"}.get(family or 0)
            pool = self._pools[family] = self._make(local)
            pinned = family or (address_family(self._local) if self._local else None)
            inner = getattr(pool, "_pool", None)  # httpx.AsyncHTTPTransport's httpcore pool
            if pinned is not None and inner is not None and hasattr(inner, "_network_backend"):
                inner._network_backend = _FamilyBackend(pinned)
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        family = request.extensions.get(FAMILY_EXTENSION)
        try:
            pool = self._pool(family)
        except httpx.ConnectError as exc:
            exc.request = request
            raise
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        for pool in list(self._pools.values()):
            await pool.aclose()
        self._pools.clear()


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


# Connections the pool keeps open between requests. Callers that send many requests
# bound themselves to this many at once (checks/updater.py): with hundreds queued, httpcore
# rescans its whole queue on every connection change, and every extra connection is a
# new TLS handshake that is closed again afterwards.
POOL_KEEPALIVE = 8


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
    A request sent with ``extensions=family_extensions(4)`` (or 6) uses that address
    family only (module docstring).
    """
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=POOL_KEEPALIVE)
    context = ssl_context()

    def pool(local: str | None) -> httpx.AsyncBaseTransport:
        return httpx.AsyncHTTPTransport(verify=context, local_address=local, limits=limits)

    transport: httpx.AsyncBaseTransport | None = _FamilyTransport(pool, local_address)
    if use_proxy_env and not local_address:
        # httpx reads the proxy variables only when it builds the transport itself; through
        # a proxy the family is the proxy's business anyway (nothing in the engine asks this).
        transport = None
    if request_deadline_s:
        transport = transport or pool(None)
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
