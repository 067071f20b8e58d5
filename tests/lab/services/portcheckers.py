"""Models of the public port checkers the shipped defaults use (checks/config.py port_check).

``EchoipModel`` — mpolden/echoip as ifconfig.co runs it (``echoip -p``):

- ``GET /port/N`` → ``{"ip", "port", "reachable"}`` pretty-printed with two spaces
  (``http/http.go``: PortResponse, newPortResponse, PortHandler's
  ``json.MarshalIndent(response, "", "  ")``).  N is the last path element parsed as
  a 16-bit unsigned number; anything else, or 0, is HTTP 400
  ``{"status": 400, "error": "invalid port: N"}`` (badRequest(...).AsJSON(),
  appHandler.ServeHTTP).
- It dials *the address the request came from* (ipFromRequest: ``r.RemoteAddr``,
  no ``?ip=`` for /port — ``html/index.html`` "This is not supported for the /port
  endpoint"), so the family of the request decides what is tested; TCP only, 2 s
  dial timeout (``iputil/iputil.go`` LookupPort: ``net.DialTimeout("tcp", ..., 2*time.Second)``).
- ``GET /ip`` and ``GET /`` (curl-like clients) answer the address as text.
- ifconfig.co's limit: "please limit automated requests to 1 request per minute.
  Requests exceeding this limit may receive a 429 status code or be dropped
  entirely" (``html/index.html``, FAQ "Is automated use permitted?").  The model
  admits one request per client address per ``window_s`` (60 s) and answers the
  rest 429 (``over_limit="429"``) or never (``"drop"``: held until the client gives
  up) — chosen by the test, so both real behaviours are deterministic here.
  IPv4 and IPv6 addresses of one host are two clients.
- Port 25 reads as unreachable on ifconfig.co: its host blocks outgoing port 25
  (echoip issue #171, as tests/lab's reference notes).

``PortcheckerModel`` — portchecker.io's API (dsgnr/portchecker.io, backend v2):

- ``GET /api/me/N`` → ``True`` / ``False`` as text (``routes/v2.py``
  get_port_check: ``str(query_address(host, [port])[0].get("status"))`` with
  ``host = get_requester(request)``); the check is ``socket.connect_ex`` with a 1 s
  timeout (``helpers/query.py`` _check_port_status).
- IPv4 only: an IPv6 requester gets HTTP 400 ``{"status_code": 400, "detail":
  "IPv6 is not currently supported"}`` (is_address_valid raises, query_address turns
  it into JsonAPIException(key="host"), Litestar's HTTPException body); so does a
  private address ("... does not appear to be public").
- No published rate limit, so the model has none (the client spaces its requests
  anyway, checks/portcheck/probers.py).
Both are served over HTTPS with the lab CA and dual-stack, reached by names with A
and AAAA records (tests/lab/internet.py), like the real ones.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from typing import Any

from starlette.types import Receive, Scope, Send

from .httpcommon import ServiceState, _plain, client_ip

ECHOIP_DIAL_TIMEOUT_S = 2.0  # iputil.LookupPort
PORTCHECKER_DIAL_TIMEOUT_S = 1.0  # helpers/query.py _check_port_status
ECHOIP_BLOCKED_PORTS = frozenset({25})  # echoip issue #171: ifconfig.co's host blocks outgoing 25
DROP_HOLD_S = 300.0


async def dial(ip: str, port: int, timeout_s: float) -> bool:
    """A TCP connect to ip:port over the address's own family; True when it succeeded."""
    try:
        async with asyncio.timeout(timeout_s):
            _reader, writer = await asyncio.open_connection(ip, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True


async def _json(send: Send, status: int, data: Any) -> None:
    body = json.dumps(data, indent=2).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimit:
    """One admitted request per client address per window (ifconfig.co's published limit)."""

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self.admitted: dict[str, float] = {}
        self.refused = 0

    def admit(self, ip: str) -> bool:
        now = time.monotonic()
        last = self.admitted.get(ip)
        if self.window_s > 0 and last is not None and now - last < self.window_s:
            self.refused += 1
            return False
        self.admitted[ip] = now
        return True

    def reset(self) -> None:
        self.admitted.clear()


class EchoipModel:
    def __init__(self, state: ServiceState, *, window_s: float = 60.0) -> None:
        self.state = state
        self.limit = RateLimit(window_s)
        self.over_limit = "429"  # or "drop"

    def control(self, body: dict[str, Any]) -> dict[str, Any]:
        """Test knobs (runner control API): window_s, over_limit, reset."""
        if "window_s" in body and body["window_s"] is not None:
            self.limit.window_s = float(body["window_s"])
        if body.get("over_limit") in ("429", "drop"):
            self.over_limit = body["over_limit"]
        if body.get("reset"):
            self.limit.reset()
        return {"window_s": self.limit.window_s, "over_limit": self.over_limit, "refused": self.limit.refused}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        ip = client_ip(scope)
        if not self.limit.admit(ip):
            if self.over_limit == "drop":
                deadline = time.monotonic() + DROP_HOLD_S
                while not self.state.stopping and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                return  # the connection closes without an answer
            await _plain(send, 429, b"Too Many Requests\n")
            return
        path = scope["path"]
        method = scope["method"]
        if method == "GET" and path.startswith("/port/"):
            last = path.rstrip("/").rsplit("/", 1)[-1] if path.rstrip("/") != "/port" else "port"
            port = int(last) if last.isdigit() and len(last) <= 5 and int(last) <= 65535 else None
            if port is None or port < 1:
                await _json(send, 400, {"status": 400, "error": f"invalid port: {last}"})
                return
            reachable = port not in ECHOIP_BLOCKED_PORTS and await dial(ip, port, ECHOIP_DIAL_TIMEOUT_S)
            await _json(send, 200, {"ip": ip, "port": port, "reachable": reachable})
            return
        if method == "HEAD" and path == "/":
            await _plain(send, 200, b"")
            return
        if method == "GET" and path in ("/", "/ip"):
            await _plain(send, 200, (ip + "\n").encode())
            return
        await _plain(send, 404, b"404 page not found\n")


class PortcheckerModel:
    def __init__(self, state: ServiceState) -> None:
        self.state = state

    def control(self, body: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        prefix = "/api/me/"
        if scope["method"] != "GET" or not path.startswith(prefix):
            await _json(send, 404, {"status_code": 404, "detail": "Not Found"})
            return
        text = path[len(prefix) :]
        if not text.isdigit():
            await _json(send, 404, {"status_code": 404, "detail": "Not Found"})
            return
        port = int(text)
        if not 1 <= port <= 65535:
            await _json(send, 400, {"status_code": 400, "detail": "Validation failed for GET /api/me/" + text})
            return
        address = ipaddress.ip_address(client_ip(scope))
        if address.version == 6:
            await _json(send, 400, {"status_code": 400, "detail": "IPv6 is not currently supported"})
            return
        if address.is_private:
            await _json(
                send, 400, {"status_code": 400, "detail": f"IPv4 address '{address}' does not appear to be public"}
            )
            return
        reached = await dial(str(address), port, PORTCHECKER_DIAL_TIMEOUT_S)
        await _plain(send, 200, b"True" if reached else b"False")
