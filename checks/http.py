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
import sys
import types


def _import_httpx_without_its_cli() -> None:
    """Import httpx without ``httpx._main``, its command-line tool.

    httpx's ``__init__`` imports ``_main`` for the ``httpx`` console script, which pulls in
    click, rich and pygments: about 40 ms of a diagnosis that must finish in 1.5 s, for
    code we never call. A stand-in module is registered first (only if httpx is not
    imported yet); ``httpx.main`` then says how to get the real tool.
    """
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stand_in = types.ModuleType("httpx._main")

    def main(*_args: object, **_kwargs: object) -> None:
        raise SystemExit("ddns-wizard loads httpx without its command-line tool; run `python -m httpx`")

    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stand_in


_import_httpx_without_its_cli()

import httpx  # noqa: E402  (after the stand-in above)

from . import __version__  # noqa: E402

USER_AGENT = f"ddns-wizard/{__version__} (+https://github.com/ddns-wizard/ddns-wizard)"


def ssl_context() -> ssl.SSLContext:
    """A verifying TLS context that honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``."""
    cafile = os.environ.get("SSL_CERT_FILE")
    capath = os.environ.get("SSL_CERT_DIR")
    if cafile and os.path.isfile(cafile):
        return ssl.create_default_context(cafile=cafile)
    if capath and os.path.isdir(capath):
        return ssl.create_default_context(capath=capath)
    import certifi  # only when no trust store was named

    return ssl.create_default_context(cafile=certifi.where())


def make_client(
    *,
    timeout_s: float = 3.0,
    user_agent: str | None = None,
    use_proxy_env: bool = False,
) -> httpx.AsyncClient:
    """A new ``httpx.AsyncClient``; the caller closes it (``async with``).

    ``timeout_s`` bounds each phase (connect, read, write, pool); callers that
    need a tighter deadline for a whole request wrap it in ``asyncio.timeout``.
    """
    return httpx.AsyncClient(
        verify=ssl_context(),
        timeout=httpx.Timeout(timeout_s),
        headers={"User-Agent": user_agent or USER_AGENT},
        follow_redirects=False,
        trust_env=use_proxy_env,
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
    )
