"""The probe server's wire protocol: what the server (probeserver/server.py) and its
client (checks/portcheck/probers.py, checks/portcheck/listener.py) both speak.

Only the standard library here: the engine imports this module, and it must not
pull in starlette or uvicorn (the ``ddns-wizard[server]`` extra).

- ``GET /`` and ``GET /ip``: the requester's address.
- ``GET /port/N``: echoip-compatible ``{"ip", "port", "reachable"}``.
- ``GET /probe/tcp/N``: ``{"ip", "port", "protocol": "tcp", "result": TCP_RESULTS, "banner", "ms"}``.
- ``GET /probe/udp/N?token=T``: the server sends ``DDNSW-PROBE T\\n`` to requester:N and answers
  ``{..., "protocol": "udp", "result": UDP_RESULTS, "banner": reply, "ms"}``.
- ``GET /reach/tcp/N?name=HOST&tls=0|1``: ``{"ip", "port", "protocol": "tcp", "name", "addresses",
  "result": TCP_RESULTS, "ms", "tls": null | {...}}``; 403 ``{"code": "not-your-address"}`` when
  HOST does not resolve to the requester (probeserver/reach.py).
- The client's listener answers a connection (TCP) or a ``DDNSW-PROBE`` datagram (UDP) with
  ``DDNSW <nonce>\\n``: the banner that proves the probe reached *this* machine.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Literal

IP_PATHS = ("/", "/ip")
ECHOIP_PORT_PATH = "/port/{port}"
PROBE_TCP_PATH = "/probe/tcp/{port}"
PROBE_UDP_PATH = "/probe/udp/{port}"
REACH_TCP_PATH = "/reach/tcp/{port}"  # ?name=HOST&tls=0|1 (probeserver/reach.py, checks/reach.py)

# The server's default token bucket per client (an IPv4 address or an IPv6 /64), which the
# client also keeps on its side to space its requests. The burst fits one `ports check` of
# up to 64 ports at once (50 ports with a burst of 30 needed 2 s of refill alone: issue 18);
# what keeps a client from hurting others is not the burst but the probes it may have in
# flight (max_probes_per_client) and the shared slots (issue 13), and the sustained rate
# stays 10/s.
DEFAULT_RATE_PER_S = 10.0
DEFAULT_BURST = 64

# The datagram the server sends for /probe/udp, and the banner the client's listener answers with.
UDP_PROBE_PREFIX = b"DDNSW-PROBE "
BANNER_PREFIX = "DDNSW"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # what the server accepts as ?token=

# Result words of /probe/tcp and /probe/udp.
TcpResult = Literal["connected", "refused", "timeout", "error"]
UdpResult = Literal["replied", "timeout", "error"]
TCP_RESULTS: tuple[TcpResult, ...] = ("connected", "refused", "timeout", "error")
UDP_RESULTS: tuple[UdpResult, ...] = ("replied", "timeout", "error")
REACHED = frozenset({"connected", "replied"})  # the other words: the probe did not get in


def udp_probe_payload(token: str) -> bytes:
    """The datagram the server sends to requester:N for /probe/udp/N?token=T."""
    return UDP_PROBE_PREFIX + token.encode() + b"\n"


def banner_for(nonce: str) -> bytes:
    """What the client's listener answers with."""
    return f"{BANNER_PREFIX} {nonce}\n".encode("ascii")


def banner_has_nonce(banner: str | None, nonce: str) -> bool:
    """True when a banner the server read back carries exactly this nonce."""
    if not banner:
        return False
    return any(line.strip() == f"{BANNER_PREFIX} {nonce}" for line in banner.splitlines())


def probe_url(base: str, port: int, protocol: Literal["tcp", "udp"], token: str) -> str:
    """The URL that asks the probe server at ``base`` about ``port``/``protocol``."""
    if protocol == "tcp":
        return base + PROBE_TCP_PATH.format(port=port)
    return base + PROBE_UDP_PATH.format(port=port) + f"?token={urllib.parse.quote(token)}"


def reach_url(base: str, port: int, name: str, *, tls: bool) -> str:
    """The URL that asks the probe server at ``base`` whether ``name``:``port`` is reachable."""
    return (
        base
        + REACH_TCP_PATH.format(port=port)
        + "?"
        + urllib.parse.urlencode({"name": name, "tls": "1" if tls else "0"})
    )
