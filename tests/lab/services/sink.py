"""A webhook sink in the lab internet: what a notification service (ntfy, a Discord or
Slack webhook, a healthchecks.io ping endpoint) would receive.

Plain HTTP on SINK:80 (apprise's ``json://HOST/PATH`` posts JSON there; ``jsons://``
would be HTTPS). Every request is logged by httpcommon.instrument (method, path, body),
so a test reads what arrived with ``internet.requests_log("sink")``.
Paths under ``/status/NNN`` answer that status (a service refusing the notification);
everything else answers 200. apprise's json plugin sends ``{"version", "title",
"message", "type", "attachments"}`` (apprise/plugins/custom_json.py).
"""

from __future__ import annotations

import re

from starlette.types import Receive, Scope, Send

from .httpcommon import ServiceState, _plain

_STATUS_RE = re.compile(r"^/status/(\d{3})(?:/|$)")


def build_sink(state: ServiceState):  # type: ignore[no-untyped-def]
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while True:  # read the whole body (the log keeps it)
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        m = _STATUS_RE.match(scope["path"])
        status = int(m.group(1)) if m else 200
        await _plain(
            send,
            status,
            b'{"ok": true}\n' if status < 400 else b'{"error": "refused"}\n',
            content_type=b"application/json",
        )

    return app
