"""Notifications: tell the user when a record changed, an update failed, or the watch stopped.

Two kinds of target, both in the configuration's ``[notify]`` table:

- ``urls``: apprise URLs (ntfy, Gotify, Telegram, Discord, Matrix, e-mail, generic
  ``json://`` / ``form://`` webhooks ...; https://github.com/caronc/apprise/wiki).
  apprise is an optional dependency (``pip install 'ddns-wizard[notify]'``) and is
  imported only when a notification is actually sent: ``update`` without ``[notify]``
  never loads it.
- ``ping``: a healthchecks.io-style ping URL.  ``URL/start`` when a run starts,
  ``URL`` when it succeeded, ``URL/fail`` when a host failed (healthchecks.io's HTTP API:
  https://healthchecks.io/docs/http_api/ — "/start", "/fail"; a POST body is kept as the
  ping's log, up to 100 kB).  Sent with httpx (already a dependency).

Events (``[notify] events``, default all): ``changed`` (a record was updated: old ->
new address), ``failed`` (the provider refused or could not be reached; says whether
the host is now stopped), ``recovered`` (a host that failed works again) and
``stopped`` (the watch ended by itself: every hostname was refused by its provider).
A host failing every round notifies once until it recovers: which hosts are failing
is kept in ``notify-state.json`` beside the history (mode 0600), so this holds
across ``update`` runs from cron and across watch restarts.

Notification URLs carry tokens: they are secrets (``notify_secret_values`` feeds
``Config.secret_values``, so every Redactor built from the configuration masks them),
and are only ever shown as ``shown_url`` (scheme and host, or the scheme alone).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import notify_secret_values  # noqa: F401  (re-exported: the [notify] secrets live with the config)
from ..errors import ConfigError

EVENTS = ("changed", "failed", "recovered", "stopped")
STATE_NAME = "notify-state.json"
SEND_TIMEOUT_S = 10.0  # one apprise URL (its plugins time out on their own: 4 s connect, 4 s read)
PING_TIMEOUT_S = 10.0
# Decision results that are not a provider's answer: no `failed` for them (the address
# could not be agreed on, or was private; `update` says so, and the next round retries).
NOT_PROVIDER_CODES = frozenset({"no-address", "private-address", "dry-run"})


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class NotifySettings:
    urls: tuple[str, ...] = ()
    ping: str | None = None
    events: frozenset[str] = frozenset(EVENTS)

    @property
    def enabled(self) -> bool:
        return bool(self.urls or self.ping)


def _raw_table(settings: Mapping[str, Any]) -> Any:
    return settings.get("notify", {})


def shown_url(url: str) -> str:
    """How a notification URL is shown: the scheme and the host when the host is a DNS
    name or an address, never the path, user, password or query (they carry the token)."""
    try:
        split = urllib.parse.urlsplit(url.strip())
    except ValueError:
        return "(unreadable URL)"
    scheme = split.scheme or "?"
    host = split.hostname or ""
    if host and ("." in host or ":" in host):
        return f"{scheme}://{host}/***"
    return f"{scheme}://***"


def notify_settings(config: Any) -> NotifySettings:
    """The ``[notify]`` table of a loaded configuration; ConfigError (exit 2) when malformed."""
    settings = getattr(config, "settings", {}) or {}
    where = str(config.path) if getattr(config, "path", None) else "configuration"
    table = _raw_table(settings)
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [notify] must be a table", path=where)
    unknown = sorted(set(table) - {"urls", "ping", "events"})
    if unknown:
        raise ConfigError(f"{where}: unknown key notify.{unknown[0]} (known: urls, ping, events)", path=where)
    urls = table.get("urls", [])
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ConfigError(f"{where}: notify.urls must be a list of apprise URLs (strings)", path=where)
    cleaned: list[str] = []
    for i, url in enumerate(urls, start=1):
        url = url.strip()
        if not url:
            continue
        if "://" not in url:
            raise ConfigError(
                f"{where}: notify.urls entry {i} is not a URL (an apprise URL looks like "
                "ntfy://TOPIC or json://HOST/PATH)",
                path=where,
            )
        cleaned.append(url)
    ping = table.get("ping")
    if ping is not None:
        if not isinstance(ping, str):
            raise ConfigError(f"{where}: notify.ping must be a URL (a string)", path=where)
        ping = ping.strip() or None
        if ping is not None:
            scheme = urllib.parse.urlsplit(ping).scheme.lower()
            if scheme not in ("http", "https"):
                raise ConfigError(
                    f"{where}: notify.ping must be an http:// or https:// URL (e.g. https://hc-ping.com/UUID)",
                    path=where,
                )
    events = table.get("events", list(EVENTS))
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise ConfigError(f"{where}: notify.events must be a list of event names ({', '.join(EVENTS)})", path=where)
    bad = [e for e in events if e not in EVENTS]
    if bad:
        raise ConfigError(f"{where}: notify.events: unknown event {bad[0]!r} (known: {', '.join(EVENTS)})", path=where)
    return NotifySettings(tuple(cleaned), ping, frozenset(events))


def with_notify(
    settings: Mapping[str, Any],
    *,
    urls: Sequence[str] | None = None,
    ping: str | None = None,
    events: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``settings`` (a Config's other top-level tables) with the ``[notify]`` table changed."""
    out = dict(settings)
    table = dict(out.get("notify") or {}) if isinstance(out.get("notify"), dict) else {}
    if urls is not None:
        table["urls"] = list(urls)
    if ping is not None:
        table["ping"] = ping
    if events is not None:
        table["events"] = list(events)
    out["notify"] = table
    return out


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Event:
    kind: str  # changed | failed | recovered | stopped | test
    hostname: str | None = None
    provider: str | None = None
    old: str | None = None
    new: str | None = None
    code: str | None = None  # the provider's word (badauth, 911, HTTP 403 ...)
    message: str | None = None
    stopped: bool = False  # failed: the host is left alone until the configuration changes

    def title(self) -> str:
        name = self.hostname or "ddns-wizard"
        return {
            "changed": f"{name}: now {self.new}",
            "failed": f"{name}: update failed" + (" (stopped)" if self.stopped else ""),
            "recovered": f"{name}: working again",
            "stopped": "ddns-wizard watch stopped",
            "test": "ddns-wizard: test notification",
        }.get(self.kind, f"ddns-wizard: {self.kind}")

    def body(self) -> str:
        if self.kind == "changed":
            return f"{self.hostname} ({self.provider}) was updated: {self.old or 'nothing'} → {self.new}."
        if self.kind == "failed":
            word = f" ({self.code})" if self.code else ""
            tail = (
                " The provider refuses this until it is fixed: the watch stops trying this hostname until "
                "the configuration changes."
                if self.stopped
                else " It is retried; you hear again when it works."
            )
            return f"{self.hostname} ({self.provider}): the provider said{word}: {self.message or 'no reason given'}.{tail}"
        if self.kind == "recovered":
            return f"{self.hostname} ({self.provider}) works again" + (f": {self.message}" if self.message else ".")
        if self.kind == "stopped":
            return self.message or "The watch stopped: every hostname was refused by its provider."
        return self.message or "If you can read this, ddns-wizard can notify you."

    def notify_type(self) -> str:
        return {
            "changed": "info",
            "failed": "failure",
            "recovered": "success",
            "stopped": "failure",
            "test": "info",
        }.get(self.kind, "info")


def _failing_kind(result: Any) -> bool:
    return result.result == "error" and result.code not in NOT_PROVIDER_CODES


class NotifyState:
    """Which hosts are failing (notified once until they recover), kept beside the history."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.failing: dict[str, dict[str, Any]] = {}
        if path is not None:
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        from ..files import read_regular_file

        try:
            data = json.loads(read_regular_file(self.path, limit=1 << 20).decode("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return  # missing or unreadable: start afresh (at worst one repeat)
        failing = data.get("failing") if isinstance(data, dict) else None
        if isinstance(failing, dict):
            self.failing = {str(k): v for k, v in failing.items() if isinstance(v, dict)}

    def save(self) -> None:
        if self.path is None:
            return
        from ..config import write_private_file

        body = json.dumps({"failing": self.failing}, indent=1, sort_keys=True).encode("utf-8")
        write_private_file(self.path, body)


def events_for(results: Iterable[Any], state: NotifyState, *, now: float | None = None) -> list[Event]:
    """The events one round's results give, updating ``state`` (once-until-recovered).

    ``results``: UpdateResults (a send's answer, or a decision such as "unchanged")."""
    now = time.time() if now is None else now
    events: list[Event] = []
    for r in results:
        if r.code == "dry-run":
            continue
        was = state.failing.get(r.hostname)
        if r.result in ("updated", "unchanged"):
            if r.result == "updated":
                events.append(Event("changed", r.hostname, r.provider, old=r.previous, new=r.sent, code=r.code))
            if was is not None:
                state.failing.pop(r.hostname, None)
                events.append(
                    Event(
                        "recovered",
                        r.hostname,
                        r.provider,
                        new=r.sent or None,
                        message=f"failing since {_when(was.get('since'))}",
                    )
                )
        elif _failing_kind(r):
            if was is not None and was.get("stopped", False) >= bool(r.fatal):
                continue  # said already; a later refusal that stops it is said again
            state.failing[r.hostname] = {
                "since": (was or {}).get("since", now),
                "code": r.code,
                "stopped": bool(r.fatal),
            }
            events.append(
                Event(
                    "failed",
                    r.hostname,
                    r.provider,
                    old=r.previous,
                    new=r.sent,
                    code=r.code,
                    message=_short(r.message, r.hostname),
                    stopped=bool(r.fatal),
                )
            )
    return events


def _short(message: str | None, hostname: str) -> str:
    text = (message or "").strip()
    if text.startswith(hostname + " "):
        text = text[len(hostname) + 1 :]
    return text.rstrip(".")[:300]


def _when(t: Any) -> str:
    import datetime as dt

    if not isinstance(t, (int, float)):
        return "earlier"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class Delivery:
    """One notification to one URL: accepted or not, and why (redacted)."""

    url: str  # shown_url(): never the secret parts
    event: str
    ok: bool
    detail: str = ""


Sender = Callable[[str, Event], Awaitable[tuple[bool, str]]]


async def apprise_send(url: str, event: Event) -> tuple[bool, str]:
    """Send ``event`` to one apprise URL: (accepted, why not).  apprise is imported here,
    and only here; it is synchronous, so it runs in a thread, bounded by SEND_TIMEOUT_S."""
    try:
        import apprise
    except ImportError:
        return False, ("apprise is not installed: pip install 'ddns-wizard[notify]' (or pip install 'apprise>=2.2,<3')")
    _quiet_apprise_logging()

    def send() -> tuple[bool, str]:
        obj = apprise.Apprise()
        if not obj.add(url):
            return False, "apprise does not understand this URL (see the apprise wiki for its services)"
        types = {
            "info": apprise.NotifyType.INFO,
            "failure": apprise.NotifyType.FAILURE,
            "success": apprise.NotifyType.SUCCESS,
        }
        result = obj.notify(
            body=event.body(),
            title=event.title(),
            notify_type=types.get(event.notify_type(), apprise.NotifyType.INFO),
            timeout=SEND_TIMEOUT_S,
        )
        if bool(result):
            return True, ""
        why = ""
        try:
            messages = [getattr(e, "message", "") for e in result.logs() if _level(e) >= logging.WARNING]
            why = next((m for m in reversed(messages) if m), "")
        except Exception:  # apprise's log API is a nicety, never a reason to fail
            why = ""
        return False, why or "the service did not accept it"

    try:
        return await asyncio.wait_for(asyncio.to_thread(send), SEND_TIMEOUT_S + 5)
    except TimeoutError:
        return False, f"no answer within {SEND_TIMEOUT_S + 5:.0f} s"
    except Exception as exc:  # a plugin bug must not end the watch
        return False, f"{type(exc).__name__}: {exc}"


def _level(entry: Any) -> int:
    level = getattr(entry, "level", logging.ERROR)
    if isinstance(level, str):
        return (
            logging.getLevelName(level.upper())
            if isinstance(logging.getLevelName(level.upper()), int)
            else logging.ERROR
        )
    return int(level) if isinstance(level, int) else logging.ERROR


_QUIETED = False


def _quiet_apprise_logging() -> None:
    """apprise logs warnings (with service addresses) to the root handlers; this process
    reports per URL itself, redacted, so its logger is kept to itself."""
    global _QUIETED
    if not _QUIETED:
        logger = logging.getLogger("apprise")
        logger.propagate = False
        logger.addHandler(logging.NullHandler())
        _QUIETED = True


async def ping(url: str, kind: str, *, client: Any = None, body: str = "") -> tuple[bool, str]:
    """A healthchecks.io-style ping: ``kind`` start | success | fail."""
    target = url.rstrip("/") + {"start": "/start", "fail": "/fail"}.get(kind, "")
    own = client is None
    if own:
        from ..http import make_client

        client = make_client(timeout_s=PING_TIMEOUT_S, request_deadline_s=PING_TIMEOUT_S)
    try:
        response = await asyncio.wait_for(
            client.post(target, content=body.encode("utf-8")[:100_000]), PING_TIMEOUT_S + 2
        )
        ok = 200 <= response.status_code < 300
        return ok, "" if ok else f"HTTP {response.status_code}"
    except Exception as exc:
        return False, type(exc).__name__ + (f": {exc}" if str(exc) else "")
    finally:
        if own:
            await client.aclose()


@dataclass
class Notifier:
    """Turns results into events and sends them; never raises, never blocks a round for long."""

    settings: NotifySettings
    state: NotifyState
    redactor: Any = None
    send: Sender = apprise_send
    client: Any = None  # for pings (the provider client is fine)
    emit: Callable[[str], None] = lambda text: None
    deliveries: list[Delivery] = field(default_factory=list)

    @classmethod
    def for_config(cls, config: Any, history_path: Path | None, *, strict: bool = True, **kw: Any) -> Notifier:
        """``strict=False`` (update, watch): a malformed ``[notify]`` table turns notifications
        off with a warning (``emit``) instead of stopping the updates it is only there to report."""
        from ..redact import Redactor

        try:
            settings = notify_settings(config)
        except ConfigError as exc:
            if strict:
                raise
            settings = NotifySettings(events=frozenset())
            emit = kw.get("emit")
            if emit is not None:
                emit(f"notifications are off: {Redactor.from_config(config).text(str(exc))}")
        state_path = history_path.parent / STATE_NAME if history_path is not None else None
        kw.setdefault("redactor", Redactor.from_config(config))
        return cls(settings, NotifyState(state_path if settings.enabled else None), **kw)

    def _clean(self, text: str) -> str:
        return self.redactor.text(text) if self.redactor is not None else text

    async def results(self, results: Sequence[Any]) -> list[Delivery]:
        if not self.settings.enabled:
            return []
        before = json.dumps(self.state.failing, sort_keys=True)
        events = events_for(results, self.state)
        if json.dumps(self.state.failing, sort_keys=True) != before:
            try:
                self.state.save()
            except Exception as exc:  # a full disk costs at worst a repeated notification
                self.emit(f"notify: cannot save {self.state.path}: {self._clean(str(exc))}")
        return await self.events(events)

    async def events(self, events: Sequence[Event]) -> list[Delivery]:
        wanted = [e for e in events if e.kind in self.settings.events or e.kind == "test"]
        if not wanted or not self.settings.urls:
            return []
        out = await asyncio.gather(*(self._one(url, e) for e in wanted for url in self.settings.urls))
        self.deliveries.extend(out)
        return list(out)

    async def _one(self, url: str, event: Event) -> Delivery:
        ok, why = await self.send(url, event)
        delivery = Delivery(shown_url(url), event.kind, ok, self._clean(why))
        if not ok:
            self.emit(f"notify: {delivery.url} did not take the {event.kind} notification: {delivery.detail}")
        return delivery

    async def ping(self, kind: str, body: str = "") -> tuple[bool, str] | None:
        if not self.settings.ping:
            return None
        ok, why = await ping(self.settings.ping, kind, client=self.client, body=self._clean(body))
        if not ok:
            self.emit(
                f"notify: the ping URL ({shown_url(self.settings.ping)}) did not take the {kind} ping: "
                f"{self._clean(why)}"
            )
        return ok, self._clean(why)

    async def test(self) -> list[Delivery]:
        """One test message to every URL, reported per URL (``notify test``)."""
        event = Event("test", message="If you can read this, ddns-wizard can notify you here.")
        return list(await asyncio.gather(*(self._one(url, event) for url in self.settings.urls)))
