"""What every DDNS provider declares, and the helpers every protocol family shares.

A provider is a :class:`ProviderSpec`: sign-up guidance a first-timer can follow,
pitfalls, the credential fields (each with a validator run before anything is
sent), a :class:`Policy` (fatal codes, retry delays, minimum interval between
updates) and two coroutines supplied by its protocol family module:

- ``preflight(host, client) -> PreflightResult``: prove the credentials without
  spending an update where the provider allows it;
- ``update(host, ipv4, ipv6, client) -> UpdateResult``: send one update and map
  the provider's reply onto ``updated`` / ``unchanged`` / ``error``.

``ProviderSpec.update`` and ``ProviderSpec.preflight`` never raise for network or
provider trouble: every failure comes back as data, with the message redacted
(the host's secrets and secret-shaped URL pieces masked), so a token can never
reach a log, a terminal or a report through them.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from checks import __version__
from checks.config import HostConfig
from checks.model import ProviderView, UpdateResult, UpdateResultName
from checks.redact import Redactor

log = logging.getLogger("checks.ddns.providers")

PROJECT_CONTACT = "https://github.com/ddns-wizard/ddns-wizard"
# The maintainers' address in the User-Agent (No-IP asks for an e-mail there, see user_agent).
PROJECT_CONTACT_EMAIL = "ddns-wizard@users.noreply.github.com"
REQUEST_TIMEOUT_S = 10.0  # one HTTP request to a provider
UPDATE_BUDGET_S = 30.0  # a whole update (Cloudflare needs up to 4 requests)

Validator = Callable[[str], "str | None"]  # returns a problem sentence, or None when fine


class _RedactingFilter(logging.Filter):
    """Masks secret-shaped URL pieces in library log records.

    httpx logs every request URL at INFO ("HTTP Request: GET https://...?token=..."):
    DuckDNS, dynv6 and Namecheap carry the secret in the query, FreeDNS in the
    path.  Anyone enabling INFO logging (a service manager, --debug) would see it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix; let logging report it
            return True
        redacted = Redactor().text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_log_redaction() -> None:
    """Idempotently attach the redacting filter to the HTTP libraries' loggers."""
    for name in ("httpx", "httpcore", "checks.ddns.providers"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactingFilter) for f in logger.filters):
            logger.addFilter(_RedactingFilter())


install_log_redaction()


def user_agent(contact: str | None = None) -> str:
    """``ddns-wizard ddns-wizard/<OS>-<version> <contact e-mail>``.

    No-IP asks software clients for ``Company NameOfProgram/OSVersion-ReleaseVersion
    maintainer-contact@example.com`` and warns that clients without a certified agent
    "risk being rate-limited or blocked" (https://www.noip.com/integrate/request);
    dyndns2 servers answer ``badagent`` (fatal) or ``good 127.0.0.1`` (ignored) to
    agents they refuse (https://help.dyn.com/return-codes/).  ``contact`` (the host's
    ``contact`` option) replaces the maintainers' address; it must be an e-mail
    address (``check_contact``) so the agent keeps that form.
    """
    import platform

    system = "".join(ch for ch in (platform.system() or "unknown") if ch.isalnum()) or "unknown"
    return f"ddns-wizard ddns-wizard/{system}-{__version__} {contact or PROJECT_CONTACT_EMAIL}"


_EMAIL_RE = re.compile(r"[^@\s<>\"'()]+@[^@\s<>\"'()]+\.[A-Za-z0-9-]{2,}")


def check_contact(value: str) -> str | None:
    """The ``contact`` option goes into the User-Agent: one e-mail address, nothing else."""
    if _EMAIL_RE.fullmatch(value.strip()) and value == value.strip():
        return None
    return (
        "contact must be one e-mail address (e.g. you@example.org): providers such as No-IP expect "
        "'Program/Version e-mail' in the User-Agent and may block other forms"
    )


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class CredentialField:
    """One value the user must supply for a provider.

    ``name`` is where it lives in a ``[[hosts]]`` table: ``hostname``,
    ``username``, ``password``, ``token``, ``server`` or an extra option key
    (``zone``, ``key_name``...).
    """

    name: str
    label: str
    secret: bool
    help: str
    validate: Validator | None = None
    required: bool = True
    default: str | None = None
    aliases: tuple[str, ...] = ()  # other keys accepted for the same value (``key`` for ``tsig_secret``)
    placeholder: str = ""  # an example value for an input box


@dataclass(frozen=True)
class Policy:
    """How often, and after which replies, a provider may be asked again.

    ``fatal_codes``: stop updating this hostname until the user acts (retrying
    gets accounts blocked). ``retry_after_s``: server trouble, wait this long
    (per code; ``"http-5xx"``, ``"http-429"`` and ``"network"`` are ours).
    ``min_interval_s``: never send two updates for one hostname closer than this.
    """

    min_interval_s: int = 300
    fatal_codes: frozenset[str] = frozenset()
    retry_after_s: Mapping[str, int] = field(default_factory=dict)
    default_retry_s: int = 600  # an error that is neither fatal nor listed
    max_retry_s: int = 6 * 3600  # backoff ceiling for repeated errors

    def retry_for(self, code: str | None) -> int:
        if code is not None and code in self.retry_after_s:
            return self.retry_after_s[code]
        return self.default_retry_s

    def is_fatal(self, code: str | None) -> bool:
        return code is not None and code in self.fatal_codes


@dataclass(frozen=True)
class PreflightResult:
    """What a pre-flight proved.

    ``spent_update``: the provider offers no read-only check, so the proof is
    (or would be) a real update; ``message`` says so.
    """

    ok: bool
    message: str
    spent_update: bool = False
    code: str | None = None


UpdateFn = Callable[["ProviderSpec", HostConfig, "str | None", "str | None", Any], Awaitable[UpdateResult]]
PreflightFn = Callable[["ProviderSpec", HostConfig, Any], Awaitable[PreflightResult]]


@dataclass(frozen=True)
class ProviderSpec:
    name: str  # config value of `provider`
    title: str  # what people call it
    family: str  # protocol family module: dyndns2, duckdns, ...
    cost: str  # free / paid / needs your own domain ...
    url: str  # where to sign up
    default_server: str | None  # base URL (or DNS server for rfc2136); HostConfig.server overrides
    signup_steps: tuple[str, ...]
    pitfalls: tuple[str, ...]
    fields: tuple[CredentialField, ...]
    supports_ipv6: bool
    policy: Policy
    update_fn: UpdateFn
    preflight_fn: PreflightFn
    domains: tuple[str, ...] = ()  # hostnames must end in one of these (empty: any FQDN)
    own_domain_allowed: bool = False  # `own_domain = true` lifts the domains check
    needs: str = ""  # one line: what the user must have (account, own domain, ...)
    options: Mapping[str, Any] = field(default_factory=dict)  # family-specific knobs
    check_host: Callable[[HostConfig], list[str]] | None = None  # checks across fields (sentences)
    # What the provider itself holds for a host, read without changing anything (Cloudflare's
    # API): used instead of DNS where DNS cannot show it (proxied records).  See ProviderView.
    published_fn: Callable[[ProviderSpec, HostConfig, Any], Awaitable[ProviderView]] | None = None
    # Several hostnames in one request where the protocol allows it (dyndns2: comma-separated,
    # at most ``batch_max``; DuckDNS: ``domains=a,b``).  Hosts batch together only when
    # ``batch_key`` (server and credentials) and the addresses are the same.
    batch_fn: (
        Callable[[ProviderSpec, Sequence[HostConfig], str | None, str | None, Any], Awaitable[list[UpdateResult]]]
        | None
    ) = None
    batch_max: int = 20

    # -- used by the CLI, the wizard and the updater ----------------------------

    @property
    def hostname_hint(self) -> str:
        """An example hostname for this provider (``myhome.duckdns.org``)."""
        return next((f.placeholder for f in self.fields if f.name == "hostname"), "")

    def validate_value(self, name: str, value: str) -> str | None:
        """Check one value as the user types it (the wizard's input boxes).

        The field's own validator, plus the provider's domain rule for ``hostname``
        and the URL/address rule for ``server``. None when fine.
        """
        spec_field = next((f for f in self.fields if f.name == name or name in f.aliases), None)
        if spec_field is not None and spec_field.validate is not None and value.strip():
            problem = spec_field.validate(value)
            if problem:
                return problem
        if name == "server" and value.strip():
            return self._validate_server(value)
        if name == "hostname":
            problems = self._validate_hostname_domain(
                HostConfig(hostname=value.strip().lower().rstrip("."), provider=self.name)
            )
            return problems[0] if problems else None
        return None

    def server_for(self, host: HostConfig) -> str:
        server = (host.server or self.default_server or "").strip()
        return server.rstrip("/")

    def validate(self, host: HostConfig) -> list[str]:
        """Every problem with this host's configuration, as sentences (empty: fine)."""
        problems: list[str] = []
        for f in self.fields:
            value = field_value(host, f.name)
            for alias in f.aliases:
                if value is None or value == "":
                    value = field_value(host, alias)
            if value is None or value == "":
                if f.required and f.default is None:
                    problems.append(f"{host.hostname}: {f.label} ({f.name}) is missing for {self.title}")
                continue
            if f.validate is not None:
                problem = f.validate(str(value))
                if problem:
                    problems.append(f"{host.hostname}: {f.label}: {problem}")
        if host.server is not None:
            problem = self._validate_server(host.server)
            if problem:
                problems.append(f"{host.hostname}: server: {problem}")
        problems.extend(self._validate_hostname_domain(host))
        zone = host.options.get("zone")
        if isinstance(zone, str) and zone.strip():
            from checks.idn import IdnError, to_ascii

            try:
                z, name = to_ascii(zone), to_ascii(host.hostname)
            except IdnError as exc:
                z, name = zone.strip().lower().rstrip("."), host.hostname.lower().rstrip(".")
                problems.append(f"{host.hostname}: {exc}")
            if name != z and not name.endswith("." + z):
                problems.append(f"{host.hostname} is not inside the zone {z}: fix hostname or zone")
        ttl = host.options.get("ttl")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= 86400):
            problems.append(f"{host.hostname}: ttl must be a whole number of seconds between 1 and 86400")
        contact = host.options.get("contact")
        if contact is not None:
            problem = check_contact(contact) if isinstance(contact, str) else "must be a string"
            if problem:
                problems.append(f"{host.hostname}: {problem}")
        keep = host.options.get("keep_addresses")
        if keep is not None and keep_addresses(host) is None:
            problems.append(
                f"{host.hostname}: keep_addresses must be a list of IP addresses, "
                'e.g. keep_addresses = ["198.51.100.7"]'
            )
        if keep is not None and not self.options.get("multi_record"):
            problems.append(
                f"{host.hostname}: keep_addresses only applies to providers that hold several "
                f"records per name (Cloudflare, RFC 2136), not {self.title}"
            )
        if self.check_host is not None:
            problems.extend(self.check_host(host))
        mi = host.options.get("min_interval")
        if mi is not None and (isinstance(mi, bool) or not isinstance(mi, int) or mi < 0):
            problems.append(f"{host.hostname}: min_interval must be a whole number of seconds")
        if wants_ipv6(host) and not self.supports_ipv6:
            problems.append(f"{host.hostname}: {self.title} cannot publish IPv6 addresses; remove ipv6 = true")
        return problems

    def _validate_server(self, server: str) -> str | None:
        if self.family == "rfc2136":
            return None if server.strip() else "empty"
        text = server.strip()
        if text.lower().startswith("http://"):
            return "must use https:// (the update carries your credentials, which must not travel unencrypted)"
        if not re.match(r"^https://[^\s/]+", text):
            return "must be a URL such as https://members.example.org"
        return None

    def _validate_hostname_domain(self, host: HostConfig) -> list[str]:
        if not self.domains or (self.own_domain_allowed and host.options.get("own_domain") is True):
            return []
        from checks.idn import IdnError, to_ascii

        try:
            name = to_ascii(host.hostname)
        except IdnError:
            name = host.hostname.lower().rstrip(".")
        if any(name.endswith("." + d) and len(name) > len(d) + 1 for d in self.domains):
            return []
        shown = ", ".join(self.domains[:8]) + (", ..." if len(self.domains) > 8 else "")
        extra = (
            " If the name is under your own domain managed by this provider, set own_domain = true."
            if self.own_domain_allowed
            else ""
        )
        return [f"{host.hostname} is not a {self.title} hostname (it must end in {shown}).{extra}"]

    def min_interval_for(self, host: HostConfig) -> int:
        """Seconds between two updates of ``host``.

        ``min_interval`` in the host table may raise it for any provider; it may lower it
        only for servers the user runs or chose (generic dyndns2, RFC 2136), never below
        a public provider's own rule.
        """
        value = host.options.get("min_interval")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return self.policy.min_interval_s
        if self.options.get("user_server"):
            return value
        return max(value, self.policy.min_interval_s)

    def redactor(self, host: HostConfig) -> Redactor:
        r = Redactor()
        r.add(host.secret_values())
        r.add_basic(host.username, host.password)
        return r

    async def update(self, host: HostConfig, ipv4: str | None, ipv6: str | None, client: Any) -> UpdateResult:
        """Send one update; never raises for network/provider trouble (see module doc)."""
        sent = join_sent(ipv4, ipv6)
        redactor = self.redactor(host)
        problems = self.validate(host)
        if problems:
            return self.error(host, sent=None, code="config", fatal=True, message=redactor.text("; ".join(problems)))
        if ipv4 is None and ipv6 is None:
            return self.error(host, sent=None, code="no-address", message="no address to send")
        from checks.dns import wire as dnswire  # noqa: F401  (RFC 2136 replies: pin dnspython's address types first)

        excerpt_redactor = _EXCERPT_REDACTOR.set(redactor)
        try:
            import asyncio  # lazy: `providers` and config checks need no event loop

            async with asyncio.timeout(UPDATE_BUDGET_S):
                result = await self.update_fn(self, host, ipv4, ipv6, client)
        except TimeoutError:
            result = self.error(
                host,
                sent=sent,
                code="timeout",
                retry_code="network",
                message=f"{self.title} did not answer within {UPDATE_BUDGET_S:.0f} s; will retry later",
            )
        except Exception as exc:  # a provider module bug or an unexpected library error: data, not a crash
            result = self.error(
                host, sent=sent, code="network", retry_code="network", message=network_message(self.title, exc)
            )
        finally:
            _EXCERPT_REDACTOR.reset(excerpt_redactor)
        result = redact_result(result, redactor)
        log.info("%s %s: %s (%s) %s", self.name, host.hostname, result.result, result.code, result.message)
        return result

    def batch_key(self, host: HostConfig) -> tuple[Any, ...] | None:
        """Hosts with equal keys may share one request (None: this one never batches)."""
        if self.batch_fn is None:
            return None
        return (self.name, self.server_for(host), host.username, host.password, host.token, host.options.get("contact"))

    async def update_batch(
        self, hosts: Sequence[HostConfig], ipv4: str | None, ipv6: str | None, client: Any
    ) -> list[UpdateResult]:
        """One request for several hosts (``batch_fn``); one result per host, in order; never raises."""
        if len(hosts) == 1 or self.batch_fn is None:
            return [await self.update(h, ipv4, ipv6, client) for h in hosts]
        sent = join_sent(ipv4, ipv6)
        redactor = Redactor()
        for h in hosts:
            redactor.add(h.secret_values())
        try:
            import asyncio  # lazy: `providers` and config checks need no event loop

            async with asyncio.timeout(UPDATE_BUDGET_S):
                results = await self.batch_fn(self, hosts, ipv4, ipv6, client)
        except TimeoutError:
            results = [
                self.error(
                    h,
                    sent=sent,
                    code="timeout",
                    retry_code="network",
                    message=f"{self.title} did not answer within {UPDATE_BUDGET_S:.0f} s; will retry later",
                )
                for h in hosts
            ]
        except Exception as exc:  # a module bug or an unexpected library error: data, not a crash
            results = [
                self.error(h, sent=sent, code="network", retry_code="network", message=network_message(self.title, exc))
                for h in hosts
            ]
        out = [redact_result(r, redactor) for r in results]
        for r in out:
            log.info("%s %s: %s (%s) %s", self.name, r.hostname, r.result, r.code, r.message)
        return out

    async def published(self, host: HostConfig, client: Any) -> ProviderView:
        """What the provider holds for ``host`` (``published_fn``); never raises, nothing changed."""
        if self.published_fn is None:
            return ProviderView(error=f"{self.title} cannot be asked what it holds", source="none")
        try:
            import asyncio  # lazy: `providers` and config checks need no event loop

            async with asyncio.timeout(UPDATE_BUDGET_S):
                view = await self.published_fn(self, host, client)
        except TimeoutError:
            view = ProviderView(error=f"{self.title} did not answer within {UPDATE_BUDGET_S:.0f} s")
        except Exception as exc:  # network trouble or a module bug: data, not a crash
            view = ProviderView(error=network_message(self.title, exc))
        if view.error:
            view = replace(view, error=self.redactor(host).text(view.error))
        return view

    async def preflight(self, host: HostConfig, client: Any) -> PreflightResult:
        redactor = self.redactor(host)
        problems = self.validate(host)
        if problems:
            return PreflightResult(False, redactor.text("; ".join(problems)), code="config")
        excerpt_redactor = _EXCERPT_REDACTOR.set(redactor)
        try:
            import asyncio  # lazy: `providers` and config checks need no event loop

            async with asyncio.timeout(UPDATE_BUDGET_S):
                res = await self.preflight_fn(self, host, client)
        except Exception as exc:
            res = PreflightResult(False, network_message(self.title, exc), code="network")
        finally:
            _EXCERPT_REDACTOR.reset(excerpt_redactor)
        return replace(res, message=redactor.text(res.message))

    # -- result builders used by family modules --------------------------------

    def ok(
        self, host: HostConfig, *, sent: str | None, result: UpdateResultName, code: str | None, message: str
    ) -> UpdateResult:
        return UpdateResult(
            hostname=host.hostname,
            provider=self.name,
            previous=None,
            sent=sent,
            result=result,
            code=code,
            message=message,
        )

    def error(
        self,
        host: HostConfig,
        *,
        sent: str | None,
        code: str | None,
        message: str,
        fatal: bool | None = None,
        retry_after_s: int | None = None,
        retry_code: str | None = None,
    ) -> UpdateResult:
        """An ``error`` result; fatal/retry follow the policy unless given."""
        is_fatal = self.policy.is_fatal(code) if fatal is None else fatal
        retry = None
        if not is_fatal:
            retry = retry_after_s if retry_after_s is not None else self.policy.retry_for(retry_code or code)
        return UpdateResult(
            hostname=host.hostname,
            provider=self.name,
            previous=None,
            sent=sent,
            result="error",
            code=code,
            message=message,
            fatal=is_fatal,
            retry_after_s=retry,
        )


# --------------------------------------------------------------------------- helpers


def field_value(host: HostConfig, name: str) -> Any:
    if name in ("hostname", "username", "password", "token", "server"):
        return getattr(host, name)
    return host.options.get(name)


def wants_ipv4(host: HostConfig) -> bool:
    return host.options.get("ipv4", True) is not False


def wants_ipv6(host: HostConfig) -> bool:
    # A host that publishes another device's IPv6 address (checks/ddns/ipv6device.py) wants AAAA.
    return (
        host.options.get("ipv6", False) is True
        or host.options.get("ipv6_suffix") is not None
        or host.options.get("ipv6_mac") is not None
    )


def join_sent(ipv4: str | None, ipv6: str | None) -> str | None:
    parts = [a for a in (ipv4, ipv6) if a]
    return ",".join(parts) if parts else None


def redact_result(result: UpdateResult, redactor: Redactor) -> UpdateResult:
    return replace(
        result, message=redactor.text(result.message), code=redactor.text(result.code) if result.code else result.code
    )


def network_message(title: str, exc: BaseException) -> str:
    """A sentence for a failed request, without the URL (URLs may carry tokens)."""
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        what = "the connection timed out"
    elif isinstance(exc, httpx.TimeoutException):
        what = "it did not answer in time"
    elif isinstance(exc, httpx.ConnectError):
        what = f"could not connect ({_short(exc)})"
    elif isinstance(exc, httpx.HTTPError):
        what = f"the request failed ({type(exc).__name__}: {_short(exc)})"
    elif isinstance(exc, OSError):
        what = f"network error ({exc.strerror or exc})"
    else:
        return (
            f"ddns-wizard could not handle {title}'s reply ({type(exc).__name__}: {_short(exc)}); "
            "will retry later. Please report this to the ddns-wizard maintainers."
        )
    return (
        f"could not reach {title}: {what}. Check this machine's internet connection and that "
        f"outbound HTTPS to the provider is allowed; will retry later."
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


_DELTA_SECONDS_RE = re.compile(r"[0-9]{1,12}")  # RFC 9110 delta-seconds: ASCII digits only
_RETRY_AFTER_MAX_S = 24 * 3600


def retry_after_header(value: str | None, fallback: int) -> int:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), bounded to 1 s .. 1 day.

    A hostile or broken value never raises: ``str.isdigit`` accepts ``²`` and other
    Unicode digits that ``int`` refuses, and ``int`` refuses more than 4300 digits, so
    only ASCII digits are read and a longer run of them is simply "a very long time".
    Anything else that is not an HTTP date gives ``fallback``.
    """
    if not value:
        return fallback
    value = value.strip()
    if value.isascii() and value.isdigit():
        if not _DELTA_SECONDS_RE.fullmatch(value):
            return _RETRY_AFTER_MAX_S  # 13 digits or more: far beyond the ceiling
        return max(1, min(int(value), _RETRY_AFTER_MAX_S))
    if len(value) > 64:  # an IMF-fixdate is 29 characters
        return fallback
    try:
        import datetime as dt
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
        if when.tzinfo is None:  # "-0000": a time in UTC with no zone said
            when = when.replace(tzinfo=dt.UTC)
        delta = (when - dt.datetime.now(dt.UTC)).total_seconds()
        return max(1, min(int(delta), _RETRY_AFTER_MAX_S))
    except (TypeError, ValueError, IndexError, OverflowError, AttributeError):
        return fallback


# The secrets of the host being updated, for body_excerpt: a reply that echoes a secret must be
# masked before it is cut to length or flattened, or a cut-off piece of the secret is no longer
# recognisable later and survives into the message.
_EXCERPT_REDACTOR: contextvars.ContextVar[Redactor | None] = contextvars.ContextVar("excerpt_redactor", default=None)


def body_excerpt(text: str, limit: int = 120) -> str:
    """A short, printable excerpt of a reply body for messages (secrets masked first)."""
    redactor = _EXCERPT_REDACTOR.get()
    text = redactor.text(text) if redactor is not None else Redactor().text(text)
    flat = " ".join(text.split())
    flat = "".join(ch if ch.isprintable() else "?" for ch in flat)
    return flat[:limit] + ("..." if len(flat) > limit else "")


def http_status_result(
    spec: ProviderSpec, host: HostConfig, status: int, headers: Any, sent: str | None
) -> UpdateResult | None:
    """Results for HTTP statuses that mean the same for every provider; None otherwise.

    ``headers`` is any mapping with ``.get`` (httpx.Headers, a dict) or None.
    """
    headers = headers if headers is not None else {}
    code = f"HTTP {status}"
    if status == 429:
        wait = retry_after_header(headers.get("retry-after"), spec.policy.retry_for("http-429"))
        return spec.error(
            host,
            sent=sent,
            code=code,
            retry_after_s=wait,
            message=f"{spec.title} says too many requests (HTTP 429); waiting {wait} s before trying again.",
        )
    if status >= 500:
        wait = retry_after_header(headers.get("retry-after"), spec.policy.retry_for("http-5xx"))
        return spec.error(
            host,
            sent=sent,
            code=code,
            retry_after_s=wait,
            message=f"{spec.title} has a server problem (HTTP {status}); retrying in {wait} s.",
        )
    return None


# --------------------------------------------------------------------------- validators

_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def check_fqdn(value: str) -> str | None:
    """FQDN syntax: letters, digits and hyphens, at least two labels, no IP addresses.

    A Unicode name (``bücher.example``) is checked in its ASCII form
    (``xn--bcher-kva.example``), which is what DNS and the providers use.
    """
    from checks.idn import IdnError, to_ascii

    name = value.strip().lower().rstrip(".")
    if not name:
        return "a hostname is required"
    if any(ch.isspace() for ch in value.strip()):
        return f"{value!r} contains spaces"
    if "://" in name or "/" in name:
        return f"{value!r} looks like a URL; enter only the hostname, e.g. myhome.example.org"
    try:
        name = to_ascii(name)
    except IdnError as exc:
        return str(exc)
    try:
        ipaddress.ip_address(name)
        return f"{value!r} is an IP address; a DDNS hostname is a name such as myhome.example.org"
    except ValueError:
        pass
    if len(name) > 253:
        return "hostname longer than 253 characters"
    labels = name.split(".")
    if len(labels) < 2:
        return f"{value!r} is not a full hostname (expected something like myhome.example.org)"
    for label in labels:
        if not _LABEL_RE.match(label):
            return (
                f"{value!r}: label {label!r} is not valid (letters, digits and hyphens, 1-63 "
                f"characters, not starting or ending with a hyphen)"
            )
    if labels[-1].isdigit():
        return f"{value!r} has a numeric top-level domain"
    return None


def check_nonempty(what: str) -> Validator:
    def check(value: str) -> str | None:
        if not value.strip():
            return f"{what} is empty"
        if value != value.strip():
            return f"{what} has spaces at the start or end (copy it again without them)"
        return None

    return check


def check_regex(pattern: str, problem: str) -> Validator:
    rx = re.compile(pattern)

    def check(value: str) -> str | None:
        return None if rx.fullmatch(value) else problem

    return check


def all_of(*validators: Validator) -> Validator:
    def check(value: str) -> str | None:
        for v in validators:
            problem = v(value)
            if problem:
                return problem
        return None

    return check


HOSTNAME_FIELD_HELP = "the full name to keep updated, e.g. myhome.example.org"


def hostname_field(example: str, help_text: str | None = None) -> CredentialField:
    return CredentialField(
        "hostname",
        "Hostname",
        False,
        help_text or f"the full name to keep updated, e.g. {example}",
        check_fqdn,
        placeholder=example,
    )


def keep_addresses(host: HostConfig) -> frozenset[str] | None:
    """The host's ``keep_addresses`` (records the user keeps beside the dynamic one), canonical;
    an empty set when not configured, None when the value is not a list of addresses."""
    raw = host.options.get("keep_addresses")
    if raw is None:
        return frozenset()
    if isinstance(raw, str) or not isinstance(raw, (list, tuple)):
        return None
    out: set[str] = set()
    for item in raw:
        try:
            out.add(ipaddress.ip_address(str(item).strip()).compressed)
        except ValueError:
            return None
    return frozenset(out)


def split_sent(sent: str | None) -> Sequence[str]:
    return [s for s in (sent or "").split(",") if s]
