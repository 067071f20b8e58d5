"""HTTPS plain-text IP echo (api.ipify.org / icanhazip.com stand-in): body = requester IP + "\\n".

Fault "wrong-ip" makes it answer LIE addresses, for echo-disagreement tests.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from .httpcommon import ServiceState, _plain, client_ip

LIE_V4 = "23.128.64.250"
LIE_V6 = "2a0c:b641:100:1::250"


def build_echo_app(state: ServiceState):  # type: ignore[no-untyped-def]
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        ip = client_ip(scope)
        if state.fault == "wrong-ip":
            ip = LIE_V6 if ":" in ip else LIE_V4
        if scope["method"] not in ("GET", "HEAD"):
            await _plain(send, 405, b"method not allowed\n")
            return
        await _plain(send, 200, (ip + "\n").encode())

    return app
