"""The probe server's ``GET /reach/tcp/N?name=HOST[&tls=1]``: is HOST:N reachable from here?

``ddns-wizard reach`` asks it from inside the user's network.  The server resolves
HOST itself (its own resolver, like a friend's browser would) and dials **only the
requester's own address**, and only when HOST resolves to it: the name is proof of
nothing but what the requester already is, so the endpoint stays as useless for
scanning third parties as ``/port/N`` (it never connects to an address the request
did not come from; a name pointing elsewhere gets 403 ``not-your-address``).  An
IPv6 requester must be named by its exact address (not just its /64).

With ``tls=1`` it then does a TLS handshake with SNI = HOST and reports the
certificate (checks/probes/tlsprobe.py).  The trust store is the system's, or the
file named by ``DDNSW_PROBE_CA_FILE`` (a lab or a private CA).

Answer (200)::

    {"ip", "port", "protocol": "tcp", "name", "addresses": [...], "result":
     "connected"|"refused"|"timeout"|"error", "ms", "tls": null | {ok, names, issuer,
     not_after, days_left, error, detail, problems, fingerprint, chain_length, version, ms}}

Refusals: 400 (bad port, name or tls flag), 403 ``{"code": "not-your-address",
"addresses"}``, 502 ``{"code": "resolve-failed"}``.  The rate limit and the probe slots
of the server apply as to every dial-back (the caller wraps :func:`reach_answer` in
them).  This module has no web framework in it: ``probeserver.server`` routes to it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

Resolve = Callable[[str], Awaitable[list[str]]]
CA_FILE_ENV = "DDNSW_PROBE_CA_FILE"


async def resolve_name(name: str, *, timeout_s: float = 3.0) -> list[str]:
    """The name's IPv4 and IPv6 addresses through this machine's resolver (canonical text).
    Raises ``LookupError`` for a name that has none, ``TimeoutError``/``OSError`` for failure."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
            raise LookupError(f"{name} has no address") from None
        raise OSError(exc.errno, exc.strerror or str(exc)) from None
    out: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        text = _canonical(str(sockaddr[0]))
        if text and text not in out:
            out.append(text)
    if not out:
        raise LookupError(f"{name} has no address")
    return out


def _canonical(text: str) -> str | None:
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def check_name(raw: str) -> str | None:
    """The name in its DNS (ASCII) spelling, or None when it is no hostname (standard
    library only: the probe server does not import the engine)."""
    if not raw or len(raw) > 253 or _canonical(raw) is not None:  # an address skips the proof
        return None
    name = raw.strip().rstrip(".").lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    labels = name.split(".")
    if len(labels) < 2 or len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        return None
    if labels[-1].isdigit():
        return None
    return name


def _ca_file() -> str | None:
    path = os.environ.get(CA_FILE_ENV)
    return path if path and os.path.isfile(path) else None


def tls_context() -> ssl.SSLContext:
    """The verifying context of the outside view: ``DDNSW_PROBE_CA_FILE``, else the system's store."""
    cafile = _ca_file()
    context = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def reach_answer(
    requester: str,
    port: int,
    raw_name: str,
    tls_flag: str | None,
    *,
    dial: Callable[[str, int], Awaitable[dict[str, Any]]],
    resolve: Resolve | None = None,
    tls_timeout_s: float = 4.0,
    context: ssl.SSLContext | None = None,
    in_slot: Callable[[Callable[[], Awaitable[dict[str, Any]]]], Awaitable[Any]] | None = None,
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for one ``/reach/tcp/N`` request from ``requester``.

    ``dial(ip, port)`` is the server's TCP dial-back (the ``dial_tcp`` result dict);
    ``in_slot(work)`` runs the lookup and the dialling inside the server's probe slots and returns
    ``work()``'s dict, or a ready response object when no slot was free (passed back
    as the status ``-1`` body ``{"response": obj}``)."""
    name = check_name(raw_name)
    if name is None:
        return 400, {"status": 400, "error": "name must be a hostname (not an address), e.g. ?name=myhome.example.org"}
    if tls_flag not in (None, "", "0", "1"):
        return 400, {"status": 400, "error": "tls must be 0 or 1"}
    want_tls = tls_flag == "1"
    started = time.monotonic()

    async def work() -> dict[str, Any]:
        # The lookup runs inside the probe slot too: a flood of names costs the server no more
        # concurrent work than a flood of dial-backs.
        try:
            addresses = await (resolve or resolve_name)(name)
        except LookupError:
            addresses = []
        except (OSError, TimeoutError) as exc:
            why = getattr(exc, "strerror", None) or str(exc) or "timeout"
            return {
                "_status": 502,
                "status": 502,
                "code": "resolve-failed",
                "name": name,
                "error": f"this prober could not resolve {name}: {why}",
            }
        if requester not in addresses:
            said = ", ".join(addresses) if addresses else "no address"
            return {
                "_status": 403,
                "status": 403,
                "code": "not-your-address",
                "name": name,
                "addresses": addresses,
                "ip": requester,
                "error": f"{name} resolves to {said} here, not to your address {requester}: this prober "
                "only connects to the address a request comes from",
            }
        outcome = await dial(requester, port)
        facts = None
        if want_tls and outcome.get("result") == "connected":
            from .tls import tls_probe

            facts = (
                await tls_probe(requester, port, name, context=context or tls_context(), timeout_s=tls_timeout_s)
            ).to_dict()
            facts.pop("server_name", None)
        outcome.pop("banner", None)
        return {
            "ip": requester,
            "port": port,
            "protocol": "tcp",
            "name": name,
            "addresses": addresses,
            **outcome,
            "tls": facts,
        }

    outcome = await (in_slot(work) if in_slot is not None else work())
    if not isinstance(outcome, dict):
        return -1, {"response": outcome}
    status = outcome.pop("_status", 200)
    if status == 200:
        outcome["ms"] = round((time.monotonic() - started) * 1000.0, 1)
    return status, outcome


def make_route(
    *,
    port_or_error: Callable[[Any], Any],
    with_slot: Callable[[str, Any], Awaitable[Any]],
    dial_tcp: Callable[..., Awaitable[dict[str, Any]]],
    dial_timeout_s: float,
    tls_timeout_s: float = 4.0,
) -> Callable[[Any], Awaitable[Any]]:
    """The starlette handler for ``/reach/tcp/{port}``, built from the server's own pieces:
    ``port_or_error(request)`` -> (requester ip, port) or a ready error response,
    ``with_slot(ip, work)`` (probe slots), ``dial_tcp`` (its dial-back)."""
    from starlette.responses import JSONResponse, Response

    async def reach_route(request: Any) -> Any:
        checked = port_or_error(request)
        if isinstance(checked, Response):
            return checked
        ip, port = checked
        status, body = await reach_answer(
            ip,
            port,
            request.query_params.get("name", ""),
            request.query_params.get("tls"),
            dial=lambda i, p: dial_tcp(i, p, dial_timeout_s=dial_timeout_s, banner_timeout_s=0.0, read_banner=False),
            in_slot=lambda work: with_slot(ip, work),
            tls_timeout_s=tls_timeout_s,
        )
        if status == -1:
            return body["response"]
        return JSONResponse(body, status_code=status)

    return reach_route


__all__ = ["CA_FILE_ENV", "check_name", "make_route", "reach_answer", "resolve_name", "tls_context"]
